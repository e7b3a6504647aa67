"""Inventory: cluster objects (dicts) -> per-VM disk facts. Pure: no I/O, engine-neutral.

``build_inventory(vms, vmis, pvcs, datavolumes, storageclasses, pods)`` returns::

    {"vms": {"<ns>/<name>": VmFacts}, "pvcs": {"<ns>/<name>": pvc}, "storageClasses": {name: sc},
     "defaultStorageClass": name|None}

VmFacts::

    {"name", "namespace", "uid", "runStrategy", "running": bool, "vmiPhase", "node",
     "conditions": {type: {"status","reason","message"}}       # VM conditions
     "vmiConditions": {type: {...}},                           # VMI conditions (LiveMigratable, ...)
     "disks": [DiskFacts], "hostDisks": [volume names], "launcherPods": [pod names],
     "volumeUpdateStrategy": spec.updateVolumesStrategy,
     "placement": {"tolerations", "nodeSelector", "architecture", "ownNodeSelector", "nodeSelectorTerms"}}
                                                               # placement.of_template

DiskFacts (one per dataVolume / persistentVolumeClaim volume of the VM template)::

    {"vm", "namespace", "volume", "kind": "pvc"|"dataVolume", "claim", "dataVolumeTemplateIndex": int|None,
     "pvcExists", "pvcPhase", "size" (PVC status.capacity.storage, else the request), "sizeBytes",
     "requestedSize", "accessModes", "volumeMode", "storageClass", "dataVolumePhase",
     "diskType": "disk"|"lun"|"cdrom"|"filesystem"|None, "shareable", "lun", "virtiofs", "hotplug"}
"""
import re
from typing import Dict, Iterable, List, Optional

from .placement import of_template


_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"^\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
DEFAULT_SC_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                          "storageclass.beta.kubernetes.io/is-default-class")


def parse_quantity(value) -> Optional[int]:
    """Kubernetes quantity ('10Gi', '1.5G', '500M', 1024) -> bytes (int), None when absent/unparsable."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    m = _QUANTITY.match(str(value))
    if not m or m.group(2) not in _SUFFIX:
        return None
    try:
        return int(float(m.group(1)) * _SUFFIX[m.group(2)])
    except ValueError:
        return None


def key(obj_or_ns, name=None) -> str:
    """'<namespace>/<name>' for an object dict, or for (namespace, name)."""
    if name is not None:
        return f"{obj_or_ns}/{name}"
    md = obj_or_ns.get("metadata") or {}
    return f"{md.get('namespace') or ''}/{md.get('name') or ''}"


def _conditions(obj) -> Dict[str, dict]:
    out = {}
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type"):
            out[c["type"]] = {"status": c.get("status"), "reason": c.get("reason") or "",
                              "message": c.get("message") or ""}
    return out


def run_strategy(vm) -> str:
    """KubeVirt's VirtualMachine.RunStrategy(): runStrategy wins, else running true->Always / false->Halted."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    return "Always" if spec.get("running") else "Halted"


def storage_class_of_pvc(pvc) -> Optional[str]:
    spec = pvc.get("spec") or {}
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return spec.get("storageClassName") or ann.get("volume.beta.kubernetes.io/storage-class")


def default_storage_class(storageclasses: Iterable[dict]) -> Optional[str]:
    for sc in storageclasses:
        ann = (sc.get("metadata") or {}).get("annotations") or {}
        if any(str(ann.get(a, "")).lower() == "true" for a in DEFAULT_SC_ANNOTATIONS):
            return sc["metadata"]["name"]
    return None


def _template_size(tmpl_spec) -> Optional[str]:
    for part in ("storage", "pvc"):
        req = (((tmpl_spec or {}).get(part) or {}).get("resources") or {}).get("requests") or {}
        if req.get("storage"):
            return str(req["storage"])
    return None


def _template_sc(tmpl_spec) -> Optional[str]:
    for part in ("storage", "pvc"):
        sc = ((tmpl_spec or {}).get(part) or {}).get("storageClassName")
        if sc:
            return sc
    return None


def _disk_facts(vm, volume, devices, dvt_index, pvcs, dvs, vm_status_hotplug, default_sc):
    md = vm.get("metadata") or {}
    ns = md.get("namespace") or ""
    name = volume["name"]
    if "dataVolume" in volume:
        kind, src = "dataVolume", volume.get("dataVolume") or {}
        claim = src.get("name")
    else:
        kind, src = "pvc", volume.get("persistentVolumeClaim") or {}
        claim = src.get("claimName")
    disk = devices["disks"].get(name)
    disk_type = None
    if name in devices["filesystems"]:
        disk_type = "filesystem"
    elif disk is not None:
        disk_type = next((t for t in ("lun", "cdrom", "disk") if t in disk), "disk")
    pvc = pvcs.get(key(ns, claim)) if claim else None
    dv = dvs.get(key(ns, claim)) if claim else None
    tmpl_index = dvt_index.get(claim)
    tmpl_spec = None
    if tmpl_index is not None:
        tmpl_spec = ((vm.get("spec") or {}).get("dataVolumeTemplates") or [])[tmpl_index].get("spec")
    pspec, pstatus = (pvc or {}).get("spec") or {}, (pvc or {}).get("status") or {}
    requested = ((pspec.get("resources") or {}).get("requests") or {}).get("storage") or _template_size(tmpl_spec)
    size = (pstatus.get("capacity") or {}).get("storage") or requested
    if pvc is not None:
        sc = storage_class_of_pvc(pvc)
    else:
        sc = _template_sc(tmpl_spec) or (((dv or {}).get("spec") or {}).get("storage") or {}).get("storageClassName")
    return {
        "vm": md.get("name"), "namespace": ns, "volume": name, "kind": kind, "claim": claim,
        "dataVolumeTemplateIndex": tmpl_index,
        "pvcExists": pvc is not None, "pvcPhase": pstatus.get("phase"),
        "size": str(size) if size is not None else None, "sizeBytes": parse_quantity(size),
        "requestedSize": str(requested) if requested is not None else None,
        # what the PVC asked for, as KubeVirt's RWO rule reads it (vmi/storage.go, volume-migration.go use
        # pvc.Spec.AccessModes); the PV may offer more
        "accessModes": list(pspec.get("accessModes") or pstatus.get("accessModes") or []),
        "volumeMode": pspec.get("volumeMode") or ("Filesystem" if pvc is not None else None),
        # A template without storageClassName gets the default class when CDI creates the PVC.
        "storageClass": sc or (default_sc if pvc is None and tmpl_index is not None else None),
        "dataVolumePhase": ((dv or {}).get("status") or {}).get("phase"),
        "diskType": disk_type,
        "shareable": bool(disk and disk.get("shareable")),
        "lun": disk_type == "lun",
        "virtiofs": disk_type == "filesystem",
        "hotplug": bool(src.get("hotpluggable")) or name in vm_status_hotplug,
    }


def vm_facts(vm, vmi=None, pvcs=None, dvs=None, launcher_pods=(), default_sc=None) -> dict:
    """Facts of one VM (see module doc). ``pvcs``/``dvs`` are dicts keyed '<ns>/<name>'."""
    pvcs, dvs = pvcs or {}, dvs or {}
    md, spec = vm.get("metadata") or {}, vm.get("spec") or {}
    tspec = ((spec.get("template") or {}).get("spec")) or {}
    devs = (tspec.get("domain") or {}).get("devices") or {}
    devices = {"disks": {d.get("name"): d for d in devs.get("disks") or []},
               "filesystems": {f.get("name") for f in devs.get("filesystems") or []}}
    dvt_index = {((t.get("metadata") or {}).get("name")): i
                 for i, t in enumerate(spec.get("dataVolumeTemplates") or [])}
    hotplug = set()
    for req in ((vm.get("status") or {}).get("volumeRequests") or []):
        add = req.get("addVolumeOptions") or {}
        if add.get("name"):
            hotplug.add(add["name"])
    for vs in ((vmi or {}).get("status") or {}).get("volumeStatus") or []:
        if vs.get("hotplugVolume") is not None and vs.get("name"):
            hotplug.add(vs["name"])
    disks, host_disks = [], []
    for vol in tspec.get("volumes") or []:
        if "dataVolume" in vol or "persistentVolumeClaim" in vol:
            disks.append(_disk_facts(vm, vol, devices, dvt_index, pvcs, dvs, hotplug, default_sc))
        elif "hostDisk" in vol:
            host_disks.append(vol.get("name"))
    vmi_status = (vmi or {}).get("status") or {}
    vmi_phase = vmi_status.get("phase") if vmi else None
    return {
        "name": md.get("name"), "namespace": md.get("namespace") or "", "uid": md.get("uid"),
        "runStrategy": run_strategy(vm),
        "running": vmi_phase == "Running",
        "vmiPhase": vmi_phase, "node": vmi_status.get("nodeName"),
        "printableStatus": (vm.get("status") or {}).get("printableStatus"),
        "conditions": _conditions(vm), "vmiConditions": _conditions(vmi),
        "volumeUpdateStrategy": spec.get("updateVolumesStrategy"),
        "placement": of_template(tspec),  # where its launcher pod can run (placement.py)
        "snapshotInProgress": (vm.get("status") or {}).get("snapshotInProgress"),
        "restoreInProgress": (vm.get("status") or {}).get("restoreInProgress"),
        "disks": disks, "hostDisks": host_disks,
        "launcherPods": sorted(p["metadata"]["name"] for p in launcher_pods),
    }


def _launcher_vm(pod) -> Optional[str]:
    """Name of the VMI owning a virt-launcher pod (MTC's rule: ownerReference kind VirtualMachineInstance)."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "VirtualMachineInstance":
            return ref.get("name")
    return None


def build_inventory(vms: Iterable[dict], vmis: Iterable[dict] = (), pvcs: Iterable[dict] = (),
                    datavolumes: Iterable[dict] = (), storageclasses: Iterable[dict] = (),
                    pods: Iterable[dict] = ()) -> dict:
    """All facts the planner and preflight need, from plain object dicts (API lists or -f files)."""
    storageclasses = list(storageclasses)
    pvc_map = {key(p): p for p in pvcs}
    dv_map = {key(d): d for d in datavolumes}
    vmi_map = {key(v): v for v in vmis}
    by_vm: Dict[str, List[dict]] = {}
    for pod in pods:
        owner = _launcher_vm(pod)
        if owner:
            by_vm.setdefault(key(pod["metadata"].get("namespace") or "", owner), []).append(pod)
    default_sc = default_storage_class(storageclasses)
    out = {}
    for vm in vms:
        k = key(vm)
        out[k] = vm_facts(vm, vmi_map.get(k), pvc_map, dv_map, by_vm.get(k, ()), default_sc)
    return {"vms": out, "pvcs": pvc_map,
            "storageClasses": {sc["metadata"]["name"]: sc for sc in storageclasses},
            "defaultStorageClass": default_sc}


def claims_in_use(inventory, namespace) -> Dict[str, str]:
    """claim name -> '<vm>/<volume>' for every VM disk in ``namespace`` (who uses which PVC)."""
    out = {}
    for facts in inventory["vms"].values():
        if facts["namespace"] != namespace:
            continue
        for d in facts["disks"]:
            if d["claim"]:
                out[d["claim"]] = f"{d['vm']}/{d['volume']}"
    return out
