"""kubevirt-migration-controller stand-in (v0.2.x): VirtualMachineStorageMigrationPlan + VirtualMachineStorageMigration.

Rules: tests/sim/migration_controller_plan.py (storagemigplan/*), migration_controller_run.py (storagemig/*) and
migration_controller_multi.py (multinamespacestoragemig{plan,}/*), each
citing the upstream function of kubevirt/kubevirt-migration-controller. This module is the loop and the install.

"Is the controller running" on a real cluster: kubevirt-migration-operator deploys the controller for a
``MigController`` CR (HCO creates ``migcontroller-kubevirt-hyperconverged``) and reports on that CR — the
controller-lifecycle-operator-sdk reconciler (pkg/sdk/reconciler/reconciler.go Reconcile, CheckDegraded) sets
``status.phase: Deployed`` with MarkCrHealthyMessage (Available=True, Progressing=False, Degraded=False) once every
Deployment it owns is ready (sdk.CheckDeploymentReady), and Degraded=True when one stops being ready.
``install_migration_controller`` writes exactly that; without a Deployed MigController this stand-in does nothing,
as a cluster with only the CRDs would.

Simplification: progress. Upstream (progress.go getLastObservedProgressPercent) scrapes
``kubevirt_vmi_migration_data_processed_bytes / …_data_bytes_total`` from the virt-handler pod on the VMI's node; the
test cluster has no virt-handler, so the stand-in models those two metrics from the in-flight VMIM: while it is
Running, processed/total grows by one ``progress_step`` percent per pass (capped below 100); otherwise no metric
and, as upstream, the previous value stays.
"""
from typing import Dict

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import migration_controller_multi as MULTI
from . import migration_controller_plan as PLAN
from . import migration_controller_run as RUN
from .common import StandIn, ensure_namespace, now

OPERATOR_NAMESPACE = "kubevirt-migration"
MIGCONTROLLER_NAME = "migcontroller"


def _sdk_conditions(available: bool, degraded: bool):
    ts = now()
    return [{"type": "Available", "status": "True" if available else "False", "lastTransitionTime": ts,
             "lastHeartbeatTime": ts, **({"reason": "DeployCompleted", "message": "Deployment Completed"}
                                         if available else {})},
            {"type": "Progressing", "status": "False", "lastTransitionTime": ts, "lastHeartbeatTime": ts},
            {"type": "Degraded", "status": "True" if degraded else "False", "lastTransitionTime": ts,
             "lastHeartbeatTime": ts}]


def install_migration_controller(kube, namespace: str = OPERATOR_NAMESPACE, name: str = MIGCONTROLLER_NAME,
                                 version: str = "v0.2.1", healthy: bool = True) -> dict:
    """The MigController CR as the operator leaves it: Deployed + healthy (``healthy=False``: Deployed but the
    controller Deployment is not ready → Degraded=True, CheckDegraded)."""
    ensure_namespace(kube, namespace)
    body = {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "MigController",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"imagePullPolicy": "IfNotPresent"}}
    try:
        kube.create(R.MIGCONTROLLER, body, namespace)
    except errors.Conflict:
        pass
    status = {"phase": "Deployed", "operatorVersion": version, "targetVersion": version, "observedVersion": version,
              "conditions": _sdk_conditions(available=healthy, degraded=not healthy)}
    return kube.patch(R.MIGCONTROLLER, name, {"status": status}, namespace, subresource="status")


def uninstall_migration_controller(kube, namespace: str = OPERATOR_NAMESPACE, name: str = MIGCONTROLLER_NAME):
    try:
        kube.request("DELETE", R.MIGCONTROLLER.path(namespace, name))
    except errors.NotFound:
        pass


def controller_deployed(migcontrollers) -> bool:
    """A MigController the operator reports Deployed, Available and not Degraded."""
    for mc in migcontrollers:
        st = mc.get("status") or {}
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        if st.get("phase") == "Deployed" and conds.get("Available") == "True" and conds.get("Degraded") != "True":
            return True
    return False


class MigrationController(StandIn):
    name = "migration-controller"

    def __init__(self, kube, pace: float = 0.05, namespaces=None, progress_step: float = 25.0):
        super().__init__(kube, pace, namespaces)
        self.progress_step = progress_step
        self._running_passes: Dict[str, int] = {}  # VMIM uid -> passes seen Running (the modelled metric)
        self.triggers = MULTI.Triggers()

    def _items(self, res):
        if self.namespaces is None:
            return [o for o in self.kube.items(res, all_namespaces=True)
                    if o["metadata"].get("namespace") not in self.excluded]
        return [o for ns in self.namespaces for o in self.kube.items(res, ns)]

    def step(self) -> None:
        try:
            mcs = self.kube.items(R.MIGCONTROLLER, all_namespaces=True)
        except errors.NotFound:
            return  # CRDs not installed
        if not controller_deployed(mcs):
            return
        # upstream runs four reconcilers side by side (cmd/main.go); one pass each, parents first; the two
        # MultiNamespace ones only when their watches fire (MULTI.Triggers)
        plans, migs = self._items(R.VMSM_PLAN), self._items(R.VMSM)
        for mplan in self._soft_items(R.MN_VMSM_PLAN):
            if not self.stalled(mplan["metadata"]["namespace"]) and self.triggers.due(
                    mplan, plans, MULTI.PLAN_NAME_ANNOTATION, MULTI.PLAN_NAMESPACE_ANNOTATION):
                MULTI.reconcile_plan(self, mplan)
        for plan in plans:
            if not self.stalled(plan["metadata"]["namespace"]):
                PLAN.reconcile(self, plan)
        for mmig in self._soft_items(R.MN_VMSM):
            if not self.stalled(mmig["metadata"]["namespace"]) and self.triggers.due(
                    mmig, migs, MULTI.MIG_NAME_ANNOTATION, MULTI.MIG_NAMESPACE_ANNOTATION):
                MULTI.reconcile_migration(self, mmig)
        for mig in self._items(R.VMSM):
            if not self.stalled(mig["metadata"]["namespace"]):
                RUN.reconcile(self, mig)

    def _soft_items(self, res):
        try:
            return self._items(res)
        except errors.NotFound:
            return []  # a cluster installed with only some of the CRDs

    def progress(self, namespace: str, vm_name: str) -> str:
        """The modelled virt-handler metrics -> progress.go parseMigrationProgressFromMetrics ('%.2f', no '%')."""
        vmi = self.kube.get_or_none(R.VMI, vm_name, namespace)
        if vmi is None or not (vmi.get("status") or {}).get("nodeName"):
            return ""
        for vmim in self.kube.items(R.VMIM, namespace):
            st = vmim.get("status") or {}
            if (vmim.get("spec") or {}).get("vmiName") == vm_name and st.get("phase") == "Running":
                uid = vmim["metadata"]["uid"]
                self._running_passes[uid] = self._running_passes.get(uid, 0) + 1
                total = 1073741824.0
                processed = total * min(self._running_passes[uid] * self.progress_step, 99.0) / 100.0
                return f"{processed / total * 100:.2f}"
        return ""
