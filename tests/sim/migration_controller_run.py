"""kubevirt-migration-controller stand-in: the VirtualMachineStorageMigration reconciler (v0.2.x).

Follows kubevirt/kubevirt-migration-controller internal/controller/storagemig/{controller,validation,task,vm,
cancel,progress}.go; each function names the upstream one. One pass runs ONE phase of a migration, as
``Task.Run`` does per reconcile (upstream requeues after 20 s in the waiting phases; here: the next pass).

Not reported, as upstream: failures. A failed VMIM is skipped by ``isLiveMigrationCompleted`` and the run stays in
WaitForLiveMigrationToComplete while KubeVirt retries; ``status.errors`` and LiveMigrationFailed are never set.
"""
import copy
import json
from typing import List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import migration_controller_plan as PLAN
from .migration_controller_vm import (PLAN_LABEL, PLAN_UID_LABEL, UID_LABEL, prepared_vm_patch,  # noqa: F401
                                     target_dv, unreferenced_template, vm_volumes)
from .common import delete_any, parse_time, remove_condition, set_condition

FINALIZER = "virtualmachinestoragemigration.kubevirt.io/finalizer"
DONE_DV_PHASES = ("Succeeded", "WaitForFirstConsumer")  # vm.go isOfflineMigrationCompleted (sic: WFFC counts)


class RunError(Exception):
    """An error Task.Run returns: the reconcile fails, nothing is written, the phase is retried."""


def _ref(mig):
    return (mig.get("spec") or {}).get("virtualMachineStorageMigrationPlanRef") or {}




class Task:
    """storagemig/task.go Task: one phase of one migration per ``run()``."""

    def __init__(self, kube, mig: dict, plan: Optional[dict], progress=None):
        self.kube, self.mig, self.plan = kube, mig, plan
        self.ns = mig["metadata"]["namespace"]
        self.st = mig.setdefault("status", {})
        self.progress = progress or (lambda vm_name: "")

    # ---- reads ----------------------------------------------------------------------------------
    def vmi(self, name):
        return self.kube.get_or_none(R.VMI, name, self.ns)

    def plan_vms(self) -> List[dict]:
        """getCancellableMigrations / the BeginLiveMigration list: plan ready + in-progress VMs."""
        st = (self.plan or {}).get("status") or {}
        return list(st.get("readyMigrations") or []) + list(st.get("inProgressMigrations") or [])

    def plan_vm(self, name):
        return next((v for v in self.plan_vms() if v["name"] == name), None)  # getPlanVMByName

    def live_completed(self, vm_name: str) -> bool:
        """task.go isLiveMigrationCompleted: the FIRST VMIM (list order) for this VMI, not Failed, created no
        earlier than the migration CR; done when migrationState completed && !failed."""
        created = parse_time(self.mig["metadata"]["creationTimestamp"])
        for vmim in self.kube.items(R.VMIM, self.ns):
            st = vmim.get("status") or {}
            if (vmim.get("spec") or {}).get("vmiName") == vm_name and st.get("phase") != "Failed" \
                    and parse_time(vmim["metadata"]["creationTimestamp"]) >= created:
                ms = st.get("migrationState") or {}
                return bool(ms.get("completed") and not ms.get("failed"))
        return False

    def offline_completed(self, vm_name: str) -> bool:
        """vm.go isOfflineMigrationCompleted: every target DV Succeeded OR WaitForFirstConsumer."""
        pvm = self.plan_vm(vm_name)
        if pvm is None:
            return False
        for t in pvm["targetMigrationPVCs"]:
            dv = self.kube.get_or_none(R.DATAVOLUME, t["destinationPVC"]["name"], self.ns)
            if dv is None or (dv.get("status") or {}).get("phase") not in DONE_DV_PHASES:
                return False
        return True

    def source_size(self, pvc: dict) -> str:
        """vm.go determineSourcePVCSize / determineDataVolumeSize."""
        if any(o.get("kind") == "DataVolume" for o in pvc["metadata"].get("ownerReferences") or []):
            dv = self.kube.get_or_none(R.DATAVOLUME, pvc["metadata"]["name"], self.ns)
            if dv is None:
                raise RunError(f"datavolume {pvc['metadata']['name']} not found")
            spec = dv.get("spec") or {}
            if spec.get("pvc") is not None:
                return spec["pvc"]["resources"]["requests"]["storage"]
            if spec.get("storage") is not None:
                if (pvc.get("spec") or {}).get("volumeMode") == "Block":
                    return (pvc.get("status") or {}).get("capacity", {}).get("storage")
                return ((spec["storage"].get("resources") or {}).get("requests") or {}).get("storage")
        return pvc["spec"]["resources"]["requests"]["storage"]

    # ---- writes ---------------------------------------------------------------------------------
    def patch_vm(self, vm: dict, plan_vm: dict, strategy: bool) -> None:
        patch = prepared_vm_patch(vm, plan_vm, strategy)
        if patch:
            refused = unreferenced_template(vm, patch)
            if refused:
                raise RunError(refused)
            self.kube.patch(R.VM, vm["metadata"]["name"], patch, self.ns)

    def create_dvs(self, plan_vm: dict, clone: bool) -> None:
        for i, t in enumerate(plan_vm["targetMigrationPVCs"]):
            src = plan_vm["sourcePVCs"][i]
            pvc = self.kube.get_or_none(R.PVC, src["name"], src.get("namespace") or self.ns)
            if pvc is None:
                raise RunError(f"persistentvolumeclaim {src['name']} not found")
            body = target_dv(self.mig, self.plan, t, self.source_size(pvc), pvc, src["name"] if clone else None)
            try:
                self.kube.create(R.DATAVOLUME, body, self.ns)
            except errors.Conflict:
                pass  # IsAlreadyExists -> nil (even when someone else created it)

    def check_volumes(self, vm: dict, plan_vm: dict) -> None:
        """component-helpers ValidatePVCsMatchForVM: every plan volume is still in the VM."""
        names = {v.get("name") for v in vm_volumes(vm)}
        for s in plan_vm.get("sourcePVCs") or []:
            if s["volumeName"] not in names:
                raise RunError(f"volume {s['volumeName']} not found in virtual machine")

    # ---- phases (task.go Run) -------------------------------------------------------------------
    def run(self) -> None:
        st = self.st
        st.setdefault("phase", "Started")  # Task.init
        if self.mig["metadata"].get("deletionTimestamp") and st["phase"] not in (
                "Canceled", "Completed", "CleanupCancelledMigrations"):
            st["phase"] = "Canceling"
        getattr(self, "_" + st["phase"], lambda: None)()

    def _Started(self):
        fins = self.mig["metadata"].setdefault("finalizers", [])
        if FINALIZER not in fins:
            fins.append(FINALIZER)
        self.st["phase"] = "RefreshStorageMigrationPlan"

    def _RefreshStorageMigrationPlan(self):
        """vm.go refreshReadyVirtualMachines: touch the plan (start time, no end time)."""
        if self.plan is None:
            raise RunError("plan not found")
        self.kube.patch(R.VMSM_PLAN, self.plan["metadata"]["name"], {"metadata": {"annotations": {
            PLAN.REFRESH_START: PLAN.rfc3339nano(), PLAN.REFRESH_END: None}}}, self.ns)
        self.st["phase"] = "WaitForStorageMigrationPlanRefreshCompletion"

    def _WaitForStorageMigrationPlanRefreshCompletion(self):
        """vm.go refreshCompletedVirtualMachines: the plan controller answered with a later end time."""
        ann = (self.plan or {}).get("metadata", {}).get("annotations") or {}
        if PLAN.REFRESH_START not in ann:
            raise RunError("refresh start time not found")
        start, end = PLAN.parse_rfc3339(ann[PLAN.REFRESH_START]), PLAN.parse_rfc3339(ann.get(PLAN.REFRESH_END, ""))
        if start and end and end > start:
            self.st["phase"] = "BeginLiveMigration"

    def _BeginLiveMigration(self):
        """task.go handleBeginLiveMigrationPhase: live = blank DVs then VM patch with the strategy; offline =
        VM patch first (no strategy, the VM cannot start), then clone DVs."""
        running = list(self.st.get("runningMigrations") or [])
        for pvm in self.plan_vms():
            vm = self.kube.get(R.VM, pvm["name"], self.ns)
            if self.vmi(pvm["name"]) is not None:
                if PLAN.vm_blocker(vm, self.vmi(pvm["name"]))[0]:
                    continue  # canVMStorageMigrate false: silently not migrated
                self.check_volumes(vm, pvm)
                self.create_dvs(pvm, clone=False)
                self.patch_vm(vm, pvm, strategy=True)
            else:
                self.check_volumes(vm, pvm)
                self.patch_vm(vm, pvm, strategy=False)
                self.create_dvs(pvm, clone=True)
            running.append({"name": pvm["name"]})
        self.st["runningMigrations"] = running
        self.st["phase"] = "WaitForLiveMigrationToComplete"

    def _WaitForLiveMigrationToComplete(self):
        """task.go handleWaitForLiveMigrationToCompletePhase (+ progress.go getLastObservedProgressPercent)."""
        still = []
        for rm in self.st.get("runningMigrations") or []:
            offline = self.vmi(rm["name"]) is None
            done = self.offline_completed(rm["name"]) if offline else self.live_completed(rm["name"])
            if done:
                self.st.setdefault("completedMigrations", []).append(rm["name"])
                continue
            entry = {"name": rm["name"]}
            if "progress" in rm:
                entry["progress"] = rm["progress"]
            if not offline:
                p = self.progress(rm["name"])
                if p:
                    entry["progress"] = p
            still.append(entry)
        self.st["runningMigrations"] = still
        if not still:
            self.st["phase"] = "CleanupMigrationResources"

    def cleanup(self, completed: List[str]) -> bool:
        """task.go cleanupMigrationResources: Succeeded launcher pods (every one in the namespace) and Succeeded
        VMIMs of completed VMs are deleted; not clean while a completed VM's VMI has more than one active pod."""
        for pod in self.kube.items(R.POD, self.ns, label_selector="kubevirt.io=virt-launcher"):
            if (pod.get("status") or {}).get("phase") == "Succeeded":
                delete_any(self.kube, R.POD, pod["metadata"]["name"], self.ns)
        for name in completed:
            vmi = self.vmi(name)
            if vmi is not None and len((vmi.get("status") or {}).get("activePods") or {}) > 1:
                return False
        for vmim in self.kube.items(R.VMIM, self.ns):
            if (vmim.get("status") or {}).get("phase") == "Succeeded" and \
                    (vmim.get("spec") or {}).get("vmiName") in completed:
                delete_any(self.kube, R.VMIM, vmim["metadata"]["name"], self.ns)
        return True

    def _CleanupMigrationResources(self):
        if not self.cleanup(self.st.get("completedMigrations") or []):
            return
        if ((self.plan or {}).get("spec") or {}).get("retentionPolicy") == "deleteSource":
            self.delete_sources(self.st.get("completedMigrations") or [])
        self._drop_finalizer()
        self.st["phase"] = "Completed"

    def delete_sources(self, completed: List[str]) -> None:
        """task.go deleteSourceDataVolumesAndPVCs: the DV of that name, else the PVC (plan completedMigrations)."""
        seen = set()
        for vm in ((self.plan or {}).get("status") or {}).get("completedMigrations") or []:
            if vm["name"] not in completed:
                continue
            for s in vm.get("sourcePVCs") or []:
                key = (s.get("namespace") or self.ns, s["name"])
                if key in seen:
                    continue
                seen.add(key)
                if not delete_any(self.kube, R.DATAVOLUME, s["name"], key[0]):
                    delete_any(self.kube, R.PVC, s["name"], key[0])

    def _Canceling(self):
        """task.go handleCancelingPhase + cancel.go cancelLiveMigration/isLiveMigrationCanceling: revert the
        claims (strategy kept); a live move that already completed is dropped from both lists."""
        running, cancelled = [], []
        for rm in self.st.get("runningMigrations") or []:
            name = rm["name"]
            if self.vmi(name) is None:
                self.revert(name)
                cancelled.append(name)
                continue
            if self.live_completed(name):
                continue
            if self.reverting(name):
                cancelled.append(name)
            else:
                self.revert(name)
                running.append(rm)
        self.st["runningMigrations"], self.st["cancelledMigrations"] = running, cancelled
        if not running:
            self.st["phase"] = "CleanupCancelledMigrations"

    def reverting(self, name: str) -> bool:
        vm = self.kube.get(R.VM, name, self.ns)
        pvm = self.plan_vm(name)
        sources = {s["name"] for s in (pvm or {}).get("sourcePVCs") or []}
        return any(((v.get("persistentVolumeClaim") or {}).get("claimName") or
                    (v.get("dataVolume") or {}).get("name")) in sources for v in vm_volumes(vm))

    def revert(self, name: str) -> None:
        """cancel.go revertPlanVolumes: destination <- source name; sourcePVCs[].name stays the source."""
        pvm = self.plan_vm(name)
        if pvm is None:
            return
        rev = copy.deepcopy(pvm)
        for i, s in enumerate(rev.get("sourcePVCs") or []):
            rev["targetMigrationPVCs"][i]["destinationPVC"]["name"] = s["name"]
        self.patch_vm(self.kube.get(R.VM, name, self.ns), rev, strategy=True)

    def _CleanupCancelledMigrations(self):
        """cancel.go cleanupCancelledMigrationResources: delete the target DVs of cancelled VMs."""
        clean = self.cleanup(self.st.get("completedMigrations") or [])
        for name in self.st.get("cancelledMigrations") or []:
            pvm = self.plan_vm(name)
            for t in (pvm or {}).get("targetMigrationPVCs") or []:
                if self.kube.get_or_none(R.DATAVOLUME, t["destinationPVC"]["name"], self.ns) is None:
                    raise RunError(f"datavolume {t['destinationPVC']['name']} not found")  # Get error, as upstream
                delete_any(self.kube, R.DATAVOLUME, t["destinationPVC"]["name"], self.ns)
        if clean:
            self.st["phase"] = "Canceled"

    def _Canceled(self):
        remove_condition(self.mig, "Canceling")
        set_condition(self.mig, "Canceled", "True", "Cancel", "Advisory", "The migration has been canceled.")
        self._drop_finalizer()

    def _drop_finalizer(self):
        fins = self.mig["metadata"].get("finalizers") or []
        self.mig["metadata"]["finalizers"] = [f for f in fins if f != FINALIZER]


def validate(mig: dict, plan: Optional[dict]) -> None:
    """controller.go Reconcile (plan lookup, owner reference) + validation.go validate/validatePlan."""
    ref = _ref(mig)
    if plan is None:
        set_condition(mig, "InvalidPlanRef", "True", "NotFound", "Critical",
                      f"The referenced `virtualMachineStorageMigrationPlanRef` does not exist, subject: "
                      f"{mig['metadata']['namespace']}/{ref.get('name')}.")
        return
    remove_condition(mig, "InvalidPlanRef")
    owner = {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "VirtualMachineStorageMigrationPlan",
             "name": plan["metadata"]["name"], "uid": plan["metadata"]["uid"], "controller": True,
             "blockOwnerDeletion": True}
    refs = [o for o in mig["metadata"].get("ownerReferences") or [] if not o.get("controller")]
    mig["metadata"]["ownerReferences"] = refs + [owner]  # controllerutil.SetControllerReference
    if ref.get("uid") and ref["uid"] != plan["metadata"]["uid"]:
        set_condition(mig, "InvalidPlanRef", "True", "NotFound", "Critical",
                      f"migration is not owned by the plan {ref.get('name')}, uid mismatch")
        return
    if PLAN.critical(plan):
        set_condition(mig, "PlanNotReady", "True", "NotReady", "Critical",
                      f"The referenced `virtualMachineStorageMigrationPlanRef` has critical conditions, subject: "
                      f"{mig['metadata']['namespace']}/{ref.get('name')}")
    else:
        remove_condition(mig, "PlanNotReady")


def blocked(mig: dict) -> bool:
    """conditions.go HasBlockerCondition (Critical or Error)."""
    return any(c.get("category") in ("Critical", "Error") and c.get("status") == "True"
               for c in (mig.get("status") or {}).get("conditions") or [])


def reconcile(ctl, mig: dict) -> None:
    """controller.go StorageMigrationReconciler.Reconcile: one phase, then status, then metadata."""
    md, ns = mig["metadata"], mig["metadata"]["namespace"]
    phase = (mig.get("status") or {}).get("phase")
    if md.get("deletionTimestamp") and phase in ("Canceled", "Completed"):
        if FINALIZER in (md.get("finalizers") or []):
            md["finalizers"] = [f for f in md["finalizers"] if f != FINALIZER]
            _update(ctl, mig)
        return
    if phase == "Completed" or not _ref(mig).get("name"):
        return
    orig = copy.deepcopy(mig)
    mig = copy.deepcopy(mig)
    mig["spec"]["virtualMachineStorageMigrationPlanRef"]["namespace"] = ns
    plan = ctl.kube.get_or_none(R.VMSM_PLAN, _ref(mig)["name"], ns)
    validate(mig, plan)
    if not blocked(mig) or md.get("deletionTimestamp"):
        try:
            Task(ctl.kube, mig, plan, progress=lambda vm: ctl.progress(ns, vm)).run()
        except (RunError, errors.ApiError) as exc:
            ctl.errors = (ctl.errors + [f"{ns}/{md['name']}: {exc}"])[-20:]
            return  # Reconcile returns the error: nothing is written, the phase runs again
    if json.dumps(mig.get("status"), sort_keys=True) != json.dumps(orig.get("status"), sort_keys=True):
        try:
            mig = ctl.kube.request("PUT", R.VMSM.path(ns, md["name"], "status"), body=mig) | {
                "metadata": mig["metadata"], "spec": mig["spec"]}
        except (errors.Conflict, errors.NotFound):
            return
    if mig["metadata"] != orig["metadata"] or mig["spec"] != orig["spec"]:
        _update(ctl, mig)


def _update(ctl, mig):
    md = mig["metadata"]
    cur = ctl.kube.get_or_none(R.VMSM, md["name"], md["namespace"])
    if cur is None:
        return
    body = dict(cur, spec=mig["spec"], metadata=dict(cur["metadata"], finalizers=md.get("finalizers") or [],
                                                     ownerReferences=md.get("ownerReferences") or []))
    try:
        ctl.kube.replace(R.VMSM, body, md["namespace"])
    except (errors.Conflict, errors.NotFound):
        pass
