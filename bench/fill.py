"""Filling the real API server with the benchmark's objects, fast: a few worker threads, one ``Kube`` client
each (a client's connection pool is per client), each worker creating whole VM bundles.

No controllers run: what a controller would write (PVC binding, DataVolume Succeeded, VM/VMI status, MTC
status) is written here directly, through the status subresource where the kind has one.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import objects as O

WORKERS = 8


class Filler:
    def __init__(self, connect: Callable, workers: int = WORKERS, log=None):
        self._connect = connect          # () -> a new Kube admin client
        self._local = threading.local()
        self.workers = workers
        self.log = log or (lambda msg: print(msg, flush=True))
        self.admin = connect()
        self._status_sub = {}

    def has_status_subresource(self, res) -> bool:
        """Whether the CRD/kind serves /status (MTC's CRDs here declare ``subresources: {}``: no)."""
        if res not in self._status_sub:
            if not res.group or res.group.endswith("k8s.io"):
                self._status_sub[res] = True
            else:
                crd = self.admin.get(R.CRD, f"{res.plural}.{res.group}")
                ver = next(v for v in crd["spec"]["versions"] if v["name"] == res.version)
                self._status_sub[res] = "status" in (ver.get("subresources") or {})
        return self._status_sub[res]

    def create_with_status(self, kube, res, body, status, ns):
        """Create, then write status the way the kind takes it: via /status when it has the subresource,
        else in the create body itself (one request)."""
        if not self.has_status_subresource(res):
            return kube.create(res, dict(body, status=status), ns)
        obj = kube.create(res, body, ns)
        return kube.patch(res, obj["metadata"]["name"], {"status": status}, ns, subresource="status")

    def kube(self):
        k = getattr(self._local, "kube", None)
        if k is None:
            k = self._local.kube = self._connect()
        return k

    def _parallel(self, fn, items: Iterable):
        items = list(items)
        with ThreadPoolExecutor(self.workers) as pool:
            for _ in pool.map(fn, items):  # re-raises the first worker exception
                pass
        return len(items)

    # ---- cluster basics ---------------------------------------------------------------------------------
    def install_basics(self):
        """KubeVirt CR (Deployed, volume migration configured), CDI config + storage profiles, MTC host
        MigCluster: what the plugin's preflight looks for. Uses the controller stand-ins' installers."""
        kube = self.admin
        try:
            from tests.sim.factories import install_cdi, install_kubevirt
        except ImportError as exc:  # the stand-ins are being written in parallel; keep going without them
            self.log(f"  (tests.sim installers unavailable: {exc}; installing a minimal KubeVirt CR)")
            install_cdi = None
            install_kubevirt = _install_kubevirt_minimal
        install_kubevirt(kube)
        if install_cdi:
            install_cdi(kube)
        try:
            try:
                from tests.sim.mtc import install_mtc
            except ImportError:
                from tests.sim.mtc_plan import install_mtc
            install_mtc(kube)
        except Exception as exc:  # noqa: BLE001 - a stand-in helper in flux must not stop the benchmark
            self.log(f"  (tests.sim install_mtc failed: {exc}; creating the host MigCluster here)")
            self._install_migcluster()

    def _install_migcluster(self):
        body = {"apiVersion": O.MIG_GV, "kind": "MigCluster",
                "metadata": {"name": "host", "namespace": O.MTC_NS, "labels": {"controller-tools.k8s.io": "1.0"}},
                "spec": {"isHostCluster": True, "refresh": False}}
        status = {"operatorVersion": "1.8.9", "conditions": [{
            "type": "Ready", "status": "True", "category": "Required", "message": "The cluster is ready.",
            "lastTransitionTime": O.T0}]}
        try:
            self.create_with_status(self.admin, R.MIGCLUSTER, body, status, O.MTC_NS)
        except errors.Conflict:
            cur = self.admin.get(R.MIGCLUSTER, "host", O.MTC_NS)
            if self.has_status_subresource(R.MIGCLUSTER):
                self.admin.patch(R.MIGCLUSTER, "host", {"status": status}, O.MTC_NS, subresource="status")
            elif not (cur.get("status") or {}).get("conditions"):
                self.admin.patch(R.MIGCLUSTER, "host", {"status": status}, O.MTC_NS)

    # ---- VMs and their disks ----------------------------------------------------------------------------
    def fill_vms(self, n: int) -> float:
        ns = O.namespace_for(n)
        start = time.monotonic()
        try:
            self.admin.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns, "labels": {O.BENCH_LABEL: str(n)}}})
        except errors.Conflict:
            existing = len(self.admin.items(R.VM, ns))
            if existing == n:
                self.log(f"  {ns}: {n} VMs already there")
                return 0.0
            raise RuntimeError(f"namespace {ns} exists with {existing} VMs (expected 0 or {n}); use a fresh "
                               f"control plane")
        self._parallel(lambda i: self._vm_bundle(n, i), range(n))
        took = time.monotonic() - start
        self.log(f"  {ns}: {n} VMs, {2 * n} PVCs/PVs, {n} DataVolumes, {sum(map(O.is_running, range(n)))} VMIs "
                 f"in {took:.1f}s")
        return took

    def _vm_bundle(self, n: int, i: int):
        kube, ns = self.kube(), O.namespace_for(n)
        vm_uid = self.create_with_status(kube, R.VM, O.vm(n, i), O.vm_status(i), ns)["metadata"]["uid"]
        if O.is_running(i):
            kube.create(R.VMI, O.vmi(n, i, vm_uid), ns)
        dv = self.create_with_status(kube, R.DATAVOLUME, O.datavolume(n, i, vm_uid), O.datavolume_status(i), ns)
        root, data = O.claims(i)
        for claim, owner in ((root, dv["metadata"]["uid"]), (data, None)):
            pvc = kube.create(R.PVC, O.pvc(n, claim, owner), ns)
            kube.patch(R.PVC, claim, {"status": O.PVC_STATUS}, ns, subresource="status")
            pv = kube.create(R.PV, O.pv(n, claim, pvc["metadata"]["uid"]))
            kube.patch(R.PV, pv["metadata"]["name"], {"status": {"phase": "Bound"}}, subresource="status")

    # ---- MTC objects of a migration in progress --------------------------------------------------------
    def fill_mtc(self, n: int) -> float:
        kube, ns = self.admin, O.MTC_NS
        start = time.monotonic()
        self.create_with_status(kube, R.MIGPLAN, O.migplan(n), O.migplan_status(), ns)
        mig = self.create_with_status(kube, R.MIGMIGRATION, O.migmigration(n), O.migmigration_status(n), ns)
        dvm = self.create_with_status(kube, R.DVM, O.dvm(n, mig["metadata"]["uid"]), O.dvm_status(n), ns)
        dvm_uid = dvm["metadata"]["uid"]

        def one(claim):
            self.create_with_status(self.kube(), R.DVMP, O.dvmp(n, claim, dvm_uid), O.DVMP_STATUS, ns)

        count = self._parallel(one, [c for i in range(n) for c in O.claims(i)])
        took = time.monotonic() - start
        self.log(f"  {O.MTC_NS}: MigPlan ({2 * n} persistentVolumes), MigMigration, DVM, {count} DVMPs "
                 f"in {took:.1f}s")
        return took

    def clear_mtc(self, n: int):
        """Delete this N's MTC objects (one DELETE collection per kind) so the next N is measured alone."""
        sel = f"{O.BENCH_LABEL}={n}"
        for res in (R.DVMP, R.DVM, R.MIGMIGRATION, R.MIGPLAN):
            self.admin.request("DELETE", res.path(O.MTC_NS), query={"labelSelector": sel})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not any(self.admin.items(r, O.MTC_NS, label_selector=sel) for r in (R.DVMP, R.MIGPLAN)):
                return
            time.sleep(0.5)


def _install_kubevirt_minimal(kube):
    """A KubeVirt CR as virt-operator leaves it (reference kubevirt samples/08), when tests.sim has none."""
    body = {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
            "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
            "spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate"},
                     "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}}}
    try:
        kube.create(R.KUBEVIRT, body, "kubevirt")
    except errors.Conflict:
        pass
    kube.patch(R.KUBEVIRT, "kubevirt", {"status": {"phase": "Deployed", "observedKubeVirtVersion": "v1.6.2"}},
               "kubevirt", subresource="status")
