"""mig-controller stand-in: what the controller does to workloads and VMs (quiesce, stop/start, PVC
reference swaps, live volume update, source labels, rollback deletion). BEHAVIOR.md §3.1, §3.4, §4."""
import copy
from typing import Dict, Iterable, List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import annotations, create_or_get, delete_any, finish_pvc_deletion, labels

ANN_RUN_STRATEGY = "migration.openshift.io/vm-run-strategy"
ANN_START_VM = "migration.openshift.io/start-vm"
ANN_REPLICAS = "migration.openshift.io/preQuiesceReplicas"
ANN_SUSPEND = "migration.openshift.io/preQuiesceSuspend"
ANN_ALLOW_ADOPTION = "cdi.kubevirt.io/allowClaimAdoption"
SCALABLE = (R.DEPLOYMENT, R.STATEFULSET, R.REPLICASET)
QUIESCE_OWNER_KINDS = ("ReplicationController", "StatefulSet", "ReplicaSet", "DaemonSet", "Job")


def _pod_claims(pod: dict) -> List[str]:
    return [v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
            if v.get("persistentVolumeClaim")]


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def launcher_vm(pod: dict) -> Optional[str]:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "VirtualMachineInstance":
            return ref.get("name")
    return None


def running_vm_volumes(pods: List[dict]) -> Dict[str, str]:
    """getRunningVmVolumeMap: claim → VM, from virt-launcher pods (phase NOT checked, as upstream) and
    hotplug ``hp-*`` pods (attributed to the last VM seen, as upstream)."""
    out, last_vm = {}, None
    for pod in pods:
        vm = launcher_vm(pod)
        if vm:
            last_vm = vm
            for c in _pod_claims(pod):
                out[c] = vm
    for pod in pods:
        if pod["metadata"]["name"].startswith("hp-") and last_vm and any(
                r.get("kind") == "Pod" for r in pod["metadata"].get("ownerReferences") or []):
            for c in _pod_claims(pod):
                out[c] = last_vm
    return out


def vm_active(pods: List[dict], vm_name: str) -> bool:
    """isVMActive: any pod owned by a VMI with the VM's name."""
    return any(launcher_vm(p) == vm_name for p in pods)


def vm_volume_claims(vm: dict) -> List[str]:
    out = []
    for v in ((vm.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []:
        name = (v.get("persistentVolumeClaim") or {}).get("claimName") or (v.get("dataVolume") or {}).get("name")
        if name:
            out.append(name)
    return out


def _update(kube, res, obj: dict) -> bool:
    try:
        kube.replace(res, obj, obj["metadata"]["namespace"])
        return True
    except errors.Conflict:
        return False  # retried on the next step, as a controller requeues


# ---- quiesce -------------------------------------------------------------------------------------
def quiesce(kube, ns: str, selected: Iterable[str], live: bool, whole_namespace: bool,
            avoid: Iterable[str] = ()) -> None:
    """QuiesceSourceApplications (or QuiesceDestinationApplications with the targets as ``selected``)."""
    selected = set(selected)
    for res in SCALABLE:
        for obj in kube.items(res, ns):
            if res is R.REPLICASET and obj["metadata"].get("ownerReferences"):
                continue
            tmpl_claims = [v["persistentVolumeClaim"]["claimName"]
                           for v in obj["spec"]["template"]["spec"].get("volumes") or []
                           if v.get("persistentVolumeClaim")]
            if not whole_namespace and not selected & set(tmpl_claims):
                continue
            if ANN_REPLICAS in annotations(obj):
                continue
            obj["metadata"].setdefault("annotations", {})[ANN_REPLICAS] = str(obj["spec"].get("replicas", 1))
            obj["spec"]["replicas"] = 0
            _update(kube, res, obj)
    for cj in kube.items(R.CRONJOB, ns):
        if ANN_SUSPEND not in annotations(cj):
            cj["metadata"].setdefault("annotations", {})[ANN_SUSPEND] = str(bool(cj["spec"].get("suspend"))).lower()
            cj["spec"]["suspend"] = True
            _update(kube, R.CRONJOB, cj)
    if live:
        return  # with liveMigrate VMs are never stopped by quiesce
    pods = kube.items(R.POD, ns)
    for vm in kube.items(R.VM, ns):
        if not vm_active(pods, vm["metadata"]["name"]) or not selected & set(vm_volume_claims(vm)):
            continue
        spec, ann = vm["spec"], vm["metadata"].setdefault("annotations", {})
        if ann.get(ANN_START_VM) == "true" and spec.get("runStrategy") == "Halted":
            continue
        if spec.get("runStrategy"):
            ann[ANN_RUN_STRATEGY] = spec["runStrategy"]
        ann[ANN_START_VM] = "true"
        # Simplification: the real controller PUTs the aggregated .../virtualmachines/<vm>/stop subresource,
        # which the test API server does not serve; stop sets runStrategy Halted, which we write directly.
        spec.pop("running", None)
        spec["runStrategy"] = "Halted"
        _update(kube, R.VM, vm)


def quiesced(kube, ns: str, selected: Iterable[str], live: bool) -> bool:
    """EnsureSrcQuiesced: no non-terminal pod owned by RC/STS/RS/DS/Job (and VMI unless live) remains,
    ignoring pods that mount a PVC outside the selection. Pods of scaled-down workloads are deleted here
    because the test cluster has no kube-controller-manager to do it."""
    selected = set(selected)
    done = True
    for pod in kube.items(R.POD, ns):
        if _terminal(pod) or any(c not in selected for c in _pod_claims(pod)):
            continue
        kinds = {r.get("kind") for r in pod["metadata"].get("ownerReferences") or []}
        if kinds & set(QUIESCE_OWNER_KINDS):
            delete_any(kube, R.POD, pod["metadata"]["name"], ns)
            done = False
        elif not live and "VirtualMachineInstance" in kinds:
            done = False  # the KubeVirt stand-in removes the launcher pod once the VM is Halted
    return done


def unquiesce(kube, ns: str) -> None:
    """UnQuiesceSrcApplications / the restore part of SwapPVCReferences: replicas back, VMs restarted."""
    for res in SCALABLE:
        for obj in kube.items(res, ns):
            ann = annotations(obj)
            if ANN_REPLICAS in ann:
                obj["spec"]["replicas"] = int(ann[ANN_REPLICAS])
                del obj["metadata"]["annotations"][ANN_REPLICAS]
                _update(kube, res, obj)
    for cj in kube.items(R.CRONJOB, ns):
        ann = annotations(cj)
        if ANN_SUSPEND in ann:
            cj["spec"]["suspend"] = ann[ANN_SUSPEND] == "true"
            del cj["metadata"]["annotations"][ANN_SUSPEND]
            _update(kube, R.CRONJOB, cj)
    for vm in kube.items(R.VM, ns):
        start_vm(kube, vm)


def start_vm(kube, vm: dict) -> bool:
    """startVM: restore runStrategy from the annotation (the start subresource's effect: Always when none
    was recorded), drop both annotations."""
    ann = annotations(vm)
    if ann.get(ANN_START_VM) != "true":
        return False
    vm["spec"]["runStrategy"] = ann.get(ANN_RUN_STRATEGY) or "Always"
    vm["spec"].pop("running", None)
    vm["metadata"]["annotations"].pop(ANN_START_VM, None)
    vm["metadata"]["annotations"].pop(ANN_RUN_STRATEGY, None)
    return _update(kube, R.VM, vm)


# ---- reference swaps -----------------------------------------------------------------------------
def _repoint_volumes(vm: dict, mapping: Dict[str, str]) -> bool:
    changed = False
    for v in vm["spec"]["template"]["spec"].get("volumes") or []:
        for key, field in (("persistentVolumeClaim", "claimName"), ("dataVolume", "name")):
            cur = (v.get(key) or {}).get(field)
            if cur in mapping and mapping[cur] != cur:
                v[key][field] = mapping[cur]
                changed = True
    for t in vm["spec"].get("dataVolumeTemplates") or []:
        name = t["metadata"].get("name")
        if name in mapping and mapping[name] != name:
            t["metadata"]["name"] = mapping[name]
            changed = True
    return changed


def swap_pvc_references(kube, ns: str, mapping: Dict[str, str]) -> List[str]:
    """SwapPVCReferences: repoint stopped VMs (names only; dataVolumeTemplates storageClassName is NOT
    changed on this path), restart VMs carrying start-vm, repoint + restore other workloads.
    Returns failure reasons (VMs that could not be updated)."""
    pods = kube.items(R.POD, ns)
    failed = []
    for vm in kube.items(R.VM, ns):
        name = vm["metadata"]["name"]
        if not vm_active(pods, name) and _repoint_volumes(vm, mapping):
            if not _update(kube, R.VM, vm):
                failed.append(f"{ns}/{name}")
                continue
            vm = kube.get(R.VM, name, ns)
        start_vm(kube, vm)
    for res in SCALABLE:
        for obj in kube.items(res, ns):
            changed = False
            for v in obj["spec"]["template"]["spec"].get("volumes") or []:
                c = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if c in mapping and mapping[c] != c:
                    v["persistentVolumeClaim"]["claimName"] = mapping[c]
                    changed = True
            ann = annotations(obj)
            if ANN_REPLICAS in ann:
                obj["spec"]["replicas"] = int(ann[ANN_REPLICAS])
                del obj["metadata"]["annotations"][ANN_REPLICAS]
                changed = True
            if changed:
                _update(kube, res, obj)
    if failed:
        return ["Failed updating PVC references on VirtualMachines [" + ",".join(failed) + "]"]
    return []


def live_update_vm(kube, vm: dict, pairs: Dict[str, str], target_sc: Dict[str, str]) -> Optional[str]:
    """storageLiveMigrateVM/updateVM: returns a failure reason or None. ``pairs`` source → target."""
    claims = set(vm_volume_claims(vm))
    if set(pairs.values()) <= claims and not set(pairs) & claims:
        return None  # already references all targets
    if not set(pairs) <= claims:
        return f"source and target volumes do not match for VM {vm['metadata']['name']}"
    new = copy.deepcopy(vm)
    ns = vm["metadata"]["namespace"]
    new["spec"]["updateVolumesStrategy"] = "Migration"
    for v in new["spec"]["template"]["spec"].get("volumes") or []:
        if (v.get("persistentVolumeClaim") or {}).get("claimName") in pairs:
            v["persistentVolumeClaim"]["claimName"] = pairs[v["persistentVolumeClaim"]["claimName"]]
        elif (v.get("dataVolume") or {}).get("name") in pairs:
            target = pairs[v["dataVolume"]["name"]]
            ensure_adoption_dv(kube, ns, v["dataVolume"]["name"], target)
            v["dataVolume"]["name"] = target
    for t in new["spec"].get("dataVolumeTemplates") or []:
        src = t["metadata"].get("name")
        if src in pairs:
            t["metadata"]["name"] = pairs[src]
            storage = t["spec"].get("storage") if "storage" in t["spec"] else t["spec"].get("pvc")
            if storage is not None and target_sc.get(pairs[src]):
                storage["storageClassName"] = target_sc[pairs[src]]
    if new != vm:
        _update(kube, R.VM, new)
    return None


def ensure_adoption_dv(kube, ns: str, source: str, target: str) -> None:
    """CreateNewAdoptionDataVolume: copy of the source DV named target, blank source, claim adoption."""
    if kube.get_or_none(R.DATAVOLUME, target, ns):
        return
    src = kube.get_or_none(R.DATAVOLUME, source, ns)
    spec = copy.deepcopy((src or {}).get("spec") or {"storage": {}})
    spec["source"] = {"blank": {}}
    spec.pop("sourceRef", None)
    storage = spec.setdefault("storage", {})
    if not (storage.get("resources") or {}).get("requests", {}).get("storage"):
        pvc = kube.get_or_none(R.PVC, target, ns) or kube.get_or_none(R.PVC, source, ns) or {}
        size = ((pvc.get("status") or {}).get("capacity") or {}).get("storage") or "1Gi"
        storage.setdefault("resources", {}).setdefault("requests", {})["storage"] = size
    create_or_get(kube, R.DATAVOLUME, {
        "apiVersion": R.DATAVOLUME.api_version, "kind": "DataVolume",
        "metadata": {"name": target, "namespace": ns, "annotations": {ANN_ALLOW_ADOPTION: "true"}},
        "spec": spec}, ns)


# ---- labels and rollback deletion ----------------------------------------------------------------
def handle_source_labels(kube, ns: str, targets: Iterable[str], plan_uid: str, label: str) -> None:
    """migmigration/storage.go handleSourceLabels (after a cutover's swap, never on rollback): EVERY PVC of the
    namespace gets ``label`` = the plan's UID - the sources copied, and PVCs the plan does not list at all (an
    earlier run's targets: discovery skipped them) - except the mapping's values (getPVCNameMapping: the run's
    targets, and the skipped PVs, which map to themselves), from which it is removed. A later plan's discovery
    skips every PVC so labelled for another plan (pvlist.go getClaims migrationSourceOtherPlan)."""
    targets = set(targets)
    for pvc in kube.items(R.PVC, ns):
        name, have = pvc["metadata"]["name"], labels(pvc).get(label)
        if name in targets:
            if have is not None:
                kube.patch(R.PVC, name, {"metadata": {"labels": {label: None}}}, ns)
        elif have != plan_uid:
            kube.patch(R.PVC, name, {"metadata": {"labels": {label: plan_uid}}}, ns)


def _migrated(kube, ns: str, selector: str):
    """(resource, object) for each DataVolume and PVC carrying the plan's migrated-by label."""
    for res in (R.DATAVOLUME, R.PVC):
        try:
            objs = kube.items(res, ns, label_selector=selector)
        except errors.NotFound:  # CDI not installed
            continue
        for obj in objs:
            yield res, obj


def delete_migrated(kube, ns: str, plan_uid: str, label: str, live: bool) -> None:
    """DeleteMigrated: everything labelled migrated-by-migplan=<plan uid> (DataVolumes and PVCs) plus
    Succeeded virt-launcher pods when liveMigrate."""
    for res, obj in _migrated(kube, ns, f"{label}={plan_uid}"):
        if not obj["metadata"].get("deletionTimestamp"):
            delete_any(kube, res, obj["metadata"]["name"], ns)
        if res is R.DATAVOLUME:
            # No garbage collector in the test cluster: remove the DV-owned PVC as GC would.
            pvc = kube.get_or_none(R.PVC, obj["metadata"]["name"], ns)
            if pvc and any(r.get("kind") == "DataVolume" for r in pvc["metadata"].get("ownerReferences") or []):
                if not pvc["metadata"].get("deletionTimestamp"):
                    delete_any(kube, R.PVC, pvc["metadata"]["name"], ns)
                finish_pvc_deletion(kube, kube.get_or_none(R.PVC, pvc["metadata"]["name"], ns) or pvc)
    if live:
        for pod in kube.items(R.POD, ns):
            if launcher_vm(pod) and (pod.get("status") or {}).get("phase") == "Succeeded":
                delete_any(kube, R.POD, pod["metadata"]["name"], ns)


def migrated_deleted(kube, ns: str, plan_uid: str, label: str) -> bool:
    """EnsureMigratedDeleted; also plays kube-controller-manager's pvc-protection controller."""
    left = 0
    for res, obj in _migrated(kube, ns, f"{label}={plan_uid}"):
        left += 1
        if res is R.PVC and obj["metadata"].get("deletionTimestamp"):
            finish_pvc_deletion(kube, obj)
    return left == 0
