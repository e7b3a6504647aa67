"""Pure builders of the benchmark's objects: one VM's bundle (VM, DataVolume, PVCs, PVs, VMI) and the MTC
objects of a cutover in progress (MigPlan, MigMigration, DirectVolumeMigration, one DVMP per PVC).

Shapes follow shared/reference/kubevirt/samples (01, 05) and shared/reference/mtc/samples (vm-storage-migplan,
status-migmigration-cutover-running, status-dvm-live-migration-running, status-dvmp-running). Status is part of
each builder's output; the filler writes it through the status subresource where the kind has one.
"""
import hashlib
from typing import Dict, List

BENCH_LABEL = "bench.vm-storage.io/n"       # on every object the benchmark creates: the N it belongs to
APP_LABEL = ("app", "vm-storage-bench")     # the VMs' selector for ``migrate -l``
MTC_NS = "openshift-migration"
MIG_GV = "migration.openshift.io/v1alpha1"
SOURCE_SC, TARGET_SC = "standard", "fast"
SUFFIX = "bnch"                              # MigPlan status.suffix: targets are <pvc>-mig-bnch
T0 = "2025-06-01T10:03:30Z"
DIGEST = "bench"                             # status.observedDigest (required by the DVM CRD)


def namespace_for(n: int) -> str:
    return f"bench-n{n}"


def vm_name(i: int) -> str:
    return f"vm-{i:05d}"


def is_running(i: int) -> bool:
    """Every other VM runs (it has a VMI and its disks are live-migrated); the rest are stopped (rsync)."""
    return i % 2 == 0


def claims(i: int) -> List[str]:
    """The two disks of VM i: a DataVolume-template root disk and a plain data PVC."""
    return [f"{vm_name(i)}-rootdisk", f"{vm_name(i)}-data"]


def pv_name(ns: str, claim: str) -> str:
    return "pv-" + hashlib.sha1(f"{ns}/{claim}".encode()).hexdigest()[:20]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _labels(n: int, extra=None) -> Dict[str, str]:
    out = {BENCH_LABEL: str(n)}
    out.update(extra or {})
    return out


def _owner(kind: str, api_version: str, name: str, uid: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


# ---- KubeVirt / CDI / core --------------------------------------------------------------------------------
def vm(n: int, i: int) -> dict:
    name, (root, data) = vm_name(i), claims(i)
    lbl = _labels(n, {APP_LABEL[0]: APP_LABEL[1], "kubevirt.io/vm": name})
    dv_spec = {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}},
                                                    "storageClassName": SOURCE_SC}}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": namespace_for(n), "labels": lbl},
            "spec": {"runStrategy": "Always" if is_running(i) else "Halted",
                     "dataVolumeTemplates": [{"metadata": {"name": root}, "spec": dv_spec}],
                     "template": {"metadata": {"labels": {"kubevirt.io/vm": name}}, "spec": _vmi_spec(root, data)}}}


def _vmi_spec(root: str, data: str) -> dict:
    return {"domain": {"devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}},
                                             {"name": "data", "disk": {"bus": "virtio"}},
                                             {"name": "cloudinitdisk", "disk": {"bus": "virtio"}}],
                                   "interfaces": [{"name": "default", "masquerade": {}}]},
                       "resources": {"requests": {"memory": "128Mi"}}},
            "networks": [{"name": "default", "pod": {}}], "terminationGracePeriodSeconds": 0,
            "volumes": [{"name": "rootdisk", "dataVolume": {"name": root}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": data}},
                        {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}]}


def vm_status(i: int) -> dict:
    ready = is_running(i)
    conds = [{"type": "Ready", "status": str(ready), "lastProbeTime": None, "lastTransitionTime": T0}]
    if ready:
        conds += [{"type": "LiveMigratable", "status": "True", "lastProbeTime": None, "lastTransitionTime": T0},
                  {"type": "StorageLiveMigratable", "status": "True", "lastProbeTime": None,
                   "lastTransitionTime": T0}]
    return {"created": ready, "ready": ready, "printableStatus": "Running" if ready else "Stopped",
            "runStrategy": "Always" if ready else "Halted", "conditions": conds,
            "volumeSnapshotStatuses": [{"name": v, "enabled": False} for v in ("rootdisk", "data", "cloudinitdisk")]}


def vmi(n: int, i: int, vm_uid: str) -> dict:
    """A running VMI (no status subresource: the status goes in with the create)."""
    name, (root, data) = vm_name(i), claims(i)
    node = "node01" if i % 4 == 0 else "node02"
    pvc_info = {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "capacity": {"storage": "1Gi"},
                "requests": {"storage": "1Gi"}, "filesystemOverhead": "0.06"}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": namespace_for(n),
                         "labels": _labels(n, {"kubevirt.io/vm": name, "kubevirt.io/nodeName": node}),
                         "ownerReferences": [_owner("VirtualMachine", "kubevirt.io/v1", name, vm_uid)]},
            "spec": _vmi_spec(root, data),
            "status": {"phase": "Running", "nodeName": node, "migrationMethod": "BlockMigration",
                       "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": T0}
                                      for t in ("Ready", "LiveMigratable", "StorageLiveMigratable")],
                       "volumeStatus": [
                           {"name": "rootdisk", "target": "vda", "persistentVolumeClaimInfo": dict(pvc_info, claimName=root)},
                           {"name": "data", "target": "vdb", "persistentVolumeClaimInfo": dict(pvc_info, claimName=data)},
                           {"name": "cloudinitdisk", "target": "vdc"}]}}


def datavolume(n: int, i: int, vm_uid: str) -> dict:
    root = claims(i)[0]
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": root, "namespace": namespace_for(n), "labels": _labels(n),
                         "ownerReferences": [_owner("VirtualMachine", "kubevirt.io/v1", vm_name(i), vm_uid)]},
            "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}},
                                                          "storageClassName": SOURCE_SC}}}


def datavolume_status(i: int) -> dict:
    conds = [{"type": "Bound", "status": "True", "reason": "Bound", "message": f"PVC {claims(i)[0]} Bound"},
             {"type": "Ready", "status": "True", "reason": "Completed"},
             {"type": "Running", "status": "False", "reason": "Completed"}]
    return {"phase": "Succeeded", "progress": "100.0%", "claimName": claims(i)[0], "conditions": conds}


def pvc(n: int, claim: str, owner_dv_uid: str = None) -> dict:
    ns = namespace_for(n)
    md = {"name": claim, "namespace": ns, "labels": _labels(n),
          "annotations": {"pv.kubernetes.io/bind-completed": "yes"}}
    if owner_dv_uid:
        md["labels"]["app"] = "containerized-data-importer"
        md["annotations"]["cdi.kubevirt.io/storage.pod.phase"] = "Succeeded"
        md["ownerReferences"] = [_owner("DataVolume", "cdi.kubevirt.io/v1beta1", claim, owner_dv_uid)]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "storageClassName": SOURCE_SC,
                     "resources": {"requests": {"storage": "1Gi"}}, "volumeName": pv_name(ns, claim)}}


PVC_STATUS = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}


def pv(n: int, claim: str, pvc_uid: str) -> dict:
    ns = namespace_for(n)
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name(ns, claim), "labels": _labels(n),
                         "annotations": {"pv.kubernetes.io/provisioned-by": "bench"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                     "storageClassName": SOURCE_SC, "persistentVolumeReclaimPolicy": "Delete",
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                                  "name": claim, "uid": pvc_uid},
                     "csi": {"driver": "bench.csi.example.com", "volumeHandle": pv_name(ns, claim)}}}


# ---- MTC: a cutover in progress ---------------------------------------------------------------------------
def plan_name(n: int) -> str:
    return f"vm-storage-{namespace_for(n)}"


def migration_name(n: int) -> str:
    return f"{plan_name(n)}-cutover-bench"


def dvm_name(n: int) -> str:
    return f"{migration_name(n)}-x7bq"


def _own_labels(n: int, extra=None) -> Dict[str, str]:
    # The plugin's labels (engines/mtc/build.py), so `status` recognises the migration as its own.
    return _labels(n, dict({"app.kubernetes.io/managed-by": "kubectl-vm-storage",
                            "vm-storage.kubevirt-tools.io/migration": plan_name(n),
                            "vm-storage.kubevirt-tools.io/engine": "mtc"}, **(extra or {})))


def _cond(ctype, category, message, reason=None):
    c = {"type": ctype, "status": "True", "category": category, "message": message, "lastTransitionTime": T0}
    if reason:
        c["reason"] = reason
    return c


def migplan(n: int) -> dict:
    ns, pvs = namespace_for(n), []
    for i in range(n):
        for claim in claims(i):
            pvs.append({"name": pv_name(ns, claim), "capacity": "1Gi", "storageClass": SOURCE_SC,
                        "supported": {"actions": ["skip", "copy"], "copyMethods": ["filesystem", "block", "snapshot"]},
                        "selection": {"action": "copy", "copyMethod": "filesystem", "storageClass": TARGET_SC},
                        "pvc": {"name": f"{claim}:{claim}-mig-{SUFFIX}", "namespace": ns,
                                "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                                "hasReference": is_running(i), "ownerType": "VirtualMachine"}})
    pvs.sort(key=lambda p: p["name"])
    ref = {"name": "host", "namespace": MTC_NS}
    return {"apiVersion": MIG_GV, "kind": "MigPlan",
            "metadata": {"name": plan_name(n), "namespace": MTC_NS, "labels": _own_labels(n)},
            "spec": {"srcMigClusterRef": dict(ref), "destMigClusterRef": dict(ref), "namespaces": [ns],
                     "liveMigrate": True, "persistentVolumes": pvs}}


def migplan_status() -> dict:
    return {"suffix": SUFFIX, "observedDigest": DIGEST, "conditions": [
        _cond("MigrationTypeIdentified", "Advisory", "This is an intra-cluster migration plan and none of the source "
              "namespaces are mapped to different destination namespaces. This plan can only be used for Storage "
              "Conversion.", "StorageConversionPlan"),
        _cond("PvsDiscovered", "Required", "The `persistentVolumes` list has been updated with discovered PVs.", "Done"),
        _cond("Ready", "Required", "The migration plan is ready.")]}


def migmigration(n: int) -> dict:
    return {"apiVersion": MIG_GV, "kind": "MigMigration",
            "metadata": {"name": migration_name(n), "namespace": MTC_NS,
                         "labels": _own_labels(n, {"vm-storage.kubevirt-tools.io/type": "cutover",
                                                   "migration.openshift.io/migplan-name": plan_name(n)})},
            "spec": {"migPlanRef": {"name": plan_name(n), "namespace": MTC_NS}, "stage": False,
                     "migrateState": True, "quiescePods": True}}


def migmigration_status(n: int) -> dict:
    disks = 2 * n
    return {"observedDigest": DIGEST, "startTimestamp": T0, "phase": "WaitForDirectVolumeMigrationToComplete",
            "itinerary": "Stage",
            "conditions": [_cond("Running", "Advisory", "Step: 32/38", "WaitForDirectVolumeMigrationToComplete"),
                           _cond("Ready", "Required", "The migration is ready.")],
            "pipeline": [{"name": "Prepare", "message": "Completed", "started": T0, "completed": T0},
                         {"name": "StageBackup", "message": "Completed", "started": T0, "completed": T0},
                         {"name": "DirectVolume", "phase": "WaitForDirectVolumeMigrationToComplete",
                          "message": "Running Rsync Pods to migrate Persistent Volume data", "started": T0,
                          "progress": [f"{disks} total volumes; 0 successful; {disks} running; 0 failed"]},
                         {"name": "Cleanup", "message": "Not started"}]}


def dvm(n: int, mig_uid: str) -> dict:
    ns, pvcs = namespace_for(n), []
    for i in range(n):
        for claim in claims(i):
            pvcs.append({"name": claim, "namespace": ns, "targetStorageClass": TARGET_SC,
                         "targetAccessModes": ["ReadWriteOnce"], "targetVolumeMode": "Filesystem",
                         "targetNamespace": ns, "targetName": f"{claim}-mig-{SUFFIX}"})
    ref = {"name": "host", "namespace": MTC_NS}
    return {"apiVersion": MIG_GV, "kind": "DirectVolumeMigration",
            "metadata": {"name": dvm_name(n), "namespace": MTC_NS,
                         "labels": _labels(n, {"app.kubernetes.io/part-of": "openshift-migration",
                                               "migmigration": mig_uid, "migration-direct-volume": mig_uid}),
                         "ownerReferences": [_owner("MigMigration", MIG_GV, migration_name(n), mig_uid)]},
            "spec": {"srcMigClusterRef": dict(ref), "destMigClusterRef": dict(ref), "persistentVolumeClaims": pvcs,
                     "createDestinationNamespaces": True, "liveMigrate": True, "migrationType": "CutOver"}}


def dvm_status(n: int) -> dict:
    """Running: the running VMs' disks in runningLiveMigration, the stopped VMs' in runningPods (rsync)."""
    ns, live, pods, ops = namespace_for(n), [], [], []
    for i in range(n):
        for claim in claims(i):
            ref = {"namespace": ns, "name": claim}
            if is_running(i):
                live.append({"vmName": vm_name(i), "vmNamespace": ns, "pvcRef": dict(ref, kind="PersistentVolumeClaim"),
                             "lastObservedProgressPercent": "50%", "totalElapsedTime": "1m30s"})
            else:
                pods.append({"namespace": ns, "name": f"rsync-{_md5(claim)[:5]}", "pvcRef": ref,
                             "lastObservedProgressPercent": "33%", "lastObservedTransferRate": "66.13MB/s",
                             "totalElapsedTime": "1m30s"})
                ops.append({"pvcReference": ref, "currentAttempt": 1})
    return {"conditions": [_cond("Running", "Advisory", "Step: 18/22", "RunRsyncOperations"),
                           _cond("Ready", "Required", "Direct migration is ready")],
            "observedDigest": DIGEST, "startTimestamp": T0, "phase": "RunRsyncOperations", "itinerary": "VolumeMigration",
            "phaseDescription": "Running Rsync Pods to migrate Persistent Volume data",
            "runningLiveMigration": live, "runningPods": pods, "rsyncOperations": ops}


def dvmp(n: int, claim: str, dvm_uid: str) -> dict:
    ns = namespace_for(n)
    return {"apiVersion": MIG_GV, "kind": "DirectVolumeMigrationProgress",
            # name = md5(dvm name + pvc name + source namespace), as rsync.go createPVProgressCR does
            "metadata": {"name": _md5(f"{dvm_name(n)}{claim}{ns}"), "namespace": MTC_NS,
                         "labels": _labels(n, {"app.kubernetes.io/part-of": "openshift-migration",
                                               "directvolumemigration": dvm_uid}),
                         "ownerReferences": [_owner("DirectVolumeMigration", MIG_GV, dvm_name(n), dvm_uid)]},
            "spec": {"clusterRef": {"name": "host", "namespace": MTC_NS}, "podNamespace": ns,
                     "podSelector": {"migration.openshift.io/created-for-pvc": _md5(claim)}}}


DVMP_STATUS = {"conditions": [_cond("Ready", "Required", "The progress is ready")], "podName": "dvm-rsync",
               "phase": "Running", "lastObservedProgressPercent": "33%", "lastObservedTransferRate": "66.13MB/s",
               "creationTimestamp": T0, "rsyncElapsedTime": "0s", "totalProgressPercentage": "33%",
               "observedDigest": DIGEST}
