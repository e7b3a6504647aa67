"""Status of the migration-controller engine (pure except ``fetch_objects``): our plans + their
VirtualMachineStorageMigration + VM, VMI, VMIMs, DataVolumes -> ``Migration`` dicts, with ONE verdict.

kubevirt-migration-controller never reports a failure (storagemig/task.go: a failed VMIM is skipped by
isLiveMigrationCompleted, ``status.errors`` and LiveMigrationFailed are never written) and calls an offline copy
done at WaitForFirstConsumer (vm.go isOfflineMigrationCompleted). So ``verdict`` judges each VM from KubeVirt and
CDI, never from the controller's phase: Succeeded only when every disk is copied and in use.
"""
from typing import Dict, Iterable, List, Optional

from ... import labels as L
from ...conditions import condition
from ...progress import (CANCELED, FAILED, RUNNING, SUCCEEDED, disk_row, finish_disks, judge, migration, percent)
from . import build as B
from . import fleet as F

KINDS = ("VirtualMachineStorageMigrationPlan", "VirtualMachineStorageMigration", "VirtualMachine",
         "VirtualMachineInstance", "VirtualMachineInstanceMigration", "DataVolume",
         "MultiNamespaceVirtualMachineStorageMigrationPlan")
MN_PLAN = "MultiNamespaceVirtualMachineStorageMigrationPlan"


def _md(o):
    return (o or {}).get("metadata") or {}


def _claims(spec_holder: Optional[dict], template: bool) -> Dict[str, str]:
    spec = (spec_holder or {}).get("spec") or {}
    vols = ((spec.get("template") or {}).get("spec") or {}).get("volumes") if template else spec.get("volumes")
    out = {}
    for v in vols or []:
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName") or (v.get("dataVolume") or {}).get("name")
        if claim:
            out[v.get("name")] = claim
    return out


def _after(obj: dict, start: Optional[str]) -> bool:
    return not start or (_md(obj).get("creationTimestamp") or "") >= start


def _completed_ok(state: Optional[dict], started: Optional[str]) -> bool:
    """migrationState completed && !failed (the controller's own test, task.go isLiveMigrationCompleted), begun
    after ``started`` when given."""
    from ...progress import parse_time

    st = state or {}
    if not st.get("completed") or st.get("failed"):
        return False
    if started is None:
        return True
    begun, start = parse_time(st.get("startTimestamp")), parse_time(started)
    return bool(begun and start and begun >= start)


def verdict(rec_vm: dict, vm_name: str, vm: Optional[dict], vmi: Optional[dict], vmims: List[dict],
            dvs: Dict[str, dict], started: Optional[str], cancel_requested: bool) -> dict:
    """The one verdict for one VM: ``{"result", "phase", "message"}`` (status and migrate --wait both call it).

    live: Succeeded = a VMIM of this run (spec.vmiName, created after the migration) Succeeded with
    migrationState completed && !failed, the VMI runs on every destination claim with no VolumesChange and no
    migratedVolumes, and the VM names the destinations. Failed = a VMIM of this run failed (KubeVirt may retry;
    the controller would wait silently forever) and none succeeded. offline: every destination DataVolume Succeeded
    AND a clone of the recorded source (a DataVolume made from the old template instead is no copy), and the VM
    names them. Canceled = a cancel was requested and the VM names its sources again."""
    vols = rec_vm.get("volumes") or {}
    sources = {v: pair[0] for v, pair in vols.items()}
    targets = {v: pair[1] for v, pair in vols.items()}
    spec_claims = {v: c for v, c in _claims(vm, True).items() if v in vols}
    if cancel_requested and spec_claims == sources:
        return {"result": CANCELED, "phase": "Canceled", "message": "canceled: the VM names its source volumes again"}
    if rec_vm.get("mode") == "live":
        ours = sorted([m for m in vmims if (m.get("spec") or {}).get("vmiName") == vm_name and _after(m, started)],
                      key=lambda m: _md(m).get("creationTimestamp") or "")
        done = [m for m in ours if (m.get("status") or {}).get("phase") == "Succeeded"
                and _completed_ok((m.get("status") or {}).get("migrationState"), None)]
        vst = (vmi or {}).get("status") or {}
        # The controller deletes the Succeeded VMIMs of completed VMs (task.go cleanupCompletedVMIMs): the VMI's own
        # migrationState (virt-controller copies it there, migration.go) is then the evidence.
        done = done or ([vmi] if _completed_ok(vst.get("migrationState"), started) else [])
        on_targets = {v: c for v, c in _claims(vmi, False).items() if v in vols} == targets
        settled = not condition(vmi, "VolumesChange") and not vst.get("migratedVolumes")
        if done and on_targets and settled and spec_claims == targets:
            return {"result": SUCCEEDED, "phase": "Succeeded", "message": "copied live; the VM runs on the destination"}
        failed = [m for m in ours if (m.get("status") or {}).get("phase") == "Failed"]
        if failed:
            ms = (failed[-1].get("status") or {}).get("migrationState") or {}
            why = ms.get("failureReason") or "the live migration failed"
            return {"result": FAILED, "phase": "Failed",
                    "message": f"{why} (VMIM {_md(failed[-1]).get('name')}); kubevirt-migration-controller reports "
                               "no failure and KubeVirt retries on its own: cancel, or fix the cause and watch"}
        if cancel_requested:
            return {"result": RUNNING, "phase": "Canceling", "message": "cancel requested: waiting for the revert"}
        current = ours[-1] if ours else None
        phase = ((current or {}).get("status") or {}).get("phase") or ("Migrating" if spec_claims == targets
                                                                       else "Pending")
        return {"result": RUNNING, "phase": phase, "message": ""}
    # offline
    if vmi is not None and ((vmi.get("status") or {}).get("phase") == "Running") and spec_claims == sources:
        return {"result": RUNNING, "phase": "Pending", "message": "the VM is running; offline copies need it stopped"}
    phases = []
    for vol, target in targets.items():
        dv = dvs.get(target)
        phase = ((dv or {}).get("status") or {}).get("phase") or "Pending"
        src = (((dv or {}).get("spec") or {}).get("source") or {}).get("pvc") or {}
        if dv is not None and src.get("name") != sources[vol]:
            return {"result": FAILED, "phase": "Failed",
                    "message": f"DataVolume {target} is not a clone of {sources[vol]} (source "
                               f"{((dv.get('spec') or {}).get('source')) or {}}): nothing was copied"}
        if phase == "Failed":
            return {"result": FAILED, "phase": "Failed", "message": f"clone DataVolume {target} failed"}
        phases.append(phase)
    if phases and all(p == "Succeeded" for p in phases) and spec_claims == targets:
        return {"result": SUCCEEDED, "phase": "Succeeded", "message": "copied offline; the VM names the destination"}
    if cancel_requested:
        return {"result": RUNNING, "phase": "Canceling", "message": "cancel requested: waiting for the revert"}
    if any(p in ("WaitForFirstConsumer", "PendingPopulation") for p in phases):
        return {"result": RUNNING, "phase": "WaitForFirstConsumer",
                "message": "the clone waits for a first consumer: it runs when the VM starts "
                           "(kubevirt-migration-controller already counts it as done)"}
    return {"result": RUNNING, "phase": "Copying", "message": ""}


def ours(plan_obj: dict) -> bool:
    return (_md(plan_obj).get("labels") or {}).get(L.ENGINE) == B.ENGINE


# The status lists a plan controller fills (storagemigplan: createStatusVM / getSourcePVC), newest state last.
_STATUS_LISTS = ("readyMigrations", "invalidMigrations", "inProgressMigrations", "completedMigrations",
                 "failedMigrations")


def derived_record(plan_obj: dict, vmis: Dict[str, dict]) -> Dict[str, dict]:
    """The record the plugin would have written, for a plan someone else made (the console, a script, a
    MultiNamespace plan's child): sources from the plan controller's status lists, destinations as the controller
    resolved them (defaulted names live only in status), the mode from whether the VM runs."""
    out: Dict[str, dict] = {}
    st = plan_obj.get("status") or {}
    for key in _STATUS_LISTS:
        for entry in st.get(key) or []:
            vm = entry.get("name")
            if not vm:
                continue
            src = {s.get("volumeName"): s for s in entry.get("sourcePVCs") or []}
            vols = {}
            for t in entry.get("targetMigrationPVCs") or []:
                vol, dest = t.get("volumeName"), t.get("destinationPVC") or {}
                s_pvc = src.get(vol) or {}
                s_sc = (((s_pvc.get("sourcePVC") or {}).get("spec") or {}).get("storageClassName")) or ""
                if vol and s_pvc.get("name") and dest.get("name"):
                    vols[vol] = [s_pvc["name"], dest["name"], s_sc]
            if vols:
                out[vm] = {"mode": "live" if vm in vmis else "offline", "volumes": vols}
    return out


def build_one(plan_obj: dict, mig: Optional[dict], vms: Dict[str, dict], vmis: Dict[str, dict],
              vmims: List[dict], dvs: Dict[str, dict]) -> dict:
    md, ns = _md(plan_obj), _md(plan_obj).get("namespace")
    rec = B.read_record(plan_obj) if ours(plan_obj) else derived_record(plan_obj, vmis)
    cancel = B.CANCELED in (md.get("annotations") or {})
    started = _md(mig).get("creationTimestamp") if mig else None
    mst = (mig or {}).get("status") or {}
    progress = {r.get("name"): percent(r.get("progress")) for r in mst.get("runningMigrations") or []}
    target_sc = {d.get("name"): d.get("storageClassName") for v in (plan_obj.get("spec") or {}).get(
        "virtualMachines") or [] for t in v.get("targetMigrationPVCs") or [] for d in [t.get("destinationPVC") or {}]}
    blocked = [c for c in ((mig or {}).get("status") or {}).get("conditions") or []
               if c.get("status") == "True" and c.get("category") == "Critical"]
    disks, results = [], []
    for vm_name, rec_vm in sorted(rec.items()):
        v = verdict(rec_vm, vm_name, vms.get(vm_name), vmis.get(vm_name), vmims, dvs, started, cancel)
        if blocked and v["result"] == RUNNING and not cancel:
            v = {"result": FAILED, "phase": "Failed",
                 "message": f"kubevirt-migration-controller will not run it: {blocked[0].get('message')}"}
        if mig is None and not cancel and v["result"] == RUNNING:
            v = dict(v, phase="NotStarted", message="no VirtualMachineStorageMigration for this plan")
        results.append(v["result"])
        for vol, pair in sorted((rec_vm.get("volumes") or {}).items()):
            src, dst, src_sc = pair[0], pair[1], (pair[2] if len(pair) > 2 else "")
            pct = 100.0 if v["result"] == SUCCEEDED else (progress.get(vm_name) if rec_vm.get("mode") == "live"
                                                          else None)
            dv_phase = ((dvs.get(dst) or {}).get("status") or {}).get("phase")
            if rec_vm.get("mode") == "offline" and v["result"] == RUNNING:
                pct = percent(((dvs.get(dst) or {}).get("status") or {}).get("progress"))
            disks.append(disk_row(vm_name, vol, src, dst, src_sc, target_sc.get(dst) or "", rec_vm.get("mode"),
                                  v["phase"] if v["result"] != RUNNING or rec_vm.get("mode") == "live"
                                  else (dv_phase or v["phase"]), pct, message=v["message"]))
    result = judge(succeeded=bool(results) and all(r == SUCCEEDED for r in results),
                   failed=FAILED in results, canceled=bool(results) and all(r == CANCELED for r in results),
                   disks=disks)
    finish_disks(disks, result)
    phase = mst.get("phase") or ("Canceled" if cancel and mig is None else "Pending")
    completed = None
    if result != RUNNING:
        completed = max([_md(m).get("creationTimestamp") or "" for m in vmims] + [started or ""]) or None
    return migration(md.get("name"), ns, B.ENGINE, "cutover", phase, result, started=started or
                     md.get("creationTimestamp"), completed=completed, disks=disks,
                     inspect=f"virtualmachinestoragemigration/{md.get('name')}", fleet=_fleet_of(plan_obj),
                     started_by="plugin" if ours(plan_obj) else "migration-controller")


def _fleet_of(plan_obj: dict) -> Optional[str]:
    """``namespace/name`` of the fleet whose child this plan is (the engine's mark, fleet.child_marks), else None."""
    return (_md(plan_obj).get("annotations") or {}).get(L.FLEET) or None


def from_objects(objects: Iterable[dict], namespace: Optional[str] = None, now: Optional[str] = None) -> List[dict]:
    by: Dict[str, list] = {k: [] for k in KINDS}
    for o in objects:
        if o.get("kind") in by:
            by[o["kind"]].append(o)
    out = []
    plans = _with_fleet_children(by[MN_PLAN], by["VirtualMachineStorageMigrationPlan"], namespace)
    for p in sorted(plans, key=lambda o: (_md(o).get("namespace"), _md(o).get("creationTimestamp") or "")):
        ns = _md(p).get("namespace")
        if namespace and ns != namespace:  # plans of anyone: the console's and scripts' too (startedBy)
            continue
        in_ns = lambda kind: {_md(o)["name"]: o for o in by[kind] if _md(o).get("namespace") == ns}  # noqa: E731
        migs = [m for m in by["VirtualMachineStorageMigration"] if _md(m).get("namespace") == ns and
                ((m.get("spec") or {}).get("virtualMachineStorageMigrationPlanRef") or {}).get("name") ==
                _md(p)["name"]]
        mig = sorted(migs, key=lambda m: _md(m).get("creationTimestamp") or "")[-1] if migs else None
        out.append(build_one(p, mig, in_ns("VirtualMachine"), in_ns("VirtualMachineInstance"),
                             [m for m in by["VirtualMachineInstanceMigration"] if _md(m).get("namespace") == ns],
                             in_ns("DataVolume")))
    _tag_fleets(by[MN_PLAN], out, namespace)
    return out


def _with_fleet_children(mn_plans: List[dict], plans: List[dict], namespace: Optional[str]) -> List[dict]:
    """``plans`` with every child of a fleet of ours as the engine marks it (apply_fleet: its labels and its
    namespace's record): one upstream made but the engine has not marked yet gets them from the fleet plan, one
    upstream has not made yet (createNamespacePlan runs a reconcile later) stands in with no status, so its rows
    show NotStarted instead of missing."""
    import copy
    import json

    by_key = {(_md(p).get("namespace"), _md(p).get("name")): p for p in plans}
    for mp in mn_plans:
        if not F.ours(mp):
            continue
        spec = {e.get("name"): e for e in (mp.get("spec") or {}).get("namespaces") or []}
        for ns, rec in sorted(F.read_fleet_record(mp).items()):
            name = F.child_name(_md(mp)["name"], ns)
            child = by_key.get((ns, name))
            if (child is not None and ours(child)) or (namespace and ns != namespace):
                continue
            child = copy.deepcopy(child) if child is not None else {
                "kind": "VirtualMachineStorageMigrationPlan", "metadata": {
                    "name": name, "namespace": ns, "creationTimestamp": _md(mp).get("creationTimestamp")},
                "spec": {"virtualMachines": (spec.get(ns) or {}).get("virtualMachines") or []}}
            md = child["metadata"]
            md["labels"] = dict(md.get("labels") or {}, **B.labels(F.label_value(name)))
            md["annotations"] = dict(md.get("annotations") or {}, **{
                B.RECORD: json.dumps(rec), L.FLEET: f"{_md(mp).get('namespace')}/{_md(mp)['name']}"})
            by_key[(ns, name)] = child
    return list(by_key.values())


def _tag_fleets(mn_plans: List[dict], docs: List[dict], namespace: Optional[str]) -> None:
    """Each child's document names its fleet and carries the fleet's one verdict (fleet.fleet_verdict), judged
    from every namespace's document (when status reads one namespace only: from that namespace's)."""
    for mp in mn_plans:
        if not F.ours(mp):
            continue
        mine = [d for d in docs if d.get("_fleet") == f"{_md(mp).get('namespace')}/{_md(mp)['name']}"]
        record = {ns: r for ns, r in F.read_fleet_record(mp).items() if not namespace or ns == namespace}
        result = F.fleet_verdict(record, mine)
        for d in mine:
            d["_fleetResult"] = result


def fetch_objects(kube, namespace: Optional[str], all_namespaces: bool) -> List[dict]:
    """A constant number of LISTs: the plans, then (only when there is one) the fleet plans, migrations, VMIs, VMIMs,
    DataVolumes.
    (VMs are added by the caller.)"""
    from ... import errors
    from ... import resources as R

    ns = None if all_namespaces else namespace
    try:  # every plan, whoever made it: status tells the truth about all of them
        plans = kube.items(R.VMSM_PLAN, ns, all_namespaces=ns is None)
    except errors.NotFound:
        return []  # migrations.kubevirt.io not served
    if not plans:  # no plan at all: nothing more to read (a fleet's first child exists one reconcile after it)
        return []
    try:  # the fleets (a fleet's first namespace holds it; some of its children may not exist yet)
        plans += kube.items(R.MN_VMSM_PLAN, ns, all_namespaces=ns is None)
    except (errors.NotFound, errors.Forbidden):
        pass  # an older controller, or a role without the fleet kinds: the per-namespace plans still show
    out = list(plans)
    for res in (R.VMSM, R.VMI, R.VMIM, R.DATAVOLUME):
        try:
            out += kube.items(res, ns, all_namespaces=ns is None)
        except errors.NotFound:
            pass
    return out
