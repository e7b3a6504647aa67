"""The MTC verdict: the one rule that ``status``, ``migrate --wait`` and ``rollback --wait`` apply to a MigMigration,
its DirectVolumeMigration (DVM) and its disk rows. Pure.

Why the MigMigration's own conditions are not enough (mig-controller, migtools/mig-controller):
- After rsync exhausts its retries the DVM fails Critical with an *empty* ``errors`` list
  (``processRsyncOperationStatus`` in pkg/controller/directvolumemigration/rsync.go shadows ``failureReasons``;
  ``Task.fail`` in directvolumemigration/task.go adds none), so ``waitForDVMToComplete`` in
  pkg/controller/migmigration/task.go sees no reasons, carries on to ``SwapPVCReferences`` (storage.go: the VMs are
  repointed to the partly copied targets and restarted) and the MigMigration ends ``Succeeded`` (migrate.go). So the
  DVM's ``Failed`` condition, ``failedPods``, ``failedLiveMigration`` and failed ``rsyncOperations`` are read even
  when the MigMigration says Succeeded.
- A PVC whose selection MTC reset to ``skip`` is left out of the DVM (``getDirectVolumeClaimList``,
  migmigration/dvm.go) and mapped to itself (``getPVCNameMapping``, storage.go): the disk row of a requested disk
  missing from the DVM is Failed, so such a migration is never Succeeded.
- ``SucceededWithWarnings`` is never success (whatever the Warn: the conditions do not back a success).
- A canceled MigMigration carries both ``Canceled`` and ``Succeeded`` (the Cancel itinerary reaches ``Completed``,
  migrate.go): Canceled is checked first.
"""
import json
from typing import List, Optional, Tuple

from ... import progress as P
from .build import FATAL_MIGRATION_CONDITIONS as FATAL_BLOCKERS  # never clear by themselves (validation.go)
from .build import REQUEST_ANNOTATION


def _status(obj) -> dict:
    return (obj or {}).get("status") or {}


def requested_disks(mig: dict) -> Optional[List[str]]:
    """The source PVCs the plugin asked this MigMigration to move (its request annotation); None when unknown
    (a rollback, or a MigMigration the plugin did not create)."""
    raw = ((mig.get("metadata") or {}).get("annotations") or {}).get(REQUEST_ANNOTATION)
    try:
        req = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(req, dict) or req.get("type") not in ("cutover", "stage"):
        return None
    return [str(d) for d in req.get("disks") or []]


def recorded_disks(mig: dict) -> dict:
    """{source PVC: "vm/volume"} the plugin recorded on its MigMigration (empty when absent)."""
    from ...labels import DISKS

    try:
        out = json.loads(((mig.get("metadata") or {}).get("annotations") or {}).get(DISKS) or "{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def dvm_failures(dvm: Optional[dict]) -> List[str]:
    """Why the DVM failed, from structured fields only (its ``errors`` are empty after an rsync failure)."""
    if not dvm:
        return []
    st, out = _status(dvm), []
    conds = P.conditions(dvm)
    if "Failed" in conds:
        out.append("DirectVolumeMigration Failed" + (f" ({conds['Failed'].get('reason')})"
                                                    if conds["Failed"].get("reason") else ""))
    out += [e for e in st.get("errors") or [] if e]
    for field in ("failedPods", "failedLiveMigration"):
        for e in st.get(field) or []:
            ref = e.get("pvcRef") or {}
            out.append(f"{field} {ref.get('namespace', '')}/{ref.get('name', '')}".rstrip("/"))
    for op in st.get("rsyncOperations") or []:
        if op.get("failed"):
            ref = op.get("pvcReference") or {}
            text = f"rsync of {ref.get('namespace', '')}/{ref.get('name', '')} failed"
            if not any(ref.get("name", "?") in x for x in out):
                out.append(text)
    return out


def swapped(mig: dict) -> bool:
    """Whether MTC ran SwapPVCReferences (cutovers only: StageItinerary in migmigration/task.go runs it when
    StorageConversion|Quiesce), i.e. the VMs now use the target claims."""
    spec = mig.get("spec") or {}
    if spec.get("rollback") or not spec.get("quiescePods"):
        return False
    conds = P.conditions(mig)
    if "Failed" in conds:
        return False
    if "Succeeded" in conds or "SucceededWithWarnings" in conds:
        return True
    return any(s.get("name") == "SwapPVCReferences" and (s.get("started") or s.get("completed"))
               for s in _status(mig).get("pipeline") or [])


def verdict(mig: dict, dvm: Optional[dict], disks: List[dict], plan_name: str = "") -> Tuple[str, str]:
    """(Running|Succeeded|Failed|Canceled, message)."""
    conds, st = P.conditions(mig), _status(mig)
    if "Canceled" in conds or ("Canceling" in conds and st.get("phase") == "Completed"):
        return P.CANCELED, "the migration was canceled"
    fatal = [conds[t] for t in FATAL_BLOCKERS if t in conds and conds[t].get("category") == "Critical"]
    if not fatal and st.get("phase") == "Completed":  # a Critical blocker on a completed migration is final too
        fatal = [c for t, c in conds.items() if c.get("category") == "Critical" and t != "Failed"]
    errors = [e for e in st.get("errors") or [] if e]
    # Only a Failed condition or a fatal blocker ends it at once; errors and DVM failures are judged once MTC
    # reports the end, because its itinerary carries on meanwhile (setDirectVolumeMigrationFailureWarning, task.go).
    failed = "Failed" in conds or bool(fatal)
    succeeded = "Succeeded" in conds or "SucceededWithWarnings" in conds
    hidden = list(errors) + dvm_failures(dvm)
    if "DirectVolumeMigrationFailed" in conds:
        hidden.append(conds["DirectVolumeMigrationFailed"].get("message") or "DirectVolumeMigrationFailed")
    if "SucceededWithWarnings" in conds and not hidden:  # C9: never a success the conditions do not back
        warns = [c.get("message") or t for t, c in conds.items() if c.get("category") == "Warn"]
        hidden.append("completed with warnings: " + ("; ".join(warns) or "see the Warn conditions"))
    result = P.judge(succeeded=succeeded, failed=failed, canceled=False, hidden_failure=bool(hidden), disks=disks)
    if result == P.SUCCEEDED and dvm is not None:
        # Succeeded only when every disk is copied: the DVM ends before the MigMigration goes on
        # (waitForDVMToComplete, migmigration/task.go), so a DVM not ended yet is a read that raced its update...
        if not {"Succeeded", "Failed"} & set(P.conditions(dvm)):
            return P.RUNNING, ""
        # ...and an ended DVM that did not copy a disk is a failure, whatever the MigMigration says.
        left = [d for d in disks if d.get("phase") not in ("Succeeded", "Skipped")]
        if left:
            for d in left:
                d["phase"], d["message"] = "Failed", d.get("message") or "MTC ended without copying this disk"
            result = P.FAILED
    if result == P.SUCCEEDED:
        return result, "the migration has completed successfully"
    if result == P.RUNNING:
        return result, ""
    bad = [d for d in disks if d.get("phase") == "Failed"]
    what = "; ".join(f"{d.get('vm') or '?'}/{d.get('volume') or '?'} (PVC {d.get('sourcePVC')}): "
                     f"{d.get('message') or 'failed'}" for d in bad)
    reasons = errors + [c.get("message") or "" for c in fatal]
    text = what or "; ".join(dict.fromkeys(r for r in reasons + hidden if r)) or "the migration failed"
    if swapped(mig):
        vms = sorted({d["vm"] for d in bad if d.get("vm") and d.get("_usesTarget", True)}) or \
            sorted({d["vm"] for d in disks if d.get("vm")})
        text += ("; MTC nevertheless switched VM(s) " + ", ".join(vms) + " to the new, incompletely copied disks "
                 "and restarted those it had stopped: stop them and roll back (kubectl vm-storage rollback "
                 f"{plan_name or 'PLAN'}); the original disks are untouched")
    elif (mig.get("spec") or {}).get("rollback"):
        text += "; see the VMs' volumes before retrying the rollback"
    elif (mig.get("spec") or {}).get("quiescePods"):
        # FailedItinerary (migmigration/task.go) has no unquiesce step: what MTC stopped stays stopped.
        text += "; the VMs keep their original disks (VMs MTC stopped stay stopped: start them, or fix and re-run)"
    else:
        text += "; a stage run switches nothing: the VMs still use their original disks"
    return P.FAILED, text
