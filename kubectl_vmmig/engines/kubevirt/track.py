"""Judging a live volume migration from VM/VMI/VMIM status (pure), from the VMI first.

Success: the VMI ``spec.volumes`` show the destination claims, the VMI has no ``VolumesChange`` condition and
no ``migratedVolumes``, and a migration started after our patch completed and did not fail (the VMI's
``migrationState``, or the copy KubeVirt keeps on a final VMIM). That is what the target virt-handler leaves
behind (kubevirt ``pkg/virt-handler/migration-target.go`` ``finalizeMigration``/``removeMigratedVolumes``).
Any migration of the VMI carries the volume update (``live-migration-source.go`` migrates
``vmi.Status.MigratedVolumes``), so VMIMs are matched by ``spec.vmiName``, labelled or not, and only 5
finalized VMIMs per VMI are kept (``migration.go`` ``defaultFinalizedMigrationGarbageCollectionBuffer``).
``completed`` alone means nothing (aborted migrations are completed+failed). A failed VMIM is retried by
KubeVirt forever (``workload-updater.go`` ``doesRequireMigration``, back-off in ``migration.go``).

``RestartRequired`` is raised for many reasons (``vm.go`` ``syncRestartRequired``, against the VM revision of
the VMI's start); it is a refusal of *our* update only while the VMI still shows the sources and no migration
of this update exists. ``Failure``/``VolumesUpdateError`` is any error of ``handleVolumeUpdateRequest``
(``vm.go`` ``processFailureCondition``), cleared on the next clean sync; only ``InvalidUpdateErrMsg``
(``volume-migration.go``) is final.
"""
import json
from typing import List, Optional

from ...conditions import by_type
from ...labels import VOLUME_UPDATE_MIGRATION
from ...patches import claim_of, revert_patch

VMIM_LABEL = VOLUME_UPDATE_MIGRATION
_conds = by_type  # type -> condition, True or False (the readers live in conditions.py)
# kubevirt pkg/virt-controller/watch/volume-migration/volume-migration.go InvalidUpdateErrMsg: the only final one
INVALID_UPDATE = "The volume can only be reverted to the previous version during the update"


def vmim_selector(vmi_name: str, vmi_uid: Optional[str]) -> str:
    """KubeVirt labels the VMIM with the VMI name, or its UID when the name is over 63 chars (v1.7+)."""
    value = vmi_uid if len(vmi_name) > 63 and vmi_uid else vmi_name
    return f"{VMIM_LABEL}={value}"


def vmims_of(vmims: List[dict], vmi_name: str, namespace: Optional[str] = None) -> List[dict]:
    """Every VMIM of this VMI (``spec.vmiName``), labelled by the workload updater or not (drain, evacuation,
    ``virtctl migrate``): each carries the volume update."""
    return [m for m in vmims if (m.get("spec") or {}).get("vmiName") == vmi_name
            and (namespace is None or (m.get("metadata") or {}).get("namespace") in (None, "", namespace))]


def our_vmims(vmims: List[dict], known_uids) -> List[dict]:
    """The VMIMs created for our update (not those that existed before the patch), oldest first."""
    known = set(known_uids or [])
    mine = [m for m in vmims if (m.get("metadata") or {}).get("uid") not in known]
    return sorted(mine, key=lambda m: ((m.get("metadata") or {}).get("creationTimestamp") or "",
                                       (m.get("metadata") or {}).get("name") or ""))


def _vmi_claims(vmi: dict) -> dict:
    return {v.get("name"): claim_of(v) for v in ((vmi.get("spec") or {}).get("volumes") or [])}


def recovery_text(rec_vm: dict, vm_name: str, migration: str, migration_state: Optional[dict],
                  vm: Optional[dict] = None) -> str:
    """ManualRecoveryRequired (vm.go): keep the destinations if the copy finished, else restore the sources."""
    ts = (migration_state or {}).get("targetNodeDomainReadyTimestamp")
    if ts:
        return (f"VM {vm_name} needs manual recovery (its VMI stopped during the volume migration), but the copy "
                f"had completed (targetNodeDomainReadyTimestamp {ts}): keep the destination volumes and only "
                f"remove spec.updateVolumesStrategy - run 'kubectl vm-storage cancel {migration}' or "
                f"kubectl patch vm {vm_name} --type=json "
                "-p '[{\"op\":\"remove\",\"path\":\"/spec/updateVolumesStrategy\"}]'; then start the VM")
    ops = revert_patch(vm, rec_vm.get("mapping") or {}, rec_vm.get("templateStorageClasses")) if vm else []
    manual = (f" or kubectl patch vm {vm_name} --type=json -p '{json.dumps(ops, separators=(',', ':'))}'"
              if ops else "")
    return (f"VM {vm_name} needs manual recovery (its VMI stopped during the volume migration before the copy "
            f"completed): restore the original volumes ({', '.join(f'{v}={c}' for v, c in sorted((rec_vm.get('originalClaims') or {}).items()))}) - "
            f"run 'kubectl vm-storage cancel {migration}'{manual}; then start the VM")


def _completed_ok(state: Optional[dict]) -> bool:
    return bool(state) and bool(state.get("completed")) and not state.get("failed")


def copy_finished(rec_vm: dict, vmi: Optional[dict], vmims: List[dict]) -> Optional[dict]:
    """The migration state that proves the copy of this update finished, else None (the VMI-first rule)."""
    if vmi is None:
        return None
    targets = rec_vm.get("targetClaims") or {}
    claims = _vmi_claims(vmi)
    st = vmi.get("status") or {}
    if not targets or any(claims.get(v) != c for v, c in targets.items()):
        return None
    if "VolumesChange" in _conds(vmi) or st.get("migratedVolumes"):
        return None
    known = set(rec_vm.get("knownVMIMs") or [])
    state = st.get("migrationState") or None
    if _completed_ok(state) and state.get("migrationUid") not in known:
        return state
    for m in reversed(our_vmims(vmims, known)):
        mstate = (m.get("status") or {}).get("migrationState")
        if (m.get("status") or {}).get("phase") == "Succeeded" and _completed_ok(mstate):
            return mstate
    return None


def _still_on_sources(rec_vm: dict, vmi: Optional[dict], mine: List[dict]) -> bool:
    """The VMI shows the source claims and nothing of this update started (RestartRequired = refusal)."""
    if vmi is None or mine:
        return False
    originals = rec_vm.get("originalClaims") or {}
    claims = _vmi_claims(vmi)
    st = vmi.get("status") or {}
    state = st.get("migrationState") or {}
    ours = state and state.get("migrationUid") not in set(rec_vm.get("knownVMIMs") or [])
    return (all(claims.get(v) == c for v, c in originals.items()) and not st.get("migratedVolumes")
            and (_conds(vmi).get("VolumesChange") or {}).get("status") != "True" and not ours)


def judge_live(rec_vm: dict, vm: Optional[dict], vmi: Optional[dict], vmims: List[dict],
               migration: str = "", vm_name: str = "") -> dict:
    """-> {"result": Running|Succeeded|Failed, "phase", "message", "vmim": {name, uid}|None,
    "attempts", "failures", "migrationState", "manualRecovery": bool}. ``vmims``: this VMI's (vmims_of)."""
    out = {"result": "Running", "phase": "Pending", "message": "", "vmim": rec_vm.get("vmim"),
           "attempts": rec_vm.get("attempts") or 0, "failures": 0,
           "migrationState": rec_vm.get("migrationState"), "manualRecovery": False}
    vm_conds = _conds(vm)
    mine = our_vmims(vmims, rec_vm.get("knownVMIMs"))
    latest = mine[-1] if mine else None
    if latest is not None:
        md = latest.get("metadata") or {}
        out["vmim"] = {"name": md.get("name"), "uid": md.get("uid")}
        out["attempts"] = max(out["attempts"], len(mine))
        out["failures"] = sum(1 for m in mine if (m.get("status") or {}).get("phase") == "Failed")
    vmi_state = ((vmi or {}).get("status") or {}).get("migrationState") or None
    vmim_state = ((latest or {}).get("status") or {}).get("migrationState") or None
    if latest is not None and vmi_state and vmi_state.get("migrationUid") == (latest.get("metadata") or {}).get("uid"):
        out["migrationState"] = vmi_state
    elif vmim_state:
        out["migrationState"] = vmim_state

    finished = copy_finished(rec_vm, vmi, mine)
    if finished is not None:
        out.update(result="Succeeded", phase="Succeeded", message="volumes migrated", migrationState=finished)
        return out
    mrr = vm_conds.get("ManualRecoveryRequired") or {}
    if mrr.get("status") == "True":
        out.update(result="Failed", phase="ManualRecoveryRequired", manualRecovery=True,
                   message=recovery_text(rec_vm, vm_name, migration, out["migrationState"], vm))
        return out
    rr = vm_conds.get("RestartRequired") or {}
    if rr.get("status") == "True" and _still_on_sources(rec_vm, vmi, mine):
        out.update(result="Failed", phase="RestartRequired",
                   message=f"KubeVirt did not accept the live migration: {rr.get('message') or rr.get('reason')}; "
                           "the VM still runs on the original volumes and the new ones would only be used at the "
                           "next restart, WITHOUT copying data - run "
                           f"'kubectl vm-storage cancel {migration}' now to restore the original volumes")
        return out
    failure = vm_conds.get("Failure") or {}
    if failure.get("status") == "True" and failure.get("reason") == "VolumesUpdateError":
        if INVALID_UPDATE in (failure.get("message") or ""):
            out.update(result="Failed", phase="VolumesUpdateError", message=failure.get("message") or "")
            return out
        transient = f"KubeVirt reported a volume update error it retries: {failure.get('message') or ''}".rstrip(": ")
    else:
        transient = ""
    if vmi is None:
        out.update(phase="VMIGone", message="the VMI is gone during the volume migration; waiting for KubeVirt "
                                            "to report ManualRecoveryRequired")
        return out

    vmi_conds = _conds(vmi)
    vc = vmi_conds.get("VolumesChange") or vm_conds.get("VolumesChange") or {}
    phase = ((latest or {}).get("status") or {}).get("phase") or ""
    if phase == "Succeeded":
        out.update(phase="Finalizing", message="migration Succeeded; waiting for the VMI to show the "
                                               "destination volumes")
    elif phase == "Failed":
        reason = (vmim_state or {}).get("failureReason") or \
            ((vmi_state or {}).get("failureReason") if (vmi_state or {}).get("migrationUid") ==
             (latest.get("metadata") or {}).get("uid") else None) or "migration failed"
        out.update(phase="Failed", message=f"attempt {len(mine)} failed: {reason}; KubeVirt retries with back-off")
    elif phase:
        out.update(phase=phase, message=f"migration {out['vmim']['name']} {phase}")
    elif vc.get("status") == "False" and vc.get("message"):
        out.update(phase="WaitingForDestination", message=vc["message"])
    elif vc.get("status") == "True":
        out.update(phase="Pending", message="volume update accepted; waiting for KubeVirt to start the migration")
    else:
        out.update(phase="Pending", message="waiting for KubeVirt to accept the volume update")
    if transient:
        out["message"] = f"{out['message']} ({transient})"
    return out


def cancel_done(rec_vm: dict, vm: Optional[dict], vmi: Optional[dict]) -> bool:
    """The revert has taken effect: VM and VMI point at the originals and no migration is pending."""
    originals = rec_vm.get("originalClaims") or {}
    vm_vols = (((vm or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
    if any(claim_of(v) != originals[v.get("name")] for v in vm_vols if v.get("name") in originals):
        return False
    if vmi is None:
        return "ManualRecoveryRequired" not in {t for t, c in _conds(vm).items() if c.get("status") == "True"}
    claims = _vmi_claims(vmi)
    vc = _conds(vmi).get("VolumesChange") or {}
    return (all(claims.get(v) == c for v, c in originals.items())
            and vc.get("status") != "True"
            and not ((vmi.get("status") or {}).get("migratedVolumes")))
