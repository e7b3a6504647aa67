"""The parity kit: one variant = kubeconfig files + flags + environment, run through the real kubectl
(``kubectl get configmaps``) and through the plugin (``kubectl vm-storage status``) against the same API
server. The identities used have no RBAC, so the API server's Forbidden message names the user it saw and
the namespace of the request: the same oracle for both. Helpers: a CONNECT proxy, an exec credential
plugin script, certificates signed by the control plane's client CA.
"""
import base64
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN = re.compile(r'User "([^"]+)" cannot \w+ resource "[^"]+" in API group "[^"]*" in the namespace "([^"]+)"')
NS = "kcfg-test"


# ---- expected outcomes ---------------------------------------------------------------------------------
@dataclass
class Expect:
    kind: str                      # "user" (forbidden as user in ns), "ok" (rc 0), "fail"
    user: Optional[str] = None
    namespace: Optional[str] = None
    kubectl_says: tuple = ()       # substrings of kubectl's stderr (fail)
    plugin_says: tuple = ()        # substrings of the plugin's stderr (fail)
    plugin_code: Optional[int] = None


def user(name, namespace=NS):
    return Expect("user", user=name, namespace=namespace)


def ok():
    return Expect("ok")


def fails(kubectl_says, plugin_says, code):
    def as_tuple(x):
        return (x,) if isinstance(x, str) else tuple(x)

    return Expect("fail", kubectl_says=as_tuple(kubectl_says), plugin_says=as_tuple(plugin_says), plugin_code=code)


@dataclass
class Case:
    files: dict = field(default_factory=dict)        # relative path -> dict (YAML) | str | bytes
    args: tuple = ()                                 # flags for both
    kubeconfig: Optional[str] = "kubeconfig"         # passed as --kubeconfig (relative to the case dir)
    env: dict = field(default_factory=dict)          # values may use {dir}
    cwd: Optional[str] = None                        # relative to the case dir; default: an empty elsewhere/
    kubectl: Optional[Expect] = None                 # expected outcome for kubectl
    plugin: Optional[Expect] = None                  # for the plugin (None: same as kubectl)
    kubectl_cmd: tuple = ("get", "configmaps")
    plugin_cmd: tuple = ("vm-storage", "status")
    check: Optional[Callable] = None                 # check(world, case_dir, kubectl_result, plugin_result)
    links: dict = field(default_factory=dict)        # symlink -> target (relative to the case dir)


def outcome_of(res):
    found = FORBIDDEN.findall(res.stderr)  # the last one: the plugin may warn about another namespace first
    if found:
        return ("user", *found[-1])
    return ("ok",) if res.returncode == 0 else ("fail", res.returncode)


def assert_outcome(expect, res, who, tracebacks_asked=False):
    got = outcome_of(res)
    text = f"{who}: rc={res.returncode}\nstdout={res.stdout[-1500:]}\nstderr={res.stderr[-1500:]}"
    if expect.kind == "user":
        assert got == ("user", expect.user, expect.namespace), text
    elif expect.kind == "ok":
        assert got == ("ok",), text
    else:
        assert got[0] == "fail", text
        if who == "plugin":
            assert res.returncode == expect.plugin_code, text
            assert "internal error" not in res.stderr, text
            assert tracebacks_asked or "Traceback" not in res.stderr, text
        for needle in (expect.kubectl_says if who == "kubectl" else expect.plugin_says):
            assert needle in res.stderr, f"{needle!r} missing; {text}"


# ---- kubeconfig building --------------------------------------------------------------------------------
def kubeconfig(cluster=None, user=None, namespace=NS, current="c", extra_contexts=(), extra_users=(),
               extra_clusters=(), top=None):
    """A kubeconfig with one context 'c' -> cluster 's', user 'u' (+ extra named entries)."""
    ctx = {"cluster": "s", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "s", "cluster": cluster}] + [{"name": n, "cluster": c} for n, c in extra_clusters],
           "users": [{"name": "u", "user": user}] + [{"name": n, "user": u} for n, u in extra_users],
           "contexts": [{"name": "c", "context": ctx}] + [{"name": n, "context": c} for n, c in extra_contexts]}
    if current:
        cfg["current-context"] = current
    cfg.update(top or {})
    return cfg


def write_case(case_dir, case):
    os.makedirs(case_dir, exist_ok=True)
    for rel, content in case.files.items():
        path = os.path.join(case_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, dict):
            content = yaml.safe_dump(content, sort_keys=False)
        if isinstance(content, str):
            content = content.replace("{dir}", case_dir)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as fh:
            fh.write(content)
        if rel.endswith(".py") or rel.startswith("bin/"):
            os.chmod(path, 0o755)
    for link, target in case.links.items():
        os.makedirs(os.path.dirname(os.path.join(case_dir, link)), exist_ok=True)
        os.symlink(os.path.join(case_dir, target), os.path.join(case_dir, link))


def run_case(world, case_dir, case, extra_plugin_args=()):
    """(kubectl result, plugin result) for one variant."""
    elsewhere = os.path.join(case_dir, "elsewhere")
    home = os.path.join(case_dir, "home")
    os.makedirs(elsewhere, exist_ok=True)
    os.makedirs(home, exist_ok=True)
    # PARITY_PLUGIN_SRC: run the plugin from another source tree (to measure an older commit against kubectl)
    env = {"PATH": world.path, "HOME": home, "PYTHONPATH": os.environ.get("PARITY_PLUGIN_SRC", REPO), "NO_COLOR": "1"}
    env.update({k: v.format(dir=case_dir) for k, v in case.env.items()})
    flags = [a.format(dir=case_dir) for a in case.args]
    if case.kubeconfig:
        flags = ["--kubeconfig", os.path.join(case_dir, case.kubeconfig)] + flags
    cwd = os.path.join(case_dir, case.cwd) if case.cwd else elsewhere

    def run(side, cmd):
        # PARITY_SIDE reaches exec plugins through the environment: their log tells the two runs apart
        return subprocess.run([world.kubectl, *cmd], capture_output=True, text=True, env=dict(env, PARITY_SIDE=side),
                              cwd=cwd, stdin=subprocess.DEVNULL, timeout=120)

    return (run("kubectl", [*case.kubectl_cmd, *flags]),
            run("plugin", [*case.plugin_cmd, *flags, *extra_plugin_args]))


# ---- an exec credential plugin ----------------------------------------------------------------------------
CRED_PY = r'''#!{python}
"""Test ExecCredential plugin: logs how it was called, answers per CRED_MODE (env) with the token in argv[1]."""
import json, os, sys
info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "null")
log = os.environ.get("CRED_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "info": info,
                             "extra": os.environ.get("CRED_EXTRA"), "side": os.environ.get("PARITY_SIDE"),
                             "stdin_tty": os.isatty(0)}}) + "\n")
mode = os.environ.get("CRED_MODE", "ok")
api = (info or {{}}).get("apiVersion", "client.authentication.k8s.io/v1")
if mode == "fail":
    sys.stderr.write("cred.py: login failed, run 'cred login'\n")
    sys.exit(3)
if mode == "badjson":
    print('{{"status": "tok-fragment-' + open(sys.argv[1]).read().strip()[-12:] + '"')
    sys.exit(0)
status = {{}}
if mode in ("ok", "wrongapi", "expired", "future"):
    status["token"] = open(sys.argv[1]).read().strip()
if mode == "cert":
    status["clientCertificateData"] = open(sys.argv[1]).read()
    status["clientKeyData"] = open(sys.argv[2]).read()
if mode == "expired":
    status["expirationTimestamp"] = "2001-01-01T00:00:00Z"
if mode == "future":
    status["expirationTimestamp"] = "2099-01-01T00:00:00Z"
if mode == "wrongapi":
    api = "client.authentication.k8s.io/v1alpha1"
print(json.dumps({{"apiVersion": api, "kind": "ExecCredential", "status": status}}))
'''


def cred_script():
    return CRED_PY.format(python=sys.executable)


def exec_log(case_dir, side=None):
    """The exec plugin's invocations (of one side: 'kubectl' or 'plugin')."""
    path = os.path.join(case_dir, "exec.log")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        runs = [json.loads(line) for line in fh if line.strip()]
    return [r for r in runs if side is None or r["side"] == side]


# ---- a CONNECT proxy (maps every host to 127.0.0.1, logs the CONNECT targets) ----------------------------
class ConnectProxy:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            verb, target, _ = line.split(" ", 2)
            self.log.append(line)
            if verb != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            _, port = target.rsplit(":", 1)
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pipe(conn, upstream)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        finally:
            b.close()

    def close(self):
        self.running = False
        self.sock.close()


class PlainHttpFront:
    """A plain-HTTP reverse proxy to the API server that records whether requests carried credentials."""

    def __init__(self, upstream):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import urllib3

        pool = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
        self.authorization_seen = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                front.authorization_seen.append(bool(self.headers.get("Authorization")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
                r = pool.request("GET", upstream + self.path, headers=headers)
                self.send_response(r.status)
                self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(r.data)))
                self.end_headers()
                self.wfile.write(r.data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


# ---- certificates -------------------------------------------------------------------------------------------
def self_signed(out_dir, cn):
    os.makedirs(out_dir, exist_ok=True)
    key, crt = os.path.join(out_dir, f"{cn}.key"), os.path.join(out_dir, f"{cn}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", f"/CN={cn}",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return crt, key


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def read(path, mode="r"):
    with open(path, mode) as fh:
        return fh.read()
