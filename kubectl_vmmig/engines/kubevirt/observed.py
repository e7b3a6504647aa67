"""Volume migrations the cluster's own objects show, whoever started them (pure).

The plugin's record (progress.py) covers what the plugin started. A VM whose volumes were swapped by hand
(the user guide's ``kubectl patch`` with ``updateVolumesStrategy: Migration``), by MTC, by
kubevirt-migration-controller, or by a detached plugin run whose record was deleted, leaves in KubeVirt:

- the VM ``status.volumeUpdateState.volumeMigrationState.migratedVolumes`` (source and destination claim per
  volume). KubeVirt writes it when it accepts the update (``vm.go`` ``handleVolumeUpdateRequest``) and keeps it
  after success; it is cleared only when the claims are back on the sources, the strategy is no longer
  Migration, or the update was cancelled (``vm.go`` ``syncVolumeMigration``);
- the VMI ``status.migratedVolumes`` and ``VolumesChange`` condition while the copy is pending
  (``volume-migration.go`` ``PatchVMIStatusWithMigratedVolumes``, ``SetVolumesChangeCondition``);
- ``ManualRecoveryRequired`` on the VM when the VMI went away mid-copy (``syncVolumeMigration``), and
  ``RestartRequired`` when KubeVirt refused the update (``ValidateVolumesUpdateMigration`` -> ``setRestartRequired``)
  - then the VM template names claims the VMI does not;
- VMIMs of the VMI (``spec.vmiName``, labelled by the workload updater or not: track.vmims_of).

From those this module builds the same record the engine writes (engines/kubevirt/build.py) and hands it to
progress.build_one, so rows, verdict (track.judge_live) and hints are the plugin's own. Who started it
(``startedBy``) comes from the destination's labels: kubevirt-migration-controller labels its target
DataVolumes (``api/migrationcontroller/v1alpha1`` ``VirtualMachineStorageMigrationUIDLabel``), MTC its target
PVCs (mig-controller ``directvolumemigration/pvcs.go``, ``MigMigrationLabel``/``MigPlanLabel``), the plugin
its DataVolumes (labels.MANAGED_BY); anything else is ``manual``.
"""
import json
from typing import Dict, Iterable, List, Optional, Tuple

from ... import labels as L
from ...conditions import by_type
from ...inventory import parse_quantity
from ...patches import claim_of, revert_patch

PLUGIN, MIGRATION_CONTROLLER, MTC, MANUAL = "plugin", "migration-controller", "MTC", "manual"
ANY = "*"  # in ``covered``: a running plugin record that tells whatever update the VM shows
# kubevirt-migration-controller api/migrationcontroller/v1alpha1/virtualmachinestoragemigration_types.go
MC_LABELS = ("virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigration-uid",
             "virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigrationplan-name")
# mig-controller pkg/apis/migration/v1alpha1/labels.go (set on target PVCs by directvolumemigration/pvcs.go)
MTC_LABELS = ("migration.openshift.io/migrated-by-migmigration", "migration.openshift.io/migrated-by-migplan")


def _meta(obj) -> dict:
    return (obj or {}).get("metadata") or {}


def _true(obj, ctype) -> Optional[dict]:
    c = by_type(obj).get(ctype)
    return c if c and c.get("status") == "True" else None


def _vm_claims(vm) -> Dict[str, str]:
    vols = (((vm or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
    return {v.get("name"): claim_of(v) for v in vols if claim_of(v)}


def _vmi_claims(vmi) -> Dict[str, str]:
    return {v.get("name"): claim_of(v) for v in ((vmi or {}).get("spec") or {}).get("volumes") or [] if claim_of(v)}


def migrated_volumes(vm, vmi) -> List[dict]:
    """StorageMigratedVolumeInfo list: the VM's durable copy first, else the VMI's (in flight)."""
    state = (((vm or {}).get("status") or {}).get("volumeUpdateState") or {}).get("volumeMigrationState") or {}
    return list(state.get("migratedVolumes") or ((vmi or {}).get("status") or {}).get("migratedVolumes") or [])


def volume_moves(vm, vmi) -> Dict[str, dict]:
    """{volume: {"source", "destination", "sourceSize", "destinationSize"}} of this VM's volume update."""
    out = {}
    for mv in migrated_volumes(vm, vmi):
        src, dst = mv.get("sourcePVCInfo") or {}, mv.get("destinationPVCInfo") or {}
        if mv.get("volumeName") and src.get("claimName") and dst.get("claimName"):
            out[mv["volumeName"]] = {"source": src["claimName"], "destination": dst["claimName"],
                                     "sourceSize": _size(src), "destinationSize": _size(dst)}
    if not out and vmi is not None:  # not accepted (RestartRequired) or not processed yet: VM template vs VMI
        vmi_claims = _vmi_claims(vmi)
        for vol, claim in _vm_claims(vm).items():
            if vmi_claims.get(vol) and vmi_claims[vol] != claim:
                out[vol] = {"source": vmi_claims[vol], "destination": claim, "sourceSize": None,
                            "destinationSize": None}
    return out


def _size(pvc_info: dict) -> Optional[int]:
    """capacity (what the volume holds) else requests (capacity is empty while a WFFC claim is unbound)."""
    for field in ("capacity", "requests"):
        size = parse_quantity(((pvc_info.get(field) or {}).get("storage")))
        if size:
            return size
    return None


def _in_flight(vm, vmi) -> bool:
    """KubeVirt still has something of the update pending (vs. a VM that moved earlier and settled)."""
    if _true(vm, "ManualRecoveryRequired") or _true(vm, "VolumesChange") or _true(vmi, "VolumesChange"):
        return True
    if ((vmi or {}).get("status") or {}).get("migratedVolumes"):
        return True
    vmi_claims = _vmi_claims(vmi)
    return vmi is not None and any(vmi_claims.get(v) not in (None, c) for v, c in _vm_claims(vm).items())


def is_volume_update(vm, vmi) -> bool:
    return ((vm or {}).get("spec") or {}).get("updateVolumesStrategy") == "Migration" and bool(volume_moves(vm, vmi))


def started_by(moves: Dict[str, dict], ns: str, dvs: Dict[tuple, dict], pvcs: Dict[tuple, dict]) -> str:
    """Who made the destinations (see the module doc): migration-controller, MTC, plugin, else manual."""
    found = []
    for m in moves.values():
        for obj in (dvs.get((ns, m["destination"])), pvcs.get((ns, m["destination"]))):
            found.append(_meta(obj).get("labels") or {})
    if any(k in lab for lab in found for k in MC_LABELS):
        return MIGRATION_CONTROLLER
    if any(k in lab for lab in found for k in MTC_LABELS):
        return MTC
    if any(lab.get(L.MANAGED_BY) == L.MANAGER for lab in found):
        return PLUGIN
    return MANUAL


def size_problem(moves: Dict[str, dict]) -> str:
    """A destination smaller than its source: virt-launcher's block copy fails on every attempt."""
    small = [f"{v} ({m['destination']} < {m['source']})" for v, m in sorted(moves.items())
             if m["sourceSize"] and m["destinationSize"] and m["destinationSize"] < m["sourceSize"]]
    return ("destination smaller than the source for " + ", ".join(small)
            + ": every retry will fail - cancel (restore the original claims) and recreate the destinations at "
              "least as large") if small else ""


def record_for(vm: dict, vmi: Optional[dict], moves: Dict[str, dict], vmims: List[dict],
               pvc_sc: Dict[tuple, str], dvs: Dict[tuple, dict]) -> dict:
    """The record the engine would have written for this update (engines/kubevirt/build.py's format)."""
    ns, name = _meta(vm).get("namespace") or "", _meta(vm).get("name") or ""
    vmi_created = _meta(vmi).get("creationTimestamp") or ""
    # VMIMs of an earlier VMI of the same name prove nothing about this one's copy (track.copy_finished)
    known = [_meta(m).get("uid") for m in vmims
             if vmi_created and (_meta(m).get("creationTimestamp") or "") < vmi_created]
    starts = sorted(t for t in [_meta(m).get("creationTimestamp") for m in vmims if _meta(m).get("uid") not in known]
                    + [(by_type(vm).get("VolumesChange") or {}).get("lastTransitionTime")] if t)

    def target_sc(claim):
        dv_sc = (((dvs.get((ns, claim)) or {}).get("spec") or {}).get("storage") or {}).get("storageClassName")
        return pvc_sc.get((ns, claim)) or dv_sc or ""

    return {"name": name, "namespace": ns, "result": "Running", "phase": "Observed", "started": starts[0] if starts
            else None, "vms": {name: {"mode": "live", "patchedAt": "observed", "knownVMIMs": known,
                                      "originalClaims": {v: m["source"] for v, m in moves.items()},
                                      "targetClaims": {v: m["destination"] for v, m in moves.items()},
                                      "mapping": {m["source"]: m["destination"] for m in moves.values()}}},
            "disks": [{"vm": name, "volume": v, "sourcePVC": m["source"], "targetPVC": m["destination"],
                       "sourceStorageClass": pvc_sc.get((ns, m["source"]), ""),
                       "targetStorageClass": target_sc(m["destination"]), "mode": "live"}
                      for v, m in sorted(moves.items())]}


def _without_plugin_cancel(text: str, plan: str, vm: dict, mapping: Dict[str, str]) -> str:
    """The plugin cannot cancel what it did not start (it has no record): the kubectl patch does it."""
    ops = revert_patch(vm, mapping)
    ns, name = _meta(vm).get("namespace"), _meta(vm).get("name")
    patch = (f"kubectl patch vm {name} -n {ns} --type=json -p '{json.dumps(ops, separators=(',', ':'))}'"
             if ops else "restore the original claims in the VM's spec.template.spec.volumes")
    cancel = f"'kubectl vm-storage cancel {plan}'"
    text = text.replace(f"run {cancel} now to restore the original volumes", f"restore the original volumes now: "
                        f"{patch}")
    text = text.replace(f"run {cancel} or ", "run ").replace(cancel, patch)
    # track.recovery_text's own patch names no namespace: a support engineer's context is rarely the VM's
    return text.replace(f"kubectl patch vm {name} --type=json", f"kubectl patch vm {name} -n {ns} --type=json")


def derive(vms: Iterable[dict], vmis: Dict[tuple, dict], vmims: List[dict], dvs: Dict[tuple, dict],
           pvcs: Dict[tuple, dict], covered: Dict[Tuple[str, str], List[dict]], namespace: Optional[str] = None,
           now: Optional[str] = None) -> List[dict]:
    """One Migration per VM KubeVirt shows a volume update for, unless a plugin record covers that VM's update
    (``covered``: (namespace, VM) -> the records' targetClaims for it)."""
    from .progress import build_one
    from .track import vmims_of

    pvc_sc = {k: (p.get("spec") or {}).get("storageClassName") or "" for k, p in pvcs.items()}
    out = []
    for vm in vms:
        ns, name = _meta(vm).get("namespace") or "", _meta(vm).get("name") or ""
        if namespace and ns != namespace:
            continue
        vmi = vmis.get((ns, name))
        if not is_volume_update(vm, vmi):
            continue
        moves = volume_moves(vm, vmi)
        records = covered.get((ns, name), [])
        if ANY in records or {v: m["destination"] for v, m in moves.items()} in records:
            continue  # the plugin's record tells this one, with what only it knows (mode, knownVMIMs, result)
        mine = vmims_of(vmims, name, ns)
        rec = record_for(vm, vmi, moves, mine, pvc_sc, dvs)
        m = build_one(rec, {(ns, name): vm}, {(ns, name): vmi} if vmi else {}, mine, dvs, pvc_sc, now=now)
        if not _in_flight(vm, vmi) and m["result"] != "Succeeded":
            continue  # moved earlier, nothing pending and no proof left to judge: not a migration to show
        mapping = rec["vms"][name]["mapping"]
        problem = size_problem(moves) if m["result"] == "Running" else ""
        for d in m["disks"]:
            d["message"] = _without_plugin_cancel(d["message"], name, vm, mapping)
            if problem:
                d["message"] = f"{problem} ({d['message']})" if d["message"] else problem
        m["_errors"] = [_without_plugin_cancel(e, name, vm, mapping) for e in m.get("_errors") or []]
        if problem:
            m["_warnings"] = list(m.get("_warnings") or []) + [problem]
        m["startedBy"] = started_by(moves, ns, dvs, pvcs)
        m["_observed"] = True  # progress.without_shadowed: MTC's / migration-controller's own rows win
        if m["result"] != "Running":
            state = ((vmi or {}).get("status") or {}).get("migrationState") or {}
            m["completed"] = state.get("endTimestamp") or None
        if m["result"] == "Running":
            m["phase"], m["_step"] = "Running", (m["disks"][0]["phase"] if m["disks"] else "Running")
        m["_inspect"] = f"kubectl get vm {name} -n {ns} -o jsonpath='{{.status.volumeUpdateState}}'"
        out.append(m)
    return out
