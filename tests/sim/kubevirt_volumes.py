"""The VM controller's volume-update handling (BEHAVIOR.md §5.1-5.2, §9, §10): checks, migratedVolumes,
VolumesChange, volumeUpdateState, cancel by revert, ManualRecoveryRequired.

Functions take the controller (for writes) and the pass context; ``st`` is the VM status being built.
"""
from kubectl_vmmig import resources as R

from . import kubevirt_model as M
from . import kubevirt_pods as P
from .common import delete_any, now

GENERIC_RESTART = "a non-live-updatable field was changed in the template spec"
INVALID_UPDATE = ("error encountered while handling volumes update requests: "
                  "The volume can only be reverted to the previous version during the update")
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
    """ManualRecoveryRequired (v1.4+); volumeUpdateState is kept for the user to decide."""
    if ctx.cfg.has_volume_update_state:
        _vm_condition(st, "ManualRecoveryRequired", reason=RECOVERY_REASON)
    M.drop_condition(st, "VolumesChange")


def maybe_clear_recovery(ctx, vm, st) -> None:
    """Recovery ends when the claims are back on the sources, or updateVolumesStrategy is no longer
    Migration (the "copy finished, keep the destinations" case, samples/03)."""
    if not any(c.get("type") == "ManualRecoveryRequired" for c in st.get("conditions") or []):
        return
    spec = vm.get("spec") or {}
    migrated = (((st.get("volumeUpdateState") or {}).get("volumeMigrationState") or {}).get("migratedVolumes") or [])
    claims = {v["name"]: M.claim_of(v) for v in M.volumes_of(M.vmi_spec_of(vm))}
    reverted = bool(migrated) and all(
        claims.get(m.get("volumeName")) == (m.get("sourcePVCInfo") or {}).get("claimName") for m in migrated)
    if spec.get("updateVolumesStrategy") != "Migration" or reverted:
        M.drop_condition(st, "ManualRecoveryRequired")
        st.pop("volumeUpdateState", None)


def handle_volume_update(ctl, ctx, vm, vmi, st) -> None:
    """handleVolumeUpdateRequest for a running VMI."""
    ns = vm["metadata"]["namespace"]
    vm_spec, vmi_spec = M.vmi_spec_of(vm), vmi.get("spec") or {}
    upd = M.updated_volumes(vmi_spec, vm_spec)
    migrated = (vmi.get("status") or {}).get("migratedVolumes") or []
    if M.cond_true(vmi, "VolumesChange") and migrated:
        if not upd:
            M.drop_condition(st, "Failure")
            return
        if not any(m.get("volumeName") in upd for m in migrated):
            return
        reverted = all(upd.get(m.get("volumeName")) == (m.get("sourcePVCInfo") or {}).get("claimName")
                       for m in migrated) and len(upd) == len(migrated)
        if reverted:
            cancel(ctl, ctx, vm, vmi, st)
        else:
            _vm_condition(st, "Failure", reason="VolumesUpdateError", message=INVALID_UPDATE)
        return
    if not upd:
        if any(c.get("type") == "RestartRequired" for c in st.get("conditions") or []):
            M.drop_condition(st, "RestartRequired")  # VM and VMI agree again
        return
    if any(c.get("type") == "RestartRequired" and c.get("status") == "True" for c in st.get("conditions") or []):
        return  # the whole live-update block is skipped while RestartRequired is set
    cfg = ctx.cfg
    if (vm.get("spec") or {}).get("updateVolumesStrategy") != "Migration" or not cfg.volume_update_enabled \
            or not cfg.live_update:
        _vm_condition(st, "RestartRequired", message=GENERIC_RESTART)
        return
    missing = [c for c in upd.values() if (ns, c) not in ctx.pvcs and (ns, c) not in ctx.dvs]
    if missing:
        if cfg.version >= (1, 6, 0):
            msg = f"One of the destination volumes doesn't exist: the volume {missing[0]} doesn't exist"
            cur = M.cond(vmi, "VolumesChange") or {}
            if (cur.get("status"), cur.get("message")) != ("False", msg):
                M.put_condition(vmi.setdefault("status", {}), {
                    "type": "VolumesChange", "status": "False", "message": msg,
                    "lastProbeTime": None, "lastTransitionTime": now()})
                ctl.put_vmi(ctx, vmi)
        return
    if any((ns, c) not in ctx.pvcs for c in upd.values()):
        return  # a DataVolume destination whose PVC CDI has not created yet: retry next pass
    dvs = {n: o for (s, n), o in ctx.dvs.items() if s == ns}
    pvcs = {n: o for (s, n), o in ctx.pvcs.items() if s == ns}
    msg = M.invalid_volumes_message(vmi_spec, vm_spec, dvs, pvcs, allow_hotplug=cfg.version >= (1, 5, 0))
    if msg:
        _vm_condition(st, "RestartRequired", message=msg)
        return
    old_claims = {v["name"]: M.claim_of(v) for v in M.volumes_of(vmi_spec)}
    infos = [{"volumeName": v["name"],
              "sourcePVCInfo": M.pvc_info(pvcs.get(old_claims[v["name"]]), old_claims[v["name"]]),
              "destinationPVCInfo": M.pvc_info(pvcs.get(upd[v["name"]]), upd[v["name"]])}
             for v in M.volumes_of(vm_spec) if v["name"] in upd]
    slm = M.cond(vmi, "StorageLiveMigratable")
    if cfg.has_storage_live_migratable and slm and slm.get("status") == "False":
        _vm_condition(st, "RestartRequired",
                      message=f"cannot migrate the volumes as the VMI isn't migratable: {slm.get('message', '')}")
        return
    rwo = M.rwo_not_included(vmi, set(upd))
    if rwo:
        _vm_condition(st, "RestartRequired", message=rwo)
        return
    # Accepted: VMI status.migratedVolumes, VMI spec.volumes, VolumesChange=True, VM volumeUpdateState.
    new_vols = {v["name"]: v for v in M.volumes_of(vm_spec)}
    vmi["spec"]["volumes"] = [M.deep(new_vols[v["name"]]) if v["name"] in upd else v for v in M.volumes_of(vmi_spec)]
    vst = vmi.setdefault("status", {})
    vst["migratedVolumes"] = infos
    M.put_condition(vst, {"type": "VolumesChange", "status": "True", "message": "migrate volumes",
                          "lastProbeTime": None, "lastTransitionTime": now()})
    ctl.refresh_vmi_status(ctx, vmi)
    ctl.put_vmi(ctx, vmi)
    M.drop_condition(st, "Failure")
    if cfg.has_volume_update_state:
        st["volumeUpdateState"] = {"volumeMigrationState": {"migratedVolumes": M.deep(infos)}}


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
    st.pop("volumeUpdateState", None)
    M.drop_condition(st, "Failure")
