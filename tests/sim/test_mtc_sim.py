"""The mig-controller stand-in against the real API server: objects created as the MTC console would
(samples adapted to the test namespace), statuses asserted against shared/reference/mtc."""
import re

import pytest

from kubectl_vmmig import resources as R
from tests.sim.common import MTC_NAMESPACE, get_condition, set_faults
from tests.sim.mtc_testkit import Env, make_migration, make_plan, make_vm, sample, select_all

pytestmark = pytest.mark.cluster
MIG_LABELS = ("migration.openshift.io/migrated-by-migplan", "migration.openshift.io/migrated-by-migmigration")


@pytest.fixture
def env(cp, manual_namespace):
    # Stepped by hand: the session-wide stand-ins (sims fixture) must keep out of this namespace.
    return Env(cp.admin, manual_namespace)


def cond_types(obj):
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def assert_condition_shape(c):
    ref = sample("status-dvm-completed.json")["status"]["conditions"][0]
    assert set(c) <= set(ref), c
    assert {"type", "status", "category", "lastTransitionTime"} <= set(c)


def test_plan_discovery_names_defaults_and_conflict(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], dv_template="vm1-root")
    env.kube.create(R.PVC, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": "unbound", "namespace": env.ns},
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    make_plan(env.kube, env.ns, env.n("p1"), live=True)
    env.until(lambda: get_condition(env.plan("p1"), "Ready"))
    plan = env.plan("p1")
    suffix = plan["status"]["suffix"]
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{4}", suffix)
    conds = cond_types(plan)
    assert conds["MigrationTypeIdentified"]["reason"] == "StorageConversionPlan"
    assert conds["MigrationTypeIdentified"]["message"] == sample("vm-storage-migplan.yaml")["status"]["conditions"][0]["message"]
    assert conds["PvsDiscovered"]["category"] == "Required" and conds["Ready"]["message"] == "The migration plan is ready."
    # liveMigrate with no KubeVirt CR: Advisory, not blocking (other tests of the session may have installed one)
    if not env.kube.items(R.KUBEVIRT, all_namespaces=True):
        assert conds["KubeVirtNotInstalledSourceCluster"]["category"] == "Advisory"
    else:
        assert "KubeVirtNotInstalledSourceCluster" not in conds
    pvs = plan["spec"]["persistentVolumes"]
    assert [pv["name"] for pv in pvs] == sorted(pv["name"] for pv in pvs)
    names = sorted(pv["pvc"]["name"] for pv in pvs)
    assert names == sorted([f"vm1-disk:vm1-disk-mig-{suffix}", f"vm1-root:vm1-root-mig-{suffix}"])  # unbound skipped
    for pv in pvs:
        assert pv["selection"] == {"action": "copy", "storageClass": "standard", "copyMethod": "filesystem"}
        assert pv["supported"] == {"actions": ["skip", "copy"], "copyMethods": ["filesystem", "block", "snapshot"]}
        assert pv["pvc"]["ownerType"] == "VirtualMachine" and pv["pvc"]["namespace"] == env.ns
    assert {sc["name"] for sc in plan["status"]["destStorageClasses"]} >= {"standard", "fast", "slow"}
    # the suffix is generated once; a second plan on the namespace conflicts (one plan per namespace)
    make_plan(env.kube, env.ns, env.n("p2"), live=False)
    env.until(lambda: get_condition(env.plan("p2"), "PlanConflict"))
    p2 = env.plan("p2")
    assert get_condition(p2, "PlanConflict")["message"] == f"The migration plan is in conflict with [{env.n('p1')}]."
    assert get_condition(p2, "Ready") is None
    assert env.plan("p1")["status"]["suffix"] == suffix
    # all skipped -> Critical StorageClassConversionUnavailable, Ready removed
    select_all(env.kube, env.n("p1"), skip=("vm1-disk", "vm1-root"))
    env.until(lambda: get_condition(env.plan("p1"), "StorageClassConversionUnavailable"))
    p1 = env.plan("p1")
    assert get_condition(p1, "StorageClassConversionUnavailable")["message"] == \
        "At least one PVC must be selected for Storage Class Conversion."
    assert get_condition(p1, "Ready") is None


def test_offline_cutover_two_vms(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], dv_template="vm1-root")
    make_vm(env.kube, env.ns, "vm2", ["vm2-disk"])
    env.kube.create(R.DEPLOYMENT, {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "metadata": {"name": "web", "namespace": env.ns},
                                   "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                                            "template": {"metadata": {"labels": {"a": "b"}},
                                                         "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    env.step()
    plan = env.ready_plan("p", live=False)
    suffix = plan["status"]["suffix"]
    mig = env.run("p", "cutover", "cut")
    st = mig["status"]
    assert st["itinerary"] == "Stage" and st["phase"] == "Completed"
    conds = cond_types(mig)
    assert conds["Succeeded"]["message"] == "The migration has completed successfully."
    assert "Running" not in conds and "Ready" not in conds and "Failed" not in conds
    assert [s["name"] for s in st["pipeline"]] == ["Prepare", "StageBackup", "DirectVolume", "Cleanup"]
    assert all(s["message"] == "Completed" and s["started"] and s["completed"] for s in st["pipeline"])
    running = [s["running"] for s in env.seen if s["phase"] == "WaitForDirectVolumeMigrationToComplete"]
    assert "Step: 32/38" in running
    phases = [s["phase"] for s in env.seen]
    for p in ("StartRefresh", "WaitForRefresh", "QuiesceSourceApplications", "EnsureSrcQuiesced",
              "CreateDirectVolumeMigrationStage", "WaitForVeleroReady", "SwapPVCReferences", "DeleteRegistries"):
        assert p in phases
    assert phases.index("QuiesceSourceApplications") < phases.index("SwapPVCReferences")
    # VMs were stopped with the annotations, then repointed and restarted
    assert any(s["vms"]["vm1"].get("migration.openshift.io/start-vm") == "true" for s in env.seen)
    for vm_name, claims in (("vm1", {f"vm1-disk-mig-{suffix}", f"vm1-root-mig-{suffix}"}),
                            ("vm2", {f"vm2-disk-mig-{suffix}"})):
        vm = env.kube.get(R.VM, vm_name, env.ns)
        vols = vm["spec"]["template"]["spec"]["volumes"]
        assert {(v.get("persistentVolumeClaim") or {}).get("claimName") or v["dataVolume"]["name"] for v in vols} == claims
        assert vm["spec"]["runStrategy"] == "Always"
        assert "migration.openshift.io/start-vm" not in (vm["metadata"].get("annotations") or {})
    vm1 = env.kube.get(R.VM, "vm1", env.ns)
    assert vm1["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == f"vm1-root-mig-{suffix}"
    # offline path keeps the template's storage class (BEHAVIOR §8)
    assert vm1["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] == "standard"
    # the deployment was quiesced and restored
    assert env.kube.get(R.DEPLOYMENT, "web", env.ns)["spec"]["replicas"] == 2
    # DVM: labels, owner, per-PVC lists, one DVMP per offline PVC
    dvm = env.dvm(mig)
    ref = sample("status-dvm-completed.json")
    assert set(ref["metadata"]["labels"]) == set(dvm["metadata"]["labels"])
    assert dvm["metadata"]["ownerReferences"][0]["kind"] == "MigMigration"
    assert dvm["metadata"]["generateName"] == env.n("cut") + "-"
    assert dvm["spec"]["migrationType"] == "CutOver" and dvm["spec"]["liveMigrate"] is False
    assert set(ref["spec"]["persistentVolumeClaims"][0]) <= set(dvm["spec"]["persistentVolumeClaims"][0]) | {"targetVolumeMode"}
    dst = dvm["status"]
    assert dst["phase"] == "Completed" and dst["itinerary"] == "VolumeMigration" and dst["phaseDescription"] == "Complete"
    assert get_condition(dvm, "Succeeded")["message"] == "The migration has succeeded"
    assert len(dst["successfulPods"]) == 3
    for e in dst["successfulPods"]:
        assert e["lastObservedProgressPercent"] == "100%" and e["name"].startswith("rsync-")
        assert set(e) <= set(ref["status"]["successfulPods"][0]) | {"lastObservedTransferRate"}
    dvmps = env.dvmps(dvm)
    assert len(dvmps) == 3
    for p in dvmps:
        assert p["status"]["totalProgressPercentage"] == "100%" and p["status"]["phase"] == "Succeeded"
        assert p["metadata"]["labels"] == sample("status-dvmp-running.json")["metadata"]["labels"] | {
            "directvolumemigration": dvm["metadata"]["uid"]}
        assert_condition_shape(p["status"]["conditions"][0])
    # sources kept and labelled; targets labelled (DV for VM disks)
    for src in ("vm1-disk", "vm1-root", "vm2-disk"):
        pvc = env.kube.get(R.PVC, src, env.ns)
        assert pvc["metadata"]["labels"]["migration.openshift.io/source-for-directvolumemigration"] == plan["metadata"]["uid"]
        dv = env.kube.get(R.DATAVOLUME, f"{src}-mig-{suffix}", env.ns)
        assert dv["spec"]["storage"]["storageClassName"] == "fast" and "blank" in dv["spec"]["source"]
        assert dv["metadata"]["annotations"]["cdi.kubevirt.io/allowClaimAdoption"] == "true"
        assert dv["metadata"]["labels"][MIG_LABELS[0]] == plan["metadata"]["uid"]
    for c in mig["status"]["conditions"]:
        assert_condition_shape(c)


def test_live_cutover(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], dv_template="vm1-root")
    env.step()
    plan = env.ready_plan("p", live=True)
    suffix = plan["status"]["suffix"]
    mig = env.run("p", "cutover", "live")
    assert get_condition(mig, "Succeeded"), mig["status"]
    dvm = env.dvm(mig)
    assert dvm["spec"]["liveMigrate"] is True and dvm["spec"]["migrationType"] == "CutOver"
    done = dvm["status"]["successfulLiveMigration"]
    assert sorted(e["pvcRef"]["name"] for e in done) == ["vm1-disk", "vm1-root"]
    assert all(e["vmName"] == "vm1" and e["lastObservedProgressPercent"] == "100%" for e in done)
    assert "successfulPods" not in dvm["status"] and env.dvmps(dvm) == []
    assert env.kv.vmims_seen, "KubeVirt was asked to migrate"
    vm = env.kube.get(R.VM, "vm1", env.ns)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"
    assert vm["spec"]["runStrategy"] == "Always" and "annotations" not in vm["metadata"]
    t = vm["spec"]["dataVolumeTemplates"][0]
    assert t["metadata"]["name"] == f"vm1-root-mig-{suffix}" and t["spec"]["storage"]["storageClassName"] == "fast"
    prog = [line for s in env.seen for st in (s["pipeline"] or []) if st["name"] == "DirectVolume"
            for line in st.get("progress") or []]
    assert any(re.match(r"\[vm1-disk\] Live Migration .*/vm1: (Running|Pending)", p) for p in prog), prog
    assert any(re.match(r"1 total volumes|2 total volumes; \d successful; \d running; 0 failed", p) for p in prog)


def test_stage_skips_running_vms(env):
    make_vm(env.kube, env.ns, "run", ["run-disk"])
    make_vm(env.kube, env.ns, "stopped", ["stopped-disk"], running=False)
    env.step()
    env.ready_plan("p", live=True)
    mig = env.run("p", "stage", "stg")
    assert get_condition(mig, "Succeeded")
    assert "QuiesceSourceApplications" not in [s["phase"] for s in env.seen]
    assert "SwapPVCReferences" not in [s["phase"] for s in env.seen]
    dvm = env.dvm(mig)
    assert dvm["spec"]["migrationType"] == "Stage"
    assert dvm["status"]["skippedVolumes"] == [f"{env.ns}/run-disk"]
    assert [e["pvcRef"]["name"] for e in dvm["status"]["successfulPods"]] == ["stopped-disk"]
    assert len(env.dvmps(dvm)) == 1
    vm = env.kube.get(R.VM, "run", env.ns)
    assert vm["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "run-disk"


def test_rollback_after_offline_cutover(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], dv_template="vm1-root")
    env.step()
    plan = env.ready_plan("p", live=False)
    suffix = plan["status"]["suffix"]
    assert get_condition(env.run("p", "cutover", "cut"), "Succeeded")
    env.seen.clear()
    mig = env.run("p", "rollback", "rb")
    assert mig["status"]["itinerary"] == "Rollback" and get_condition(mig, "Succeeded"), mig["status"]
    assert [s["name"] for s in mig["status"]["pipeline"]] == ["CleanupVelero", "CleanupHelpers", "CleanupMigrated",
                                                              "CleanupUnquiesce"]
    phases = [s["phase"] for s in env.seen]
    assert "DeleteMigrated" in phases and "WaitForDirectVolumeMigrationToRollbackComplete" not in phases
    assert "Step: 1/15" in [s["running"] for s in env.seen]
    vm = env.kube.get(R.VM, "vm1", env.ns)
    claims = {(v.get("persistentVolumeClaim") or {}).get("claimName") or v["dataVolume"]["name"]
              for v in vm["spec"]["template"]["spec"]["volumes"]}
    assert claims == {"vm1-disk", "vm1-root"} and vm["spec"]["runStrategy"] == "Always"
    for src in ("vm1-disk", "vm1-root"):
        assert env.kube.get_or_none(R.PVC, src, env.ns) is not None
        assert env.kube.get_or_none(R.DATAVOLUME, f"{src}-mig-{suffix}", env.ns) is None
        assert env.kube.get_or_none(R.PVC, f"{src}-mig-{suffix}", env.ns) is None


def test_cancel_restarts_vms_and_deletes_dvm(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=False)
    set_faults(env.kube, env.ns, rsyncStep="1")  # slow copy so the cancel lands mid-transfer
    make_migration(env.kube, env.n("p"), "cutover", name=env.n("c"))
    env.until(lambda: (env.mig("c").get("status") or {}).get("phase") == "WaitForDirectVolumeMigrationToComplete", "c")
    env.step("c")
    dvm = env.dvm(env.mig("c"))
    env.kube.patch(R.MIGMIGRATION, env.n("c"), {"spec": {"canceled": True}}, MTC_NAMESPACE)
    env.until(lambda: env.mig("c")["status"]["phase"] == "Completed", "c")
    mig = env.mig("c")
    conds = cond_types(mig)
    assert mig["status"]["itinerary"] == "Cancel"
    assert conds["Canceled"]["message"] == "The migration has been canceled." and "Canceling" not in conds
    # C5: the Cancel itinerary ends at Completed, where migrate.go sets Succeeded whatever the itinerary
    assert conds["Succeeded"]["message"] == "The migration has completed successfully."
    assert any(s["phase"] == "Canceling" for s in env.seen)
    assert env.kube.get_or_none(R.DVM, dvm["metadata"]["name"], MTC_NAMESPACE) is None
    vm = env.kube.get(R.VM, "vm1", env.ns)
    assert vm["spec"]["runStrategy"] == "Always" and not (vm["metadata"].get("annotations") or {})


def test_rsync_exhaustion_dvm_fails_without_errors_and_migration_succeeds(env):
    """M1 (rsync.go processRsyncOperationStatus shadows failureReasons): DVM Failed Critical, errors empty;
    the MigMigration sees no reason, swaps the VM to the partly copied target, restarts it, Succeeded."""
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    suffix = env.ready_plan("p", live=False)["status"]["suffix"]
    mig = env.run("p", "cutover", "f", rsyncFailAt="40", backOffLimit="3")
    conds = cond_types(mig)
    assert mig["status"]["phase"] == "Completed" and mig["status"]["itinerary"] == "Stage"
    assert conds["Succeeded"]["message"] == "The migration has completed successfully."
    assert "Failed" not in conds and "DirectVolumeMigrationFailed" not in conds and not mig["status"].get("errors")
    assert "SwapPVCReferences" in [s["phase"] for s in env.seen]
    dvm = env.dvm(mig)
    assert dvm["status"]["itinerary"] == "VolumeMigrationFailed" and dvm["status"]["phase"] == "Completed"
    assert get_condition(dvm, "Failed")["category"] == "Critical" and get_condition(dvm, "Failed")["reason"] == "RunRsyncOperations"
    assert not dvm["status"].get("errors")
    assert [e["pvcRef"]["name"] for e in dvm["status"]["failedPods"]] == ["vm1-disk"]
    assert dvm["status"]["rsyncOperations"] == [{"pvcReference": {"namespace": env.ns, "name": "vm1-disk"},
                                                 "currentAttempt": 3, "failed": True}]
    (dvmp,) = env.dvmps(dvm)
    hist = dvmp["status"]["rsyncPodStatuses"]
    assert [h["phase"] for h in hist] == ["Failed"] * 3 and all(h["exitCode"] == 11 for h in hist)
    assert dvmp["status"]["totalProgressPercentage"] == "100%"  # 3 × 40 % summed, capped (M5)
    # the VM now runs on the partly copied target
    vm = env.kube.get(R.VM, "vm1", env.ns)
    assert vm["spec"]["runStrategy"] == "Always"
    assert vm["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == f"vm1-disk-mig-{suffix}"


def test_rsync_retry_then_success(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], running=False)
    env.step()
    env.ready_plan("p", live=False)
    mig = env.run("p", "stage", "r", rsyncFailAt="40", rsyncFailAttempts="1")
    assert get_condition(mig, "Succeeded")
    (dvmp,) = env.dvmps(env.dvm(mig))
    assert [h["phase"] for h in dvmp["status"]["rsyncPodStatuses"]] == ["Failed", "Succeeded"]
    assert dvmp["status"]["totalProgressPercentage"] == "100%"
    prog = [line for s in env.seen for st in (s["pipeline"] or []) if st["name"] == "DirectVolume"
            for line in st.get("progress") or []]
    assert any(re.search(r"\[vm1-disk\] .*/rsync-\w+: Running - Attempt 2 of 20 \d+%", p) for p in prog), prog


def test_dvm_warn_failure_gives_succeeded_with_warnings(env):
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=False)
    mig = env.run("p", "cutover", "w", dvmWarnFailure="true")
    conds = cond_types(mig)
    assert conds["SucceededWithWarnings"]["message"] == \
        "The migration has completed with warnings, please look at `Warn` conditions."
    assert "Succeeded" not in conds and "Failed" not in conds
    dvm = env.dvm(mig)
    assert conds["DirectVolumeMigrationFailed"]["category"] == "Warn"
    assert conds["DirectVolumeMigrationFailed"]["message"] == \
        f"DirectVolumeMigration (dvm): openshift-migration/{dvm['metadata']['name']} failed. See in dvm status.Errors"
    assert get_condition(dvm, "Failed")["category"] == "Warn"
    assert "SwapPVCReferences" in [s["phase"] for s in env.seen]  # the hazard of BEHAVIOR §8
