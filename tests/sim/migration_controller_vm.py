"""kubevirt-migration-controller stand-in: what storagemig/vm.go writes — the VM merge patch and the target
DataVolumes — plus the KubeVirt admission answer the test API server cannot give. Pure (dicts in, dicts out)."""
import copy
from typing import Optional

from . import migration_controller_plan as PLAN

UID_LABEL = "virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigration-uid"
PLAN_LABEL = "virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigrationplan-name"
PLAN_UID_LABEL = "virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigrationplan-uid"


def vm_volumes(vm):
    return ((((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or [])


def prepared_vm_patch(vm: dict, plan_vm: dict, strategy: bool) -> Optional[dict]:
    """vm.go prepareVMForStorageMigration + patchVMIfChanged (client.MergeFrom: changed lists are sent whole);
    ``strategy``: updateVMForStorageMigration sets updateVolumesStrategy Migration, the offline variant does not."""
    targets = {t["volumeName"]: t for t in plan_vm.get("targetMigrationPVCs") or []}
    vols, moved = copy.deepcopy(vm_volumes(vm)), set()
    for v in vols:
        t = targets.get(v.get("name"))
        if t is None:
            continue
        moved.add(v["name"])
        if v.get("persistentVolumeClaim") is not None:
            v["persistentVolumeClaim"]["claimName"] = t["destinationPVC"]["name"]
        if v.get("dataVolume") is not None:
            v["dataVolume"]["name"] = t["destinationPVC"]["name"]
    by_source = {s["name"]: s["volumeName"] for s in plan_vm.get("sourcePVCs") or []}
    templates = copy.deepcopy((vm.get("spec") or {}).get("dataVolumeTemplates") or [])
    for tpl in templates:
        # Matched by the SOURCE name: a revert plan (cancel.go revertPlanVolumes) keeps sourcePVCs[].name, so on
        # cancel the templates are NOT renamed back (KubeVirt admission then refuses an unreferenced template).
        volume = by_source.get((tpl.get("metadata") or {}).get("name"))
        if volume is None or volume not in moved or volume not in targets:
            continue
        dest = targets[volume]["destinationPVC"]
        tpl["metadata"]["name"] = dest["name"]
        spec = tpl.setdefault("spec", {})
        key = "storage" if spec.get("storage") is not None else ("pvc" if spec.get("pvc") is not None else None)
        if key:
            spec[key]["storageClassName"] = dest.get("storageClassName")
    patch = {}
    if vols != vm_volumes(vm):
        patch.setdefault("spec", {})["template"] = {"spec": {"volumes": vols}}
    if templates != ((vm.get("spec") or {}).get("dataVolumeTemplates") or []):
        patch.setdefault("spec", {})["dataVolumeTemplates"] = templates
    if strategy and (vm.get("spec") or {}).get("updateVolumesStrategy") != "Migration":
        patch.setdefault("spec", {})["updateVolumesStrategy"] = "Migration"
    return patch or None


def unreferenced_template(vm: dict, patch: dict) -> Optional[str]:
    """What virt-api's VM admission answers (kubevirt pkg/storage/admitters/data-volume-template.go
    ValidateDataVolumeTemplate): every dataVolumeTemplate must be named by a dataVolume volume. The test API server
    has no KubeVirt webhooks, so the stand-in refuses such a patch itself (it happens on cancel, see above)."""
    spec = patch.get("spec") or {}
    vols = ((spec.get("template") or {}).get("spec") or {}).get("volumes") or vm_volumes(vm)
    templates = spec.get("dataVolumeTemplates", (vm.get("spec") or {}).get("dataVolumeTemplates") or [])
    used = {(v.get("dataVolume") or {}).get("name") for v in vols}
    for i, tpl in enumerate(templates):
        if (tpl.get("metadata") or {}).get("name") not in used:
            return (f'admission webhook "virtualmachine-validator.kubevirt.io" denied the request: DataVolumeTemplate '
                    f"entry spec.dataVolumeTemplate[{i}] must be referenced in the VMI template's 'volumes' list")
    return None


def target_dv(mig: dict, plan: dict, target: dict, size: str, pvc: dict, clone_of: Optional[str]) -> dict:
    """vm.go createTargetDV (+ cleanTargetAnnotations): blank for live, ``source.pvc`` clone for offline."""
    dest = target["destinationPVC"]
    ann = {k: v for k, v in (pvc["metadata"].get("annotations") or {}).items()
           if k not in ("pv.kubernetes.io/bind-completed", "volume.beta.kubernetes.io/storage-provisioner",
                        "pv.kubernetes.io/bound-by-controller", "volume.kubernetes.io/storage-provisioner")
           and not k.startswith("cdi.kubevirt.io") and not k.startswith("volume.kubernetes.io/selected-node")}
    ann["cdi.kubevirt.io/allowClaimAdoption"] = "true"
    labels = dict(pvc["metadata"].get("labels") or {})
    labels.update({UID_LABEL: mig["metadata"]["uid"], PLAN_LABEL: PLAN.get_name(plan["metadata"]["name"], "mig"),
                   PLAN_UID_LABEL: plan["metadata"]["uid"]})
    ns = mig["metadata"]["namespace"]
    storage = {"resources": {"requests": {"storage": size}}}
    if dest.get("storageClassName"):
        storage["storageClassName"] = dest["storageClassName"]
    if dest.get("volumeMode") in ("Block", "Filesystem"):
        storage["volumeMode"] = dest["volumeMode"]
    modes = [m for m in dest.get("accessModes") or [] if m in ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany")]
    if modes:
        storage["accessModes"] = modes
    source = {"pvc": {"namespace": ns, "name": clone_of}} if clone_of else {"blank": {}}
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": dest["name"], "namespace": ns, "labels": labels, "annotations": ann},
            "spec": {"source": source, "storage": storage}}
