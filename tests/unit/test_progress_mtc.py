"""engines/mtc/progress.py and the shared rules in progress.py, on the reference samples
(fixtures/mtc/status-*.json, copied from shared/reference/mtc/samples)."""
import copy
import json
from pathlib import Path

import pytest

from kubectl_vmmig import progress as P
from kubectl_vmmig.engines.mtc import progress as mtc

FIX = Path(__file__).parent / "fixtures" / "mtc"
MIG_UID = "2f0c7a4e-4b0e-4d59-9a0e-3c1f7f7d2a11"


def load(name):
    obj = json.loads((FIX / f"status-{name}.json").read_text())
    obj.pop("_source", None)
    return obj


def plan(live=True, pairs=(("pvc-0", "pvc-0-mig-x7bq", "copy"),), name="vm-storage-plan", ns="ns"):
    return {
        "apiVersion": "migration.openshift.io/v1alpha1", "kind": "MigPlan",
        "metadata": {"name": name, "namespace": "openshift-migration", "uid": "plan-uid"},
        "spec": {"namespaces": [ns], "liveMigrate": live, "persistentVolumes": [
            {"name": f"pv-{src}", "storageClass": "standard", "supported": {"actions": ["skip", "copy"],
                                                                           "copyMethods": ["filesystem", "block"]},
             "selection": {"action": action, "storageClass": "fast", "copyMethod": "block"},
             "pvc": {"name": f"{src}:{tgt}", "namespace": ns}} for src, tgt, action in pairs]},
        "status": {"suffix": "x7bq"},
    }


def vm(name="vm-0", claims=(("rootdisk", "pvc-0"),), running=True, ns="ns"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": {"volumes": [
                {"name": vol, "persistentVolumeClaim": {"claimName": c}} for vol, c in claims]}}},
            "status": {"printableStatus": "Running" if running else "Stopped", "ready": running}}


def mig_with(conds, phase="Completed", **spec):
    m = load("migmigration-cutover-running")
    m["status"]["conditions"] = conds
    m["status"]["phase"] = phase
    m["spec"].update(spec)
    return m


def cond(ctype, category="Advisory", message="", reason=None, t="2025-06-01T10:09:00Z"):
    c = {"type": ctype, "status": "True", "category": category, "message": message, "lastTransitionTime": t}
    if reason:
        c["reason"] = reason
    return c


def one(objs, **kw):
    ms = mtc.from_objects(objs, **kw)
    assert len(ms) == 1, ms
    return ms[0]


def test_live_cutover_running_reads_the_live_list():
    m = one([plan(), load("migmigration-cutover-running"), load("dvm-live-migration-running"), vm()])
    assert (m["plan"], m["namespace"], m["engine"], m["type"]) == ("vm-storage-plan", "ns", "mtc", "cutover")
    assert m["phase"] == "WaitForDirectVolumeMigrationToComplete"
    assert m["result"] == "Running" and m["completed"] is None
    assert m["started"] == "2025-06-01T10:03:30Z"
    [d] = m["disks"]
    assert d["vm"] == "vm-0" and d["volume"] == "rootdisk"
    assert (d["sourcePVC"], d["targetPVC"]) == ("pvc-0", "pvc-0-mig-x7bq")
    assert (d["sourceStorageClass"], d["targetStorageClass"]) == ("standard", "ocs-storagecluster-ceph-rbd-virtualization")
    assert (d["mode"], d["phase"], d["progressPercent"]) == ("live", "Running", 50)
    assert d["transferRate"] == "10MB/s" and d["elapsed"] == "1m30s" and d["attempt"] is None
    assert "DirectVolume" in m["_step"] and "Step: 32/38" in m["_step"]
    assert "vmim" in d["_inspect"] and "vm-0" in d["_inspect"]


def test_offline_rsync_running_uses_dvm_pod_list_and_dvmp():
    dvm = load("dvm-live-migration-running")
    dvm["spec"]["liveMigrate"] = False
    dvm["status"].pop("runningLiveMigration")
    dvm["status"]["runningPods"] = [{"namespace": "ns", "name": "dvm-rsync", "pvcRef": {"namespace": "ns", "name": "pvc-0"},
                                     "lastObservedProgressPercent": "20%", "totalElapsedTime": "0s"}]
    m = one([plan(live=False), load("migmigration-cutover-running"), dvm, load("dvmp-running"), vm(running=False)])
    [d] = m["disks"]
    # The DVMP (more recent than the DVM's copy of it) wins for percent and rate.
    assert (d["mode"], d["phase"], d["progressPercent"], d["transferRate"]) == ("offline", "Running", 33, "66.13MB/s")
    # M5: rsyncElapsedTime ("0s") leaves the running attempt out; without a clock there is no elapsed time
    assert d["elapsed"] is None and d["attempt"] == 1
    assert "dvmp fbef8ca5e24ba43a20bbbea83fdaf4f4" in d["_inspect"]
    [d] = one([plan(live=False), load("migmigration-cutover-running"), dvm, load("dvmp-running"), vm(running=False)],
              now="2021-04-23T16:17:30Z")["disks"]
    assert d["elapsed"] == "1m30s"  # since the running pod's creationTimestamp (16:16:00)


def test_dvmp_retries_cumulative_percent_and_attempts():
    dvm = load("dvm-live-migration-running")
    dvm["status"].pop("runningLiveMigration")
    m = one([plan(), load("migmigration-cutover-running"), dvm, load("dvmp-retries"), vm()])
    [d] = m["disks"]
    assert d["mode"] == "offline" and d["phase"] == "Running"
    # M5: the current attempt's percent and elapsed, not totalProgressPercentage (40%, a capped sum over
    # attempts) nor rsyncElapsedTime (2m47s, the finished attempts only)
    assert d["progressPercent"] == 10 and d["transferRate"] == "40.91MB/s"
    assert d["elapsed"] is None and d["attempt"] == 4
    [d] = one([plan(), load("migmigration-cutover-running"), dvm, load("dvmp-retries"), vm()],
              now="2025-06-01T10:09:20Z")["disks"]
    assert d["elapsed"] == "20s"


def test_dvmp_failed_attempt_with_retries_left_is_still_running():
    dvm = load("dvm-live-migration-running")
    dvm["status"].pop("runningLiveMigration")
    dvmp = load("dvmp-retries")
    dvmp["status"].update(phase="Failed", exitCode=12, logMessage="rsync error: error in rsync protocol data stream")
    [d] = one([plan(), load("migmigration-cutover-running"), dvm, dvmp, vm()])["disks"]
    assert d["phase"] == "Running" and "retrying" in d["message"] and "exited with code 12" in d["message"]


def test_completed_cutover_succeeds():
    mig = mig_with([cond("Succeeded", reason="Completed", message="The migration has completed successfully.")])
    m = one([plan(live=False), mig, load("dvm-completed"), vm(running=False)])
    assert m["result"] == "Succeeded" and m["completed"] == "2025-06-01T10:09:00Z" and m["phase"] == "Completed"
    [d] = m["disks"]
    assert (d["phase"], d["progressPercent"], d["elapsed"], d["attempt"]) == ("Succeeded", 100, "2m14s", 1)


@pytest.mark.parametrize("extra, dvm_failed, expected", [
    ([cond("DirectVolumeMigrationFailed", "Warn", "DirectVolumeMigration (dvm): openshift-migration/x failed. "
                                                  "See in dvm status.Errors")], False, "Failed"),
    ([], True, "Failed"),        # a Failed (Warn) DVM without the MigMigration condition still fails
    # any other Warn: not a success the conditions back (issue 13: status said Succeeded, migrate --wait Failed)
    ([cond("UnhealthyNamespaces", "Warn", "unhealthy")], False, "Failed"),
])
def test_succeeded_with_warnings_is_judged_on_the_dvm(extra, dvm_failed, expected):
    mig = mig_with([cond("SucceededWithWarnings", message="The migration has completed with warnings, please look "
                                                          "at `Warn` conditions.")] + extra)
    dvm = load("dvm-completed")
    if dvm_failed:
        dvm["status"]["conditions"] = [cond("Failed", "Warn", "The migration has failed.  See: Errors.",
                                            reason="CreateDestinationPVCs")]
    m = one([plan(live=False), mig, dvm, vm(running=False)])
    assert m["result"] == expected
    if expected == "Failed":
        assert m["_errors"] or dvm_failed


def test_rsync_failure_names_the_disk():
    mig = mig_with([cond("Failed", reason="WaitForDirectVolumeMigrationToComplete",
                         message="The migration has failed.  See: Errors.")])
    mig["status"]["errors"] = ["direct volume migration failed. 1 total volumes; 0 successful; 0 running; 1 failed"]
    m = one([plan(live=False), mig, load("dvm-rsync-failed"), vm(running=False)])
    assert m["result"] == "Failed"
    [d] = m["disks"]
    assert (d["vm"], d["phase"], d["attempt"], d["mode"]) == ("vm-0", "Failed", 20, "offline")
    assert "rsync failed after 20 attempts" in d["message"]


def test_live_migration_failure_message():
    mig = mig_with([cond("Failed", message="The migration has failed.  See: Errors.")])
    m = one([plan(), mig, load("dvm-live-migration-failed"), vm()])
    [d] = m["disks"]
    assert (d["mode"], d["phase"]) == ("live", "Failed")
    assert d["message"] == "Unable to live migrate because of the test reason"
    assert d["elapsed"] == "10s" and d["progressPercent"] is None


def test_canceled_without_dvm_marks_disks_canceled():
    mig = mig_with([cond("Canceled", reason="Cancel", message="The migration has been canceled.")], canceled=True)
    m = one([plan(), mig, vm()])
    assert m["result"] == "Canceled" and [d["phase"] for d in m["disks"]] == ["Canceled"]


def test_canceling_is_still_running():
    mig = mig_with([cond("Canceling", reason="Cancel", message="The migration is being canceled.")], phase="Canceling")
    assert one([plan(), mig, vm()])["result"] == "Running"


def test_before_dvm_rows_come_from_plan_copy_selections_only():
    p = plan(pairs=(("pvc-0", "pvc-0-mig-x7bq", "copy"), ("other", "other-mig-x7bq", "skip"),
                    ("pvc-1", "pvc-1-mig-x7bq", "copy")))
    mig = load("migmigration-cutover-running")
    mig["status"]["phase"] = "QuiesceSourceApplications"
    m = one([p, mig, vm(claims=(("rootdisk", "pvc-0"),)), vm("vm-1", (("data", "pvc-1"),), running=False)])
    rows = {d["sourcePVC"]: d for d in m["disks"]}
    assert set(rows) == {"pvc-0", "pvc-1"}
    assert rows["pvc-0"]["mode"] == "live" and rows["pvc-1"]["mode"] == "offline"
    assert rows["pvc-1"]["targetPVC"] == "pvc-1-mig-x7bq" and rows["pvc-1"]["targetStorageClass"] == "fast"
    assert all(d["phase"] == "Pending" for d in m["disks"])


def test_stage_with_live_plan_skips_running_vm_volumes():
    mig = load("migmigration-cutover-running")
    mig["spec"]["quiescePods"] = False
    dvm = load("dvm-live-migration-running")
    dvm["status"].pop("runningLiveMigration")
    dvm["status"]["skippedVolumes"] = ["ns/pvc-0"]
    m = one([plan(), mig, dvm, vm()])
    assert m["type"] == "stage"
    [d] = m["disks"]
    assert (d["phase"], d["mode"]) == ("Skipped", "live")


def test_rollback_shows_the_way_back():
    mig = load("migmigration-cutover-running")
    mig["spec"] = {"migPlanRef": mig["spec"]["migPlanRef"], "stage": False, "rollback": True}
    m = one([plan(), mig, vm(claims=(("rootdisk", "pvc-0-mig-x7bq"),))])
    [d] = m["disks"]
    assert m["type"] == "rollback"
    assert (d["sourcePVC"], d["targetPVC"]) == ("pvc-0-mig-x7bq", "pvc-0")
    assert (d["sourceStorageClass"], d["targetStorageClass"]) == ("fast", "standard")
    assert d["vm"] == "vm-0"


def test_every_run_of_a_plan_is_a_migration_oldest_first():
    old = mig_with([cond("Succeeded")], quiescePods=False)
    old["metadata"].update(name="stage-1", uid="u-old", creationTimestamp="2025-06-01T09:00:00Z")
    new = load("migmigration-cutover-running")
    new["metadata"]["creationTimestamp"] = "2025-06-01T10:00:00Z"
    ms = mtc.from_objects([plan(), new, old, vm()])
    assert [(m["_migration"], m["type"], m["result"], m["_superseded"]) for m in ms] == \
        [("stage-1", "stage", "Succeeded", True), ("vm-storage-cutover", "cutover", "Running", False)]
    doc = P.document(ms)["migrations"]
    assert [m["type"] for m in doc] == ["stage", "cutover"] and "_superseded" not in doc[0]


def test_namespace_filter_and_plan_without_migration():
    objs = [plan(), load("migmigration-cutover-running"), plan(name="p2", ns="other")]
    assert [m["plan"] for m in mtc.from_objects(objs, namespace="ns")] == ["vm-storage-plan"]
    assert mtc.from_objects(objs, namespace="nope") == []
    assert [m["plan"] for m in mtc.from_objects(objs)] == ["vm-storage-plan"]  # p2 has no migration yet


def test_fatal_blocker_fails_and_postponed_does_not():
    bad = mig_with([cond("InvalidSpec", "Critical", "Only one of the stage/migrateState/rollback options can be set "
                                                    "at a time", reason="NotSupported")], phase="")
    m = one([plan(), bad])
    assert m["result"] == "Failed" and any("Only one of" in e for e in m["_errors"])
    assert m["disks"][0]["phase"] == "NotStarted"
    wait = mig_with([cond("Postponed", "Critical", "Postponed 10 seconds to ensure migrations run serially and in "
                                                   "order.")], phase="")
    m = one([plan(), wait])
    assert m["result"] == "Running" and any("Postponed" in w for w in m["_warnings"])


def test_contract_keys_and_types():
    doc = P.document(mtc.from_objects([plan(), load("migmigration-cutover-running"),
                                       load("dvm-live-migration-running"), vm()]))
    [m] = doc["migrations"]
    assert list(m) == list(P.MIGRATION_KEYS)
    assert all(isinstance(m[k], str) for k in ("plan", "namespace", "engine", "type", "phase", "result", "started"))
    [d] = m["disks"]
    assert list(d) == list(P.DISK_KEYS)
    assert all(isinstance(d[k], str) for k in ("vm", "volume", "sourcePVC", "targetPVC", "sourceStorageClass",
                                                "targetStorageClass", "mode", "phase", "message"))
    assert isinstance(d["progressPercent"], (int, float)) and d["attempt"] is None
    json.dumps(doc)  # serializable, no render hints left
    assert "_step" not in json.dumps(doc)


# ---- collect: constant number of requests ---------------------------------------------------------
class FakeKube:
    namespace = "ns"

    def __init__(self, n_vms):
        self.calls = []
        self.objs = {"MigPlan": [plan()], "MigMigration": [load("migmigration-cutover-running")],
                     "DirectVolumeMigration": [load("dvm-live-migration-running")],
                     "DirectVolumeMigrationProgress": [],
                     "VirtualMachine": [vm()] + [vm(f"vm-x{i}", (("d", f"c{i}"),)) for i in range(n_vms)]}

    def items(self, res, namespace=None, label_selector=None, all_namespaces=False, **kw):
        self.calls.append((res.kind, namespace, label_selector, all_namespaces))
        return copy.deepcopy(self.objs.get(res.kind, []))


def test_collect_is_a_constant_number_of_lists():
    small, big = FakeKube(1), FakeKube(300)
    a, b = mtc.collect(small, "ns"), mtc.collect(big, "ns")
    assert len(small.calls) == len(big.calls) == 5
    assert a == b and a[0]["disks"][0]["phase"] == "Running"
    sel = {c[0]: c[2] for c in small.calls}
    assert sel["DirectVolumeMigration"] == "migration-direct-volume"
    assert sel["DirectVolumeMigrationProgress"] == "directvolumemigration"


def test_collect_stops_after_one_request_when_no_plan_covers_the_namespace():
    k = FakeKube(10)
    assert mtc.collect(k, "elsewhere") == [] and len(k.calls) == 1


# ---- shared helpers -----------------------------------------------------------------------------
def test_judge_rules():
    assert P.judge() == "Running"
    assert P.judge(succeeded=True) == "Succeeded"
    assert P.judge(succeeded=True, disks=[{"phase": "Failed"}]) == "Failed"
    assert P.judge(succeeded=True, hidden_failure=True) == "Failed"
    assert P.judge(failed=True, canceled=True) == "Canceled"


def test_field_readers():
    assert P.percent("33%") == 33 and P.percent("") is None and P.percent("12.5%") == 12.5
    assert P.go_duration_seconds("1m30s") == 90 and P.go_duration_seconds("2h0m5s") == 7205
    assert P.go_duration_seconds("bogus") is None and P.go_duration(90) == "1m30s"
    assert P.eta_from_elapsed({"progressPercent": 25, "elapsed": "1m0s"}) == 180


def test_tracker_rate_eta_and_stall():
    t = P.Tracker(stall_after=60)
    m = {"engine": "mtc", "namespace": "ns", "plan": "p", "result": "Running",
         "disks": [{"vm": "v", "volume": "d", "sourcePVC": "s", "phase": "Running", "progressPercent": 10,
                    "_inspect": "kubectl describe dvmp x"}]}
    t.observe([m], 0)
    m2 = copy.deepcopy(m)
    m2["disks"][0]["progressPercent"] = 20
    t.observe([m2], 10)
    assert t.eta(m2, m2["disks"][0], 10) == pytest.approx(80)  # 1%/s
    assert t.stalls([m2], 50) == []
    [w] = t.stalls([m2], 75)
    assert "v/d" in w and "kubectl describe dvmp x" in w


@pytest.mark.parametrize("conds, dvm_failed", [
    ([cond("SucceededWithWarnings"), cond("UnhealthyNamespaces", "Warn", "unhealthy")], False),
    ([cond("SucceededWithWarnings")], True),
    ([cond("Succeeded", reason="Completed")], False),
    ([cond("Succeeded", reason="Completed")], True),
    ([cond("Failed", message="The migration has failed.  See: Errors.")], False),
    ([cond("Canceled", reason="Cancel")], False),
])
def test_status_and_migrate_wait_judge_with_one_verdict(conds, dvm_failed):
    """Issue 13: ``status`` (progress) and ``migrate --wait``/``rollback`` (build.migration_result) disagreed on a
    SucceededWithWarnings MigMigration without a failed DVM; both now come from the one verdict function."""
    from kubectl_vmmig.engines.mtc import build as B

    mig = mig_with(conds)
    dvm = load("dvm-completed")
    if dvm_failed:
        dvm["status"]["conditions"] = [cond("Failed", "Warn", "The migration has failed.  See: Errors.")]
    m = one([plan(live=False), mig, dvm, vm(running=False)])
    assert m["result"] == B.migration_result(mig, dvm, m["disks"])[0]
    assert m["result"] == B.migration_result(mig, dvm)[0]


def test_a_dvm_failure_warning_is_final_only_when_mtc_reports_the_end():
    """The itinerary carries on after DirectVolumeMigrationFailed (swaps the claims, restarts the VMs): status
    and migrate --wait keep following until MTC ends it, then both say Failed."""
    from kubectl_vmmig.engines.mtc import build as B

    warn = cond("DirectVolumeMigrationFailed", "Warn", "DirectVolumeMigration (dvm): openshift-migration/x failed")
    running = mig_with([cond("Running", message="Step: 33/38"), warn], phase="SwapPVCReferences")
    dvm = load("dvm-completed")
    assert one([plan(live=False), running, dvm, vm(running=False)])["result"] == "Running"
    assert B.migration_result(running, dvm)[0] == "Running"
    ended = mig_with([cond("SucceededWithWarnings"), warn])
    assert one([plan(live=False), ended, dvm, vm(running=False)])["result"] == "Failed"
    assert B.migration_result(ended, dvm)[0] == "Failed"
