"""mig-controller stand-in: DirectVolumeMigration (+ DirectVolumeMigrationProgress) reconcile.

BEHAVIOR.md §1.6 (itineraries), §3 (live vs rsync, target creation, VMIM watching), §5.1 (DVMP fields);
API.md §3/§4. Rsync is simulated (no transfer pods exist): each step advances every running copy by
``rsync_increment`` percent, and faults from the ``sim-faults`` ConfigMap make attempts fail.
"""
import random
from typing import Dict, List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, create_or_get, delete_any, fault_bool, fault_int, get_condition, go_duration,
                     md5hex, now, owner_ref, parse_time, rand_string, remove_condition, seconds_since,
                     set_condition)
from .mtc_plan import LBL_MIGRATED_BY_MIGRATION, LBL_MIGRATED_BY_PLAN
from .mtc_workloads import ANN_ALLOW_ADOPTION, live_update_vm, running_vm_volumes, vm_volume_claims

FINALIZER = "migration.openshift.io/directvolumemigrationfinalizer"
VOLUME_MIGRATION = ["", "Started", "Prepare", "CleanStaleRsyncResources", "WaitForStaleRsyncResourcesTerminated",
                    "VerifyVMs", "CreateDestinationNamespaces", "DestinationNamespacesCreated",
                    "CreateDestinationPVCs", "DeleteStaleVirtualMachineInstanceMigrations", "CreateRsyncRoute",
                    "EnsureRsyncRouteAdmitted", "CreateRsyncConfig", "CreateStunnelConfig", "CreatePVProgressCRs",
                    "CreateRsyncTransferPods", "WaitForRsyncTransferPodsRunning", "RunRsyncOperations",
                    "DeleteRsyncResources", "WaitForRsyncResourcesTerminated", "CleanupStaleVirtHandlerPods",
                    "Completed"]
VOLUME_MIGRATION_ROLLBACK = ["", "Started", "Prepare", "CleanStaleRsyncResources",
                             "DeleteStaleVirtualMachineInstanceMigrations", "WaitForStaleRsyncResourcesTerminated",
                             "RunRsyncOperations", "CleanupStaleVirtHandlerPods", "Completed"]
VOLUME_MIGRATION_FAILED = ["MigrationFailed", "Completed"]
ITINERARIES = {"VolumeMigration": VOLUME_MIGRATION, "VolumeMigrationRollback": VOLUME_MIGRATION_ROLLBACK,
               "VolumeMigrationFailed": VOLUME_MIGRATION_FAILED}
# Known texts (samples) + short approximations; "" where upstream has none (API.md §3).
DESCRIPTIONS = {
    "": "Migration created.", "Started": "Migration started.", "Prepare": "Preparing for migration",
    "CleanStaleRsyncResources": "Cleaning stale rsync resources",
    "WaitForStaleRsyncResourcesTerminated": "Waiting for stale rsync resources to terminate",
    "VerifyVMs": "Verifying virtual machines", "CreateDestinationNamespaces": "Creating target namespaces",
    "DestinationNamespacesCreated": "Checking if the target namespaces have been created.",
    "CreateDestinationPVCs": "Creating PVCs in the target namespaces",
    "DeleteStaleVirtualMachineInstanceMigrations": "",
    "CreateRsyncRoute": "Creating one route for each namespace for Rsync on the target cluster",
    "EnsureRsyncRouteAdmitted": "Waiting for the Rsync Routes to be admitted",
    "CreateRsyncConfig": "Creating config maps and secrets on source and target clusters for Rsync",
    "CreateStunnelConfig": "Creating config maps and secrets on source and target clusters for Stunnel",
    "CreatePVProgressCRs": "Creating Direct Volume Migration Progress CRs",
    "CreateRsyncTransferPods": "Creating Rsync daemon pods on the target cluster",
    "WaitForRsyncTransferPodsRunning": "Waiting for the Rsync daemon pod to run",
    "RunRsyncOperations": "Running Rsync Pods to migrate Persistent Volume data",
    "DeleteRsyncResources": "Deleting Rsync resources created by this migration",
    "WaitForRsyncResourcesTerminated": "Waiting for Rsync resources to terminate",
    "CleanupStaleVirtHandlerPods": "", "Completed": "Complete",
    "MigrationFailed": "The migration attempt failed, please see errors for more details",
}
DEFAULT_BACKOFF = 20
LIST_KEYS = ("successfulPods", "failedPods", "runningPods", "pendingPods", "unknownPods",
             "pendingSinceTimeLimitPods", "successfulLiveMigration", "runningLiveMigration",
             "pendingLiveMigration", "failedLiveMigration")


def dvmp_name(dvm_name: str, pvc: str, ns: str) -> str:
    return md5hex(dvm_name + pvc + ns)


def build_dvm(mig: dict, plan: dict, pvcs: List[dict], migration_type: str, backoff: Optional[int]) -> dict:
    uid = mig["metadata"]["uid"]
    spec = {"srcMigClusterRef": plan["spec"]["srcMigClusterRef"],
            "destMigClusterRef": plan["spec"]["destMigClusterRef"],
            "persistentVolumeClaims": pvcs, "createDestinationNamespaces": True,
            "liveMigrate": bool(plan["spec"].get("liveMigrate")), "migrationType": migration_type}
    if backoff:
        spec["backOffLimit"] = backoff
    return {"apiVersion": R.DVM.api_version, "kind": "DirectVolumeMigration",
            "metadata": {"generateName": mig["metadata"]["name"] + "-", "namespace": MTC_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "openshift-migration", "migmigration": uid,
                                    "migration-direct-volume": uid},
                         "ownerReferences": [owner_ref(mig, block=True)], "finalizers": [FINALIZER]},
            "spec": spec}


class DvmReconciler:
    """One pass over one DVM per call (``reconcile``), advancing one phase or one progress increment."""

    def __init__(self, kube, rsync_increment: int = 20):
        self.kube = kube
        self.rsync_increment = rsync_increment

    # ---- helpers --------------------------------------------------------------------------------
    def _pvcs(self, dvm):
        return dvm["spec"].get("persistentVolumeClaims") or []

    def _ns(self, dvm) -> Optional[str]:
        p = self._pvcs(dvm)
        return p[0]["namespace"] if p else None

    def _owner_mig(self, dvm):
        for ref in dvm["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "MigMigration":
                return self.kube.get_or_none(R.MIGMIGRATION, ref["name"], MTC_NAMESPACE)
        return None

    def _plan(self, mig):
        ref = ((mig or {}).get("spec") or {}).get("migPlanRef") or {}
        return self.kube.get_or_none(R.MIGPLAN, ref.get("name"), MTC_NAMESPACE) if ref.get("name") else None

    def _write(self, dvm, status):
        status.setdefault("observedDigest", "sim")
        status["phaseDescription"] = DESCRIPTIONS.get(status.get("phase", ""), "")
        for k in LIST_KEYS + ("skippedVolumes", "errors"):
            status.setdefault(k, None)  # merge patch: absent list → removed
        return self.kube.patch(R.DVM, dvm["metadata"]["name"], {"status": status}, MTC_NAMESPACE)

    def _goto(self, dvm, st, phase):
        st["phase"] = phase
        steps = ITINERARIES[st["itinerary"]]
        if phase == "Completed":
            remove_condition({"status": st}, "Running")
            remove_condition({"status": st}, "Ready")
        else:
            set_condition({"status": st}, "Running", "True", phase, "Advisory",
                          f"Step: {steps.index(phase) + 1}/{len(steps)}")

    def _fail(self, dvm, st, category, reasons):
        set_condition({"status": st}, "Failed", "True", st.get("phase") or "Created", category,
                      "The migration has failed.  See: Errors.", durable=True)
        # task.go fail → DirectVolumeMigration.AddErrors: appended, duplicates dropped; with no reasons
        # (an rsync-only failure) errors stay empty.
        errs = list(st.get("errors") or [])
        errs += [r for r in reasons if r not in errs]
        st["errors"] = errs or None
        st["itinerary"] = "VolumeMigrationFailed"
        self._goto(dvm, st, "MigrationFailed")

    # ---- reconcile ------------------------------------------------------------------------------
    def reconcile(self, dvm: dict, faults: Dict[str, str]) -> None:
        if dvm["metadata"].get("deletionTimestamp"):
            self._finalize(dvm)
            return
        st = dict(dvm.get("status") or {})
        st["conditions"] = list(st.get("conditions") or [])
        phase = st.get("phase", "")
        if st.get("phase") == "Completed":
            return
        if not st.get("itinerary"):
            st["itinerary"] = ("VolumeMigrationRollback" if dvm["spec"].get("migrationType") == "Rollback"
                               else "VolumeMigration")
        steps = ITINERARIES[st["itinerary"]]
        nxt = steps[steps.index(phase) + 1] if phase in steps and phase != "Completed" else "Completed"
        if phase != "RunRsyncOperations":
            # Conditions are staged per reconcile (directvolumemigration_controller.go Begin/
            # EndStagingConditions): RsyncClientPodsPending is only re-set by RunRsyncOperations.
            remove_condition({"status": st}, "RsyncClientPodsPending")
        handler = getattr(self, "_phase_" + (phase or "Created"), None)
        if handler is None:
            self._goto(dvm, st, nxt)
        else:
            if handler(dvm, st, faults):  # False: wait (or _fail switched the itinerary)
                self._goto(dvm, st, nxt)
        if st.get("phase") == "Completed" and not get_condition({"status": st}, "Failed"):
            set_condition({"status": st}, "Succeeded", "True", "Completed", "Advisory",
                          "The migration has succeeded", durable=True)
        self._write(dvm, st)

    def _phase_Created(self, dvm, st, faults):
        st["startTimestamp"] = st.get("startTimestamp") or now()
        set_condition({"status": st}, "Ready", "True", None, "Required", "Direct migration is ready")
        return True

    def _phase_MigrationFailed(self, dvm, st, faults):
        return True

    def _phase_VerifyVMs(self, dvm, st, faults):
        ns = self._ns(dvm)
        if not ns:
            return True
        running = running_vm_volumes(self.kube.items(R.POD, ns))
        vms = {vm["metadata"]["name"]: vm for vm in self.kube.items(R.VM, ns)}
        reasons = []
        for p in self._pvcs(dvm):
            vm = running.get(p["name"])
            if vm and vm in vms and p["name"] not in vm_volume_claims(vms[vm]) \
                    and p.get("targetName") not in vm_volume_claims(vms[vm]):
                reasons.append(f"volume {p['name']} not found in VM {vm}, it is an ephemeral volume, to fix unplug "
                               f"the volume and hotplug it with the persist flag")
        if reasons:
            self._fail(dvm, st, "Critical", reasons)
            return False
        return True

    def _phase_CreateDestinationPVCs(self, dvm, st, faults):
        if fault_bool(faults, "dvmWarnFailure"):
            self._fail(dvm, st, "Warn", ["sim-faults dvmWarnFailure: injected error creating destination PVCs"])
            return False
        mig = self._owner_mig(dvm)
        plan = self._plan(mig)
        ns = self._ns(dvm)
        vm_claims = set()
        for vm in self.kube.items(R.VM, ns) if ns else []:
            vm_claims |= set(vm_volume_claims(vm))
        for p in self._pvcs(dvm):
            self._create_target(dvm, mig, plan, p, p["name"] in vm_claims)
        return True

    def _create_target(self, dvm, mig, plan, p, for_vm):
        ns = p["namespace"]
        src = self.kube.get_or_none(R.PVC, p["name"], ns)
        if not src:
            return
        lbl = dict(src["metadata"].get("labels") or {})
        lbl.update({"app.kubernetes.io/part-of": "openshift-migration", "directvolumemigration": dvm["metadata"]["uid"]})
        if mig:
            lbl[LBL_MIGRATED_BY_MIGRATION] = mig["metadata"]["uid"]
        if plan:
            lbl[LBL_MIGRATED_BY_PLAN] = plan["metadata"]["uid"]
        # pvcs.go createDestinationPVCs: the source's labels as they are (a source-for label included:
        # handleSourceLabels removes it from the targets at the swap)
        sspec = src.get("spec") or {}
        size = ((src.get("status") or {}).get("capacity") or {}).get("storage") or \
            ((sspec.get("resources") or {}).get("requests") or {}).get("storage")
        owner_dv = next((r["name"] for r in src["metadata"].get("ownerReferences") or []
                         if r.get("kind") == "DataVolume"), None)
        if owner_dv:
            dv = self.kube.get_or_none(R.DATAVOLUME, owner_dv, ns) or {}
            dspec = dv.get("spec") or {}
            req = ((dspec.get("storage") or dspec.get("pvc") or {}).get("resources") or {}).get("requests") or {}
            size = req.get("storage") or size
        if for_vm:
            storage = {"resources": {"requests": {"storage": size}}, "storageClassName": p["targetStorageClass"],
                       "accessModes": [m for m in p.get("targetAccessModes") or []
                                       if m in ("ReadWriteOnce", "ReadWriteMany")]}
            if p.get("targetVolumeMode") and p["targetVolumeMode"] != "auto":
                storage["volumeMode"] = p["targetVolumeMode"]
            if not storage["accessModes"]:
                del storage["accessModes"]
            create_or_get(self.kube, R.DATAVOLUME, {
                "apiVersion": R.DATAVOLUME.api_version, "kind": "DataVolume",
                "metadata": {"name": p["targetName"], "namespace": p.get("targetNamespace") or ns, "labels": lbl,
                             "annotations": {ANN_ALLOW_ADOPTION: "true"}},
                "spec": {"source": {"blank": {}}, "storage": storage}})
        else:
            spec = {"accessModes": p.get("targetAccessModes") or sspec.get("accessModes"),
                    "storageClassName": p["targetStorageClass"], "resources": {"requests": {"storage": size}}}
            if p.get("targetVolumeMode") and p["targetVolumeMode"] != "auto":
                spec["volumeMode"] = p["targetVolumeMode"]
            create_or_get(self.kube, R.PVC, {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": p["targetName"], "namespace": p.get("targetNamespace") or ns, "labels": lbl},
                "spec": spec})

    def _phase_DeleteStaleVirtualMachineInstanceMigrations(self, dvm, st, faults):
        """vm.go deleteStaleVirtualMachineInstanceMigrations: only a VMIM of a VM of the namespace that
        Succeeded and whose migrationState.endTimestamp is before the DVM's creation is deleted — Failed
        VMIMs of earlier attempts stay (and are read by the live status/verdict)."""
        ns = self._ns(dvm)
        created = parse_time(dvm["metadata"].get("creationTimestamp"))
        vm_names = {vm["metadata"]["name"] for vm in self.kube.items(R.VM, ns)} if ns else set()
        for vmim in self.kube.items(R.VMIM, ns) if ns else []:
            end = parse_time(((vmim.get("status") or {}).get("migrationState") or {}).get("endTimestamp"))
            if (vmim.get("status") or {}).get("phase") == "Succeeded" and end and created and end < created \
                    and (vmim.get("spec") or {}).get("vmiName") in vm_names:
                delete_any(self.kube, R.VMIM, vmim["metadata"]["name"], ns)
        return True

    def _live_pvcs(self, dvm) -> Dict[str, str]:
        """PVC → running VM, for PVCs that go the live way (liveMigrate plans only)."""
        if not dvm["spec"].get("liveMigrate") or not self._ns(dvm):
            return {}
        running = running_vm_volumes(self.kube.items(R.POD, self._ns(dvm)))
        out = {}
        for p in self._pvcs(dvm):
            for name in (p["name"], p["targetName"]):
                if name in running:
                    out[p["name"]] = running[name]
        return out

    def _phase_CreatePVProgressCRs(self, dvm, st, faults):
        live = self._live_pvcs(dvm)
        skipped = []
        for p in self._pvcs(dvm):
            if p["name"] in live:
                if dvm["spec"].get("migrationType") == "Stage":
                    skipped.append(f"{p['namespace']}/{p['name']}")
                continue
            self._ensure_dvmp(dvm, p)
        st["skippedVolumes"] = skipped or None
        return True

    def _ensure_dvmp(self, dvm, p):
        create_or_get(self.kube, R.DVMP, {
            "apiVersion": R.DVMP.api_version, "kind": "DirectVolumeMigrationProgress",
            "metadata": {"name": dvmp_name(dvm["metadata"]["name"], p["name"], p["namespace"]),
                         "namespace": MTC_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "openshift-migration",
                                    "directvolumemigration": dvm["metadata"]["uid"]},
                         "ownerReferences": [owner_ref(dvm, block=True)]},
            "spec": {"clusterRef": dvm["spec"]["srcMigClusterRef"], "podNamespace": p["namespace"],
                     "podSelector": {"migration.openshift.io/created-for-pvc": md5hex(p["name"])}}}, MTC_NAMESPACE)

    # ---- the copy -------------------------------------------------------------------------------
    def _phase_RunRsyncOperations(self, dvm, st, faults):
        from .mtc_dvm_copy import advance_copies
        return advance_copies(self, dvm, st, faults)

    # ---- deletion (cancel) ----------------------------------------------------------------------
    def _finalize(self, dvm):
        """DVM finalizer: cancelLiveMigrations for CutOver+liveMigrate (revert VMs that still run on a
        source PVC), delete the DVMPs, then drop the finalizer."""
        ns = self._ns(dvm)
        waiting = False
        if ns and dvm["spec"].get("liveMigrate") and dvm["spec"].get("migrationType") == "CutOver":
            running = running_vm_volumes(self.kube.items(R.POD, ns))
            back = {p["targetName"]: p["name"] for p in self._pvcs(dvm)}
            for vm in self.kube.items(R.VM, ns):
                name = vm["metadata"]["name"]
                uses_source = any(running.get(p["name"]) == name for p in self._pvcs(dvm))
                pairs = {t: s for t, s in back.items() if t in vm_volume_claims(vm)}
                if uses_source and pairs:
                    live_update_vm(self.kube, vm, pairs, {})
                for vmim in self.kube.items(R.VMIM, ns):
                    if vmim["spec"].get("vmiName") == name and \
                            (vmim.get("status") or {}).get("phase") not in ("Succeeded", "Failed", None):
                        waiting = waiting or parse_time(vmim["metadata"].get("creationTimestamp")) is not None \
                            and seconds_since(vmim["metadata"].get("creationTimestamp")) < 30
        for dvmp in self.kube.items(R.DVMP, MTC_NAMESPACE,
                                    label_selector=f"directvolumemigration={dvm['metadata']['uid']}"):
            delete_any(self.kube, R.DVMP, dvmp["metadata"]["name"], MTC_NAMESPACE)
        if waiting:
            return
        fins = [f for f in dvm["metadata"].get("finalizers") or [] if f != FINALIZER]
        try:
            self.kube.patch(R.DVM, dvm["metadata"]["name"],
                            {"metadata": {"finalizers": fins or None,
                                          "resourceVersion": dvm["metadata"]["resourceVersion"]}},
                            MTC_NAMESPACE)
        except (errors.Conflict, errors.NotFound):
            pass


def rate() -> str:
    return f"{random.uniform(30, 120):.2f}MB/s"


def new_pod_name() -> str:
    return "rsync-" + rand_string(5)


__all__ = ["DvmReconciler", "build_dvm", "dvmp_name", "DEFAULT_BACKOFF", "rate", "new_pod_name", "fault_int",
           "go_duration"]
