"""Manifests of VMs, PVCs and DataVolumes for tests and the sandbox seed (pure builders + ``apply``).

Typical use::

    from tests.sim import factories as F
    F.install_kubevirt(kube); F.install_cdi(kube)
    objs = F.make_vm_bundle("vm1", disks=[F.dv_disk("rootdisk", size="2Gi"),
                                          F.pvc_disk("data", claim="vm1-data"),
                                          F.cloudinit_disk()])
    F.apply(kube, ns, *objs)             # creates the PVC(s) first, then the VM

Shapes follow shared/reference/kubevirt/samples/01-vm-with-datavolume-template.yaml.
"""
from typing import Dict, Iterable, List, Optional, Sequence

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .cdi import install_cdi  # noqa: F401  (re-exported for tests and the sandbox)
from .kubevirt import install_kubevirt  # noqa: F401

DEFAULT_SC = "standard"


# ---- disk specs (plain dicts consumed by make_vm) ----------------------------------------------------
def dv_disk(name: str = "rootdisk", dv: Optional[str] = None, size: str = "1Gi", storage_class: Optional[str] = DEFAULT_SC,
            access_modes: Sequence[str] = ("ReadWriteOnce",), volume_mode: Optional[str] = "Filesystem",
            source: Optional[dict] = None, template: bool = True, api: str = "storage", **disk) -> dict:
    """A disk backed by a DataVolume. ``template=True`` (default) puts it in spec.dataVolumeTemplates
    (the VM controller creates the DV); ``template=False`` references an existing DV (create it with
    ``make_blank_dv``/``make_clone_dv``). ``api`` is "storage" (spec.storage) or "pvc" (spec.pvc).
    ``dv`` defaults to ``<vm>-<name>``. Extra keys (bus, shareable, lun, hotpluggable, bootOrder) go to
    the disk."""
    return {"kind": "dv", "name": name, "claim": dv, "size": size, "storageClass": storage_class,
            "accessModes": list(access_modes) if access_modes else None, "volumeMode": volume_mode,
            "source": source or {"blank": {}}, "template": template, "api": api, "disk": disk}


def pvc_disk(name: str = "data", claim: Optional[str] = None, size: str = "1Gi", storage_class: Optional[str] = DEFAULT_SC,
             access_modes: Sequence[str] = ("ReadWriteOnce",), volume_mode: str = "Filesystem",
             create: bool = True, **disk) -> dict:
    """A disk backed by a plain PVC (``persistentVolumeClaim.claimName``). ``create=True`` makes
    ``make_vm_bundle`` emit the PVC manifest too. Extra keys as for ``dv_disk``."""
    return {"kind": "pvc", "name": name, "claim": claim, "size": size, "storageClass": storage_class,
            "accessModes": list(access_modes), "volumeMode": volume_mode, "create": create, "disk": disk}


def containerdisk_disk(name: str = "containerdisk",
                       image: str = "quay.io/containerdisks/fedora:40") -> dict:
    return {"kind": "containerDisk", "name": name, "image": image, "disk": {}}


def cloudinit_disk(name: str = "cloudinitdisk",
                   user_data: str = "#cloud-config\npassword: fedora\nchpasswd: { expire: False }\n") -> dict:
    return {"kind": "cloudInit", "name": name, "userData": user_data, "disk": {}}


def hostdisk_disk(name: str = "hostdisk", path: str = "/var/lib/vm-disks/disk.img", shared: bool = False) -> dict:
    return {"kind": "hostDisk", "name": name, "path": path, "shared": shared, "disk": {}}


def virtiofs_fs(name: str = "shared-fs", claim: Optional[str] = None, **pvc) -> dict:
    """A PVC exposed to the guest as a virtiofs ``filesystem`` (not a disk): never volume-migratable."""
    d = pvc_disk(name, claim, **pvc)
    d["filesystem"] = True
    return d


# ---- builders -----------------------------------------------------------------------------------------
def _storage_spec(d: dict) -> dict:
    s = {"resources": {"requests": {"storage": d["size"]}}}
    if d.get("accessModes"):
        s["accessModes"] = list(d["accessModes"])
    if d.get("volumeMode"):
        s["volumeMode"] = d["volumeMode"]
    if d.get("storageClass"):
        s["storageClassName"] = d["storageClass"]
    return s


def make_pvc(name: str, size: str = "1Gi", storage_class: Optional[str] = DEFAULT_SC,
             access_modes: Sequence[str] = ("ReadWriteOnce",), volume_mode: str = "Filesystem",
             namespace: Optional[str] = None, labels: Optional[Dict[str, str]] = None) -> dict:
    """A plain PVC (the CDI stand-in binds it: creates a PV, status.phase Bound, capacity)."""
    md = {"name": name}
    if namespace:
        md["namespace"] = namespace
    if labels:
        md["labels"] = dict(labels)
    spec = {"accessModes": list(access_modes), "volumeMode": volume_mode,
            "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md, "spec": spec}


def make_blank_dv(name: str, size: str = "1Gi", storage_class: Optional[str] = DEFAULT_SC,
                  access_modes: Optional[Sequence[str]] = ("ReadWriteOnce",), volume_mode: Optional[str] = "Filesystem",
                  namespace: Optional[str] = None, api: str = "storage",
                  annotations: Optional[Dict[str, str]] = None) -> dict:
    """A ``source: {blank: {}}`` DataVolume, like samples/02 (a live-migration destination)."""
    d = {"size": size, "storageClass": storage_class, "accessModes": access_modes, "volumeMode": volume_mode}
    return _dv(name, {"blank": {}}, d, namespace, api, annotations)


def make_clone_dv(name: str, source_pvc: str, source_namespace: str, storage_class: Optional[str] = DEFAULT_SC,
                  size: Optional[str] = None, access_modes: Optional[Sequence[str]] = None,
                  volume_mode: Optional[str] = None, namespace: Optional[str] = None,
                  annotations: Optional[Dict[str, str]] = None) -> dict:
    """A ``source: {pvc: {namespace, name}}`` clone DataVolume (the offline path; the CRD requires the
    source namespace). Size may be omitted with spec.storage: CDI then uses the source size."""
    storage = {}
    if size:
        storage["resources"] = {"requests": {"storage": size}}
    if access_modes:
        storage["accessModes"] = list(access_modes)
    if volume_mode:
        storage["volumeMode"] = volume_mode
    if storage_class:
        storage["storageClassName"] = storage_class
    md = {"name": name}
    if namespace:
        md["namespace"] = namespace
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": md,
            "spec": {"source": {"pvc": {"namespace": source_namespace, "name": source_pvc}}, "storage": storage}}


def _dv(name, source, d, namespace=None, api="storage", annotations=None) -> dict:
    md = {"name": name}
    if namespace:
        md["namespace"] = namespace
    if annotations:
        md["annotations"] = dict(annotations)
    spec = {"source": source}
    if api == "pvc":  # raw PersistentVolumeClaimSpec: k8s semantics, no profile defaults
        spec["pvc"] = _storage_spec(d)
        spec["pvc"].setdefault("accessModes", ["ReadWriteOnce"])
    else:
        spec["storage"] = _storage_spec(d)
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": md, "spec": spec}


def make_vm(name: str, disks: Optional[Iterable[dict]] = None, running: bool = True,
            run_strategy: Optional[str] = None, namespace: Optional[str] = None,
            labels: Optional[Dict[str, str]] = None, annotations: Optional[Dict[str, str]] = None,
            update_volumes_strategy: Optional[str] = None, memory: str = "128Mi",
            use_running_field: bool = False, bridge_on_pod_network: bool = False) -> dict:
    """A VirtualMachine like samples/01. ``disks`` defaults to one DataVolume-template root disk
    (``<name>-rootdisk``, blank, 1Gi on ``standard``) plus a cloud-init disk.

    ``running``: runStrategy Always/Halted (or the deprecated ``spec.running`` when
    ``use_running_field``); ``run_strategy`` overrides it. ``bridge_on_pod_network`` makes the VMI
    non-migratable for non-storage reasons (StorageLiveMigratable False).
    """
    if disks is None:
        disks = [dv_disk("rootdisk"), cloudinit_disk()]
    vm_labels = {"kubevirt.io/vm": name, **(labels or {})}
    dvts, vols, ddisks, fss = [], [], [], []
    for d in disks:
        vname = d["name"]
        disk_extra = dict(d.get("disk") or {})
        hot = disk_extra.pop("hotpluggable", False)
        if d["kind"] == "dv":
            claim = d.get("claim") or f"{name}-{vname}"
            vol = {"name": vname, "dataVolume": {"name": claim}}
            if hot:
                vol["dataVolume"]["hotpluggable"] = True
            if d.get("template", True):
                dvts.append({"metadata": {"name": claim},
                             "spec": _dv(claim, d["source"], d, api=d.get("api", "storage"))["spec"]})
        elif d["kind"] == "pvc":
            claim = d.get("claim") or f"{name}-{vname}"
            vol = {"name": vname, "persistentVolumeClaim": {"claimName": claim}}
            if hot:
                vol["persistentVolumeClaim"]["hotpluggable"] = True
        elif d["kind"] == "containerDisk":
            vol = {"name": vname, "containerDisk": {"image": d["image"]}}
        elif d["kind"] == "cloudInit":
            vol = {"name": vname, "cloudInitNoCloud": {"userData": d["userData"]}}
        elif d["kind"] == "hostDisk":
            vol = {"name": vname, "hostDisk": {"path": d["path"], "type": "DiskOrCreate", "capacity": "1Gi",
                                                "shared": d["shared"]}}
        else:
            raise ValueError(f"unknown disk kind {d['kind']!r}")
        vols.append(vol)
        if d.get("filesystem"):
            fss.append({"name": vname, "virtiofs": {}})
            continue
        disk = {"name": vname}
        if disk_extra.pop("lun", False):
            lun = {"bus": disk_extra.pop("bus", "scsi")}
            if disk_extra.pop("reservation", False):
                lun["reservation"] = True
            disk["lun"] = lun
        else:
            disk["disk"] = {"bus": disk_extra.pop("bus", "scsi" if hot else "virtio")}
        disk.update(disk_extra)  # shareable, bootOrder, serial, cache...
        ddisks.append(disk)
    iface = {"name": "default", "bridge": {}} if bridge_on_pod_network else {"name": "default", "masquerade": {}}
    devices = {"disks": ddisks, "interfaces": [iface]}
    if fss:
        devices["filesystems"] = fss
    md = {"name": name, "labels": vm_labels}
    if namespace:
        md["namespace"] = namespace
    if annotations:
        md["annotations"] = dict(annotations)
    spec = {"template": {"metadata": {"labels": dict(vm_labels)},
                         "spec": {"domain": {"devices": devices, "resources": {"requests": {"memory": memory}}},
                                  "terminationGracePeriodSeconds": 0, "networks": [{"name": "default", "pod": {}}],
                                  "volumes": vols}}}
    if dvts:
        spec["dataVolumeTemplates"] = dvts
    if use_running_field and run_strategy is None:
        spec["running"] = bool(running)
    else:
        spec["runStrategy"] = run_strategy or ("Always" if running else "Halted")
    if update_volumes_strategy:
        spec["updateVolumesStrategy"] = update_volumes_strategy
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": md, "spec": spec}


def make_vm_bundle(name: str, disks: Optional[Iterable[dict]] = None, **vm_kw) -> List[dict]:
    """The PVCs for ``pvc_disk(create=True)`` disks followed by the VM (pass to ``apply``)."""
    disks = list(disks) if disks is not None else None
    out = []
    for d in disks or []:
        if d["kind"] == "pvc" and d.get("create", True):
            out.append(make_pvc(d.get("claim") or f"{name}-{d['name']}", d["size"], d["storageClass"],
                                d["accessModes"], d["volumeMode"]))
    return out + [make_vm(name, disks, **vm_kw)]


def apply(kube, namespace: str, *objs: dict) -> List[dict]:
    """Create each manifest in ``namespace`` (by kind); returns the created objects."""
    out = []
    for o in objs:
        res = R.BY_KIND[o["kind"]]
        out.append(kube.create(res, o, namespace if res.namespaced else None))
    return out


def create_or_replace(kube, namespace: Optional[str], obj: dict) -> dict:
    res = R.BY_KIND[obj["kind"]]
    ns = namespace if res.namespaced else None
    try:
        return kube.create(res, obj, ns)
    except errors.Conflict:
        cur = kube.get(res, obj["metadata"]["name"], ns)
        body = dict(obj, metadata=dict(obj["metadata"], resourceVersion=cur["metadata"]["resourceVersion"]))
        return kube.replace(res, body, ns)
