"""The KubeVirt stand-in against the real API server, driven as a user would (samples/03 patches).

Shapes are checked against shared/reference/kubevirt/samples/04-07.
"""
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import kubevirt_model as M
from tests.sim.common import set_faults, wait_for
from tests.sim.kvtest_helpers import (condition, dst_dv, get, revert, running_vm, start_migration, start_vm, vmims,
                                      wait_obj)

PHASES = ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]


# ---- pure rules (no cluster) ------------------------------------------------------------------------
def test_invalid_volumes_message_matches_go_format():
    vm = F.make_vm("v", disks=[F.pvc_disk("a", claim="a-new", shareable=True), F.pvc_disk("b", claim="b-new", lun=True),
                               F.virtiofs_fs("c", claim="c-new")])
    vmi_spec = M.deep(M.vmi_spec_of(vm))
    for v in vmi_spec["volumes"]:
        v["persistentVolumeClaim"]["claimName"] = v["name"] + "-old"
    msg = M.invalid_volumes_message(vmi_spec, M.vmi_spec_of(vm), {}, {}, allow_hotplug=True)
    assert msg == "invalid volumes to update with migration: filesystems: [c] shareable: [a] luns: [b]"


def test_guest_size_filesystem_destination_of_same_nominal_size_is_smaller():
    block = {"volumeMode": "Block", "capacity": {"storage": "2Gi"}}
    fs = {"volumeMode": "Filesystem", "capacity": {"storage": "2Gi"}}
    assert M.guest_size(fs, 0.06) < M.guest_size(block, 0.06)
    assert M.guest_size({"volumeMode": "Filesystem", "capacity": {"storage": "2179Mi"}}, 0.06) >= M.guest_size(block, 0.06)


def test_storage_live_migratable_false_for_persistent_reservation_only():
    vmi = {"spec": M.vmi_spec_of(F.make_vm("v", disks=[F.pvc_disk("d", lun=True, reservation=True)])),
           "status": {"volumeStatus": [{"name": "d", "persistentVolumeClaimInfo": {"accessModes": ["ReadWriteMany"]}}]}}
    conds, _ = M.migratable_conditions(vmi)
    live, storage = conds
    assert (live["status"], live["reason"]) == ("False", "PersistentReservationNotLiveMigratable")
    assert storage == {"type": "StorageLiveMigratable", "status": "False", "reason": "NotMigratable",
                       "message": "PersistentReservationNotLiveMigratable: VMI uses SCSI persistent reservation",
                       "lastProbeTime": None, "lastTransitionTime": None}


# ---- cluster (fixture ``kv`` in tests/sim/conftest.py) ---------------------------------------------------
_start_vm, _dst_dv, _start_migration, _revert = start_vm, dst_dv, start_migration, revert


@pytest.mark.cluster
def test_vm_runs_with_vmi_launcher_pod_and_migratability(kv, namespace):
    vm, vmi = _start_vm(kv, namespace)
    assert vm["status"]["ready"] is True and vm["status"]["created"] is True
    assert vmi["status"]["nodeName"] == "node01"
    assert vmi["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    live = condition(vmi, "LiveMigratable")
    assert live["status"] == "False" and live["reason"] == "DisksNotLiveMigratable"
    assert live["message"].startswith("cannot migrate VMI: PVC src-dv is not shared")
    assert condition(vmi, "StorageLiveMigratable")["status"] == "True"
    assert condition(vm, "StorageLiveMigratable")["status"] == "True"  # VMI conditions are mirrored
    vs = {s["name"]: s for s in vmi["status"]["volumeStatus"]}
    assert vs["datavolumedisk1"]["persistentVolumeClaimInfo"]["claimName"] == "src-dv"
    assert vs["datavolumedisk1"]["target"] == "vda"
    pods = kv.items(R.POD, namespace, label_selector="kubevirt.io=virt-launcher")
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running"
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachineInstance"
    assert {"name": "datavolumedisk1", "persistentVolumeClaim": {"claimName": "src-dv"}} in pods[0]["spec"]["volumes"]
    # stop through runStrategy (no subresources API here): VMI and pod go away, VM Stopped
    kv.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Halted"}}, namespace)
    wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: o["status"].get("printableStatus") == "Stopped", "Stopped")
    assert get(kv, R.VMI, "vm-dv", namespace) is None
    assert kv.items(R.POD, namespace, label_selector="kubevirt.io=virt-launcher") == []


@pytest.mark.cluster
def test_volume_migration_succeeds(kv, namespace):
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    _start_migration(kv, namespace)
    seen = {}

    def mid_flight():
        vm = get(kv, R.VM, "vm-dv", namespace)
        vmi = get(kv, R.VMI, "vm-dv", namespace)
        if vmi and vmi["status"].get("migratedVolumes"):
            seen["vmi"] = vmi
        if vm and (vm.get("status") or {}).get("printableStatus") == "Migrating":
            seen["migrating"] = True
        return "vmi" in seen
    wait_for(mid_flight, timeout=30, what="VMI migratedVolumes")
    mv = seen["vmi"]["status"]["migratedVolumes"][0]
    assert mv["volumeName"] == "datavolumedisk1"
    assert mv["sourcePVCInfo"]["claimName"] == "src-dv" and mv["destinationPVCInfo"]["claimName"] == "dst-dv"
    assert mv["destinationPVCInfo"]["volumeMode"] == "Block"
    assert condition(seen["vmi"], "VolumesChange")["message"] == "migrate volumes"
    assert seen["vmi"]["spec"]["volumes"][0]["dataVolume"]["name"] == "dst-dv"
    wait_for(lambda: vmims(kv, namespace, "vm-dv"), what="VMIM")
    vmim = vmims(kv, namespace, "vm-dv")[0]
    md = vmim["metadata"]
    assert md["generateName"] == "kubevirt-workload-update-" and md["name"].startswith("kubevirt-workload-update-")
    assert md["annotations"] == {"kubevirt.io/workloadUpdateMigration": ""}
    assert md["labels"] == {"kubevirt.io/volume-update-migration": "vm-dv", "kubevirt.io/vmi-name": "vm-dv"}
    assert vmim["spec"]["vmiName"] == "vm-dv"
    vmim = wait_obj(kv, R.VMIM, md["name"], namespace, lambda o: (o.get("status") or {}).get("phase") == "Succeeded",
                    "VMIM Succeeded")
    assert [p["phase"] for p in vmim["status"]["phaseTransitionTimestamps"]] == PHASES
    vmi = get(kv, R.VMI, "vm-dv", namespace)
    ms = vmi["status"]["migrationState"]
    assert ms["migrationUid"] == md["uid"] and ms["completed"] is True and ms["failed"] is False
    assert (ms["sourceNode"], ms["targetNode"]) == ("node01", "node02")
    assert ms["targetNodeDomainReadyTimestamp"] and ms["startTimestamp"] and ms["endTimestamp"]
    assert vmim["status"]["migrationState"]["migrationUid"] == md["uid"]
    assert vmi["status"]["nodeName"] == "node02"
    assert not vmi["status"].get("migratedVolumes") and condition(vmi, "VolumesChange") is None
    vs = {s["name"]: s for s in vmi["status"]["volumeStatus"]}
    assert vs["datavolumedisk1"]["persistentVolumeClaimInfo"]["claimName"] == "dst-dv"
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: o["status"].get("printableStatus") == "Running", "Running")
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"  # KubeVirt never clears it
    state = vm["status"]["volumeUpdateState"]["volumeMigrationState"]["migratedVolumes"][0]
    assert state["sourcePVCInfo"]["claimName"] == "src-dv" and state["destinationPVCInfo"]["claimName"] == "dst-dv"
    assert condition(vm, "VolumesChange") is None
    pods = {p["spec"].get("nodeName"): p for p in kv.items(R.POD, namespace, label_selector="kubevirt.io=virt-launcher")}
    assert pods["node01"]["status"]["phase"] == "Succeeded" and pods["node02"]["status"]["phase"] == "Running"
    assert {"name": "datavolumedisk1", "persistentVolumeClaim": {"claimName": "dst-dv"}} in pods["node02"]["spec"]["volumes"]


@pytest.mark.cluster
def test_volume_migration_failure_retries_with_backoff(kv, namespace):
    set_faults(kv, namespace, liveMigrationFail=2)
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    _start_migration(kv, namespace)
    wait_for(lambda: [m for m in vmims(kv, namespace, "vm-dv") if m.get("status", {}).get("phase") == "Succeeded"],
             timeout=60, what="a Succeeded VMIM after two failures")
    ms = vmims(kv, namespace, "vm-dv")
    assert [m["status"]["phase"] for m in ms] == ["Failed", "Failed", "Succeeded"]
    for failed in ms[:2]:
        st = failed["status"]["migrationState"]
        assert st["failed"] is True and st["completed"] is True
        assert st["failureReason"].startswith("Live migration failed")
        assert failed["status"]["phaseTransitionTimestamps"][-1]["phase"] == "Failed"
    events = kv.items(R.EVENT, namespace, field_selector=f"involvedObject.name={ms[1]['metadata']['name']}")
    assert "MigrationBackoff" in {e["reason"] for e in events}


@pytest.mark.cluster
def test_volume_migration_cancel_by_revert(kv, namespace):
    set_faults(kv, namespace, liveMigrationFail="true")  # keeps failing: a migration stays pending
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    _start_migration(kv, namespace)
    wait_obj(kv, R.VMI, "vm-dv", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange")
    wait_for(lambda: vmims(kv, namespace, "vm-dv"), what="VMIM")
    _revert(kv, namespace)
    vmi = wait_obj(kv, R.VMI, "vm-dv", namespace,
                   lambda o: (condition(o, "VolumesChange") or {}).get("reason") == "VolumesChangeCancellation",
                   "VolumesChangeCancellation")
    assert condition(vmi, "VolumesChange")["status"] == "False"
    assert not vmi["status"].get("migratedVolumes")
    assert vmi["spec"]["volumes"][0]["dataVolume"]["name"] == "src-dv"
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: "volumeUpdateState" not in o["status"], "state cleared")
    time.sleep(0.5)  # a few passes: nothing must restart the migration
    assert all(m.get("status", {}).get("phase") in ("Succeeded", "Failed") for m in vmims(kv, namespace, "vm-dv"))
    assert (condition(vm, "VolumesChange") or {}).get("reason") == "VolumesChangeCancellation"
    assert condition(get(kv, R.VM, "vm-dv", namespace), "RestartRequired") is None


@pytest.mark.cluster
def test_manual_recovery_required_when_stopped_mid_migration(kv, namespace):
    set_faults(kv, namespace, liveMigrationFail="true")
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    _start_migration(kv, namespace)
    wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange on VM")
    kv.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Halted"}}, namespace)
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "ManualRecoveryRequired") is not None, "MRR")
    c = condition(vm, "ManualRecoveryRequired")
    assert (c["status"], c["reason"]) == ("True", "VMI was removed or was final during the volume migration")
    assert condition(vm, "VolumesChange")["status"] == "True"  # S7: syncConditions keeps it without a VMI
    assert vm["status"]["printableStatus"] == "Stopped"
    assert vm["status"]["volumeUpdateState"]["volumeMigrationState"]["migratedVolumes"][0]["volumeName"] == "datavolumedisk1"
    kv.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Always"}}, namespace)
    time.sleep(1.0)  # ~20 passes: the controller refuses to start it
    assert get(kv, R.VMI, "vm-dv", namespace) is None
    # accept the destinations (samples/03 accept_destination_after_interrupted_copy): recovery cleared, VM starts
    kv.patch(R.VM, "vm-dv", [{"op": "remove", "path": "/spec/updateVolumesStrategy"}], namespace, patch_type="json")
    vm, vmi = running_vm(kv, namespace, "vm-dv")
    assert condition(vm, "ManualRecoveryRequired") is None and "volumeUpdateState" not in vm["status"]
    assert vmi["spec"]["volumes"][0]["dataVolume"]["name"] == "dst-dv"


@pytest.mark.cluster
def test_target_never_schedules_on_a_single_schedulable_node(kv, namespace):
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    kv.patch(R.NODE, "node02", {"spec": {"unschedulable": True}})
    try:
        _start_migration(kv, namespace)
        wait_for(lambda: [m for m in vmims(kv, namespace, "vm-dv") if m.get("status", {}).get("phase") == "Scheduling"],
                 what="VMIM Scheduling")
        first = wait_for(lambda: [m for m in vmims(kv, namespace, "vm-dv")
                                  if m.get("status", {}).get("phase") == "Failed"], what="VMIM Failed")[0]
        phases = [p["phase"] for p in first["status"]["phaseTransitionTimestamps"]]
        assert phases == ["Pending", "Scheduling", "Failed"]
        reasons = {e["reason"] for e in kv.items(R.EVENT, namespace,
                                                 field_selector=f"involvedObject.name={first['metadata']['name']}")}
        assert "MigrationTargetPodUnschedulable" in reasons
        assert get(kv, R.VMI, "vm-dv", namespace)["status"]["nodeName"] == "node01"
    finally:
        kv.patch(R.NODE, "node02", {"spec": {"unschedulable": None}})
    wait_for(lambda: [m for m in vmims(kv, namespace, "vm-dv") if m.get("status", {}).get("phase") == "Succeeded"],
             timeout=60, what="a later attempt succeeding once node02 is schedulable again")


@pytest.mark.cluster
def test_shareable_disk_is_refused_with_restart_required(kv, namespace):
    disks = [F.pvc_disk("shared", claim="shared-src", access_modes=("ReadWriteMany",), shareable=True)]
    _start_vm(kv, namespace, "vm-sh", disks)
    F.apply(kv, namespace, F.make_pvc("shared-dst", storage_class="fast", access_modes=("ReadWriteMany",)))
    kv.patch(R.VM, "vm-sh", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "shared", "persistentVolumeClaim": {"claimName": "shared-dst"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    vm = wait_obj(kv, R.VM, "vm-sh", namespace, lambda o: condition(o, "RestartRequired") is not None, "RestartRequired")
    assert condition(vm, "RestartRequired")["message"] == "invalid volumes to update with migration: shareable: [shared]"
    # real virt-handler: StorageLiveMigratable ignores disks (API.md (b)); the shared RWX PVC is LiveMigratable
    assert condition(vm, "StorageLiveMigratable")["status"] == "True"
    assert condition(vm, "LiveMigratable")["status"] == "True"
    assert vmims(kv, namespace, "vm-sh") == []


@pytest.mark.cluster
def test_storage_live_migratable_false_blocks_the_update(kv, namespace):
    disks = [F.pvc_disk("lun0", claim="lun-src", access_modes=("ReadWriteMany",), lun=True, reservation=True)]
    _, vmi = _start_vm(kv, namespace, "vm-pr", disks)
    c = condition(vmi, "StorageLiveMigratable")
    assert (c["status"], c["reason"]) == ("False", "NotMigratable")
    F.apply(kv, namespace, F.make_pvc("lun-dst", storage_class="fast", access_modes=("ReadWriteMany",)))
    kv.patch(R.VM, "vm-pr", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "lun0", "persistentVolumeClaim": {"claimName": "lun-dst"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    vm = wait_obj(kv, R.VM, "vm-pr", namespace, lambda o: condition(o, "RestartRequired") is not None, "RestartRequired")
    assert condition(vm, "RestartRequired")["message"] == "invalid volumes to update with migration: luns: [lun0]"


@pytest.mark.cluster
def test_partial_rwo_update_needs_restart(kv, namespace):
    disks = [F.pvc_disk("a", claim="a-src"), F.pvc_disk("b", claim="b-src")]
    _start_vm(kv, namespace, "vm-2", disks)
    F.apply(kv, namespace, F.make_pvc("a-dst", storage_class="fast"))
    kv.patch(R.VM, "vm-2", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "a", "persistentVolumeClaim": {"claimName": "a-dst"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    vm = wait_obj(kv, R.VM, "vm-2", namespace, lambda o: condition(o, "RestartRequired") is not None, "RestartRequired")
    assert condition(vm, "RestartRequired")["message"] == \
        "cannot migrate the VM. The volume b is RWO and not included in the migration volumes"


@pytest.mark.cluster
def test_filesystem_destination_of_same_size_as_block_source_fails_smaller(kv, namespace):
    """kubevirt/kubevirt#12875: a Filesystem PVC of the Block source's nominal size is too small."""
    _start_vm(kv, namespace, "vm-blk", [F.pvc_disk("disk0", claim="blk-src", size="2Gi", volume_mode="Block")])
    F.apply(kv, namespace, F.make_pvc("fs-dst", size="2Gi", storage_class="fast", volume_mode="Filesystem"))
    kv.patch(R.VM, "vm-blk", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "disk0", "persistentVolumeClaim": {"claimName": "fs-dst"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    failed = wait_for(lambda: [m for m in vmims(kv, namespace, "vm-blk")
                               if m.get("status", {}).get("phase") == "Failed"], what="failed VMIM")[0]
    assert failed["status"]["migrationState"]["failureReason"].startswith(
        "Volume migration cannot be performed because the destination volume is smaller than the source volume: ")
    vmi = get(kv, R.VMI, "vm-blk", namespace)
    assert condition(vmi, "VolumesChange")["status"] == "True"  # stays pending: retried until cancelled
    assert vmi["status"]["migrationState"]["failed"] is True
    kv.patch(R.VM, "vm-blk", [{"op": "replace", "path": "/spec/template/spec/volumes/0",
                               "value": {"name": "disk0", "persistentVolumeClaim": {"claimName": "blk-src"}}}],
             namespace, patch_type="json")
    wait_obj(kv, R.VMI, "vm-blk", namespace,
             lambda o: (condition(o, "VolumesChange") or {}).get("reason") == "VolumesChangeCancellation", "cancelled")


@pytest.mark.cluster
def test_without_livemigrate_method_the_vmi_just_waits(kv, namespace):
    F.install_kubevirt(kv, workload_update_methods=())  # plain KubeVirt default: empty list
    _start_vm(kv, namespace)
    _dst_dv(kv, namespace)
    _start_migration(kv, namespace)
    vmi = wait_obj(kv, R.VMI, "vm-dv", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange")
    assert condition(vmi, "VolumesChange")["status"] == "True" and vmi["status"]["migratedVolumes"]
    time.sleep(1.0)  # ~20 passes
    assert vmims(kv, namespace, "vm-dv") == []
    F.install_kubevirt(kv)  # LiveMigrate configured later: the pending update is picked up
    wait_for(lambda: [m for m in vmims(kv, namespace, "vm-dv") if m.get("status", {}).get("phase") == "Succeeded"],
             what="VMIM Succeeded after enabling LiveMigrate")
