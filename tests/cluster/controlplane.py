"""A real Kubernetes control plane for tests and the sandbox: etcd + kube-apiserver on loopback.

envtest-style: binaries built from Go modules by scripts/test-bins.sh, RBAC authorization, the users of
credentials.py (``admin``, ``alice``, ``nobody`` by token; users made on demand by client certificate), the real
MTC/KubeVirt/CDI CRDs (with the adjustments virt-operator makes), and what a cluster has: StorageClasses, Nodes, namespaces.

Run as a script for the sandbox:  python -m tests.cluster.controlplane up|down|status --dir .sandbox
"""
import argparse
import glob
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import yaml

from tests.cluster.credentials import (  # noqa: F401 (the tokens are imported from here by tests)
    ADMIN_TOKEN, ALICE_TOKEN, NOBODY_TOKEN, TOKENS_CSV, client_cert, write_kubeconfig)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CRD_DIR = os.path.join(HERE, "crds")
CACHE = os.environ.get("VMMIG_CACHE", os.path.expanduser("~/.cache/kubectl-vmmig"))
# virt-operator installs the kubevirt.io CRDs differently from the controller-gen files (crds/README.md).
KUBEVIRT_ADJUST = {
    "virtualmachines.kubevirt.io": (True, ["vm", "vms"]),
    "virtualmachineinstances.kubevirt.io": (False, ["vmi", "vmis"]),
    "virtualmachineinstancemigrations.kubevirt.io": (True, ["vmim", "vmims"]),
    "kubevirts.kubevirt.io": (True, ["kv", "kvs"]),
}

STORAGE_CLASSES = [
    ("standard", "kubernetes.io/no-provisioner-standard.csi.example.com", True),
    ("fast", "fast.csi.example.com", False),
    ("slow", "slow.csi.example.com", False),
]
NODES = ["node01", "node02"]


def _csidriver():
    from kubectl_vmmig import resources as R
    return R.Resource("storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced=False)


class ControlPlaneError(RuntimeError):
    pass


def bin_dir():
    """Where scripts/test-bins.sh put kube-apiserver/etcd/krew (build them if missing)."""
    explicit = os.environ.get("VMMIG_BIN_DIR")
    if explicit:
        return explicit
    link = os.path.join(CACHE, "bin")
    if not (os.path.exists(os.path.join(link, "kube-apiserver")) and os.path.exists(os.path.join(link, "etcd"))):
        out = subprocess.run(["bash", os.path.join(REPO, "scripts", "test-bins.sh")], stdout=subprocess.PIPE,
                             text=True)
        if out.returncode != 0:
            raise ControlPlaneError("scripts/test-bins.sh failed to build kube-apiserver/etcd (see its output)")
    return link


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adjust_crd(crd):
    """Apply the virt-operator differences to a controller-gen kubevirt.io CRD (in place)."""
    name = crd["metadata"]["name"]
    if name not in KUBEVIRT_ADJUST:
        return crd
    has_status, short = KUBEVIRT_ADJUST[name]
    spec = crd["spec"]
    spec["names"]["shortNames"] = short
    spec["names"]["categories"] = ["all"]
    v1 = next(v for v in spec["versions"] if v["name"] == "v1")
    v1["served"], v1["storage"] = True, True
    if has_status:
        v1["subresources"] = {"status": {}}
    else:
        v1.pop("subresources", None)
    old = json.loads(json.dumps(v1))
    old.update(name="v1alpha3", storage=False, served=True)
    spec["versions"] = [v1, old]
    return crd


class ControlPlane:
    def __init__(self, workdir, bins=None):
        self.dir = os.path.abspath(workdir)
        self.bins = bins or bin_dir()
        self.procs = []
        self.server = None
        self.admin_kubeconfig = os.path.join(self.dir, "admin.kubeconfig")
        self.restricted_kubeconfig = os.path.join(self.dir, "restricted.kubeconfig")
        self.nobody_kubeconfig = os.path.join(self.dir, "nobody.kubeconfig")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")  # both contexts: admin (current), restricted
        self.ca_file = None

    # ---- processes -----------------------------------------------------------------------------------
    def start(self, timeout=90):
        os.makedirs(self.dir, exist_ok=True)
        for exe in ("etcd", "kube-apiserver"):
            if not os.access(os.path.join(self.bins, exe), os.X_OK):
                raise ControlPlaneError(f"{exe} not found in {self.bins}; run scripts/test-bins.sh")
        certs = os.path.join(self.dir, "certs")
        os.makedirs(certs, exist_ok=True)
        sa_key = os.path.join(self.dir, "sa.key")
        if not os.path.exists(sa_key):
            subprocess.run(["openssl", "genrsa", "-out", sa_key, "2048"], check=True, capture_output=True)
        # A client CA so client certificates authenticate (CN = user, O = groups), as on a real cluster;
        # tests sign their own client certificates with it (self.client_ca_cert/key).
        self.client_ca_key, self.client_ca_cert = os.path.join(certs, "client-ca.key"), os.path.join(certs, "client-ca.crt")
        if not os.path.exists(self.client_ca_cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
                            "/CN=vmstorage-client-ca", "-keyout", self.client_ca_key, "-out", self.client_ca_cert],
                           check=True, capture_output=True)
        tokens = os.path.join(self.dir, "tokens.csv")
        with open(tokens, "w") as fh:
            fh.write(TOKENS_CSV)
        etcd_port, peer_port, port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn("etcd", [
            os.path.join(self.bins, "etcd"), "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}", "--unsafe-no-fsync",
            "--log-level", "warn"])
        self._apiserver_args = [
            os.path.join(self.bins, "kube-apiserver"), f"--etcd-servers={etcd_url}", f"--cert-dir={certs}",
            f"--secure-port={port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
            f"--token-auth-file={tokens}", f"--client-ca-file={self.client_ca_cert}", f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={sa_key}", f"--service-account-signing-key-file={sa_key}",
            "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true", "--v=0"]
        self._spawn("kube-apiserver", self._apiserver_args)
        self.server = f"https://127.0.0.1:{port}"
        self._wait_ready(timeout)
        self.ca_file = os.path.join(certs, "apiserver.crt")
        self._write_kubeconfigs()
        with open(os.path.join(self.dir, "state.json"), "w") as fh:
            json.dump({"server": self.server, "pids": [p.pid for p in self.procs]}, fh)
        return self

    def _spawn(self, name, args):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        # A new session so Ctrl-C on pytest does not kill the processes before our cleanup runs.
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def _apiserver_proc(self):
        return next((p for p in self.procs if os.path.basename(p.args[0]) == "kube-apiserver"), None)

    def stop_apiserver(self, timeout=15):
        """Stop only kube-apiserver (etcd keeps the data): clients see connection refused until
        ``start_apiserver``. For fault tests; use a dedicated ControlPlane, not the shared one."""
        proc = self._apiserver_proc()
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.remove(proc)

    def start_apiserver(self, timeout=90):
        """Start kube-apiserver again on the same port, with the same etcd, certificates and tokens."""
        if self._apiserver_proc() is not None:
            return self
        self._spawn("kube-apiserver", self._apiserver_args)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        ctx = ssl._create_unverified_context()
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise ControlPlaneError(f"{os.path.basename(p.args[0])} exited with {p.returncode}; "
                                            f"see {self.dir}/*.log")
            try:
                req = urllib.request.Request(self.server + "/readyz",
                                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                    if r.status == 200:
                        return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.5)
        self.stop()
        raise ControlPlaneError(f"kube-apiserver not ready after {timeout}s ({last}); see {self.dir}/*.log")

    def stop(self):
        for p in self.procs[::-1]:
            if p.poll() is None:
                p.terminate()
        for p in self.procs[::-1]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    # ---- kubeconfigs -----------------------------------------------------------------------------------
    def _write_kubeconfigs(self):
        admin, alice = ("admin", "admin", {"token": ADMIN_TOKEN}), ("restricted", "alice", {"token": ALICE_TOKEN})
        for path, users in ((self.admin_kubeconfig, [admin]), (self.restricted_kubeconfig, [alice]),
                            (self.nobody_kubeconfig, [("nobody", "nobody", {"token": NOBODY_TOKEN})]),
                            (self.kubeconfig, [admin, alice])):
            write_kubeconfig(path, self.server, self.ca_file, users, users[0][0])

    def user_kubeconfig(self, user):
        """A kubeconfig for a user of its own, ``user``, authenticated by a client certificate (credentials.py)."""
        pki = os.path.join(self.dir, "users")
        crt, key = client_cert(self.client_ca_cert, self.client_ca_key, pki, user)
        return write_kubeconfig(os.path.join(pki, f"{user}.kubeconfig"), self.server, self.ca_file,
                                [(user, user, {"client-certificate": crt, "client-key": key})], user)

    def admin(self, **kw):
        from kubectl_vmmig.kube import Kube
        from kubectl_vmmig.kubeconfig import ConnectionOptions

        return Kube.connect(ConnectionOptions(kubeconfig=self.admin_kubeconfig), **kw)

    # ---- what a cluster has ----------------------------------------------------------------------------
    def install(self, groups=None):
        """Install the real CRDs and the cluster basics; idempotent. ``groups``: only the CRDs of these API
        groups (e.g. {"kubevirt.io"} for a cluster without MTC and CDI); None installs all of them."""
        from kubectl_vmmig import resources as R
        from kubectl_vmmig import errors

        CSIDRIVER = _csidriver()
        kube = self.admin()
        names = []
        for path in sorted(glob.glob(os.path.join(CRD_DIR, "*", "*.yaml"))):
            with open(path) as fh:
                crd = adjust_crd(yaml.safe_load(fh))
            if groups is not None and crd["spec"]["group"] not in groups:
                continue
            names.append(crd["metadata"]["name"])
            try:
                kube.create(R.CRD, crd)
            except errors.Conflict:
                pass
        deadline = time.time() + 60
        pending = set(names)
        while pending and time.time() < deadline:
            for name in list(pending):
                conds = (kube.get(R.CRD, name).get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                    pending.discard(name)
            if pending:
                time.sleep(0.3)
        if pending:
            raise ControlPlaneError(f"CRDs not established: {sorted(pending)}")
        # Established is set before every API server handler serves the new resource; a create right after
        # can still meet a 404. Wait until each one answers a LIST, as clients of a real cluster would see.
        for name in names:
            crd = kube.get(R.CRD, name)
            g, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            v = next(x["name"] for x in crd["spec"]["versions"] if x.get("storage"))
            for _ in range(100):
                try:
                    kube.request("GET", f"/apis/{g}/{v}/{plural}", query={"limit": "1"})
                    break
                except errors.NotFound:
                    time.sleep(0.1)
        for name, prov, default in STORAGE_CLASSES:
            sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                  "provisioner": prov, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
                  "allowVolumeExpansion": True}
            if default:
                sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
            _create_ignore(kube, R.STORAGECLASS, sc)
            # A CSI driver registers a storage.k8s.io CSIDriver named like its provisioner; CDI uses volume
            # populators only for such classes (controller-base.go shouldUseCDIPopulator →
            # storageClassCSIDriverExists). "standard"'s provisioner is no valid CSIDriver name: a non-CSI class.
            if "/" not in prov:
                _create_ignore(kube, CSIDRIVER, {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                                                 "metadata": {"name": prov},
                                                 "spec": {"attachRequired": True, "podInfoOnMount": False}})
        for node in NODES:
            _create_ignore(kube, R.NODE, {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                                                      "kubevirt.io/schedulable": "true"}}})
            kube.patch(R.NODE, node, {"status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}}}, subresource="status")
            # The NodeRestriction/TaintNodesByCondition admission adds node.kubernetes.io/not-ready at create;
            # a real node lifecycle controller removes it once the node is Ready. Do its job.
            kube.patch(R.NODE, node, {"spec": {"taints": None}})
        for ns in ("openshift-migration", "kubevirt", "cdi"):
            _create_ignore(kube, R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        return self


def _create_ignore(kube, res, body):
    from kubectl_vmmig import errors

    try:
        kube.create(res, body)
    except errors.Conflict:
        pass


# ---- sandbox CLI ---------------------------------------------------------------------------------------------
def _alive(pids):
    for pid in pids:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
    return bool(pids)


def sandbox_up(workdir):
    state = os.path.join(workdir, "state.json")
    if os.path.exists(state):
        with open(state) as fh:
            st = json.load(fh)
        if _alive(st.get("pids", [])):
            print(f"sandbox already running at {st['server']}")
            return 0
        shutil.rmtree(workdir, ignore_errors=True)
    cp = ControlPlane(workdir).start()
    cp.install()
    print(f"control plane up at {cp.server}")
    return 0


def _signal(pid, sig):
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def sandbox_down(workdir):
    state = os.path.join(workdir, "state.json")
    if not os.path.exists(state):
        print("sandbox not running")
        return 0
    with open(state) as fh:
        st = json.load(fh)
    # Stand-ins first (they hold watches), then the API server, then etcd; SIGKILL whatever lingers.
    pids = st.get("extra_pids", []) + st.get("pids", [])[::-1]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive([p]) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive([pid]):
            _signal(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)
    print("sandbox stopped")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.cluster.controlplane")
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("--dir", default=os.path.join(REPO, ".sandbox"))
    a = ap.parse_args(argv)
    try:
        return sandbox_up(a.dir) if a.action == "up" else sandbox_down(a.dir)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
