"""API faults (issue 7), on a dedicated control plane so stopping its API server disturbs no other test:
the API server stopped and restarted during `status -w` and during `migrate --wait` (the plugin says it is
reconnecting, retries with back-off, resumes, never dies with a traceback; a clear error after a bounded wait
when it stays down); 429/503 retried, a 409 on a write path handled, `--request-timeout` honoured — through a
tiny HTTP proxy in front of the API server that injects those answers."""
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubectl_vmmig import errors as E
from kubectl_vmmig import resources as R
from tests.cluster.controlplane import ADMIN_TOKEN
from tests.sim import runner
from tests.sim.common import set_faults

from .reliability_kit import MANAGED, MTC_NS, Plane, install_all, make_vm, new_namespace, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def plane(cp):
    p = Plane()
    install_all(p.admin)
    sims = runner.start_all(p.plane.admin(), pace=0.05)
    try:
        yield p
    finally:
        sims.stop()
        p.close()


class Proxy:
    """Plain-HTTP proxy to the API server. ``rules``: [(method, path fragment, status, times)] answered instead
    of forwarding (times -1 = always); ``delay``: (path fragment, seconds) before forwarding."""

    def __init__(self, upstream):
        import urllib3

        self.upstream, self.rules, self.delay, self.injected = upstream, [], None, 0
        self.http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                for rule in proxy.rules:
                    method, frag, status, times = rule
                    if self.command == method and frag in self.path and times != 0:
                        rule[3] = times - 1 if times > 0 else times
                        proxy.injected += 1
                        msg = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                                          "reason": {429: "TooManyRequests", 409: "Conflict"}.get(status, "ServiceUnavailable"),
                                          "message": f"injected {status}"}).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(msg)))
                        if status == 429:
                            self.send_header("Retry-After", "1")
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                if proxy.delay and proxy.delay[0] in self.path:
                    time.sleep(proxy.delay[1])
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                # kubectl and the plugin send no credentials to an http:// server (client-go
                # rest.IsConfigTransportTLS), so this front authenticates upstream as the plane's admin
                headers.setdefault("Authorization", f"Bearer {ADMIN_TOKEN}")
                r = proxy.http.request(self.command, proxy.upstream + self.path, body=body, headers=headers)
                self.send_response(r.status)
                for k in ("Content-Type", "Retry-After"):
                    if r.headers.get(k):
                        self.send_header(k, r.headers[k])
                self.send_header("Content-Length", str(len(r.data)))
                self.end_headers()
                self.wfile.write(r.data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def proxy(plane):
    p = Proxy(plane.plane.server)
    yield p
    p.close()


def run(cp, plane, *args, timeout=300, env=None):
    e = plane.env(cp.env)
    e.update(env or {})
    return subprocess.run([cp.kubectl_bin, "vm-storage", *args], capture_output=True, text=True, env=e,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start(cp, plane, *args, env=None):
    e = plane.env(cp.env)
    e.update(env or {})
    return subprocess.Popen([cp.kubectl_bin, "vm-storage", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=e, stdin=subprocess.DEVNULL)


def mtc_migration(kube, ns):
    return [m for m in kube.items(R.MIGMIGRATION, MTC_NS) if ns in m["metadata"]["name"]]


def slow_mtc_namespace(plane, prefix, **faults):
    ns = new_namespace(plane.admin, prefix)
    make_vm(plane.admin, ns, "vm1", running=False)
    set_faults(plane.admin, ns, **(faults or {"rsyncStep": "3"}))
    return ns


def shown_first_state(watch, timeout=60):
    """Wait until `status -w` printed its first state: the outage must hit a running watch, not its start-up
    (on a loaded machine a fixed sleep is not enough)."""
    first = []
    reader = threading.Thread(target=lambda: first.append(watch.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert first and first[0], "status -w printed nothing"


def outage(plane, seconds):
    plane.plane.stop_apiserver()
    time.sleep(seconds)
    plane.plane.start_apiserver()


# ---- API server stopped and restarted ------------------------------------------------------------------
def test_status_watch_reconnects_after_an_apiserver_restart(cp, plane):
    ns = slow_mtc_namespace(plane, "restart-status")
    r = run(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline", "--yes",
            "--detach")
    assert r.returncode == 0, r.stderr
    watch = start(cp, plane, "status", "-n", ns, "-w", "--interval", "1")
    shown_first_state(watch)
    outage(plane, 6)
    out, err = watch.communicate(timeout=300)
    assert watch.returncode == 0, err
    assert "reconnecting" in err and "reconnected" in err, err
    assert "Traceback" not in err + out
    assert "Succeeded" in out


def test_status_watch_relists_after_a_410_when_the_apiserver_came_back(cp, plane):
    """A restarted kube-apiserver's watch cache starts at the current etcd revision: a watch resumed from an
    older resourceVersion gets 410 "too old resource version" (an ERROR event; watch_cache.go
    getAllEventsSinceLocked), which status -w answers with a relist (reflector.go isExpiredError), not an error."""
    ns = slow_mtc_namespace(plane, "gone-status")
    r = run(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline", "--yes",
            "--detach")
    assert r.returncode == 0, r.stderr
    watch = start(cp, plane, "status", "-n", ns, "-w", "--interval", "1", "-v", "6")
    shown_first_state(watch)
    time.sleep(1.0)  # the watches are open
    # Writes no watched store sees (another namespace): etcd's revision moves past every store's resourceVersion.
    other = new_namespace(plane.admin, "gone-other")
    for i in range(3):
        plane.admin.create(R.CONFIGMAP, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}},
                           other)
    outage(plane, 3)
    out, err = watch.communicate(timeout=300)
    assert watch.returncode == 0, err
    assert "Traceback" not in err + out
    gone = [ln for ln in err.splitlines() if "too old resource version" in ln and "listing again" in ln]
    assert gone, err[-3000:]
    # after the 410, that kind is LISTed again (a second LIST of a path listed at the start) and watched again
    lists = re.findall(r"\] GET (\S+?)(?:\?(\S*))? 200", err)
    paths = [p for p, q in lists if "watch=true" not in q]
    assert any(paths.count(p) >= 2 for p in paths), paths
    assert "Succeeded" in out


def test_migrate_wait_reconnects_after_an_apiserver_restart(cp, plane):
    ns = slow_mtc_namespace(plane, "restart-migrate")
    proc = start(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline",
                 "--yes", "--wait")
    wait_for(lambda: mtc_migration(plane.admin, ns), 120, "MigMigration")
    time.sleep(1.0)
    outage(plane, 6)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "reconnecting" in err and "Traceback" not in err + out, err
    assert len(mtc_migration(plane.admin, ns)) == 1


def test_a_server_that_stays_down_gives_a_clear_error_after_a_bounded_wait(cp, plane):
    ns = slow_mtc_namespace(plane, "stays-down", rsyncStep="1")
    r = run(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline", "--yes",
            "--detach")
    assert r.returncode == 0, r.stderr
    watch = start(cp, plane, "status", "-n", ns, "-w", "--interval", "1",
                  env={"KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT": "10"})
    shown_first_state(watch)
    plane.plane.stop_apiserver()
    t0 = time.monotonic()
    try:
        out, err = watch.communicate(timeout=120)
        took = time.monotonic() - t0
    finally:
        plane.plane.start_apiserver()
    assert watch.returncode == E.API_ERROR, err
    assert took < 60, took
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: lost the API server") and "goes on in the cluster" in last, err
    assert "Traceback" not in err


# ---- injected answers -----------------------------------------------------------------------------------
def test_429_is_retried_honouring_retry_after(cp, plane, proxy):
    ns = new_namespace(plane.admin, "throttled")
    make_vm(plane.admin, ns, "vm1")
    proxy.rules.append(["GET", "/virtualmachines", 429, 3])
    r = run(cp, plane, "check", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt", "-s", proxy.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert proxy.injected == 3


def test_503_on_write_paths_is_retried_and_nothing_is_created_twice(cp, plane, proxy):
    ns = new_namespace(plane.admin, "unavailable")
    make_vm(plane.admin, ns, "vm1")
    proxy.rules += [["POST", "/datavolumes", 503, 2], ["POST", "/configmaps", 503, 1],
                    ["PATCH", "/virtualmachines/vm1", 503, 1]]
    r = run(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt", "--wait", "-s", proxy.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert proxy.injected == 4
    assert [d["metadata"]["name"] for d in plane.admin.items(R.DATAVOLUME, ns, label_selector=MANAGED)] == \
        ["vm1-data-fast"]


def test_409_on_the_record_update_is_resolved_by_re_reading(cp, plane, proxy):
    ns = new_namespace(plane.admin, "conflict")
    make_vm(plane.admin, ns, "vm1")
    proxy.rules.append(["PUT", "/configmaps/vm-storage-", 409, 1])
    r = run(cp, plane, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt", "--wait", "-s", proxy.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert proxy.injected == 1
    rec = plane.admin.get(R.CONFIGMAP, "vm-storage-vm1-to-fast", ns)
    assert json.loads(rec["data"]["record"])["result"] == "Succeeded"


def test_persistent_5xx_ends_with_a_clear_api_error(cp, plane, proxy):
    ns = new_namespace(plane.admin, "broken")
    make_vm(plane.admin, ns, "vm1")
    proxy.rules.append(["GET", "/virtualmachines", 503, -1])
    r = run(cp, plane, "check", "vm1", "--to", "fast", "-n", ns, "-s", proxy.url)
    assert r.returncode == E.API_ERROR, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: injected 503"), r.stderr
    assert "Traceback" not in r.stderr and proxy.injected >= 2


def test_request_timeout_is_honoured(cp, plane, proxy):
    ns = new_namespace(plane.admin, "slow-server")
    make_vm(plane.admin, ns, "vm1")
    proxy.delay = ("/virtualmachines", 120)
    t0 = time.monotonic()
    r = run(cp, plane, "check", "vm1", "--to", "fast", "-n", ns, "-s", proxy.url, "--request-timeout", "1s")
    took = time.monotonic() - t0
    assert r.returncode == E.API_ERROR, r.stderr
    assert "timed out" in r.stderr.strip().splitlines()[-1] and "--request-timeout" in r.stderr, r.stderr
    assert took < 60, took  # every attempt gave up after 1 s (a 120 s answer was never waited for)
