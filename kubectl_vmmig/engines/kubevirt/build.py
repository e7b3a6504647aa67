"""Pure builders of the kubevirt engine: names, destination DataVolumes, the migration record, the preview.

The migration record is a ConfigMap ``vm-storage-<migration>`` in the VMs' namespace, labelled like
everything the plugin creates, with one key ``record`` holding JSON (the status reader relies on it)::

    {"name", "namespace", "engine": "kubevirt", "targetStorageClass", "started", "completed",
     "keepUpdateStrategy": bool,
     "phase", "result": "Running|Succeeded|Failed|Canceled", "message",
     "disks": [{"vm","volume","sourcePVC","targetPVC","sourceStorageClass","targetStorageClass","mode"}],
     "vms": {"<vm>": {"mode": "live|offline", "phase", "result", "message",
                      "originalClaims": {volume: claim}, "targetClaims": {volume: claim},
                      "mapping": {source claim: target claim},
                      "templateStorageClasses": {source claim: class|null},   # restored on cancel
                      "dataVolumes": [DataVolume manifest],   # exactly what the run creates
                      "patch": [ops],                   # the swap patch exactly as applied
                      "patchedAt": time | null,
                      "stopPatch": [ops] | null, "startPatch": [ops] | null,   # offline --stop only
                      "originalRunStrategy": str, "stoppedByPlugin": bool,
                      "knownVMIMs": [uid...],           # VMIMs that existed before the patch (not ours)
                      "vmim": {"name","uid"} | null, "attempts": int, "failures": int,
                      "migrationState": {...} | null}}} # last seen vmi.status.migrationState

Record phases: Preparing, CreatingVolumes, WaitingForVolumes, Stopping, Patching, Migrating, Starting,
CleaningUp, Completed, Failed, Canceling, Canceled.
"""
import hashlib
import json
from typing import Dict, List, Optional

from ... import labels as L
from ... import resources as R
from ...patches import template_storage_classes, volume_claims, volume_swap_patch
from .volumes import IMMEDIATE_BINDING, WFFC

ENGINE = "kubevirt"
MANAGED_BY = (L.MANAGED_BY, L.MANAGER)
LABEL_MIGRATION, LABEL_ENGINE = L.MIGRATION, L.ENGINE
RECORD_PREFIX = "vm-storage-"
RECORD_KEY = "record"
VMIM_LABEL = L.VOLUME_UPDATE_MIGRATION
MAX_NAME = 63  # DV/PVC names end up in label values: keep them DNS-1123 labels


def _short_hash(text: str, n: int = 5) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _fit(name: str, limit: int = MAX_NAME) -> str:
    """Trim to ``limit`` keeping it unique with a hash of the full name."""
    if len(name) <= limit:
        return name
    h = _short_hash(name)
    return name[: limit - len(h) - 1].rstrip("-.") + "-" + h


def destination_name(claim: str, target_sc: str) -> str:
    """Destination claim name: ``<source claim>-<target class>`` (deterministic, so re-runs re-attach)."""
    return _fit(f"{claim}-{target_sc}".lower())


def migration_name(plan: dict) -> str:
    """``<vm>-to-<class>`` for one VM, ``<namespace>-to-<class>-<hash>`` for several."""
    vms = sorted(set(plan.get("vms") or []))
    sc = plan["targetStorageClass"]
    if len(vms) == 1:
        return _fit(f"{vms[0]}-to-{sc}".lower())
    return _fit(f"{plan.get('namespace')}-to-{sc}-{_short_hash(','.join(vms))}".lower())


def record_name(migration: str) -> str:
    return RECORD_PREFIX + migration


def labels(migration: str) -> Dict[str, str]:
    return L.ours(ENGINE, migration)


def moves_by_vm(plan: dict) -> Dict[str, List[dict]]:
    out: Dict[str, List[dict]] = {}
    for m in plan.get("moves") or []:
        out.setdefault(m["vm"], []).append(m)
    return out


def vm_mode(moves: List[dict]) -> str:
    """A VM moves as one unit (KubeVirt requires every RWO disk in the same update): live if any is."""
    return "live" if any(m.get("mode") == "live" for m in moves) else "offline"


def _storage_spec(move: dict, access_mode: Optional[str], volume_mode: Optional[str]) -> dict:
    storage: dict = {"storageClassName": move["targetSC"]}
    access = access_mode or move.get("targetAccessMode")
    if access == "auto":
        pass  # let CDI's StorageProfile choose
    elif access:
        storage["accessModes"] = [access]
    elif move.get("accessModes"):
        storage["accessModes"] = list(move["accessModes"])
    mode = volume_mode or move.get("targetVolumeMode") or move.get("volumeMode")
    if mode and mode != "auto":
        storage["volumeMode"] = mode
    if move.get("size"):
        # Source PVC status.capacity (inventory falls back to the request): never smaller than the source.
        # spec.storage lets CDI add the filesystem overhead on Filesystem destinations (kubevirt/containerized-
        # data-importer pkg/controller/datavolume/util.go renderPvcSpecVolumeSize, pkg/util GetRequiredSpace).
        storage["resources"] = {"requests": {"storage": str(move["size"])}}
    return storage


def destination_datavolume(move: dict, migration: str, *, live: bool, access_mode: Optional[str] = None,
                           volume_mode: Optional[str] = None, vm_uid: Optional[str] = None) -> dict:
    """Blank DV (live: KubeVirt copies the data) or a CDI clone of the source PVC (offline)."""
    ns = move["namespace"]
    source = {"blank": {}} if live else {"pvc": {"namespace": ns, "name": move["sourcePVC"]}}
    meta = {
        "name": move["targetPVC"], "namespace": ns, "labels": labels(migration),
        # Lets a re-created DV adopt the PVC left by a previous attempt instead of failing.
        "annotations": {L.CDI_ALLOW_CLAIM_ADOPTION: "true"},
    }
    if not live and move.get("targetBindingMode") == WFFC:
        # A clone onto a WaitForFirstConsumer class waits for a consumer (CDI controller-base.go
        # updateStatusPVCPending: WaitForFirstConsumer/PendingPopulation) and a stopped VM has none: ask CDI to
        # bind at once (AnnImmediateBinding) so the copy happens now, not at the VM's next start.
        meta["annotations"][IMMEDIATE_BINDING] = "true"
    if vm_uid and move.get("dataVolumeTemplateIndex") is not None:
        # The source came from a template and died with the VM; the destination replaces it in the template.
        meta["ownerReferences"] = [{"apiVersion": R.VM.api_version, "kind": "VirtualMachine", "name": move["vm"],
                                    "uid": vm_uid, "controller": True, "blockOwnerDeletion": False}]
    return {"apiVersion": R.DATAVOLUME.api_version, "kind": "DataVolume", "metadata": meta,
            "spec": {"source": source, "storage": _storage_spec(move, access_mode, volume_mode)}}


def swap_patch_for(vm: dict, moves: List[dict], *, live: bool, set_strategy: bool = True) -> List[dict]:
    mapping = {m["sourcePVC"]: m["targetPVC"] for m in moves}
    target_sc = moves[0]["targetSC"] if moves else None
    return volume_swap_patch(vm, mapping, live=live, target_storage_class=target_sc, set_strategy=set_strategy)


def stop_patch(vm: dict) -> List[dict]:
    """What ``virtctl stop`` does for Always/Once (kubevirt/kubevirt pkg/virtctl/vm/stop.go), guarded by what
    it read."""
    spec = vm.get("spec") or {}
    if "runStrategy" in spec:
        return [{"op": "test", "path": "/spec/runStrategy", "value": spec["runStrategy"]},
                {"op": "replace", "path": "/spec/runStrategy", "value": "Halted"}]
    return [{"op": "test", "path": "/spec/running", "value": spec.get("running")},
            {"op": "replace", "path": "/spec/running", "value": False}] if "running" in spec else \
        [{"op": "add", "path": "/spec/runStrategy", "value": "Halted"}]


def start_patch(original_run_strategy: str, used_running_field: bool) -> List[dict]:
    """Restore what stop_patch changed."""
    if used_running_field:
        return [{"op": "test", "path": "/spec/running", "value": False},
                {"op": "replace", "path": "/spec/running", "value": original_run_strategy == "Always"}]
    return [{"op": "test", "path": "/spec/runStrategy", "value": "Halted"},
            {"op": "replace", "path": "/spec/runStrategy", "value": original_run_strategy}]


def predicted_after_stop(vm: dict) -> dict:
    """The VM as it reads after stop_patch: spec changed once, so generation + 1."""
    import copy

    out = copy.deepcopy(vm)
    spec = out.setdefault("spec", {})
    if "running" in spec and "runStrategy" not in spec:
        spec["running"] = False
    else:
        spec["runStrategy"] = "Halted"
    md = out.setdefault("metadata", {})
    if md.get("generation") is not None:
        md["generation"] = int(md["generation"]) + 1
    return out


def is_running(vm: dict, vmi: Optional[dict]) -> bool:
    return bool(vmi) and ((vmi.get("status") or {}).get("phase") == "Running")


def new_record(plan: dict, vms: Dict[str, dict], migration: str, started: str, *,
               vmis: Optional[Dict[str, dict]] = None, stop: bool = False, access_mode: Optional[str] = None,
               volume_mode: Optional[str] = None, keep_update_strategy: bool = False) -> dict:
    """The record written before the first change: originals (for cancel) and every object and patch the
    run will create/apply, computed once from the VMs as read (so the preview shows exactly these)."""
    rec = {"name": migration, "namespace": plan["namespace"], "engine": ENGINE,
           "targetStorageClass": plan["targetStorageClass"], "started": started, "completed": None,
           "phase": "Preparing", "result": "Running", "message": "", "keepUpdateStrategy": keep_update_strategy,
           "disks": [], "vms": {}}
    for vm_name, moves in moves_by_vm(plan).items():
        vm = vms[vm_name]
        mode = vm_mode(moves)
        live = mode == "live"
        claims = volume_claims(vm)
        mapping = {m["sourcePVC"]: m["targetPVC"] for m in moves}
        running = is_running(vm, (vmis or {}).get(vm_name))
        stopping = not live and stop and running
        uid = (vm.get("metadata") or {}).get("uid")
        swap_from = predicted_after_stop(vm) if stopping else vm
        rec["vms"][vm_name] = {
            "mode": mode, "phase": "Pending", "result": "Running", "message": "",
            "originalClaims": {v: c for v, c in claims.items() if c in mapping},
            "targetClaims": {v: mapping[c] for v, c in claims.items() if c in mapping},
            "mapping": mapping,
            "templateStorageClasses": template_storage_classes(vm, mapping),
            "dataVolumes": [destination_datavolume(m, migration, live=live, access_mode=access_mode,
                                                   volume_mode=volume_mode, vm_uid=uid) for m in moves],
            "patch": swap_patch_for(swap_from, moves, live=live), "patchedAt": None,
            "stopPatch": stop_patch(vm) if stopping else None,
            "startPatch": start_patch(_run_strategy(vm), _uses_running(vm)) if stopping else None,
            "originalRunStrategy": _run_strategy(vm), "stoppedByPlugin": False,
            # the node a live move leaves (the --max-per-node window, schedule.admit)
            "sourceNode": (((vmis or {}).get(vm_name) or {}).get("status") or {}).get("nodeName") if live else None,
            "knownVMIMs": [], "vmim": None, "attempts": 0, "failures": 0, "migrationState": None,
        }
        for m in moves:
            rec["disks"].append({"vm": vm_name, "volume": m["volume"], "sourcePVC": m["sourcePVC"],
                                 "targetPVC": m["targetPVC"], "sourceStorageClass": m.get("sourceSC"),
                                 "targetStorageClass": m["targetSC"], "mode": mode})
    return rec


# Phases before the VM itself is written to: what they did (destination DataVolumes of this migration's name
# and labels) a re-run finds in the cluster again (steps.Driver._create_volumes adopts its own DataVolumes), and
# ``status`` judges these VMs from the DataVolumes, so moving between them is no reason to write the record.
BEFORE_THE_VM = ("Queued", "Pending", "CreatingVolumes", "WaitingForVolumes")


def record_state(rec: dict) -> str:
    """What a re-run, ``cancel`` and ``status`` must see at once, as one comparable text: each VM's phase once
    the VM is touched (Stopping, Patching and after), its result, patchedAt, stoppedByPlugin, knownVMIMs, the
    verdict - not the progress messages nor the steps before the VM is written to (BEFORE_THE_VM). The driver
    writes the record back as soon as this changes; the rest waits (saves.Saves)."""
    vms = {}
    for v, r in (rec.get("vms") or {}).items():
        vms[v] = {k: x for k, x in r.items() if k != "message"}
        if r.get("phase") in BEFORE_THE_VM:
            vms[v]["phase"] = "before"
    return json.dumps(dict(rec, vms=vms, phase=None), sort_keys=True)


def record_configmap(rec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": record_name(rec["name"]), "namespace": rec["namespace"],
                         "labels": labels(rec["name"])},
            "data": {RECORD_KEY: json.dumps(rec, sort_keys=True)}}


def record_from_configmap(cm: dict) -> Optional[dict]:
    try:
        return json.loads((cm.get("data") or {}).get(RECORD_KEY) or "")
    except ValueError:
        return None


def preview_from_record(rec: dict, checks: Optional[List[dict]] = None) -> dict:
    """The dry-run preview: the DVs and record to create, and per VM the patches a real run applies, in order."""
    objects, patches = [record_configmap(rec)], []

    def add_patch(vm_name, ops, step):
        if ops:
            patches.append({"apiVersion": R.VM.api_version, "kind": "VirtualMachine",
                            "namespace": rec["namespace"], "name": vm_name, "step": step, "patch": ops})

    for vm_name, r in rec["vms"].items():
        objects.extend(r["dataVolumes"])
        add_patch(vm_name, r.get("stopPatch"), "stop")
        add_patch(vm_name, r["patch"], "swap-volumes")
        add_patch(vm_name, r.get("startPatch"), "start")
        # No "after-success" removal of spec.updateVolumesStrategy: on a running VM it raises RestartRequired
        # (kubevirt vm.go syncRestartRequired); the strategy stays, as MTC and kubevirt-migration-controller leave it.
    return {"objects": objects, "patches": patches, "checks": list(checks or [])}


def build_preview(plan: dict, vms: Dict[str, dict], *, checks: Optional[List[dict]] = None, **kw) -> dict:
    """Preview straight from a plan (``kw`` as for new_record: vmis, stop, access/volume mode, keep...)."""
    rec = new_record(plan, vms, migration_name(plan), started="", **kw)
    return preview_from_record(rec, checks)


def _run_strategy(vm: dict) -> str:
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    return "Always" if spec.get("running") else "Halted"


def _uses_running(vm: dict) -> bool:
    spec = vm.get("spec") or {}
    return "running" in spec and "runStrategy" not in spec


def resume_given_up(rec: dict) -> bool:
    """Re-open the VMs whose following was given up (KubeVirt kept retrying): a re-run follows them again,
    counting only failures from now on. True when something was re-opened."""
    reopened = False
    for r in (rec.get("vms") or {}).values():
        if r.get("gaveUp") and r.get("result") == "Failed":
            r.update(phase="Migrating", result="Running", gaveUp=False, failuresBefore=r.get("failures") or 0,
                     message="following again")
            reopened = True
    if reopened:
        rec.update(result="Running", completed=None, message="")
    return reopened


# Phases after which the cluster finishes alone: KubeVirt copies (live, patched), CDI clones into destinations the
# stopped VM already points at (offline, detached). Every other non-terminal phase needs the plugin.
CLUSTER_DRIVEN = {"live": ("Migrating", "CleaningUp"), "offline": ("Cloning",)}
FINAL = ("Completed", "Failed", "Canceled")


def plugin_steps_left(rec: dict) -> List[str]:
    """The VMs whose next step only the plugin takes (create/wait/patch/stop/start)."""
    return [v for v, r in (rec.get("vms") or {}).items()
            if r.get("phase") not in FINAL and r.get("phase") not in CLUSTER_DRIVEN[r.get("mode") or "offline"]]


def resume_command(rec: dict) -> str:
    return f"kubectl vm-storage resume {rec['name']} -n {rec['namespace']}"


def waiting_for_plugin(rec: dict) -> str:
    """What ``status`` says for a VM whose next step needs the plugin while none follows the migration."""
    return f"waiting for the plugin to finish: run '{resume_command(rec)}' (or the same migrate command)"


def detached_summary(rec: dict) -> List[str]:
    """One line per VM: what is left and who does it (printed when --detach returns)."""
    out = []
    left = set(plugin_steps_left(rec))
    for v, r in (rec.get("vms") or {}).items():
        if r.get("phase") in FINAL:
            continue
        if v in left:
            out.append(f"detached: {v} is {r.get('phase')} ({r.get('message') or 'in progress'}); its next steps "
                       f"need the plugin - {waiting_for_plugin(rec)}")
        elif r["mode"] == "live":
            out.append(f"detached: KubeVirt copies the disks of {v} by itself; nothing is left for the plugin "
                       "(spec.updateVolumesStrategy: Migration stays on the VM, as it must while it runs)")
        else:
            out.append(f"detached: {v} already points at its destination DataVolumes and CDI clones them; KubeVirt "
                       "will not start it before they are populated; nothing is left for the plugin - "
                       f"'kubectl vm-storage status {rec['name']} -n {rec['namespace']}' shows when it is done")
    return out
