"""Pure builders of the migration-controller engine: names, the VirtualMachineStorageMigrationPlan (one per
namespace and run), the VirtualMachineStorageMigration that starts it, the destination DataVolumes, the preview.

API: kubevirt/kubevirt-migration-controller api/migrationcontroller/v1alpha1
(virtualmachinestoragemigrationplan_types.go, virtualmachinestoragemigration_types.go).

Why the engine names every destination (``destinationPVC.name``) and creates the destination DataVolumes itself
before the migration starts: the controller re-derives each VM's source PVC from the VM's claims on every plan
reconcile (internal/controller/storagemigplan/validation.go createStatusVM/getSourcePVC). Right after its VM patch
the claim names the destination; if that PVC does not exist yet the VM drops out of the plan's lists and the
destination is recorded as the source from then on — and cancel (storagemig/cancel.go) then "reverts" to it and
deletes the destination DataVolumes the VM names. With the destinations in place before the patch, the first
record is kept (getExistingStatusVMMap). Offline it also closes KubeVirt's window to create a template DataVolume
of that name from the old template before the controller's clone (its createTargetDV ignores AlreadyExists).
createTargetDV adopts ours (AlreadyExists → nil), so the controller's flow is otherwise unchanged.

The plan's annotation ``RECORD`` keeps what the plugin planned ({vm: {mode, volumes: {volume: [source, target,
source class]}}}):
status, the verdict and cancel never trust the plan's own ``sourcePVCs`` for the reason above.
"""
import hashlib
import json
from typing import Dict, List, Optional

from ... import labels as L
from ... import resources as R
from ..kubevirt import build as KB

ENGINE = "migration-controller"
RECORD = L.PLANNED                  # annotation on the plan: the plugin's own record (JSON)
CANCELED = L.CANCEL_REQUESTED        # annotation on the plan: when the plugin's cancel deleted the migration
API_VERSION = R.VMSM.api_version


def plan_name(plan: dict) -> str:
    """``<vm>-to-<class>-<hash of the source claims>``: a re-run of the same command finds its plan again, a later
    move of the same VM to the same class (other source claims) gets a new one (a completed plan is not reusable:
    its Ready stays False, storagemigplan/controller.go processMigrations)."""
    sources = ",".join(sorted(m["sourcePVC"] for m in plan.get("moves") or []))
    base = KB.migration_name(plan)[:56].rstrip("-.")
    return f"{base}-{hashlib.sha256(sources.encode()).hexdigest()[:5]}"


def labels(name: str) -> Dict[str, str]:
    return L.ours(ENGINE, name)


def record_of(plan: dict) -> dict:
    """{vm: {"mode": live|offline, "volumes": {volume: [source claim, target claim, source class]}}}"""
    out: Dict[str, dict] = {}
    for vm, moves in KB.moves_by_vm(plan).items():
        out[vm] = {"mode": KB.vm_mode(moves),
                   "volumes": {m["volume"]: [m["sourcePVC"], m["targetPVC"], m["sourceSC"] or ""] for m in moves}}
    return out


def read_record(vmsm_plan: Optional[dict]) -> Dict[str, dict]:
    try:
        rec = json.loads(((vmsm_plan or {}).get("metadata") or {}).get("annotations", {}).get(RECORD) or "{}")
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _destination(move: dict) -> dict:
    dest = {"name": move["targetPVC"], "storageClassName": move["targetSC"]}
    access = move.get("targetAccessMode")
    if access and access != "auto":
        dest["accessModes"] = [access]          # "Auto"/omitted: the StorageProfile decides (createTargetDV)
    mode = move.get("targetVolumeMode")
    if mode in ("Filesystem", "Block"):
        dest["volumeMode"] = mode
    return dest


def storage_plan(plan: dict, name: str) -> dict:
    """The VirtualMachineStorageMigrationPlan: every VM's moved volumes, named destinations, sources kept."""
    vms = [{"name": vm, "targetMigrationPVCs": [{"volumeName": m["volume"], "destinationPVC": _destination(m)}
                                                for m in moves]}
           for vm, moves in KB.moves_by_vm(plan).items()]
    return {"apiVersion": API_VERSION, "kind": R.VMSM_PLAN.kind,
            "metadata": {"name": name, "namespace": plan["namespace"], "labels": labels(name),
                         "annotations": {RECORD: json.dumps(record_of(plan), sort_keys=True)}},
            "spec": {"retentionPolicy": "keepSource", "virtualMachines": vms}}


def storage_migration(plan_obj: dict) -> dict:
    """The VirtualMachineStorageMigration that runs the plan once (the controller adds ownerRef + finalizer)."""
    md = plan_obj["metadata"]
    return {"apiVersion": API_VERSION, "kind": R.VMSM.kind,
            "metadata": {"name": md["name"], "namespace": md["namespace"], "labels": labels(md["name"])},
            "spec": {"virtualMachineStorageMigrationPlanRef": {"name": md["name"]}}}


def destination_datavolumes(plan: dict, name: str, vms: Dict[str, dict]) -> List[dict]:
    """The kubevirt engine's destination DataVolumes (blank for live, a CDI clone of the source offline — the same
    shapes createTargetDV makes), labelled as this engine's."""
    out = []
    for vm, moves in KB.moves_by_vm(plan).items():
        live = KB.vm_mode(moves) == "live"
        uid = ((vms.get(vm) or {}).get("metadata") or {}).get("uid")
        for m in moves:
            dv = KB.destination_datavolume(m, name, live=live, vm_uid=uid)
            dv["metadata"]["labels"] = labels(name)
            out.append(dv)
    return out


def vm_patches(plan: dict, vms: Dict[str, dict]) -> List[dict]:
    """What the controller will change in each VM (prepareVMForStorageMigration; it sends a merge patch, shown as
    the equivalent JSON patch). Offline: no updateVolumesStrategy (updateVMForOfflineStorageMigration)."""
    out = []
    for vm, moves in KB.moves_by_vm(plan).items():
        if vm not in vms:
            continue
        live = KB.vm_mode(moves) == "live"
        ops = KB.swap_patch_for(vms[vm], moves, live=live, set_strategy=live)
        out.append({"apiVersion": R.VM.api_version, "kind": "VirtualMachine", "namespace": plan["namespace"],
                    "name": vm, "step": "by kubevirt-migration-controller", "patch": ops})
    return out


def preview(plan: dict, vms: Dict[str, dict], checks: List[dict]) -> dict:
    name = plan_name(plan)
    sp = storage_plan(plan, name)
    return {"objects": destination_datavolumes(plan, name, vms) + [sp, storage_migration(sp)],
            "patches": vm_patches(plan, vms), "checks": list(checks)}
