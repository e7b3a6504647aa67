"""virt-api stand-in: the ``subresources.kubevirt.io`` start/stop handlers, served through the real
kube-apiserver's aggregation layer.

How a request reaches it (the same path as on a real cluster, minus the cluster network): an APIService
``v1.subresources.kubevirt.io`` names Service ``kubevirt/virt-api``; that Service is of type ExternalName
``localhost``, which the aggregator resolves to ``https://localhost:<APIService port>``
(k8s.io/apiserver/pkg/util/proxy ResolveCluster; loopback Endpoints would be rejected, and ClusterIPs are not
routable without kube-proxy). So kube-apiserver authenticates the user and authorizes ``update
virtualmachines/start`` in group ``subresources.kubevirt.io`` by RBAC before proxying; this server only listens
on 127.0.0.1 and acts with the stand-in's (admin) client, as virt-api acts with its service account.

Handlers follow kubevirt/kubevirt pkg/virt-api/rest/lifecycle.go StartVMRequestHandler / StopVMRequestHandler
(getChangeRequestJson, getRunningPatch): start on Manual/RerunOnFailure adds a Start stateChangeRequest (the VM
controller then starts the VMI, vm.go syncRunStrategy), on Halted sets runStrategy Always; 409s as upstream.
"""
import json
import logging
import os
import re
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import ensure_namespace, wait_for

log = logging.getLogger("tests.sim")
GROUP, VERSION = "subresources.kubevirt.io", "v1"
APISERVICE = R.Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)
SERVICE = R.Resource("", "v1", "services", "Service")
PATH = re.compile(rf"^/apis/{GROUP}/{VERSION}/namespaces/([^/]+)/virtualmachines/([^/]+)/(start|stop)$")
# pkg/virt-api/rest/subresource.go
VM_NOT_RUNNING = "VM is not running"
MRR_ERR = ("VM recovery required: Volume migration failed, leaving some volumes pointing to non-consistent targets; "
           "manual intervention is needed to reassign them to their original volumes.")


def _status(code: int, reason: str, message: str, name: str = "") -> dict:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if name:
        out["details"] = {"name": name, "group": "kubevirt.io", "kind": "virtualmachine"}
    return out


def _conflict(name: str, why: str) -> dict:
    """errors.NewConflict(v1.Resource("virtualmachine"), name, err)."""
    return _status(409, "Conflict", f'Operation cannot be fulfilled on virtualmachine.kubevirt.io "{name}": {why}', name)


def _run_strategy(vm: dict) -> str:
    spec = vm.get("spec") or {}
    return spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")


def _final(vmi: Optional[dict]) -> bool:
    return ((vmi or {}).get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _change_request_patch(vm: dict, changes: list) -> list:
    """lifecycle.go getChangeRequestJson (test + add/replace /status/stateChangeRequests)."""
    st = vm.get("status") or {}
    if not st:
        return [{"op": "add", "path": "/status", "value": {"stateChangeRequests": changes}}]
    reqs = st.get("stateChangeRequests")
    ops = [{"op": "test", "path": "/status/stateChangeRequests", "value": reqs}]
    if not reqs:
        ops.append({"op": "add", "path": "/status/stateChangeRequests", "value": changes})
    elif len(changes) == 1 and changes[0]["action"] == "Stop":
        ops.append({"op": "replace", "path": "/status/stateChangeRequests", "value": changes})
    else:
        raise ValueError("unable to complete request: stop/start already underway")
    if st.get("startFailure"):
        ops.append({"op": "remove", "path": "/status/startFailure"})
    return ops


def _running_patch(vm: dict, running: bool) -> list:
    """lifecycle.go getRunningPatch."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return [{"op": "test", "path": "/spec/runStrategy", "value": spec["runStrategy"]},
                {"op": "replace", "path": "/spec/runStrategy", "value": "Always" if running else "Halted"}]
    return [{"op": "test", "path": "/spec/running", "value": spec.get("running")},
            {"op": "replace", "path": "/spec/running", "value": running}]


def start(kube, ns: str, name: str, body: dict):
    """lifecycle.go StartVMRequestHandler → (http code, Status or None)."""
    vm = kube.get_or_none(R.VM, name, ns)
    if vm is None:
        return 404, _status(404, "NotFound", f'virtualmachines.kubevirt.io "{name}" not found', name)
    vmi = kube.get_or_none(R.VMI, name, ns)
    phase = ((vmi or {}).get("status") or {}).get("phase") or ""
    if vmi is not None and not _final(vmi) and phase not in ("Unknown", ""):
        return 409, _conflict(name, "VM is already running")
    if any(c.get("type") == "ManualRecoveryRequired" and c.get("status") == "True"
           for c in (vm.get("status") or {}).get("conditions") or []):
        return 409, _conflict(name, MRR_ERR)
    data = {"paused": "true"} if body.get("paused") else {}
    strategy = _run_strategy(vm)
    try:
        if strategy == "Halted":
            if data:
                kube.patch(R.VM, name, _change_request_patch(vm, [{"action": "Start", "data": data}]), ns,
                           patch_type="json", subresource="status")
            else:
                kube.patch(R.VM, name, _running_patch(vm, True), ns, patch_type="json")
        elif strategy in ("RerunOnFailure", "Manual"):
            if strategy == "RerunOnFailure" and phase == "Failed":
                return 409, _conflict(name, "RerunOnFailure does not support starting VM from failed state")
            restart = (strategy == "RerunOnFailure" and phase == "Succeeded") or (strategy == "Manual" and _final(vmi))
            changes = [{"action": "Start", **({"data": data} if data else {})}]
            if restart:
                changes.insert(0, {"action": "Stop", "uid": vmi["metadata"]["uid"]})
            kube.patch(R.VM, name, _change_request_patch(vm, changes), ns, patch_type="json", subresource="status")
        else:
            return 409, _conflict(name, f"{strategy} does not support manual start requests")
    except ValueError as exc:
        return 500, _status(500, "InternalError", f"Internal error occurred: {exc}")
    except errors.ApiError as exc:
        return 409, _conflict(name, str(exc.message))
    return 202, None


def stop(kube, ns: str, name: str, body: dict):
    """lifecycle.go StopVMRequestHandler (without the grace-period variants) → (http code, Status or None)."""
    vm = kube.get_or_none(R.VM, name, ns)
    if vm is None:
        return 404, _status(404, "NotFound", f'virtualmachines.kubevirt.io "{name}" not found', name)
    vmi = kube.get_or_none(R.VMI, name, ns)
    strategy = _run_strategy(vm)
    try:
        if strategy in ("Halted", "RerunOnFailure", "Manual"):
            if vmi is None or _final(vmi):
                return 409, _conflict(name, VM_NOT_RUNNING)
            if strategy == "Halted":
                return 409, _conflict(name, "Halted only supports manual stop requests with a shorter graceperiod")
            kube.patch(R.VM, name, _change_request_patch(vm, [{"action": "Stop", "uid": vmi["metadata"]["uid"]}]),
                       ns, patch_type="json", subresource="status")
        else:
            kube.patch(R.VM, name, _running_patch(vm, False), ns, patch_type="json")
    except errors.ApiError as exc:
        return 409, _conflict(name, str(exc.message))
    return 202, None


RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}", "resources": [
    {"name": f"virtualmachines/{sub}", "singularName": "", "namespaced": True, "kind": "VirtualMachine",
     "verbs": ["update"]} for sub in ("start", "stop")]}


class _Handler(BaseHTTPRequestHandler):
    kube = None

    def log_message(self, fmt, *args):  # quiet: the aggregator polls discovery
        log.debug("virt-api: " + fmt, *args)

    def _send(self, code: int, obj: Optional[dict]) -> None:
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - discovery, polled by the aggregator's availability controller
        path = self.path.split("?")[0].rstrip("/")
        if path == f"/apis/{GROUP}/{VERSION}":
            return self._send(200, RESOURCES)
        if path == f"/apis/{GROUP}":
            gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
            return self._send(200, {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv],
                                    "preferredVersion": gv})
        if path in ("/healthz", "/readyz"):
            return self._send(200, {})
        return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))

    def do_PUT(self):  # noqa: N802
        m = PATH.match(self.path.split("?")[0])
        if not m:
            return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            return self._send(400, _status(400, "BadRequest", "can not unmarshal the request body"))
        ns, name, verb = m.groups()
        code, status = (start if verb == "start" else stop)(self.kube, ns, name, body or {})
        self._send(code, status)


def _certificate(workdir: str):
    crt, key = os.path.join(workdir, "virt-api.crt"), os.path.join(workdir, "virt-api.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "7", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return crt, key


class VirtApi:
    """``VirtApi(kube).start()`` serves and registers the APIService; ``stop()`` unregisters and closes."""

    name = "virt-api"

    def __init__(self, kube, namespace: str = "kubevirt"):
        self.kube, self.namespace = kube, namespace
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.errors, self.died, self.on_death = [], None, None
        self.port = 0

    def start(self) -> "VirtApi":
        self._dir = tempfile.mkdtemp(prefix="sim-virt-api-")
        crt, key = _certificate(self._dir)
        handler = type("Handler", (_Handler,), {"kube": self.kube})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="virt-api", daemon=True)
        self._thread.start()
        self.register()
        return self

    def register(self, timeout: float = 30.0) -> None:
        """Service kubevirt/virt-api (ExternalName localhost) + APIService v1.subresources.kubevirt.io, then wait
        until the aggregator reports it Available."""
        ensure_namespace(self.kube, self.namespace)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "virt-api", "namespace": self.namespace},
               "spec": {"type": "ExternalName", "externalName": "localhost"}}
        try:
            self.kube.create(SERVICE, svc, self.namespace)
        except errors.Conflict:
            pass
        body = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": f"{VERSION}.{GROUP}"},
                "spec": {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1000, "versionPriority": 15,
                         "insecureSkipTLSVerify": True,
                         "service": {"namespace": self.namespace, "name": "virt-api", "port": self.port}}}
        cur = self.kube.get_or_none(APISERVICE, body["metadata"]["name"])
        if cur is None:
            self.kube.create(APISERVICE, body)
        else:
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.replace(APISERVICE, body)

        def available():
            st = (self.kube.get(APISERVICE, body["metadata"]["name"]).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Available" and c["status"] == "True" for c in st)
        wait_for(available, timeout=timeout, interval=0.2, what="APIService v1.subresources.kubevirt.io Available")

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Unregister first (an APIService without its server makes every kubectl discovery warn), then close."""
        try:
            self.kube.request("DELETE", APISERVICE.path(None, f"{VERSION}.{GROUP}"))
        except Exception:  # noqa: BLE001 - the API server may already be gone at session end
            pass
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._thread = None
