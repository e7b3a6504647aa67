"""`status -w` reads through WATCHes (issue 16), through the real kubectl against the real kube-apiserver.

Idle, the request count is one LIST and one WATCH per kind read, whatever the number of objects (a poll would
add its LISTs every --interval); a change made while watching is in the next frame within seconds, not at the
next tick. (The 410-after-restart relist is in test_faults.py: it needs a control plane of its own.)
"""
import json
import re
import signal
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from kubectl_vmmig import resources as R
from tests.sim.common import MANUAL_LABEL

from .test_status import MTC_NS, sample, seed_mtc, set_status, tag

pytestmark = pytest.mark.cluster

REQUEST = re.compile(r"vm-storage\] (GET|POST|PUT|PATCH|DELETE) (\S+) (\d{3})")


def requests_of(stderr):
    """[(method, path, query dict, status)] of the plugin's -v 6 request log."""
    out = []
    for method, url, status in REQUEST.findall(stderr):
        parts = urlsplit(url)
        out.append((method, parts.path, parse_qs(parts.query), status))
    return out


def kind_of(req):
    """What one LIST/WATCH reads: path and selectors (a WATCH of a store and its LIST share it)."""
    _, path, q, _ = req
    return path, tuple(q.get("labelSelector", [])), tuple(q.get("fieldSelector", []))


def idle_watch(cp, seconds, *args):
    """`status -w -v 6` left alone for ``seconds`` (a fixed interval of 0.5 s: a poll would LIST 2x a second),
    then Ctrl-C; returns (stdout, stderr)."""
    proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "status", "-w", "--interval", "0.5", "-v", "6", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(cp.env),
                            stdin=subprocess.DEVNULL)
    try:
        time.sleep(seconds)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out, err


def _big_namespace(cp, base, n_vms):
    ns = f"{base[:40]}-{n_vms}"
    cp.admin.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns, "labels": {MANUAL_LABEL: "true"}}})
    seed_mtc(cp.admin, ns, n_extra_vms=n_vms)
    return ns


# Every kind a status view may read (engines/*/progress.py fetch_objects, status.py's VMs and PVC sizes): the
# requests may only be a LIST and a WATCH of each - never a kind outside these, never one twice.
VIEW_PATHS = {
    "/apis/migration.openshift.io/v1alpha1/namespaces/openshift-migration/migplans",
    "/apis/migration.openshift.io/v1alpha1/namespaces/openshift-migration/migmigrations",
    "/apis/migration.openshift.io/v1alpha1/namespaces/openshift-migration/directvolumemigrations",
    "/apis/migration.openshift.io/v1alpha1/namespaces/openshift-migration/directvolumemigrationprogresses",
    "/api/v1/configmaps", "/api/v1/persistentvolumeclaims",
    "/apis/kubevirt.io/v1/virtualmachines", "/apis/kubevirt.io/v1/virtualmachineinstances",
    "/apis/kubevirt.io/v1/virtualmachineinstancemigrations", "/apis/cdi.kubevirt.io/v1beta1/datavolumes",
    "/apis/migrations.kubevirt.io/v1alpha1/virtualmachinestoragemigrationplans",
    "/apis/migrations.kubevirt.io/v1alpha1/multinamespacevirtualmachinestoragemigrationplans",
    "/apis/migrations.kubevirt.io/v1alpha1/virtualmachinestoragemigrations",
}


def _in_view_paths(path, ns):
    """``path`` with its namespace taken out (a -n read) is one of VIEW_PATHS."""
    return path in VIEW_PATHS or path.replace(f"/namespaces/{ns}/", "/") in VIEW_PATHS


def _shape(stderr):
    reqs = requests_of(stderr)
    lists = [kind_of(r) for r in reqs if "watch" not in r[2]]
    watches = [kind_of(r) for r in reqs if r[2].get("watch") == ["true"]]
    return reqs, lists, watches


def test_idle_watch_costs_one_list_and_one_watch_per_kind_whatever_the_number_of_objects(cp, kubectl,
                                                                                          manual_namespace):
    seed_mtc(cp.admin, manual_namespace)
    counts = {}
    for n_vms in (0, 60):
        ns = manual_namespace if n_vms == 0 else _big_namespace(cp, manual_namespace, n_vms)
        for scope in (["-n", ns], ["-A"]):
            out, err = idle_watch(cp, 8, *scope)
            assert "vm-0/rootdisk" in out, out + err
            reqs, lists, watches = _shape(err)
            assert all(r[0] == "GET" and r[3] == "200" for r in reqs), reqs
            # every request is a LIST or a WATCH of a kind the view reads: each listed once, watched once
            assert len(lists) == len(set(lists)) and sorted(lists) == sorted(watches), (lists, watches)
            assert len(reqs) == 2 * len(set(lists)), reqs
            assert all(_in_view_paths(path, ns) for path, _, _ in lists), (ns, lists)
            for _, _, q, _ in (r for r in reqs if "watch" in r[2]):
                assert q["allowWatchBookmarks"] == ["true"] and q["resourceVersion"][0].isdigit(), q
                assert 300 <= int(q["timeoutSeconds"][0]) <= 600, q
            counts[(n_vms, scope[0])] = len(reqs)
    # the same requests for 1 VM and for 61 (16 refreshes each: a poll would have listed every kind 16 times)
    assert counts[(0, "-n")] == counts[(60, "-n")] and counts[(0, "-A")] == counts[(60, "-A")], counts


def _lines_until(proc, pattern, timeout):
    """Read proc.stdout until a line matches; (line or None, seconds taken)."""
    found, t0 = [], time.monotonic()

    def read():
        for line in proc.stdout:
            if re.search(pattern, line):
                found.append((line, time.monotonic() - t0))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else (None, time.monotonic() - t0)


def test_a_change_while_watching_is_in_the_next_frame_within_seconds(cp, kubectl, manual_namespace):
    ns = manual_namespace
    seed_mtc(cp.admin, ns)
    # A tick every 60 s: only a watch event can bring the change sooner.
    proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "status", "-w", "--interval", "60", "-n", ns],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(cp.env),
                            stdin=subprocess.DEVNULL)
    try:
        line, _ = _lines_until(proc, r"vm-0/rootdisk.*Running 50%", 60)
        assert line, "status -w showed no first state"
        time.sleep(1.0)  # the watches are open (the first frame came from their LISTs)
        [dvm] = [d for d in cp.admin.items(R.DVM, MTC_NS) if d["metadata"]["name"].endswith("-" + tag(ns))]
        status = json.loads(json.dumps(sample("dvm-live-migration-running")["status"]).replace('"ns"', f'"{ns}"'))
        status["runningLiveMigration"][0]["lastObservedProgressPercent"] = "75%"
        t0 = time.monotonic()
        set_status(cp.admin, R.DVM, dvm["metadata"]["name"], MTC_NS, status)
        line, took = _lines_until(proc, r"vm-0/rootdisk.*Running 75%", 20)
        took_from_write = time.monotonic() - t0 if line else None
        assert line, "the change was not shown within 20 s"
        assert took_from_write < 3.0, took_from_write
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()


def _follow_as_alice(cp, ns, drop_verb=None):
    """`status -w -v 6` as a user ("alice-<tag>") bound to the shipped mtc roles (without ``drop_verb``) until a change made while
    it watches is shown; returns its request log."""
    from .reliability_kit import Grant

    seed_mtc(cp.admin, ns)
    grant = Grant(cp.admin, "mtc", ns, drop_verb=drop_verb)
    try:
        proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "status", "-w", "--interval", "1", "-n", ns,
                                 "-v", "6", "--kubeconfig", cp.user_kubeconfig(grant.user)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(cp.env),
                                stdin=subprocess.DEVNULL)
        try:
            line, _ = _lines_until(proc, r"vm-0/rootdisk.*Running 50%", 60)
            assert line, "status -w showed no first state"
            time.sleep(4)
            [dvm] = [d for d in cp.admin.items(R.DVM, MTC_NS) if d["metadata"]["name"].endswith("-" + tag(ns))]
            status = json.loads(json.dumps(sample("dvm-live-migration-running")["status"]).replace('"ns"', f'"{ns}"'))
            status["runningLiveMigration"][0]["lastObservedProgressPercent"] = "75%"
            set_status(cp.admin, R.DVM, dvm["metadata"]["name"], MTC_NS, status)
            line, _ = _lines_until(proc, r"vm-0/rootdisk.*Running 75%", 20)
            assert line, "the change was not shown"
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert "error:" not in err and "Traceback" not in err, err[-2000:]
        return err
    finally:
        grant.revoke()


def test_a_user_who_may_list_but_not_watch_still_follows_by_listing(cp, kubectl, manual_namespace):
    """Roles trimmed to list (no watch): each refused WATCH turns into a LIST per refresh, with no error and no
    missing migration."""
    reqs = requests_of(_follow_as_alice(cp, manual_namespace, drop_verb="watch"))
    refused = [r for r in reqs if r[2].get("watch") == ["true"] and r[3] == "403"]
    assert refused, reqs  # it did try to watch
    dvmp_lists = [r for r in reqs if r[1].endswith("/directvolumemigrationprogresses") and "watch" not in r[2]]
    assert len(dvmp_lists) >= 3, reqs  # then listed at each refresh


def test_the_shipped_roles_let_status_w_watch(cp, kubectl, manual_namespace):
    """deploy/rbac grants watch beside list on the kinds the view keeps current (resources.WATCHED): no WATCH is
    refused, and each kind is listed once, not at every refresh."""
    reqs = requests_of(_follow_as_alice(cp, manual_namespace))
    assert [r for r in reqs if r[2].get("watch") == ["true"]], reqs
    assert not [r for r in reqs if r[2].get("watch") == ["true"] and r[3] == "403"], reqs
    # (a kind of another engine, which the mtc roles do not grant, is refused once and asked again after 300 s)
    lists = [kind_of(r) for r in reqs if "watch" not in r[2]]
    assert len(lists) == len(set(lists)), lists
