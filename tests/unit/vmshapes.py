"""Small builders of VM / PVC / DataVolume / StorageClass dicts for the unit tests of the pure core."""


def sc(name, default=False, provisioner="csi.example.com"):
    ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": ann}, "provisioner": provisioner}


def pvc(name, ns="ns1", sc_name="standard", size="10Gi", capacity=None, modes=("ReadWriteOnce",),
        volume_mode="Filesystem", phase="Bound", labels=None):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"storageClassName": sc_name, "accessModes": list(modes), "volumeMode": volume_mode,
                     "resources": {"requests": {"storage": size}}, "volumeName": "pv-" + name},
            "status": {"phase": phase, "capacity": {"storage": capacity or size}, "accessModes": list(modes)}}


def dv(name, ns="ns1", phase="Succeeded"):
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": ns}, "spec": {"storage": {}}, "status": {"phase": phase}}


def vm(name, ns="ns1", pvcs=(), dvs=(), templates=(), run_strategy="Always", running=None, extra_volumes=(),
       disks_override=None, filesystems=(), labels=None):
    """pvcs: [(volume, claim)], dvs: [(volume, dvname)], templates: [(dvname, sc, size)]."""
    vols, disks = [], []
    for vol, claim in pvcs:
        vols.append({"name": vol, "persistentVolumeClaim": {"claimName": claim}})
        disks.append({"name": vol, "disk": {"bus": "virtio"}})
    for vol, dvname in dvs:
        vols.append({"name": vol, "dataVolume": {"name": dvname}})
        disks.append({"name": vol, "disk": {"bus": "virtio"}})
    for v in extra_volumes:
        vols.append(v)
        disks.append({"name": v["name"], "disk": {"bus": "virtio"}})
    if disks_override:
        disks = [disks_override.get(d["name"], d) for d in disks]
    spec = {"template": {"metadata": {}, "spec": {
        "domain": {"devices": {"disks": disks, "filesystems": [{"name": f, "virtiofs": {}} for f in filesystems]}},
        "volumes": vols}}}
    if running is not None:
        spec["running"] = running
    else:
        spec["runStrategy"] = run_strategy
    if templates:
        spec["dataVolumeTemplates"] = [
            {"metadata": {"name": n}, "spec": {"storage": {"storageClassName": s,
                                                           "resources": {"requests": {"storage": size}}},
                                               "source": {"blank": {}}}} for n, s, size in templates]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-" + name, "labels": labels or {}},
            "spec": spec, "status": {}}


def vmi(name, ns="ns1", phase="Running", node="node01", conditions=(), volume_status=()):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": ns},
            "status": {"phase": phase, "nodeName": node, "conditions": list(conditions),
                       "volumeStatus": list(volume_status)}}


def launcher_pod(vm_name, ns="ns1", claims=()):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"virt-launcher-{vm_name}-abcde", "namespace": ns,
                         "ownerReferences": [{"kind": "VirtualMachineInstance", "name": vm_name}]},
            "spec": {"volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]},
            "status": {"phase": "Running"}}
