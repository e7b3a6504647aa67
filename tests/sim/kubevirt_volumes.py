"""The VM controller's volume-update handling (BEHAVIOR.md §5.1-5.2, §9, §10): checks, migratedVolumes,
VolumesChange, volumeUpdateState, cancel by revert, ManualRecoveryRequired.

Functions take the controller (for writes) and the pass context; ``st`` is the VM status being built.
"""
from kubectl_vmmig import resources as R

from . import kubevirt_model as M
from . import kubevirt_pods as P
from . import kubevirt_revision as REV
from .common import delete_any, fault_int, now

GENERIC_RESTART = "a non-live-updatable field was changed in the template spec"
UPDATE_ERROR_PREFIX = "error encountered while handling volumes update requests: "  # vm.go sync
INVALID_UPDATE = "The volume can only be reverted to the previous version during the update"  # InvalidUpdateErrMsg
TRANSIENT_ERROR = "testing value /status/migratedVolumes failed: test failed"
RECOVERY_REASON = "VMI was removed or was final during the volume migration"
MIGRATION_LABEL = "kubevirt.io/volume-update-migration"


def _vm_condition(st, ctype, status="True", reason=None, message=None):
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now()}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    M.put_condition(st, c)


def set_recovery(ctx, st) -> None:
    """vm.go syncVolumeMigration: ManualRecoveryRequired (v1.4+) when the VMI is gone or final while the VM
    shows VolumesChange=True. The VM keeps VolumesChange=True next to it (syncConditions returns early without
    a VMI) and volumeUpdateState is kept for the user to decide. v1.3 has neither (added in v1.4)."""
    if ctx.cfg.has_volume_update_state:
        _vm_condition(st, "ManualRecoveryRequired", reason=RECOVERY_REASON)


def maybe_clear_recovery(ctx, vm, st) -> None:
    """vm.go syncVolumeMigration: once the VM claims are back on the sources, or updateVolumesStrategy is no longer
    Migration (the "copy finished, keep the destinations" case, samples/03), volumeMigrationState, VolumesChange
    and ManualRecoveryRequired are removed."""
    migrated = (((st.get("volumeUpdateState") or {}).get("volumeMigrationState") or {}).get("migratedVolumes") or [])
    if not migrated:
        return
    spec = vm.get("spec") or {}
    claims = {v["name"]: M.claim_of(v) for v in M.volumes_of(M.vmi_spec_of(vm))}
    sources = {m.get("volumeName"): (m.get("sourcePVCInfo") or {}).get("claimName") for m in migrated
               if m.get("sourcePVCInfo")}
    reverted = all(claims[n] == src for n, src in sources.items() if n in claims)
    if spec.get("updateVolumesStrategy") != "Migration" or reverted:
        st.pop("volumeUpdateState", None)
        M.drop_condition(st, "VolumesChange")
        M.drop_condition(st, "ManualRecoveryRequired")


def sync_restart_required(ctx, start_spec, vm, st) -> bool:
    """vm.go syncRestartRequired / addRestartRequiredIfNeeded: against the start revision. Before v1.8 the
    condition is only ever added (it goes away when the VM is stopped or started, cleanupRestartRequired);
    from v1.8 (commit "vm controller: Clear RestartRequired when no restart is needed") it is removed again
    when the template matches the revision modulo live-updatable fields."""
    if start_spec is None:
        return False
    if REV.restart_required(start_spec, vm, ctx.cfg.live_update):
        _vm_condition(st, "RestartRequired", message=GENERIC_RESTART)
        return True
    if ctx.cfg.version >= (1, 8, 0):
        M.drop_condition(st, "RestartRequired")
    return False


def process_failure(st, sync_error) -> None:
    """vm.go processFailureCondition: a sync error sets Failure (reason VolumesUpdateError for every error of
    handleVolumeUpdateRequest, sync: common.NewSyncError(..., volumesUpdateErrorReason)); the next clean sync
    removes it — so a transient error clears by itself, InvalidUpdateErrMsg stays while the third claim stays."""
    if sync_error is None:
        M.drop_condition(st, "Failure")
    else:
        _vm_condition(st, "Failure", reason="VolumesUpdateError", message=UPDATE_ERROR_PREFIX + sync_error)


def _missing(ctx, ns, vm_spec, upd):
    """volume-migration.go ValidateVolumes, the existence checks, per version: a DataVolume destination must
    exist, and its PVC unless the DV is Succeeded (v1.5+); a persistentVolumeClaim destination only from v1.9
    (commit adding the "// PVC volumes" branch); v1.3/v1.4 check nothing. Returns the error text or None."""
    v = ctx.cfg.version
    for vol in M.volumes_of(vm_spec):
        if vol["name"] not in upd:
            continue
        if vol.get("persistentVolumeClaim") is not None and v >= (1, 9, 0):
            if (ns, upd[vol["name"]]) not in ctx.pvcs:
                return f"the pvc {upd[vol['name']]} doesn't exist"
        if vol.get("dataVolume") is not None and v >= (1, 5, 0):
            name = vol["dataVolume"].get("name")
            dv = ctx.dvs.get((ns, name))
            if dv is None:
                return f"the datavolume {name} doesn't exist"
            if (dv.get("status") or {}).get("phase") != "Succeeded" and (ns, name) not in ctx.pvcs:
                return f"the pvc {name} doesn't exist"
    return None


def handle_volume_update(ctl, ctx, vm, vmi, st):
    """vm.go handleVolumeUpdateRequest for a running VMI (called only with the LiveUpdate rollout and no
    RestartRequired, see sync). Returns the sync error text (→ Failure/VolumesUpdateError) or None."""
    ns = vm["metadata"]["namespace"]
    cfg = ctx.cfg
    vm_spec, vmi_spec = M.vmi_spec_of(vm), vmi.get("spec") or {}
    upd = M.updated_volumes(vmi_spec, vm_spec)
    migrated = (vmi.get("status") or {}).get("migratedVolumes") or []
    # volume-migration.go VolumeMigrationCancel: while migrating, a changed migrated volume is a cancel when
    # exactly the sources are restored, else InvalidUpdateErrMsg
    if M.cond_true(vmi, "VolumesChange") and any(m.get("volumeName") in upd for m in migrated):
        reverted = all(upd.get(m.get("volumeName")) == (m.get("sourcePVCInfo") or {}).get("claimName")
                       for m in migrated) and len(upd) == len(migrated)
        if reverted:
            cancel(ctl, ctx, vm, vmi, st)
            return None
        return INVALID_UPDATE
    strategy = (vm.get("spec") or {}).get("updateVolumesStrategy")
    if strategy in (None, "Replacement"):
        return None  # "not handling replacement update volumes strategy"
    if strategy != "Migration":
        return f"updateVolumes strategy not recognized: {strategy}"
    if not upd or not cfg.volume_update_enabled:
        return None  # PersistentVolumesUpdated false / v1.3-1.4 VolumeMigrationEnabled() false
    missing = _missing(ctx, ns, vm_spec, upd)
    if missing and cfg.version >= (1, 6, 0):
        # vm.go handleValidationErrors: ErrPVCNotFound/ErrDVNotFound → VMI VolumesChange=False, retried each sync
        msg = f"One of the destination volumes doesn't exist: {missing}"
        cur = M.cond(vmi, "VolumesChange") or {}
        if (cur.get("status"), cur.get("message")) != ("False", msg):
            M.put_condition(vmi.setdefault("status", {}), {
                "type": "VolumesChange", "status": "False", "message": msg,
                "lastProbeTime": None, "lastTransitionTime": now()})
            ctl.put_vmi(ctx, vmi)
        return None
    if missing:
        _vm_condition(st, "RestartRequired", message=missing)  # v1.5: setRestartRequired(vm, err.Error())
        return None
    dvs = {n: o for (s, n), o in ctx.dvs.items() if s == ns}
    pvcs = {n: o for (s, n), o in ctx.pvcs.items() if s == ns}
    # ValidateVolumes: noCSIDVs only from v1.5 (v1.3/v1.4 have no DataVolume check at all)
    msg = M.invalid_volumes_message(vmi_spec, vm_spec, dvs, pvcs, allow_hotplug=cfg.version >= (1, 5, 0),
                                    check_dvs=cfg.version >= (1, 5, 0))
    if msg:
        _vm_condition(st, "RestartRequired", message=msg)
        return None
    if M.cond(vmi, "VolumesChange") and not M.cond_true(vmi, "VolumesChange"):
        M.drop_condition(vmi["status"], "VolumesChange")  # UnsetVolumeChangeCondition
    old_claims = {v["name"]: M.claim_of(v) for v in M.volumes_of(vmi_spec)}
    # GenerateMigratedVolumes: claimName and volumeMode (from the PVC spec) only
    infos = [{"volumeName": v["name"],
              "sourcePVCInfo": M.migrated_info(pvcs.get(old_claims[v["name"]]), old_claims[v["name"]]),
              "destinationPVCInfo": M.migrated_info(pvcs.get(upd[v["name"]]), upd[v["name"]])}
             for v in M.volumes_of(vm_spec) if v["name"] in upd]
    if cfg.version >= (1, 4, 0):  # ValidateVolumesUpdateMigration (added in v1.4)
        slm = M.cond(vmi, "StorageLiveMigratable")
        if slm and slm.get("status") == "False":
            _vm_condition(st, "RestartRequired",
                          message=f"cannot migrate the volumes as the VMI isn't migratable: {slm.get('message', '')}")
            return None
        rwo = M.rwo_not_included(vmi, set(upd), backend_exempt=cfg.version >= (1, 5, 0))
        if rwo:
            _vm_condition(st, "RestartRequired", message=rwo)
            return None
    fault = _transient_fault(ctl, vm)
    if fault:
        return fault
    # Accepted: VMI status.migratedVolumes, VMI spec.volumes, VolumesChange=True, VM volumeUpdateState.
    new_vols = {v["name"]: v for v in M.volumes_of(vm_spec)}
    vmi["spec"]["volumes"] = [M.deep(new_vols[v["name"]]) if v["name"] in upd else v for v in M.volumes_of(vmi_spec)]
    vst = vmi.setdefault("status", {})
    vst["migratedVolumes"] = infos
    M.put_condition(vst, {"type": "VolumesChange", "status": "True", "message": "migrate volumes",
                          "lastProbeTime": None, "lastTransitionTime": now()})
    ctl.refresh_vmi_status(ctx, vmi)
    ctl.put_vmi(ctx, vmi)
    if cfg.has_volume_update_state:
        st["volumeUpdateState"] = {"volumeMigrationState": {"migratedVolumes": M.deep(infos)}}
    return None


def _transient_fault(ctl, vm):
    """Fault ``volumesUpdateError: "N"``: the first N accepting syncs of this VM fail as a JSON patch with a
    stale ``test`` op does (volume-migration.go PatchVMIStatusWithMigratedVolumes: test + replace
    /status/migratedVolumes; the API server answers 422 with json-patch's "testing value … failed")."""
    n = fault_int(ctl.faults(vm["metadata"]["namespace"]), "volumesUpdateError") or 0
    uid = vm["metadata"]["uid"]
    done = ctl.transient.get(uid, 0)
    if done < n:
        ctl.transient[uid] = done + 1
        return TRANSIENT_ERROR
    return None


def cancel(ctl, ctx, vm, vmi, st) -> None:
    """VolumeMigrationCancel: VMI volumes back, migratedVolumes cleared, VolumesChange=False
    (VolumesChangeCancellation), VM state cleared, in-flight workload-update VMIMs aborted unless the
    target domain is already running."""
    ns = vm["metadata"]["namespace"]
    vm_vols = {v["name"]: v for v in M.volumes_of(M.vmi_spec_of(vm))}
    names = {m.get("volumeName") for m in vmi["status"].get("migratedVolumes") or []}
    vmi["spec"]["volumes"] = [M.deep(vm_vols[v["name"]]) if v["name"] in names and v["name"] in vm_vols else v
                              for v in M.volumes_of(vmi["spec"])]
    vst = vmi["status"]
    vst.pop("migratedVolumes", None)
    M.put_condition(vst, {"type": "VolumesChange", "status": "False", "reason": "VolumesChangeCancellation",
                          "lastProbeTime": None, "lastTransitionTime": now()}, keep_time=False)
    ms = vst.get("migrationState") or {}
    for vmim in list(ctx.vmims):
        md = vmim["metadata"]
        if md["namespace"] != ns or (vmim.get("spec") or {}).get("vmiName") != vmi["metadata"]["name"]:
            continue
        if MIGRATION_LABEL not in (md.get("labels") or {}) or (vmim.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if ms.get("migrationUid") == md["uid"] and ms.get("targetNodeDomainReadyTimestamp"):
            continue  # too late to abort: let it finish
        delete_any(ctl.kube, R.VMIM, md["name"], ns)
        ctx.vmims.remove(vmim)
        for pod in P.pods_of(ctx.pods, vmi):
            if (pod["metadata"].get("labels") or {}).get(P.MIGRATION_JOB_UID) == md["uid"]:
                P.delete_pod(ctl.kube, pod)
        if ms.get("migrationUid") == md["uid"]:
            ms.update(abortRequested=True, abortStatus="Succeeded", completed=True, failed=True,
                      failureReason="Live migration has been aborted", endTimestamp=now())
            vmi["metadata"].get("labels", {}).pop("kubevirt.io/migrationTargetNodeName", None)
            src = P.source_pod(ctx.pods, vmi)
            if src:
                vst["activePods"] = {src["metadata"]["uid"]: vst.get("nodeName")}
    ctl.refresh_vmi_status(ctx, vmi)
    ctl.put_vmi(ctx, vmi)
    st.pop("volumeUpdateState", None)  # syncVolumeMigration: cancelled → VolumeMigrationState = nil
