"""The KubeVirt stand-in rules that shared/reference/kubevirt/AUDIT.md S1-S4 found wrong, against the real API
server (fixture ``kv`` in tests/sim/conftest.py). Each test names the upstream function it shows.
"""
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import kubevirt_revision as REV
from tests.sim.common import set_faults, wait_for
from tests.sim.kvtest_helpers import condition, dst_dv, get, running_vm, start_migration, start_vm, vmims, wait_obj

GENERIC = "a non-live-updatable field was changed in the template spec"


def _succeeded(kube, ns, vm="vm-dv"):
    return [m for m in vmims(kube, ns, vm) if (m.get("status") or {}).get("phase") == "Succeeded"]


def _claim(vmi, volume="datavolumedisk1"):
    v = next(v for v in vmi["spec"]["volumes"] if v["name"] == volume)
    return (v.get("dataVolume") or {}).get("name") or (v.get("persistentVolumeClaim") or {}).get("claimName")


# ---- pure: vm.go syncRestartRequired / validLiveUpdateVolumes ------------------------------------------------
def _vm(claim, strategy=None, **tmpl):
    vm = F.make_vm("v", disks=[F.pvc_disk("d", claim=claim)])
    if strategy:
        vm["spec"]["updateVolumesStrategy"] = strategy
    vm["spec"]["template"]["spec"].update(tmpl)
    return vm


def test_restart_required_is_computed_against_the_start_revision():
    started = _vm("src")["spec"]
    assert REV.restart_required(started, _vm("src"), live_update=True) is False
    assert REV.restart_required(started, _vm("dst", strategy="Migration"), live_update=True) is False
    # the strategy removed after the claim changed: "for a replaced pvc" (vm_test.go) → restart required
    assert REV.restart_required(started, _vm("dst"), live_update=True) is True
    assert REV.restart_required(started, _vm("dst", strategy="Replacement"), live_update=True) is True
    # live-updatable only with the LiveUpdate rollout
    assert REV.restart_required(started, _vm("src", nodeSelector={"a": "b"}), live_update=True) is False
    assert REV.restart_required(started, _vm("src", nodeSelector={"a": "b"}), live_update=False) is True
    assert REV.restart_required(started, _vm("src", hostname="x"), live_update=True) is True
    assert REV.restart_required(None, _vm("dst"), live_update=True) is False  # no revision: nothing to compare


# ---- cluster ------------------------------------------------------------------------------------------------
@pytest.mark.cluster
def test_s1_removing_the_strategy_from_a_migrated_running_vm_raises_restart_required(kv, namespace):
    _, vmi = start_vm(kv, namespace)
    vm = get(kv, R.VM, "vm-dv", namespace)
    rev = f"revision-start-vm-{vm['metadata']['uid']}-{vm['metadata']['generation']}"
    assert vmi["status"]["virtualMachineRevisionName"] == rev
    cr = kv.get(REV.CONTROLLER_REVISION, rev, namespace)  # vm.go createVMRevision: a real ControllerRevision
    assert cr["revision"] == vm["metadata"]["generation"]
    assert cr["data"]["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"] == "src-dv"
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    wait_for(lambda: _succeeded(kv, namespace), timeout=60, what="VMIM Succeeded")
    vm, vmi = running_vm(kv, namespace, "vm-dv")
    assert _claim(vmi) == "dst-dv"
    time.sleep(0.5)  # passes after success: with the strategy kept the claim change is excused
    assert condition(get(kv, R.VM, "vm-dv", namespace), "RestartRequired") is None
    kv.patch(R.VM, "vm-dv", [{"op": "remove", "path": "/spec/updateVolumesStrategy"}], namespace, patch_type="json")
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "RestartRequired") is not None,
                  "RestartRequired after removing the strategy")
    assert (condition(vm, "RestartRequired")["status"], condition(vm, "RestartRequired")["message"]) == ("True", GENERIC)
    vmi = get(kv, R.VMI, "vm-dv", namespace)
    assert vmi["status"]["phase"] == "Running" and _claim(vmi) == "dst-dv"  # still running on the destination
    # before v1.8 the condition is sticky: a later volume migration of this VM is silently skipped
    dst_dv(kv, namespace, "third-dv")
    start_migration(kv, namespace, dst="third-dv")
    time.sleep(1.0)
    assert condition(get(kv, R.VM, "vm-dv", namespace), "RestartRequired")["message"] == GENERIC
    assert _claim(get(kv, R.VMI, "vm-dv", namespace)) == "dst-dv" and len(vmims(kv, namespace, "vm-dv")) == 1
    # a restart clears it (stopVMI/startVMI → cleanupRestartRequired) and records a new revision
    kv.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Halted"}}, namespace)
    wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: o["status"].get("printableStatus") == "Stopped", "Stopped")
    kv.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Always"}}, namespace)
    vm, vmi = running_vm(kv, namespace, "vm-dv")
    assert condition(vm, "RestartRequired") is None and _claim(vmi) == "third-dv"
    revs = [r["metadata"]["name"] for r in kv.items(REV.CONTROLLER_REVISION, namespace)]
    assert revs == [f"revision-start-vm-{vm['metadata']['uid']}-{vm['metadata']['generation']}"]


@pytest.mark.cluster
def test_s1_from_v1_8_restart_required_clears_when_the_strategy_is_restored(kv, namespace):
    F.install_kubevirt(kv, version="v1.8.0")
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    wait_for(lambda: _succeeded(kv, namespace), timeout=60, what="VMIM Succeeded")
    kv.patch(R.VM, "vm-dv", [{"op": "remove", "path": "/spec/updateVolumesStrategy"}], namespace, patch_type="json")
    wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "RestartRequired") is not None, "RestartRequired")
    kv.patch(R.VM, "vm-dv", {"spec": {"updateVolumesStrategy": "Migration"}}, namespace)
    wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "RestartRequired") is None, "RestartRequired cleared")


@pytest.mark.cluster
def test_s2_transient_volumes_update_error_clears_on_the_next_clean_sync(kv, namespace):
    set_faults(kv, namespace, volumesUpdateError=3)
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "Failure") is not None, "Failure")
    c = condition(vm, "Failure")
    assert (c["status"], c["reason"]) == ("True", "VolumesUpdateError")
    assert c["message"] == ("error encountered while handling volumes update requests: "
                            "testing value /status/migratedVolumes failed: test failed")
    wait_for(lambda: _succeeded(kv, namespace), timeout=60, what="the migration proceeding after the error")
    assert condition(get(kv, R.VM, "vm-dv", namespace), "Failure") is None


@pytest.mark.cluster
@pytest.mark.parametrize("version,gates,rollout", [
    ("v1.5.2", ("VolumesUpdateStrategy", "VolumeMigration"), "Stage"),
    ("v1.4.0", ("VolumesUpdateStrategy", "VolumeMigration"), "LiveUpdate"),  # no VMLiveUpdateFeatures gate
])
def test_s3_without_effective_live_update_nothing_happens(kv, namespace, version, gates, rollout):
    F.install_kubevirt(kv, version=version, feature_gates=gates, rollout=rollout)
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    time.sleep(1.5)  # ~30 passes: the live-update block of vm.go sync never runs
    vm, vmi = get(kv, R.VM, "vm-dv", namespace), get(kv, R.VMI, "vm-dv", namespace)
    assert condition(vm, "RestartRequired") is None and condition(vm, "Failure") is None
    assert condition(vmi, "VolumesChange") is None and not vmi["status"].get("migratedVolumes")
    assert _claim(vmi) == "src-dv" and vmims(kv, namespace, "vm-dv") == []


def _start_dv_vm_without_template(kube, ns):
    """A VM whose dataVolume volume is not a template (so no template rename is needed to point it elsewhere)."""
    F.apply(kube, ns, F.make_blank_dv("own-dv", size="1Gi"))
    F.apply(kube, ns, *F.make_vm_bundle("vm-own", [F.dv_disk("disk0", dv="own-dv", template=False)]))
    wait_obj(kube, R.DATAVOLUME, "own-dv", ns, lambda o: (o.get("status") or {}).get("phase") == "Succeeded", "DV")
    running_vm(kube, ns, "vm-own")
    kube.patch(R.VM, "vm-own", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0", "value": {"name": "disk0", "dataVolume": {"name": "ghost-dv"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], ns, patch_type="json")


@pytest.mark.cluster
def test_s4_missing_destination_v1_5_sticky_restart_required(kv, namespace):
    F.install_kubevirt(kv, version="v1.5.0")
    _start_dv_vm_without_template(kv, namespace)
    vm = wait_obj(kv, R.VM, "vm-own", namespace, lambda o: condition(o, "RestartRequired") is not None, "RestartRequired")
    assert condition(vm, "RestartRequired")["message"] == "the datavolume ghost-dv doesn't exist"
    F.apply(kv, namespace, F.make_blank_dv("ghost-dv", size="1Gi", storage_class="fast"))
    wait_obj(kv, R.DATAVOLUME, "ghost-dv", namespace, lambda o: (o.get("status") or {}).get("phase") == "Succeeded", "DV")
    time.sleep(1.0)  # the destination exists now, but RestartRequired skips the whole live-update block
    assert condition(get(kv, R.VM, "vm-own", namespace), "RestartRequired")["message"] == \
        "the datavolume ghost-dv doesn't exist"
    assert vmims(kv, namespace, "vm-own") == []


@pytest.mark.cluster
def test_s4_missing_destination_v1_6_is_retried(kv, namespace):
    _start_dv_vm_without_template(kv, namespace)
    vmi = wait_obj(kv, R.VMI, "vm-own", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange")
    c = condition(vmi, "VolumesChange")
    assert (c["status"], c["message"]) == (
        "False", "One of the destination volumes doesn't exist: the datavolume ghost-dv doesn't exist")
    assert condition(get(kv, R.VM, "vm-own", namespace), "RestartRequired") is None
    F.apply(kv, namespace, F.make_blank_dv("ghost-dv", size="1Gi", storage_class="fast"))
    wait_for(lambda: _succeeded(kv, namespace, "vm-own"), timeout=60, what="the migration once the DV exists")


@pytest.mark.cluster
def test_s4_missing_destination_v1_4_is_not_validated(kv, namespace):
    F.install_kubevirt(kv, version="v1.4.0")
    _start_dv_vm_without_template(kv, namespace)
    vmi = wait_obj(kv, R.VMI, "vm-own", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange")
    assert condition(vmi, "VolumesChange")["status"] == "True"  # accepted without any check
    assert vmi["status"]["migratedVolumes"][0]["destinationPVCInfo"] == {"claimName": "ghost-dv"}
    def unschedulable_target():
        return [p for p in kv.items(R.POD, namespace, label_selector="kubevirt.io=virt-launcher")
                if ((p.get("status") or {}).get("conditions") or [{}])[0].get("reason") == "Unschedulable"]
    target = wait_for(unschedulable_target, timeout=30, what="the target pod unschedulable")[0]
    assert 'persistentvolumeclaim "ghost-dv" not found' in target["status"]["conditions"][0]["message"]
    failed = wait_for(lambda: [m for m in vmims(kv, namespace, "vm-own")
                               if (m.get("status") or {}).get("phase") == "Failed"], timeout=60, what="failed VMIM")
    assert [p["phase"] for p in failed[0]["status"]["phaseTransitionTimestamps"]] == ["Pending", "Scheduling", "Failed"]


@pytest.mark.cluster
def test_s8_evict_only_with_live_migrate_strategy_becomes_an_unlabelled_evacuation_migration(kv, namespace):
    F.install_kubevirt(kv, workload_update_methods=("Evict",), eviction_strategy="LiveMigrate")
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)

    def evacuation():
        return [m for m in kv.items(R.VMIM, namespace) if m["metadata"]["name"].startswith("kubevirt-evacuation-")]
    vmim = wait_for(evacuation, what="an evacuation VMIM")[0]
    assert vmim["metadata"]["annotations"] == {"kubevirt.io/evacuationMigration": "node01"}
    assert "kubevirt.io/volume-update-migration" not in vmim["metadata"].get("labels", {})
    wait_obj(kv, R.VMIM, vmim["metadata"]["name"], namespace,
             lambda o: (o.get("status") or {}).get("phase") == "Succeeded", "evacuation Succeeded")
    vm, vmi = running_vm(kv, namespace, "vm-dv")
    assert _claim(vmi) == "dst-dv" and not vmi["status"].get("migratedVolumes") and vmi["status"]["nodeName"] == "node02"
    assert condition(vmi, "VolumesChange") is None and condition(vm, "ManualRecoveryRequired") is None
    assert vmims(kv, namespace, "vm-dv") == []  # nothing carries the volume-update label


@pytest.mark.cluster
def test_s8_evict_only_without_eviction_strategy_ends_the_vmi(kv, namespace):
    F.install_kubevirt(kv, workload_update_methods=("Evict",))
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    vm = wait_obj(kv, R.VM, "vm-dv", namespace, lambda o: condition(o, "ManualRecoveryRequired") is not None, "MRR")
    assert condition(vm, "VolumesChange")["status"] == "True"  # S7
    assert get(kv, R.VMI, "vm-dv", namespace) is None and kv.items(R.VMIM, namespace) == []


# ---- AUDIT S9: the start subresource (virt-api behind the real aggregation layer) -----------------------------
def _subresource(kube, ns, name, verb):
    return kube.request("PUT", R.VM.subresource_path(ns, name, verb), body={})


@pytest.mark.cluster
def test_s9_manual_vm_starts_only_through_the_start_subresource(kv, namespace, sims):
    assert "virt-api" in sims.names and not [e for e in sims.errors() if e.startswith("virt-api")]
    F.apply(kv, namespace, *F.make_vm_bundle("vm-man", [F.pvc_disk("disk0")], run_strategy="Manual", running=False))
    time.sleep(1.0)  # vm.go syncRunStrategy, case Manual: no VMI and no start request → nothing starts
    assert get(kv, R.VMI, "vm-man", namespace) is None
    # Halted → Manual (what restoring a saved strategy does) starts nothing either
    kv.patch(R.VM, "vm-man", {"spec": {"runStrategy": "Halted"}}, namespace)
    kv.patch(R.VM, "vm-man", {"spec": {"runStrategy": "Manual"}}, namespace)
    time.sleep(1.0)
    assert get(kv, R.VMI, "vm-man", namespace) is None
    # PUT /apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachines/NAME/start (lifecycle.go): Start request
    _subresource(kv, namespace, "vm-man", "start")
    vm, vmi = running_vm(kv, namespace, "vm-man")
    assert vm["spec"]["runStrategy"] == "Manual" and "stateChangeRequests" not in vm["status"]  # popped once running
    with pytest.raises(Exception) as exc:  # a second start: 409 "VM is already running"
        _subresource(kv, namespace, "vm-man", "start")
    assert "VM is already running" in str(exc.value)
    _subresource(kv, namespace, "vm-man", "stop")  # Stop request with the VMI's uid
    wait_obj(kv, R.VM, "vm-man", namespace, lambda o: o["status"].get("printableStatus") == "Stopped", "Stopped")
    assert get(kv, R.VM, "vm-man", namespace)["spec"]["runStrategy"] == "Manual"


@pytest.mark.cluster
def test_s9_start_subresource_is_authorized_by_the_api_server(cp, kv, namespace, sims):
    """kube-apiserver authorizes update on virtualmachines/start in subresources.kubevirt.io before proxying."""
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions
    F.apply(kv, namespace, *F.make_vm_bundle("vm-man", [F.pvc_disk("disk0")], run_strategy="Manual", running=False))
    restricted = Kube.connect(ConnectionOptions(kubeconfig=cp.nobody_kubeconfig))  # never granted anything
    with pytest.raises(Exception) as exc:
        _subresource(restricted, namespace, "vm-man", "start")
    assert "forbidden" in str(exc.value).lower() and "subresources.kubevirt.io" in str(exc.value)
    time.sleep(0.5)
    assert get(kv, R.VMI, "vm-man", namespace) is None


@pytest.mark.cluster
def test_only_five_finalized_vmims_per_vmi_are_kept(cp, manual_namespace):
    """migration.go garbageCollectFinalizedMigrations, stepped by hand with short back-offs."""
    from tests.sim.cdi import CdiController
    from tests.sim.kubevirt import KubeVirtController
    kube, ns = cp.admin, manual_namespace
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    set_faults(kube, ns, liveMigrationFail="true")
    kvc = KubeVirtController(kube, namespaces=[ns], backoff_passes=1, running_passes=1)
    cdi = CdiController(kube, namespaces=[ns])
    F.apply(kube, ns, *F.make_vm_bundle("vm-dv", [F.dv_disk("datavolumedisk1", dv="src-dv", size="1Gi")]))
    F.apply(kube, ns, F.make_blank_dv("dst-dv", size="2Gi", storage_class="fast"))
    created = []  # VMIM names in the order they appeared

    def step():
        cdi.step()
        kvc.step()
        created.extend(n for n in (m["metadata"]["name"] for m in kube.items(R.VMIM, ns)) if n not in created)
    for _ in range(40):
        step()
    start_migration(kube, ns)
    for _ in range(400):
        step()
        if len(created) >= 7:
            break
    assert len(created) >= 7, created
    left = kube.items(R.VMIM, ns)
    final = [m for m in left if (m.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    assert len(final) == 5 and len(left) <= 6
    names = {m["metadata"]["name"] for m in left}
    assert created[0] not in names and created[-1] in names  # the oldest went first


@pytest.mark.cluster
def test_v1_3_has_no_manual_recovery_a_lost_vmi_restarts_on_the_uncopied_destination(kv, namespace):
    """v1.3.0 has neither ManualRecoveryRequired nor volumeUpdateState (added in v1.4, vm.go syncVolumeMigration):
    a VM with runStrategy Always that loses its VMI mid-copy simply starts again on the destination claims."""
    F.install_kubevirt(kv, version="v1.3.0")
    set_faults(kv, namespace, liveMigrationFail="true")
    start_vm(kv, namespace)
    dst_dv(kv, namespace)
    start_migration(kv, namespace)
    old = wait_obj(kv, R.VMI, "vm-dv", namespace, lambda o: condition(o, "VolumesChange") is not None, "VolumesChange")
    assert "volumeUpdateState" not in get(kv, R.VM, "vm-dv", namespace)["status"]
    kv.request("DELETE", R.VMI.path(namespace, "vm-dv"))  # the VMI is lost (node failure, eviction, …)
    vmi = wait_obj(kv, R.VMI, "vm-dv", namespace, lambda o: o["metadata"]["uid"] != old["metadata"]["uid"]
                   and (o.get("status") or {}).get("phase") == "Running", "a new VMI")
    assert _claim(vmi) == "dst-dv"  # booted from the destination that was never copied
    vm = get(kv, R.VM, "vm-dv", namespace)
    assert condition(vm, "ManualRecoveryRequired") is None and "volumeUpdateState" not in vm["status"]


@pytest.mark.cluster
def test_stopped_right_after_a_finished_migration_needs_no_recovery(cp, manual_namespace):
    """The VM's VolumesChange is a copy of the VMI's (vm.go syncConditions), refreshed a pass after the target
    virt-handler removed it from the VMI. A stop in that window must not raise ManualRecoveryRequired: the real
    VMI lingers through its deletion, so updateStatus still mirrors its conditions before it is gone. Stepped by
    hand to hit the window on every run (the CI failure of test_day_in_the_life_live_twice_then_restart...)."""
    from tests.sim.cdi import CdiController
    from tests.sim.kubevirt import KubeVirtController
    kube, ns = cp.admin, manual_namespace
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    kvc = KubeVirtController(kube, namespaces=[ns], backoff_passes=1, running_passes=1)
    cdi = CdiController(kube, namespaces=[ns])

    def step(until, what, passes=400):
        for _ in range(passes):
            cdi.step()
            kvc.step()
            if until():
                return
        raise AssertionError(f"not reached after {passes} passes: {what}")
    F.apply(kube, ns, *F.make_vm_bundle("vm-dv", [F.dv_disk("datavolumedisk1", dv="src-dv", size="2Gi")]))
    step(lambda: ((get(kube, R.VMI, "vm-dv", ns) or {}).get("status") or {}).get("phase") == "Running", "VMI Running")
    F.apply(kube, ns, F.make_blank_dv("dst-dv", size="3Gi", storage_class="fast", access_modes=("ReadWriteMany",),
                                      volume_mode="Block"))
    step(lambda: (get(kube, R.DATAVOLUME, "dst-dv", ns).get("status") or {}).get("phase") == "Succeeded", "dst ready")
    start_migration(kube, ns)

    def vmi_moved():
        vmi = get(kube, R.VMI, "vm-dv", ns)
        return (vmi["spec"]["volumes"][0]["dataVolume"]["name"] == "dst-dv" and not vmi["status"].get("migratedVolumes")
                and condition(vmi, "VolumesChange") is None)
    step(vmi_moved, "migration finished on the VMI")
    assert condition(get(kube, R.VM, "vm-dv", ns), "VolumesChange")["status"] == "True"  # the window is open
    kube.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Halted"}}, ns)
    step(lambda: get(kube, R.VMI, "vm-dv", ns) is None, "VM stopped")
    for _ in range(5):
        kvc.step()
    vm = get(kube, R.VM, "vm-dv", ns)
    assert condition(vm, "ManualRecoveryRequired") is None and condition(vm, "VolumesChange") is None, vm["status"]
    kube.patch(R.VM, "vm-dv", {"spec": {"runStrategy": "Always"}}, ns)
    step(lambda: ((get(kube, R.VMI, "vm-dv", ns) or {}).get("status") or {}).get("phase") == "Running", "started again")
    assert get(kube, R.VMI, "vm-dv", ns)["spec"]["volumes"][0]["dataVolume"]["name"] == "dst-dv"
