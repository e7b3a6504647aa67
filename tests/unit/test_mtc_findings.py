"""Issue 12: the MTC engine against the real mig-controller's rules (../shared/reference/mtc/AUDIT.md B1-B4, M1-M12).
The shell runs against tests/unit/fake_mtc.py (whose MigPlan reconcile cites the upstream functions); the pure
parts are fed object shapes taken from the upstream code."""
import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import progress as P
from kubectl_vmmig.engines.mtc import build as B
from kubectl_vmmig.engines.mtc import checks as C
from kubectl_vmmig.engines.mtc import progress as mtc
from kubectl_vmmig.engines.mtc.engine import MtcEngine

from tests.unit.fake_mtc import MTC_NS, FakeMtc, plan_for, pv, pvc, succeed
from tests.unit.test_progress_mtc import cond, load, mig_with, plan, vm


def cutover(kube, *claims, to="fast"):
    return MtcEngine(kube).apply(plan_for(*claims, to=to), kind="cutover", timeout=5)


# ---- B1: a plan suspended by a successful migration is refreshed before its PVs are read ---------------
def test_b1_second_vm_after_a_successful_migration_is_discovered():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    succeed(kube, ref["migration"])
    # a VM created afterwards: the suspended plan would never list its PVC (updatePvs returns at once)
    kube.objs[("persistentvolumeclaims", "ns", "vm2-data")] = pvc("vm2-data")
    kube.objs[("persistentvolumes", "", "pv-vm2-data")] = pv("pv-vm2-data")
    ref2 = cutover(kube, "vm2-data")
    assert ref2["plan"] == ref["plan"] and ref2["created"]
    assert any(w[0] == "patch" and isinstance(w[3], dict) and (w[3].get("spec") or {}).get("refresh") is True
               for w in kube.writes if w[1] == "migplans")


# ---- B2: a selection MTC reset to skip is refused, naming the disk; never Succeeded --------------------
def test_b2_host_path_disk_is_refused_naming_the_disk_and_no_migration_is_created():
    kube = FakeMtc(pvcs=[pvc("vm1-data"), pvc("vm1-host")], pvs=[pv("pv-vm1-data"), pv("pv-vm1-host", host_path=True)])
    with pytest.raises(errors.PreflightRefused) as exc:
        cutover(kube, "vm1-data", "vm1-host")
    assert "vm1-host" in exc.value.message and "vm1-data" not in exc.value.message
    assert not [w for w in kube.writes if w[1] == "migmigrations"]


def test_b2_preflight_flags_a_host_path_pv_before_any_write():
    plan_ = plan_for("vm1-host")
    from kubectl_vmmig.engines.mtc import plans as PL

    facts = {"hostPathDisks": PL.host_path_disks(plan_, [pvc("vm1-host")], [pv("pv-vm1-host", host_path=True)])}
    bad = [f for f in C.check_mtc_plan(plan_, facts) if f["severity"] == "error"]
    assert len(bad) == 1 and "vm1/v0 (PVC vm1-host)" in bad[0]["message"]


def test_b2_a_requested_disk_missing_from_the_dvm_is_failed_not_succeeded():
    mig = mig_with([cond("Succeeded")])
    mig["metadata"]["annotations"] = {B.REQUEST_ANNOTATION: '{"type": "cutover", "disks": ["pvc-0", "pvc-1"]}'}
    vm_ = vm(claims=(("rootdisk", "pvc-0"), ("data", "pvc-1")))
    m = mtc.from_objects([plan(live=False), mig, load("dvm-completed"), vm_])[0]
    assert m["result"] == "Failed"
    [d] = [d for d in m["disks"] if d["sourcePVC"] == "pvc-1"]
    assert d["phase"] == "Failed" and d["volume"] == "data" and "not migrated" in d["message"]


# ---- B3: a disk this plan created moves again under a new plan; the old one is closed first --------------
def test_b3_moving_a_migrated_disk_again_closes_the_plan_and_creates_the_next():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    succeed(kube, ref["migration"])
    old = kube.objs[("migplans", MTC_NS, ref["plan"])]
    target = f"vm1-data-mig-{old['status']['suffix']}"
    # what MTC's cutover leaves: the target PVC, labelled with the plan's UID (pvcs.go)
    kube.objs[("persistentvolumeclaims", "ns", target)] = pvc(
        target, labels={"migration.openshift.io/migrated-by-migplan": old["metadata"]["uid"]})
    kube.objs[("persistentvolumes", "", f"pv-{target}")] = pv(f"pv-{target}")
    ref2 = cutover(kube, target, to="third")
    assert ref2["plan"] == B.plan_name("ns", 2) != ref["plan"]
    closed = kube.objs[("migplans", MTC_NS, ref["plan"])]
    assert closed["spec"]["closed"] is True and closed["metadata"]["annotations"][B.SUPERSEDED_ANNOTATION] == ref2["plan"]
    new = kube.objs[("migplans", MTC_NS, ref2["plan"])]
    [entry] = [e for e in new["spec"]["persistentVolumes"] if e["selection"]["action"] == "copy"]
    assert entry["pvc"]["name"].startswith(target + ":vm1-data-mig-") and entry["selection"]["storageClass"] == "third"
    objs = [dict(o, kind=k) for (plural, _, _), o in kube.objs.items()
            for p_, k in (("migplans", "MigPlan"), ("migmigrations", "MigMigration")) if plural == p_]
    runs = mtc.from_objects(objs, namespace="ns")
    assert [(m["plan"], m["_superseded"]) for m in runs] == [(ref["plan"], True), (ref2["plan"], False)]


# ---- B4: MTC's namespace is openshift-migration ---------------------------------------------------
def test_b4_other_mtc_namespace_is_one_line_bad_input():
    with pytest.raises(errors.BadInput) as exc:
        MtcEngine(FakeMtc(), {"mtc_namespace": "mtc-elsewhere"})
    assert "openshift-migration" in exc.value.message and "\n" not in exc.value.message


def test_b4_host_cluster_outside_openshift_migration_is_not_used():
    host = {"metadata": {"name": "host", "namespace": "elsewhere"}, "spec": {"isHostCluster": True},
            "status": {"conditions": [{"type": "Ready", "status": "True", "category": "Required"}]}}
    info = MtcEngine(FakeMtc(migclusters=[host])).locate()
    assert info["namespace"] == MTC_NS and info["hostCluster"] is None and info["elsewhere"] == "elsewhere/host"
    [f] = [f for f in C.check_mtc({"mtc": info}) if f["name"] == "mtc-host-cluster"]
    assert f["severity"] == "error" and "elsewhere/host" in f["message"]


# ---- M1: rsync exhaustion: DVM Failed with empty errors, MigMigration Succeeded after SwapPVCReferences ----
def m1_objects():
    mig = mig_with([cond("Succeeded", reason="Completed")])
    dvm = load("dvm-rsync-failed")
    dvm["status"]["errors"] = []  # processRsyncOperationStatus shadows failureReasons (rsync.go)
    return [plan(live=False), mig, dvm, vm(claims=(("rootdisk", "pvc-0-mig-x7bq"),), running=True)], mig, dvm


def test_m1_succeeded_migmigration_with_failed_dvm_is_failed_and_says_the_vms_were_switched():
    objs, mig, dvm = m1_objects()
    m = mtc.from_objects(objs)[0]
    assert m["result"] == "Failed"
    assert "switched VM(s) vm-0" in m["_verdict"] and "rollback" in m["_verdict"]
    assert "pvc-0" in m["_verdict"]
    assert B.migration_result(mig, dvm)[0] == "Failed"  # migrate --wait / rollback use the same rule


# ---- M2: a live disk pending without migrationState raises no false stall ---------------------------------
def test_m2_pending_live_disk_has_no_false_stall():
    dvm = load("dvm-live-migration-running")
    dvm["status"]["pendingLiveMigration"] = dvm["status"].pop("runningLiveMigration")
    m = mtc.from_objects([plan(), load("migmigration-cutover-running"), dvm, vm()])[0]
    [d] = m["disks"]
    assert (d["mode"], d["phase"]) == ("live", "Pending")
    t = P.Tracker(stall_after=60)
    t.observe([m], 0)
    t.observe([m], 30)
    assert t.stalls([m], 3600) == []


# ---- M3: a DVM listing a failed live migration fails the verdict even without disk rows -----------------------
def test_m3_failed_live_migration_in_the_dvm_fails_a_succeeded_migration():
    mig = mig_with([cond("Succeeded")])
    dvm = load("dvm-completed")
    dvm["status"]["failedLiveMigration"] = [{"pvcRef": {"namespace": "ns", "name": "pvc-0"}, "vmName": "vm-0"}]
    assert B.migration_result(mig, dvm)[0] == "Failed"


# ---- M4: MTC's own KubeVirt check is applied before the confirmation -----------------------------------
def test_m4_mtc_kubevirt_check_settles_the_mode_before_confirmation():
    from kubectl_vmmig.engines.mtc import plans as PL
    from kubectl_vmmig.engines.mtc.surface import _apply_mtc_live_check

    kv = {"status": {"operatorVersion": "v1.5.0"}, "spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate"}}}
    why = PL.mtc_live_blockers([kv])  # no developerConfiguration: KubeVirtStorageLiveMigrationNotEnabled even on 1.5
    assert why and why[0].startswith("KubeVirtStorageLiveMigrationNotEnabled")
    auto = plan_for("vm1-data", mode="live")
    auto["requestedMode"] = "auto"
    _apply_mtc_live_check(auto, why)
    assert auto["liveMigrate"] is False and {m["mode"] for m in auto["moves"]} == {"offline"}
    assert any(f["severity"] == "warning" for f in auto["findings"])
    live = plan_for("vm1-data", mode="live")
    _apply_mtc_live_check(live, why)
    assert [f["severity"] for f in live["findings"]] == ["error"]
    assert PL.mtc_live_blockers([kv, kv])[0].startswith("KubeVirtNotInstalledSourceCluster")


# ---- M6: a re-run after a failed cutover creates a new MigMigration ----------------------------------
def test_m6_rerun_after_failed_cutover_creates_a_new_migmigration():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    m = kube.objs[("migmigrations", MTC_NS, ref["migration"])]
    m["status"] = {"phase": "Completed", "conditions": [{"type": "Failed", "status": "True", "category": "Advisory"}]}
    ref2 = cutover(kube, "vm1-data")
    assert ref2["created"] and ref2["migration"] != ref["migration"]


# ---- M7: access modes MTC rejects or ignores ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["ReadWriteOncePod", "ReadOnlyMany"])
def test_m7_rwop_and_rox_are_refused_for_mtc(mode):
    p = plan_for("vm1-data")
    p["accessMode"] = mode
    assert [f["name"] for f in C.check_mtc_plan(p, {}) if f["severity"] == "error"] == ["access-mode"]


# ---- M8: rollback-specific skipped text --------------------------------------------------------------
def test_m8_rollback_skipped_volume_says_not_copied_back():
    mig = mig_with([cond("Running")], phase="RunningDirectVolumeMigration", rollback=True)
    dvm = load("dvm-live-migration-running")
    dvm["status"].pop("runningLiveMigration")
    dvm["status"]["skippedVolumes"] = ["ns/pvc-0-mig-x7bq", "ns/pvc-0"]
    [d] = mtc.from_objects([plan(), mig, dvm, vm()])[0]["disks"]
    assert d["phase"] == "Skipped" and "not copied back" in d["message"] and "cutover" in d["message"]


# ---- M9: cancel while a blocker holds --------------------------------------------------------------
def test_m9_cancel_while_a_blocker_holds_says_it_will_not_be_processed():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    kube.objs[("migmigrations", MTC_NS, ref["migration"])]["status"] = {"conditions": [
        {"type": "PlanNotReady", "status": "True", "category": "Critical", "message": "The plan is not ready."}]}
    name, warning = MtcEngine(kube).cancel("ns")
    assert name == ref["migration"] and "will not process the cancel" in warning and "PlanNotReady" in warning


# ---- M10 / M11: closed plans ----------------------------------------------------------------------
def test_m10_a_closed_own_plan_is_refused_in_preflight():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    kube.objs[("migplans", MTC_NS, ref["plan"])]["spec"]["closed"] = True  # closed by someone else
    eng = MtcEngine(kube)
    facts = eng.gather_facts(plan_for("vm1-data"), pvcs=[pvc("vm1-data")])
    assert facts["plans"]["closed"] == ref["plan"]
    assert [f["name"] for f in C.check_mtc(facts) if f["severity"] == "error"] == ["plan-closed"]


def test_m11_foreign_closed_plan_is_no_conflict():
    kube = FakeMtc()
    for name, closed in (("theirs-open", False), ("theirs-closed", True)):
        kube.objs[("migplans", MTC_NS, name)] = {
            "metadata": {"name": name, "namespace": MTC_NS, "uid": name},
            "spec": {"namespaces": ["ns"], "closed": closed, "srcMigClusterRef": {"name": "host", "namespace": MTC_NS},
                     "destMigClusterRef": {"name": "host", "namespace": MTC_NS}}}
    _, foreign = MtcEngine(kube).existing_plans("ns")
    assert [p["metadata"]["name"] for p in foreign] == ["theirs-open"]


# ---- M12: a stale RsyncClientPodsPending is not shown as current ------------------------------------------
def test_m12_stale_rsync_client_pods_pending_is_not_a_current_warning():
    dvm = load("dvm-live-migration-running")
    dvm["status"].pop("runningLiveMigration")
    entry = {"namespace": "ns", "name": "rsync-1", "pvcRef": {"namespace": "ns", "name": "pvc-0"}}
    dvm["status"]["runningPods"] = [entry]
    dvm["status"]["pendingSinceTimeLimitPods"] = [entry]  # never reset (rsync.go)
    dvm["status"]["conditions"] = [cond("RsyncClientPodsPending", "Warn", "rsync client pods pending")]
    m = mtc.from_objects([plan(live=False), load("migmigration-cutover-running"), dvm, vm(running=False)])[0]
    assert not any("RsyncClientPodsPending" in w for w in m["_warnings"])
    dvm["status"]["runningPods"] = []
    m = mtc.from_objects([plan(live=False), load("migmigration-cutover-running"), dvm, vm(running=False)])[0]
    assert any("RsyncClientPodsPending" in w for w in m["_warnings"])


# ---- item 3: run history ------------------------------------------------------------------------------
def test_history_runs_oldest_first_and_watch_exit_code_follows_the_latest():
    old = mig_with([cond("Failed", message="boom")], quiescePods=True)
    old["metadata"].update(name="cutover-1", uid="u-old", creationTimestamp="2025-06-01T09:00:00Z")
    new = mig_with([cond("Succeeded")])
    new["metadata"].update(name="cutover-2", uid="u-new", creationTimestamp="2025-06-01T10:00:00Z")
    ms = mtc.from_objects([plan(live=False), new, old, load("dvm-completed"), vm(running=False)])
    assert [(m["_migration"], m["result"]) for m in ms] == [("cutover-1", "Failed"), ("cutover-2", "Succeeded")]
    assert [m["result"] for m in ms if not m["_superseded"]] == ["Succeeded"]


def test_b3_preview_shows_the_close_of_the_previous_plan():
    kube = FakeMtc(pvcs=[pvc("vm1-data")], pvs=[pv("pv-vm1-data")])
    ref = cutover(kube, "vm1-data")
    succeed(kube, ref["migration"])
    old = kube.objs[("migplans", MTC_NS, ref["plan"])]
    target = f"vm1-data-mig-{old['status']['suffix']}"
    kube.objs[("persistentvolumeclaims", "ns", target)] = pvc(target)
    eng = MtcEngine(kube)
    p = plan_for(target, to="slow")
    eng.plan_choice("ns", [target], None)
    writes = len(kube.writes)
    pre = eng.preview(p, pvcs=[pvc(target)], kind="stage")
    assert pre["objects"][0]["metadata"]["name"] == B.plan_name("ns", 2)
    assert pre["patches"][0]["name"] == ref["plan"] and pre["patches"][0]["step"] == "close the previous plan"
    assert {"op": "add", "path": "/spec/closed", "value": True} in pre["patches"][0]["patch"]
    assert len(kube.writes) == writes  # a preview writes nothing


def test_c3_live_elapsed_is_rounded():
    dvm = load("dvm-live-migration-running")
    dvm["status"]["runningLiveMigration"][0]["totalElapsedTime"] = "1m23.456789012s"
    [d] = mtc.from_objects([plan(), load("migmigration-cutover-running"), dvm, vm()])[0]["disks"]
    assert d["elapsed"] == "1m23s"


def test_succeeded_only_when_the_ended_dvm_copied_every_disk():
    mig = mig_with([cond("Succeeded")])
    running = load("dvm-live-migration-running")  # not ended yet: the read raced the DVM's last update
    assert mtc.from_objects([plan(), mig, running, vm()])[0]["result"] == "Running"
    ended = load("dvm-live-migration-running")
    ended["status"]["conditions"] = [cond("Succeeded")]
    ended["status"]["pendingLiveMigration"] = ended["status"].pop("runningLiveMigration")
    m = mtc.from_objects([plan(), mig, ended, vm()])[0]
    assert m["result"] == "Failed" and m["disks"][0]["phase"] == "Failed"


def test_c5_a_canceled_migration_that_also_says_succeeded_is_canceled():
    mig = mig_with([cond("Canceled"), cond("Succeeded")])  # the Cancel itinerary reaches Completed (migrate.go)
    assert B.migration_result(mig, load("dvm-completed"))[0] == "Canceled"


# ---- B3 (handleSourceLabels): a disk another plan's cutover labelled is unlabelled before discovery ---------
def test_disks_labelled_for_another_plan_are_the_ones_to_unlabel():
    from kubectl_vmmig.engines.mtc import plans as PL

    label = "migration.openshift.io/source-for-directvolumemigration"
    pvcs = [pvc("a", labels={label: "plan-a"}), pvc("b", labels={label: "plan-b"}), pvc("c"), pvc("d", labels={label: "plan-a"})]
    # a new plan (no UID yet) skips every labelled disk; the adopted plan-a only the ones labelled for others
    assert PL.labelled_for_other_plans(["a", "b", "c"], pvcs, None) == [{"pvc": "a", "value": "plan-a"},
                                                                      {"pvc": "b", "value": "plan-b"}]
    assert PL.labelled_for_other_plans(["a", "b", "c"], pvcs, "plan-a") == [{"pvc": "b", "value": "plan-b"}]
    assert PL.labelled_for_other_plans(["c", "missing"], pvcs, None) == []  # only the disks to move, never "d"
    path = "/metadata/labels/migration.openshift.io~1source-for-directvolumemigration"
    assert PL.unlabel_ops("plan-a") == [{"op": "test", "path": path, "value": "plan-a"}, {"op": "remove", "path": path}]


def test_a_foreign_plan_conflicts_only_on_an_equal_namespace_entry():
    """MigPlan.HasConflict (migplan_types.go) compares spec.namespaces entries as strings: a foreign ``ns:other``
    (mapped to another destination namespace) is no PlanConflict for our plan listing ``ns``."""
    from kubectl_vmmig.engines.mtc import plans as PL

    host = {"name": "host", "namespace": MTC_NS}

    def foreign(*namespaces, closed=False):
        return {"spec": {"namespaces": list(namespaces), "closed": closed, "srcMigClusterRef": host,
                         "destMigClusterRef": host}}

    assert PL.conflicts(foreign("ns"), host, "ns")
    assert PL.conflicts(foreign("a", "ns"), host, "ns")
    assert not PL.conflicts(foreign("ns:other"), host, "ns")
    assert not PL.conflicts(foreign("ns", closed=True), host, "ns")
    assert not PL.conflicts(foreign("ns"), {"name": "remote", "namespace": MTC_NS}, "ns")
