"""The kubevirt-migration-controller stand-in against the real API server (with the KubeVirt and CDI stand-ins).

Each expectation is the upstream behaviour named in tests/sim/migration_controller_{plan,run}.py.
"""
import time

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import migration_controller as MC
from tests.sim import migration_controller_plan as PLAN
from tests.sim import migration_controller_run as RUN
from tests.sim.common import set_faults, wait_for
from tests.sim.kvtest_helpers import condition, get, running_vm, wait_obj

TIMEOUT = 60


# ---- pure rules -------------------------------------------------------------------------------------
def test_destination_names_follow_naming_get_name_and_trim_suffix():
    assert PLAN.target_pvc_name(None, "vm1-rootdisk", "ab12") == "vm1-rootdisk-mig-ab12"
    assert PLAN.target_pvc_name(None, "vm1-rootdisk-mig-zz99", "ab12") == "vm1-rootdisk-mig-ab12"  # no pile-up
    assert PLAN.target_pvc_name(None, "disk-new", "ab12") == "disk-mig-ab12"
    assert PLAN.target_pvc_name("mine", "disk", "ab12") == "mine"
    long = PLAN.get_name("x" * 70, "mig-ab12")
    assert len(long) == 63 and long.endswith("-mig-ab12")


@pytest.mark.parametrize("version,conf,want", [
    ("v1.6.0", {"vmRolloutStrategy": "LiveUpdate", "developerConfiguration": {}}, None),
    ("v1.6.0", {"developerConfiguration": {}}, "KubeVirtStorageLiveMigrationNotEnabled"),  # unset = refused
    ("v1.6.0", {"vmRolloutStrategy": "LiveUpdate"}, "KubeVirtStorageLiveMigrationNotEnabled"),  # no devConfig
    ("v1.4.0", {"vmRolloutStrategy": "LiveUpdate", "developerConfiguration": {"featureGates": ["VolumeMigration"]}},
     "KubeVirtStorageLiveMigrationNotEnabled"),
    ("v1.2.0", {"vmRolloutStrategy": "LiveUpdate", "developerConfiguration": {}}, "KubeVirtVersionNotSupported"),
    ("garbage", {"vmRolloutStrategy": "LiveUpdate", "developerConfiguration": {}}, "KubeVirtVersionNotSupported"),
])
def test_kubevirt_blocker_follows_validate_kubevirt_installed(version, conf, want):
    kv = {"spec": {"configuration": conf}, "status": {"operatorVersion": version}}
    got = PLAN.kubevirt_blocker([kv])
    assert (got[0] if got else None) == want
    assert PLAN.kubevirt_blocker([])[0] == "KubeVirtNotInstalledSourceCluster"


def test_revert_patch_restores_claims_but_not_the_renamed_templates():
    vm = F.make_vm("v", disks=[F.dv_disk("root", dv="root-mig-ab12")])
    pvm = {"name": "v", "sourcePVCs": [{"volumeName": "root", "name": "v-root"}],
           "targetMigrationPVCs": [{"volumeName": "root", "destinationPVC": {"name": "v-root",
                                                                             "storageClassName": "fast"}}]}
    patch = RUN.prepared_vm_patch(vm, pvm, strategy=True)
    assert patch["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"] == "v-root"
    assert "dataVolumeTemplates" not in patch["spec"]  # cancel.go revertPlanVolumes keys templates by source name


# ---- cluster ----------------------------------------------------------------------------------------
@pytest.fixture
def mc(cp, sims):
    """KubeVirt v1.6 + CDI + a Deployed MigController (the stand-in acts only then); removed afterwards."""
    F.install_kubevirt(cp.admin)
    F.install_cdi(cp.admin)
    MC.install_migration_controller(cp.admin)
    before = {c.name: list(c.errors) for c in sims.controllers}
    yield cp.admin
    MC.uninstall_migration_controller(cp.admin)
    F.install_kubevirt(cp.admin)
    new = [f"{c.name}: {e}" for c in sims.controllers for e in c.errors if e not in before.get(c.name, [])]
    assert not new, f"stand-in errors during the test: {new}"


def plan_body(name, vms, to="fast", retention="keepSource"):
    return {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "VirtualMachineStorageMigrationPlan",
            "metadata": {"name": name},
            "spec": {"retentionPolicy": retention, "virtualMachines": [
                {"name": vm, "targetMigrationPVCs": [{"volumeName": v, "destinationPVC": {"storageClassName": to}}
                                                     for v in vols]} for vm, vols in vms]}}


def start(kube, ns, plan="p1"):
    body = {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "VirtualMachineStorageMigration",
            "metadata": {"name": f"{plan}-run"}, "spec": {"virtualMachineStorageMigrationPlanRef": {"name": plan}}}
    return kube.create(R.VMSM, body, ns)


def two_disk_vm(kube, ns, name="vm1", running=True, disks=None):
    disks = disks or [F.dv_disk("rootdisk"), F.pvc_disk("data")]
    F.apply(kube, ns, *F.make_vm_bundle(name, disks, running=running))
    if running:
        running_vm(kube, ns, name)
    elif any(d["kind"] == "dv" for d in disks):
        wait_obj(kube, R.DATAVOLUME, f"{name}-rootdisk", ns,
                 lambda o: (o.get("status") or {}).get("phase") == "Succeeded", "dv")


def ready_plan(kube, ns, name="p1", vms=(("vm1", ("rootdisk", "data")),)):
    kube.create(R.VMSM_PLAN, plan_body(name, vms), ns)
    return wait_obj(kube, R.VMSM_PLAN, name, ns, lambda o: (condition(o, "Ready") or {}).get("status") == "True",
                    f"plan {name} Ready", TIMEOUT)


def phase_of(kube, ns, name="p1-run"):
    return ((get(kube, R.VMSM, name, ns) or {}).get("status") or {}).get("phase")


@pytest.mark.cluster
def test_nothing_happens_without_a_deployed_migcontroller(cp, sims, namespace):
    F.install_kubevirt(cp.admin)
    MC.uninstall_migration_controller(cp.admin)
    cp.admin.create(R.VMSM_PLAN, plan_body("p1", [("vm1", ["rootdisk"])]), namespace)
    MC.install_migration_controller(cp.admin, name="sick", healthy=False)  # Deployed but Degraded
    try:
        time.sleep(1.5)  # many passes of the session stand-in
        assert not (get(cp.admin, R.VMSM_PLAN, "p1", namespace) or {}).get("status")
    finally:
        MC.uninstall_migration_controller(cp.admin, name="sick")


@pytest.mark.cluster
def test_plan_conditions_lists_and_suffix(mc, namespace):
    two_disk_vm(mc, namespace, "vm1")
    two_disk_vm(mc, namespace, "vm2", running=False)
    mc.create(R.VMSM_PLAN, plan_body("p1", [("vm1", ["rootdisk", "data"]), ("vm2", ["rootdisk"]),
                                            ("ghost", ["rootdisk"])]), namespace)
    plan = wait_obj(mc, R.VMSM_PLAN, "p1", namespace, lambda o: condition(o, "NotAllVirtualMachinesReady"),
                    "NotAllVirtualMachinesReady", TIMEOUT)
    st = plan["status"]
    assert len(st["suffix"]) == 4 and st["completedOutOf"] == "0/3"
    assert [v["name"] for v in st["readyMigrations"]] == ["vm1", "vm2"]  # stopped vm2 is ready (offline)
    vm1 = st["readyMigrations"][0]
    assert [t["destinationPVC"]["name"] for t in vm1["targetMigrationPVCs"]] == \
        [f"vm1-rootdisk-mig-{st['suffix']}", f"vm1-data-mig-{st['suffix']}"]
    assert [s["name"] for s in vm1["sourcePVCs"]] == ["vm1-rootdisk", "vm1-data"]
    nar = condition(plan, "NotAllVirtualMachinesReady")
    assert (nar["category"], nar["reason"], nar["message"]) == ("Warn", "NotReady", PLAN.SOME_NOT_READY)
    assert condition(plan, "Ready")["status"] == "True"
    assert condition(plan, "Progressing")["message"] == "no storage migrations found"
    # the plain PVC has no cdi.kubevirt.io/storage.contentType: kubevirt -> Warn only
    assert f"{namespace}/vm1-data" in condition(plan, "FilesystemPVCsWithoutKubeVirtContentType")["message"]
    # a missing destination class: InvalidPVCs (Critical), Ready False
    mc.create(R.VMSM_PLAN, plan_body("p2", [("vm1", ["rootdisk"])], to="nosuch"), namespace)
    p2 = wait_obj(mc, R.VMSM_PLAN, "p2", namespace, lambda o: condition(o, "InvalidPVCs"), "InvalidPVCs", TIMEOUT)
    assert condition(p2, "InvalidPVCs")["message"] == "storage class nosuch not found"
    assert condition(p2, "Ready")["message"] == "plan has one or more critical conditions"
    assert [v["name"] for v in p2["status"]["invalidMigrations"]] == ["vm1"]


@pytest.mark.cluster
def test_unset_rollout_strategy_makes_storage_migration_not_possible(mc, namespace):
    F.install_kubevirt(mc, rollout=None)  # KubeVirt >= 1.6 would live-update; the controller refuses
    two_disk_vm(mc, namespace, "vm1")
    mc.create(R.VMSM_PLAN, plan_body("p1", [("vm1", ["rootdisk"])]), namespace)
    plan = wait_obj(mc, R.VMSM_PLAN, "p1", namespace, lambda o: condition(o, "StorageMigrationNotPossible"),
                    "StorageMigrationNotPossible", TIMEOUT)
    c = condition(plan, "StorageMigrationNotPossible")
    assert (c["reason"], c["category"]) == ("KubeVirtStorageLiveMigrationNotEnabled", "Critical")
    start(mc, namespace)
    mig = wait_obj(mc, R.VMSM, "p1-run", namespace, lambda o: condition(o, "PlanNotReady"), "PlanNotReady", TIMEOUT)
    assert not mig["status"].get("phase")  # blocked: the task never runs


@pytest.mark.cluster
def test_live_two_disks_blank_targets_merge_patch_completed_strategy_kept(mc, namespace):
    two_disk_vm(mc, namespace, "vm1")
    plan = ready_plan(mc, namespace)
    suffix = plan["status"]["suffix"]
    mig = start(mc, namespace)
    seen, progress = [], []

    def done():
        m = get(mc, R.VMSM, "p1-run", namespace)
        st = (m or {}).get("status") or {}
        if st.get("phase") and (not seen or seen[-1] != st["phase"]):
            seen.append(st["phase"])
        progress.extend(r["progress"] for r in st.get("runningMigrations") or [] if r.get("progress"))
        return st.get("phase") == "Completed"
    wait_for(done, timeout=TIMEOUT, interval=0.02, what="migration Completed")
    assert seen[-3:] == ["WaitForLiveMigrationToComplete", "CleanupMigrationResources", "Completed"], seen
    assert progress and all(
0 < float(p) < 100 and "%" not in p for p in progress)
    m = mc.get(R.VMSM, "p1-run", namespace)
    assert m["status"]["completedMigrations"] == ["vm1"] and not m["status"].get("runningMigrations")
    assert m["metadata"]["ownerReferences"][0]["uid"] == plan["metadata"]["uid"]
    wait_obj(mc, R.VMSM, "p1-run", namespace, lambda o: RUN.FINALIZER not in (o["metadata"].get("finalizers") or []),
             "finalizer removed at Completed")  # written right after the status
    vm = mc.get(R.VM, "vm1", namespace)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"  # never removed
    vols = {v["name"]: v for v in vm["spec"]["template"]["spec"]["volumes"]}
    assert vols["rootdisk"]["dataVolume"]["name"] == f"vm1-rootdisk-mig-{suffix}"
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == f"vm1-data-mig-{suffix}"
    tpl = vm["spec"]["dataVolumeTemplates"][0]
    assert tpl["metadata"]["name"] == f"vm1-rootdisk-mig-{suffix}"
    assert tpl["spec"]["storage"]["storageClassName"] == "fast"
    dv = mc.get(R.DATAVOLUME, f"vm1-data-mig-{suffix}", namespace)
    assert dv["spec"]["source"] == {"blank": {}} and dv["spec"]["storage"]["storageClassName"] == "fast"
    assert dv["metadata"]["labels"][RUN.UID_LABEL] == mig["metadata"]["uid"]
    assert dv["metadata"]["labels"][RUN.PLAN_LABEL] == "p1-mig"
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/allowClaimAdoption"] == "true"
    assert mc.get(R.PVC, "vm1-data", namespace)  # keepSource
    # Succeeded VMIMs of completed VMs are cleaned up
    assert not [x for x in mc.items(R.VMIM, namespace) if (x.get("status") or {}).get("phase") == "Succeeded"]
    p = wait_obj(mc, R.VMSM_PLAN, "p1", namespace, lambda o: o["status"].get("completedOutOf") == "1/1", "1/1")
    assert condition(p, "Ready")["message"] == "all storage migrations completed"


@pytest.mark.cluster
def test_offline_stopped_vm_patch_then_clone(mc, namespace):
    two_disk_vm(mc, namespace, "vm1", running=False)
    suffix = ready_plan(mc, namespace)["status"]["suffix"]
    start(mc, namespace)
    wait_for(lambda: phase_of(mc, namespace) == "Completed", timeout=TIMEOUT, what="offline Completed")
    vm = mc.get(R.VM, "vm1", namespace)
    assert "updateVolumesStrategy" not in vm["spec"]
    assert vm["spec"]["runStrategy"] == "Halted"
    for vol in ("rootdisk", "data"):
        dv = mc.get(R.DATAVOLUME, f"vm1-{vol}-mig-{suffix}", namespace)
        assert dv["spec"]["source"] == {"pvc": {"namespace": namespace, "name": f"vm1-{vol}"}}
        assert dv["status"]["phase"] in RUN.DONE_DV_PHASES


@pytest.mark.cluster
def test_failed_vmim_is_never_reported_the_run_waits(mc, namespace):
    two_disk_vm(mc, namespace, "vm1")
    set_faults(mc, namespace, liveMigrationFail="true")
    ready_plan(mc, namespace)
    start(mc, namespace)
    wait_for(lambda: any((m.get("status") or {}).get("phase") == "Failed" for m in mc.items(R.VMIM, namespace)),
             timeout=TIMEOUT, what="a failed VMIM")
    m = mc.get(R.VMSM, "p1-run", namespace)
    assert m["status"]["phase"] == "WaitForLiveMigrationToComplete"
    assert [r["name"] for r in m["status"]["runningMigrations"]] == ["vm1"]
    assert not m["status"].get("errors") and not m["status"].get("completedMigrations")


def precreate_targets(kube, ns, plan):
    """Blank destination DVs made before the migration starts (what the plugin's engine does, see
    test_plan_loses_its_source_pvcs_when_the_target_pvc_appears_after_the_vm_patch)."""
    for vm in plan["status"]["readyMigrations"]:
        for t in vm["targetMigrationPVCs"]:
            F.apply(kube, ns, F.make_blank_dv(t["destinationPVC"]["name"], storage_class="fast"))
            wait_obj(kube, R.PVC, t["destinationPVC"]["name"], ns, lambda o: True, "target PVC")


@pytest.mark.cluster
def test_plan_loses_its_source_pvcs_when_the_target_pvc_appears_after_the_vm_patch(mc, manual_namespace):
    """validation.go createStatusVM: after the VM patch the claim names the target; while that PVC does not exist
    yet (CDI has not made it) the VM drops out of every list, and next time the TARGET is recorded as the source
    (no volumeUpdateState yet; getExistingStatusVMMap then keeps the wrong record). An upstream race, stepped here
    in the losing order: controller, controller, then CDI."""
    from tests.sim.cdi import CdiController
    from tests.sim.kubevirt import KubeVirtController

    ns = manual_namespace
    kv, cdi, ctl = (C(mc, namespaces=[ns]) for C in (KubeVirtController, CdiController, MC.MigrationController))
    F.apply(mc, ns, *F.make_vm_bundle("vm1", [F.pvc_disk("root"), F.pvc_disk("data")]))
    kv.step_until(lambda: (cdi.step() or True) and (get(mc, R.VMI, "vm1", ns) or {}).get("status", {}).get(
        "phase") == "Running")
    mc.create(R.VMSM_PLAN, plan_body("p1", [("vm1", ["root", "data"])]), ns)
    ctl.step()
    suffix = mc.get(R.VMSM_PLAN, "p1", ns)["status"]["suffix"]
    start(mc, ns)
    ctl.step_until(lambda: phase_of(mc, ns) == "WaitForLiveMigrationToComplete")
    assert get(mc, R.PVC, f"vm1-root-mig-{suffix}", ns) is None  # CDI has not run yet
    ctl.step()
    st = mc.get(R.VMSM_PLAN, "p1", ns)["status"]
    assert not st["inProgressMigrations"] and not st["readyMigrations"]  # dropped: "No source PVCs found"
    cdi.step()
    ctl.step()
    st = mc.get(R.VMSM_PLAN, "p1", ns)["status"]
    assert [s["name"] for s in st["inProgressMigrations"][0]["sourcePVCs"]] == \
        [f"vm1-root-mig-{suffix}", f"vm1-data-mig-{suffix}"]
    kv.step_n(3)
    ctl.step_n(2)  # KubeVirt's volumeUpdateState now maps target -> source, but the wrong record is kept
    st = mc.get(R.VMSM_PLAN, "p1", ns)["status"]
    assert st["inProgressMigrations"][0]["sourcePVCs"][0]["name"] == f"vm1-root-mig-{suffix}"


@pytest.mark.cluster
def test_cancel_by_delete_reverts_claims_deletes_targets_and_drops_the_cr(mc, namespace):
    two_disk_vm(mc, namespace, "vm1", disks=[F.pvc_disk("root"), F.pvc_disk("data")])
    set_faults(mc, namespace, liveMigrationFail="true")  # keeps it running until canceled
    plan = ready_plan(mc, namespace, vms=(("vm1", ("root", "data")),))
    precreate_targets(mc, namespace, plan)
    suffix = plan["status"]["suffix"]
    start(mc, namespace)
    wait_for(lambda: phase_of(mc, namespace) == "WaitForLiveMigrationToComplete", timeout=TIMEOUT, what="running")
    plan = wait_obj(mc, R.VMSM_PLAN, "p1", namespace, lambda o: o["status"].get("inProgressMigrations"),
                    "inProgress", TIMEOUT)
    assert [s["name"] for s in plan["status"]["inProgressMigrations"][0]["sourcePVCs"]] == ["vm1-root", "vm1-data"]
    mc.request("DELETE", R.VMSM.path(namespace, "p1-run"))
    assert get(mc, R.VMSM, "p1-run", namespace)["metadata"]["deletionTimestamp"]  # held by the finalizer
    wait_for(lambda: get(mc, R.VMSM, "p1-run", namespace) is None, timeout=TIMEOUT, what="CR gone")
    vm = mc.get(R.VM, "vm1", namespace)
    vols = {v["name"]: v for v in vm["spec"]["template"]["spec"]["volumes"]}
    assert [vols[n]["persistentVolumeClaim"]["claimName"] for n in ("root", "data")] == ["vm1-root", "vm1-data"]
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"  # kept on cancel too
    for n in ("root", "data"):
        with pytest.raises(errors.NotFound):
            mc.get(R.DATAVOLUME, f"vm1-{n}-mig-{suffix}", namespace)


@pytest.mark.cluster
def test_cancel_of_a_datavolume_template_vm_is_refused_by_kubevirt_admission(mc, sims, namespace):
    """cancel.go reverts volumes but keys dataVolumeTemplates by source name: the revert patch leaves the template
    named after the target, which virt-api refuses; the CR stays Canceling (deletionTimestamp set)."""
    two_disk_vm(mc, namespace, "vm1")
    set_faults(mc, namespace, liveMigrationFail="true")
    precreate_targets(mc, namespace, ready_plan(mc, namespace))
    start(mc, namespace)
    wait_for(lambda: phase_of(mc, namespace) == "WaitForLiveMigrationToComplete", timeout=TIMEOUT, what="running")
    mc.request("DELETE", R.VMSM.path(namespace, "p1-run"))
    ctl = next(c for c in sims.controllers if c.name == "migration-controller")
    wait_for(lambda: any("must be referenced" in e for e in ctl.errors), timeout=TIMEOUT, what="admission refusal")
    m = get(mc, R.VMSM, "p1-run", namespace)
    assert m["metadata"]["deletionTimestamp"] and m["status"]["phase"] == "WaitForLiveMigrationToComplete"
    vm = mc.get(R.VM, "vm1", namespace)
    assert vm["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"].startswith("vm1-rootdisk-mig-")
    set_faults(mc, namespace, liveMigrationFail="false")  # KubeVirt's next attempt succeeds: "canceled", but moved
    wait_for(lambda: get(mc, R.VMSM, "p1-run", namespace) is None, timeout=TIMEOUT, what="CR gone")
    vm = mc.get(R.VM, "vm1", namespace)
    assert vm["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"].startswith("vm1-rootdisk-mig-")
    ctl.errors[:] = [e for e in ctl.errors if "must be referenced" not in e]
