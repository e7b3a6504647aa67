"""The VM revision recorded when a VMI starts, and the RestartRequired rule computed against it.

Upstream: pkg/virt-controller/watch/vm/vm.go — startVMI → createVMRevision (ControllerRevision
``revision-start-vm-<vm uid>-<generation>``, data ``{"spec": <vm spec>}``, deleteOlderVMRevision),
sync → getLastVMRevisionSpec → syncRestartRequired (addRestartRequiredIfNeeded before v1.8).
The stand-in writes real apps/v1 ControllerRevisions (the test API server serves them), so a test or a user can
``kubectl get controllerrevisions`` as on a real cluster.
"""
from typing import Dict, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import delete_any, owner_ref
from .kubevirt_model import deep, devices_of, disks_by_name, is_hotpluggable, vmi_spec_of, volumes_of

CONTROLLER_REVISION = R.Resource("apps", "v1", "controllerrevisions", "ControllerRevision")
PREFIX = "revision-start-vm-"


def revision_name(vm: dict) -> str:
    """vm.go getVMRevisionName."""
    return f"{PREFIX}{vm['metadata']['uid']}-{vm['metadata'].get('generation', 1)}"


def create_revision(kube, vm: dict, existing) -> str:
    """vm.go createVMRevision + deleteOlderVMRevision: one revision per VM, of the generation being started."""
    name = revision_name(vm)
    md = vm["metadata"]
    for cr in existing:
        if cr["metadata"]["name"].startswith(f"{PREFIX}{md['uid']}-") and cr["metadata"]["name"] != name:
            delete_any(kube, CONTROLLER_REVISION, cr["metadata"]["name"], md["namespace"])
    body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": md["namespace"], "ownerReferences": [owner_ref(vm)]},
            "data": {"spec": deep(vm.get("spec") or {})}, "revision": md.get("generation", 1)}
    try:
        kube.create(CONTROLLER_REVISION, body, md["namespace"])
    except errors.Conflict:
        pass  # createNotNeeded: this generation is already recorded
    return name


def last_revision_spec(revisions, vm: dict) -> Optional[dict]:
    """vm.go getLastVMRevisionSpec: the spec of the highest-generation start revision of this VM, or None."""
    best, spec = -1, None
    prefix = f"{PREFIX}{vm['metadata']['uid']}-"
    for cr in revisions:
        name = cr["metadata"]["name"]
        if not name.startswith(prefix):
            continue
        try:
            gen = int(name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if gen > best:
            best, spec = gen, (cr.get("data") or {}).get("spec")
    return spec


def _by_name(items) -> Dict[str, dict]:
    return {i.get("name"): i for i in items or []}


def valid_live_update_volumes(old_spec: dict, vm: dict) -> bool:
    """vm.go validLiveUpdateVolumes: hotplug volumes may change; a PVC/DataVolume volume may change its claim
    only while ``spec.updateVolumesStrategy`` is Migration; any other change, added or removed volume is not
    live-updatable."""
    old = _by_name(volumes_of(old_spec))
    migration = (vm.get("spec") or {}).get("updateVolumesStrategy") == "Migration"
    for v in volumes_of(vmi_spec_of(vm)):
        name = v.get("name")
        if is_hotpluggable(v):
            old.pop(name, None)
        elif name not in old:
            return False
        elif ("persistentVolumeClaim" in v or "dataVolume" in v) and migration:
            old.pop(name)
        elif old[name] != v:
            return False
        else:
            old.pop(name)
    return all(is_hotpluggable(v) for v in old.values())


def valid_live_update_disks(old_spec: dict, cur_spec: dict) -> bool:
    """vm.go validLiveUpdateDisks: only disks of hotplug volumes may be added, changed or removed (and a
    removed CD-ROM always needs a restart)."""
    old_disks, old_vols = disks_by_name(old_spec), _by_name(volumes_of(old_spec))
    vols, new_disks = _by_name(volumes_of(cur_spec)), disks_by_name(cur_spec)
    for d in devices_of(cur_spec).get("disks") or []:
        name = d.get("name")
        if name in vols and is_hotpluggable(vols[name]):
            old_disks.pop(name, None)
        elif name not in old_disks or old_disks[name] != d:
            return False
        else:
            old_disks.pop(name)
    for name, d in old_disks.items():
        if name in old_vols and not is_hotpluggable(old_vols[name]):
            return False
        if "cdrom" in d and name not in new_disks:
            return False
    return True


def _take(dst: dict, src: dict, *path) -> None:
    """dst[path] = src[path] (or absent when src has none): 'copy the live-updatable field over'."""
    for key in path[:-1]:
        src = (src or {}).get(key) or {}
        dst = dst.setdefault(key, {})
    if path[-1] in (src or {}):
        dst[path[-1]] = deep(src[path[-1]])
    else:
        dst.pop(path[-1], None)


def restart_required(start_vm_spec: Optional[dict], vm: dict, live_update: bool) -> bool:
    """vm.go syncRestartRequired (addRestartRequiredIfNeeded before v1.8): the VM template is compared with the
    spec recorded in the VM revision when the VMI was started (getLastVMRevisionSpec), not with the VMI. Volumes
    and disks count as unchanged when valid_live_update_*; with the LiveUpdate rollout CPU sockets, guest memory,
    nodeSelector, affinity and tolerations too. (Interfaces/networks, instance types and the firmware UUID
    neutralisation are not modelled: the stand-in's VMs do not change them.)"""
    if start_vm_spec is None:
        return False  # no revision (VMI started before the stand-in recorded one): nothing to compare
    last = deep(((start_vm_spec.get("template") or {}).get("spec")) or {})
    cur = vmi_spec_of(vm)
    if valid_live_update_volumes(last, vm):
        _take(last, cur, "volumes")
    if valid_live_update_disks(last, cur):
        _take(last, cur, "domain", "devices", "disks")
    if live_update:
        if (last.get("domain") or {}).get("cpu") is not None and (cur.get("domain") or {}).get("cpu") is not None:
            _take(last, cur, "domain", "cpu", "sockets")
        if ((cur.get("domain") or {}).get("memory") or {}).get("guest") is not None:
            _take(last, cur, "domain", "memory", "guest")
        for key in ("nodeSelector", "affinity", "tolerations"):
            _take(last, cur, key)
    return _pruned(last) != _pruned(cur)


def _pruned(obj):
    """equality.Semantic.DeepEqual treats an empty map/list like an absent one after a JSON round trip."""
    if isinstance(obj, dict):
        out = {k: _pruned(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in ({}, [], None)}
    if isinstance(obj, list):
        return [_pruned(v) for v in obj]
    return obj


