"""Kubevirt-engine progress: the plugin's migration record + VM, VMI, VMIMs, DataVolumes -> Migration dicts.

The record is the ConfigMap ``vm-storage-<migration>`` (key ``record``, JSON) that engines/kubevirt
writes before its first change (format: engines/kubevirt/build.py). It holds the disks, per-VM mode,
original/target claims, the VMIMs that existed before the patch, and the engine's own verdict once it
has one. While a VM's verdict is still Running, this reader judges it from the cluster objects with the
engine's own rule (track.judge_live), so ``status`` is right even when
``migrate`` was detached. Pure except ``fetch_objects``/``collect`` (a constant number of LISTs).
"""
from typing import Dict, Iterable, List, Optional

from ... import labels as L
from ...progress import (CANCELED, FAILED, RUNNING, SUCCEEDED, disk_row, finish_disks, go_duration, judge, migration,
                         percent, seconds_between)
from .build import plugin_steps_left, waiting_for_plugin
from .observed import ANY, derive
from .volumes import dv_wait_text

RECORD_KEY = "record"
LABEL_ENGINE, LABEL_MANAGED_BY, VMIM_LABEL = L.ENGINE, L.MANAGED_BY, L.VOLUME_UPDATE_MIGRATION
KINDS = ("ConfigMap", "VirtualMachine", "VirtualMachineInstance", "VirtualMachineInstanceMigration", "DataVolume",
         "PersistentVolumeClaim")
DV_DONE = ("Succeeded",)


def _meta(obj) -> dict:
    return (obj or {}).get("metadata") or {}


def _key(obj):
    return (_meta(obj).get("namespace") or "", _meta(obj).get("name") or "")


def is_record(cm: dict) -> bool:
    labels = _meta(cm).get("labels") or {}
    return labels.get(LABEL_ENGINE) == "kubevirt" and RECORD_KEY in (cm.get("data") or {})


def read_record(cm: dict) -> Optional[dict]:
    import json

    try:
        rec = json.loads((cm.get("data") or {}).get(RECORD_KEY) or "")
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _vmims_for(vmims: List[dict], ns: str, vmi_name: str) -> List[dict]:
    from .track import vmims_of

    return vmims_of(vmims, vmi_name, ns)


def _vm_claims(vm) -> Dict[str, str]:
    out = {}
    for v in (((vm or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []:
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName") or (v.get("dataVolume") or {}).get("name")
        if claim:
            out[v.get("name")] = claim
    return out


def _judge_offline(rec_vm: dict, vm: Optional[dict], dvs: Dict[tuple, dict], ns: str, disks: List[dict]) -> dict:
    """Offline: CDI clone DataVolumes, then the plugin swaps the claims (and restarts the VM)."""
    failed = [d for d in disks if ((dvs.get((ns, d["targetPVC"])) or {}).get("status") or {}).get("phase") == "Failed"]
    if failed:
        return {"result": "Running", "phase": "Failed", "message": f"clone DataVolume {failed[0]['targetPVC']} Failed"}
    targets = rec_vm.get("targetClaims") or {}
    swapped = bool(targets) and all(_vm_claims(vm).get(v) == c for v, c in targets.items())
    done = all(((dvs.get((ns, d["targetPVC"])) or {}).get("status") or {}).get("phase") in DV_DONE for d in disks)
    if done and swapped and rec_vm.get("swapEarly"):
        # detached: the VM was pointed at the destinations at once; the clones are done - nothing is left
        return {"result": SUCCEEDED, "phase": "Succeeded", "message": "volumes copied; the VM points at them"}
    if done and swapped:
        return {"result": "Running", "phase": "Swapped", "message": "volumes swapped; waiting for the plugin to finish"}
    if done:
        return {"result": "Running", "phase": "Cloned", "message": "clones done; waiting for the plugin to swap volumes"}
    return {"result": "Running", "phase": "Cloning", "message": ""}


def _disk_from_dv(d: dict, dv: Optional[dict], vm_phase: str, vm_result: str) -> dict:
    st = (dv or {}).get("status") or {}
    phase = st.get("phase") or ""
    if vm_result in (SUCCEEDED, CANCELED):
        return {"phase": vm_result, "progress": 100 if vm_result == SUCCEEDED else percent(st.get("progress"))}
    if phase == "Failed":
        return {"phase": "Failed", "progress": percent(st.get("progress")),
                "message": f"DataVolume {d['targetPVC']} Failed"}
    if phase == "Succeeded":
        return {"phase": "Running" if vm_result == RUNNING else vm_result, "progress": 100,
                "message": "copied; " + ("waiting for the volume swap" if vm_phase == "Cloned" else vm_phase)}
    return {"phase": "Running" if phase else "Pending", "progress": percent(st.get("progress")),
            "message": ("DataVolume " + dv_wait_text(d["targetPVC"], dv)) if phase
            else "waiting for the destination DataVolume"}


def build_one(rec: dict, vms: Dict[tuple, dict], vmis: Dict[tuple, dict], vmims: List[dict], dvs: Dict[tuple, dict],
              pvc_sc: Dict[tuple, str], now: Optional[str] = None) -> dict:
    from .track import judge_live

    ns, name = rec.get("namespace") or "", rec.get("name") or ""
    rec_result = rec.get("result") or RUNNING
    verdicts = {}
    for vm_name, rec_vm in (rec.get("vms") or {}).items():
        vm, vmi = vms.get((ns, vm_name)), vmis.get((ns, vm_name))
        if rec_vm.get("gaveUp") and rec_vm.get("mode") == "live" and rec_vm.get("result") == FAILED \
                and rec_result not in (CANCELED, SUCCEEDED):
            # the engine only stopped following; KubeVirt keeps retrying - judge again from the cluster
            j = judge_live(rec_vm, vm, vmi, _vmims_for(vmims, ns, vm_name), name, vm_name)
            if j["result"] == RUNNING:
                j = dict(j, result=FAILED, message=rec_vm.get("message") or j["message"])
            verdicts[vm_name] = j
        elif rec_vm.get("result") in (SUCCEEDED, FAILED, CANCELED) or rec_result in (SUCCEEDED, FAILED, CANCELED):
            # The engine has given its verdict; VMIMs may be garbage-collected by now, so trust it.
            verdicts[vm_name] = {"result": rec_vm.get("result") if rec_vm.get("result") != RUNNING else rec_result,
                                 "phase": rec_vm.get("phase") or "", "message": rec_vm.get("message") or "",
                                 "attempts": rec_vm.get("attempts"), "migrationState": rec_vm.get("migrationState")}
        elif rec_vm.get("mode") == "live" and rec_vm.get("patchedAt"):
            verdicts[vm_name] = judge_live(rec_vm, vm, vmi, _vmims_for(vmims, ns, vm_name), name, vm_name)
        elif rec_vm.get("mode") == "live":
            verdicts[vm_name] = {"result": RUNNING, "phase": rec_vm.get("phase") or "Pending",
                                 "message": rec_vm.get("message") or "preparing destination volumes"}
        else:
            vdisks = [d for d in rec.get("disks") or [] if d.get("vm") == vm_name]
            verdicts[vm_name] = _judge_offline(rec_vm, vm, dvs, ns, vdisks)
        if rec.get("detached") and verdicts[vm_name]["result"] == RUNNING and vm_name in plugin_steps_left(rec):
            verdicts[vm_name] = dict(verdicts[vm_name], message=waiting_for_plugin(rec))
    disks = []
    for d in rec.get("disks") or []:
        v = verdicts.get(d.get("vm")) or {"result": RUNNING, "phase": "Pending", "message": ""}
        mode = d.get("mode") or (rec.get("vms") or {}).get(d.get("vm"), {}).get("mode") or "offline"
        src_sc = d.get("sourceStorageClass") or pvc_sc.get((ns, d.get("sourcePVC")), "")
        inspect = f"kubectl get vmim -n {ns} -l {VMIM_LABEL}={d.get('vm')}"
        elapsed, attempt = None, v.get("attempts") or None
        if mode == "live":
            phase = {SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELED: "Canceled"}.get(v["result"]) or v["phase"]
            if phase == "Failed" and v["result"] == RUNNING:
                phase = "Retrying"  # KubeVirt retries (workload-updater.go)
            state = v.get("migrationState") or {}
            end = state.get("endTimestamp") or (now if v["result"] == RUNNING else None)
            secs = seconds_between(state.get("startTimestamp"), end)
            elapsed = go_duration(secs) if secs is not None else None
            fields = {"phase": phase, "progress": 100 if phase == "Succeeded" else None, "message": v.get("message")}
        else:
            inspect = f"kubectl describe datavolume {d.get('targetPVC')} -n {ns}"
            fields = _disk_from_dv(d, dvs.get((ns, d.get("targetPVC"))), v["phase"], v["result"])
            if v["result"] == FAILED:
                fields["phase"] = "Failed"
            if v.get("message") and v["result"] != RUNNING:
                fields["message"] = v["message"]
        rec_vm = (rec.get("vms") or {}).get(d.get("vm")) or {}
        # held back by --parallel (schedule.py) - unless its destination exists: admitted since the record was
        # last written (the driver writes the steps before the VM is touched later: build.record_state)
        if rec_vm.get("phase") == "Queued" and v["result"] == RUNNING and (ns, d.get("targetPVC")) not in dvs:
            fields = {"phase": "Queued", "progress": None, "message": rec_vm.get("message") or ""}
        disks.append(disk_row(vm=d.get("vm"), volume=d.get("volume"), source_pvc=d.get("sourcePVC"),
                              target_pvc=d.get("targetPVC"), source_sc=src_sc,
                              target_sc=d.get("targetStorageClass") or rec.get("targetStorageClass"), mode=mode,
                              phase=fields["phase"], progress=fields.get("progress"), rate=None, elapsed=elapsed,
                              attempt=attempt, message=fields.get("message") or "", inspect=inspect))
    disks.sort(key=lambda r: (r["vm"], r["volume"], r["sourcePVC"]))
    results = [v["result"] for v in verdicts.values()]
    if rec_result == FAILED and any(r.get("gaveUp") for r in (rec.get("vms") or {}).values()):
        rec_result = RUNNING  # re-judged above from the cluster: the per-VM verdicts decide
    canceled = rec_result == CANCELED
    failed = rec_result == FAILED or FAILED in results
    succeeded = rec_result == SUCCEEDED or (bool(results) and all(r == SUCCEEDED for r in results))
    result = judge(succeeded=succeeded, failed=failed, canceled=canceled, disks=disks)
    finish_disks(disks, result)
    phase = rec.get("phase") or ""
    if result != RUNNING and rec_result == RUNNING:
        phase = result  # judged from the cluster while the engine was not watching
    errors = [f"{vm}: {v['message']}" for vm, v in sorted(verdicts.items()) if v["result"] == FAILED and v.get("message")]
    return migration(plan=name, namespace=ns, engine="kubevirt", type_="cutover", phase=phase, result=result,
                     started=rec.get("started") or None, completed=rec.get("completed") or None, disks=disks,
                     step=(phase + (f": {rec['message']}" if rec.get("message") else "")) if result == RUNNING
                     else result, warnings=[], errors=errors if result == FAILED else [],
                     inspect=f"kubectl get configmap vm-storage-{name} -n {ns} -o yaml")


def build(configmaps, vms, vmis, vmims, dvs, pvcs=(), namespace: Optional[str] = None,
          now: Optional[str] = None) -> List[dict]:
    """One Migration per record ConfigMap (in ``namespace``, or all when None)."""
    vm_by, vmi_by, dv_by = ({_key(o): o for o in objs} for objs in (vms, vmis, dvs))
    pvc_sc = {_key(p): (p.get("spec") or {}).get("storageClassName") or "" for p in pvcs}
    out, covered = [], {}
    for cm in configmaps:
        if not is_record(cm):
            continue
        rec = read_record(cm)
        if rec is None:
            continue
        rec.setdefault("namespace", _meta(cm).get("namespace"))
        for vm_name, rec_vm in (rec.get("vms") or {}).items():
            # a running record tells the VM's update, whatever KubeVirt shows; an ended one only its own targets
            ongoing = (rec.get("result") or RUNNING) == RUNNING or rec_vm.get("gaveUp")
            covered.setdefault((rec["namespace"], vm_name), []).append(ANY if ongoing else
                                                                       rec_vm.get("targetClaims") or {})
        if namespace and _meta(cm).get("namespace") != namespace:
            continue
        out.append(build_one(rec, vm_by, vmi_by, list(vmims), dv_by, pvc_sc, now=now))
    # volume updates KubeVirt shows that no record of the plugin tells (hand-made, MTC, migration-controller)
    out += derive(vm_by.values(), vmi_by, list(vmims), dv_by, {_key(p): p for p in pvcs}, covered,
                  namespace=namespace, now=now)
    out.sort(key=lambda m: (m["namespace"], m["plan"]))
    return out


def from_objects(objects: Iterable[dict], namespace: Optional[str] = None, now: Optional[str] = None) -> List[dict]:
    by_kind = {k: [] for k in KINDS}
    for obj in objects:
        if isinstance(obj, dict) and obj.get("kind") in by_kind:
            by_kind[obj["kind"]].append(obj)
    return build(by_kind["ConfigMap"], by_kind["VirtualMachine"], by_kind["VirtualMachineInstance"],
                 by_kind["VirtualMachineInstanceMigration"], by_kind["DataVolume"], by_kind["PersistentVolumeClaim"],
                 namespace=namespace, now=now)


# ---- shell: the constant-size read ---------------------------------------------------------------------
def fetch_objects(kube, namespace: Optional[str] = None, all_namespaces: bool = False,
                  vms: Optional[List[dict]] = None) -> List[dict]:
    """Record ConfigMaps by label, VMs (unless given), VMIs and VMIMs; then, only when a record or a VM
    volume update (observed.py) is there, DataVolumes and PVCs: at most six requests for any N."""
    from ... import errors
    from ... import resources as R
    from .observed import is_volume_update

    ns = None if all_namespaces else (namespace or kube.namespace)
    every = ns is None
    cms = kube.items(R.CONFIGMAP, ns, label_selector=f"{LABEL_ENGINE}=kubevirt", all_namespaces=every)
    out = [c for c in cms if is_record(c)]
    try:
        if vms is None:
            vms = kube.items(R.VM, ns, all_namespaces=every)
        vmis = kube.items(R.VMI, ns, all_namespaces=every)
        # every VMIM: drains and evacuations carry the volume update too, unlabelled (track.vmims_of)
        vmims = kube.items(R.VMIM, ns, all_namespaces=every)
    except errors.NotFound:  # KubeVirt gone: the record alone still tells what was asked
        vms, vmis, vmims = vms or [], [], []
    vmi_by = {_key(v): v for v in vmis}
    if not out and not any(is_volume_update(vm, vmi_by.get(_key(vm))) for vm in vms or []):
        return []
    out += vmis + vmims
    try:
        # every DataVolume: the destinations of updates the plugin did not start (observed.started_by)
        out += kube.items(R.DATAVOLUME, ns, all_namespaces=every)
    except errors.NotFound:
        pass
    out += kube.items(R.PVC, ns, all_namespaces=every)
    return out + list(vms or [])


def collect(kube, namespace: Optional[str] = None, all_namespaces: bool = False,
            vms: Optional[List[dict]] = None) -> List[dict]:
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ns = None if all_namespaces else (namespace or kube.namespace)
    return from_objects(fetch_objects(kube, namespace, all_namespaces, vms), namespace=ns, now=now)
