"""mig-controller stand-in, MigMigration/DVM/DVMP rules against the real API server: each test names the
upstream function (migtools/mig-controller pkg/controller/…) whose behaviour it pins down."""
import datetime

import pytest

from kubectl_vmmig import resources as R
from tests.sim.common import MTC_NAMESPACE, get_condition, go_duration, now, parse_go_duration, set_faults
from tests.sim.mtc_testkit import Env, make_migration, make_vm, make_vmim, select_all

pytestmark = pytest.mark.cluster


@pytest.fixture
def env(cp, manual_namespace):
    return Env(cp.admin, manual_namespace)


@pytest.fixture
def live_env(cp, manual_namespace):
    return Env(cp.admin, manual_namespace, manual_vmims=True)


def ago(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def dvm_of(env, mig_name):
    items = env.kube.items(R.DVM, MTC_NAMESPACE,
                           label_selector=f"migration-direct-volume={env.mig(mig_name)['metadata']['uid']}")
    return items[0] if items else None


def dvm_phase(env, mig_name):
    d = dvm_of(env, mig_name)
    return ((d or {}).get("status") or {}).get("phase")


def progress(mig):
    return [line for s in (mig["status"].get("pipeline") or []) if s["name"] == "DirectVolume"
            for line in s.get("progress") or []]


def test_cancel_is_not_processed_while_a_blocker_holds(env):
    """migmigration_controller.go Reconcile: migrate() (where canceled() picks the Cancel itinerary) runs
    only without a blocker condition (M9); PlanNotReady text with ', subject: ns/name' (C4); the Cancel
    itinerary ends with Canceled AND Succeeded (migrate.go, C5)."""
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    plan = env.ready_plan("p", live=False)
    select_all(env.kube, plan["metadata"]["name"], "fast", skip=("vm1-disk",))
    env.until(lambda: get_condition(env.plan("p"), "Ready") is None)
    make_migration(env.kube, env.n("p"), "cutover", name=env.n("c"))
    env.step("c")
    env.kube.patch(R.MIGMIGRATION, env.n("c"), {"spec": {"canceled": True}}, MTC_NAMESPACE)
    for _ in range(4):
        env.step("c")
    mig = env.mig("c")
    assert get_condition(mig, "PlanNotReady")["message"] == (
        f"The referenced `migPlanRef` does not have a `Ready` condition, subject: {MTC_NAMESPACE}/{env.n('p')}.")
    assert get_condition(mig, "PlanNotReady")["category"] == "Critical"
    assert not mig["status"].get("itinerary") and not mig["status"].get("phase")
    assert get_condition(mig, "Canceling") is None
    select_all(env.kube, env.n("p"), "fast")  # the blocker goes away: now the cancel is processed
    env.until(lambda: env.mig("c")["status"].get("phase") == "Completed", "c")
    mig = env.mig("c")
    assert mig["status"]["itinerary"] == "Cancel"
    assert get_condition(mig, "Canceled") and get_condition(mig, "Succeeded")


def test_live_progress_pending_until_kubevirt_sets_migration_state(live_env):
    """rsync.go updateVolumeLiveMigrationProgressStatus: the VMIM is read only once status.migrationState
    is set; before that virtualMachineMigrationStatus finds no failure → pendingLiveMigration with no
    elapsed time, whatever the VMIM phase (M2)."""
    env = live_env
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=True)
    make_migration(env.kube, env.n("p"), "cutover", name=env.n("l"))
    env.until(lambda: dvm_phase(env, "l") == "RunRsyncOperations", "l")
    env.step("l")
    st = dvm_of(env, "l")["status"]
    assert [e["vmName"] for e in st["pendingLiveMigration"]] == ["vm1"]
    assert "totalElapsedTime" not in st["pendingLiveMigration"][0]
    vm = env.kube.get(R.VM, "vm1", env.ns)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration", "the volume update was written"
    make_vmim(env.kube, env.ns, "vmim-a", "vm1", "Running")  # copying, no migrationState yet
    for _ in range(2):
        env.step("l")
    st = dvm_of(env, "l")["status"]
    assert st.get("runningLiveMigration") is None and len(st["pendingLiveMigration"]) == 1
    assert "totalElapsedTime" not in st["pendingLiveMigration"][0]
    assert any(line.startswith(f"[vm1-disk] Live Migration {env.ns}/vm1: Pending") for line in progress(env.mig("l")))
    env.kube.patch(R.VMIM, "vmim-a", {"status": {"migrationState": {"startTimestamp": ago(5)}}}, env.ns,
                   subresource="status")
    env.step("l")
    st = dvm_of(env, "l")["status"]
    (running,) = st["runningLiveMigration"]
    assert running["vmName"] == "vm1" and parse_go_duration(running["totalElapsedTime"]) >= 5
    env.kube.patch(R.VMIM, "vmim-a", {"status": {"phase": "Succeeded", "migrationState": {
        "startTimestamp": ago(5), "endTimestamp": now(), "completed": True}}}, env.ns, subresource="status")
    env.until(lambda: env.mig("l")["status"].get("phase") == "Completed", "l")
    assert get_condition(env.mig("l"), "Succeeded")
    (done,) = dvm_of(env, "l")["status"]["successfulLiveMigration"]
    assert done["lastObservedProgressPercent"] == "100%"


def test_failed_vmim_listed_last_is_shown_but_verdict_reads_first(live_env):
    """vm.go getVolumeVMIMInNamespaces (LAST listed VMIM → status) vs findVirtualMachineInstanceMigration
    (FIRST listed → processMigrationOperationStatus verdict): [pending retry, failed] → the DVM lists
    failedLiveMigration and still Succeeds; so does the MigMigration (M3)."""
    env = live_env
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=True)
    make_vmim(env.kube, env.ns, "vmim-a-retry", "vm1", "Pending")
    make_vmim(env.kube, env.ns, "vmim-b-failed", "vm1", "Failed", {
        "startTimestamp": ago(20), "endTimestamp": ago(10), "completed": True, "failed": True,
        "failureReason": "sim: target pod crashed"})
    mig = env.run("p", "cutover", "l")
    dvm = dvm_of(env, "l")
    (failed,) = dvm["status"]["failedLiveMigration"]
    assert failed["message"] == "sim: target pod crashed" and failed["vmName"] == "vm1"
    assert get_condition(dvm, "Succeeded") and get_condition(dvm, "Failed") is None
    assert get_condition(mig, "Succeeded") and not mig["status"].get("errors")


def test_stale_failed_vmim_listed_first_fails_a_succeeded_retry(live_env):
    """vm.go deleteStaleVirtualMachineInstanceMigrations deletes only Succeeded VMIMs that ended before
    the DVM; an old Failed one stays, is listed first and fails the DVM (Critical, errors = its reason)
    although the new VMIM Succeeded; the MigMigration fails with "DVM failed: <errors>" (task.go
    waitForDVMToComplete) and DirectVolumeMigrationFailed (M1 live, M3)."""
    env = live_env
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=True)
    make_vmim(env.kube, env.ns, "vmim-0-old-ok", "vm1", "Succeeded", {
        "startTimestamp": ago(7200), "endTimestamp": ago(7100), "completed": True})
    make_vmim(env.kube, env.ns, "vmim-a-old-failed", "vm1", "Failed", {
        "startTimestamp": ago(3600), "endTimestamp": ago(3500), "completed": True, "failed": True,
        "failureReason": "sim: old attempt failed"})
    make_migration(env.kube, env.n("p"), "cutover", name=env.n("l"))
    env.until(lambda: dvm_phase(env, "l") == "RunRsyncOperations", "l")
    names = sorted(m["metadata"]["name"] for m in env.kube.items(R.VMIM, env.ns))
    assert names == ["vmim-a-old-failed"], "only the stale Succeeded VMIM was deleted"
    make_vmim(env.kube, env.ns, "vmim-b-new", "vm1", "Succeeded", {
        "startTimestamp": now(), "endTimestamp": now(), "completed": True})
    env.until(lambda: env.mig("l")["status"].get("phase") == "Completed", "l")
    mig, dvm = env.mig("l"), dvm_of(env, "l")
    assert [e["pvcRef"]["name"] for e in dvm["status"]["successfulLiveMigration"]] == ["vm1-disk"]
    assert get_condition(dvm, "Failed")["category"] == "Critical"
    assert dvm["status"]["errors"] == ["sim: old attempt failed"]
    assert mig["status"]["itinerary"] == "Failed" and get_condition(mig, "Failed")
    assert mig["status"]["errors"] == ["DVM failed: sim: old attempt failed"]
    assert get_condition(mig, "DirectVolumeMigrationFailed")["message"] == \
        f"DirectVolumeMigration (dvm): {MTC_NAMESPACE}/{dvm['metadata']['name']} failed. See in dvm status.Errors"


def test_dvmp_progress_sums_attempts_and_elapsed_excludes_running_attempt(env):
    """directvolumemigrationprogress_controller.go updateCumulativeProgressPercentage (history + current,
    capped at 100) and updateCumulativeElapsedTime (containerElapsedTime is nil while the container is
    Ready, getRsyncClientContainerStatus) (M5)."""
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], running=False)
    env.step()
    env.ready_plan("p", live=False)
    set_faults(env.kube, env.ns, rsyncFailAt="60", rsyncFailAttempts="2")
    make_migration(env.kube, env.n("p"), "stage", name=env.n("s"))
    seen = []
    for _ in range(200):
        env.step("s")
        d = dvm_of(env, "s")
        for p in env.kube.items(R.DVMP, MTC_NAMESPACE, label_selector=f"directvolumemigration={d['metadata']['uid']}") if d else []:
            seen.append(p.get("status") or {})
        if env.mig("s")["status"].get("phase") == "Completed":
            break
    assert get_condition(env.mig("s"), "Succeeded")
    running = [s for s in seen if s.get("phase") == "Running"]
    first = [s for s in running if not s.get("rsyncPodStatuses")]
    assert first and all(s["rsyncElapsedTime"] == "0s" for s in first), "the running attempt's time is not counted"
    third = [s for s in running if len(s.get("rsyncPodStatuses") or []) == 2]
    assert third
    for s in third:
        hist = sum(parse_go_duration(h.get("containerElapsedTime")) for h in s["rsyncPodStatuses"])
        assert s["rsyncElapsedTime"] == go_duration(hist)
    # 60 % + 60 % from the failed attempts (capped) while the third attempt starts at 0 %
    assert any(s["totalProgressPercentage"] == "100%" and s["lastObservedProgressPercent"] == "0%" for s in third)


def test_pending_since_time_limit_pods_is_never_reset(env):
    """rsync.go updateRsyncProgressStatus appends a pod Pending > 10 min to pendingSinceTimeLimitPods,
    resetProgressCounters never clears it, podPendingSinceTimeLimit re-sets RsyncClientPodsPending on
    every RunRsyncOperations reconcile — after the pod started too; staged away afterwards (M12)."""
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"], running=False)
    env.step()
    env.ready_plan("p", live=False)
    set_faults(env.kube, env.ns, rsyncPendingFor="660")
    make_migration(env.kube, env.n("p"), "stage", name=env.n("s"))
    observed = []
    for _ in range(200):
        env.step("s")
        d = dvm_of(env, "s")
        if d and (d.get("status") or {}).get("phase") == "RunRsyncOperations":
            observed.append((d["status"], env.mig("s")))
        if env.mig("s")["status"].get("phase") == "Completed":
            break
    first_st = next(st for st, _ in observed if st.get("pendingSinceTimeLimitPods"))
    assert first_st["pendingPods"], "listed while the pod is Pending"
    (stuck,) = first_st["pendingSinceTimeLimitPods"]
    cond = get_condition({"status": first_st}, "RsyncClientPodsPending")
    assert cond["category"] == "Warn" and cond["message"] == (
        f"Rsync Client Pods [{env.ns}/{stuck['name']}] are stuck in Pending state for more than 10 mins")
    # migmigration/dvm.go getWarningForDVM: the DVM's Warn conditions → DirectVolumeMigrationBlocked
    assert any((get_condition(m, "DirectVolumeMigrationBlocked") or {}).get("message") == cond["message"]
               for _, m in observed)
    later = [st for st, _ in observed if st.get("runningPods")]
    assert later, "the rsync pod started"
    for st in later:
        assert st["pendingSinceTimeLimitPods"] == [stuck] and get_condition({"status": st}, "RsyncClientPodsPending")
    dvm = dvm_of(env, "s")
    assert dvm["status"]["phase"] == "Completed" and dvm["status"]["pendingSinceTimeLimitPods"] == [stuck]
    assert get_condition(dvm, "RsyncClientPodsPending") is None
    assert get_condition(env.mig("s"), "Succeeded")
