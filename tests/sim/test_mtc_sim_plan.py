"""mig-controller stand-in, MigPlan rules against the real API server: each test names the upstream
function (migtools/mig-controller pkg/controller/migplan/…) whose behaviour it pins down."""
import copy

import pytest

from kubectl_vmmig import resources as R
from tests.sim.common import MTC_NAMESPACE, delete_any, get_condition, make_bound_pvc
from tests.sim.mtc_plan import reconcile_plan, spec_digest
from tests.sim.mtc_testkit import Env, make_hostpath_pvc, make_migration, make_plan, make_vm, select_all

pytestmark = pytest.mark.cluster


@pytest.fixture
def env(cp, manual_namespace):
    return Env(cp.admin, manual_namespace)


def sources(plan):
    return sorted(pv["pvc"]["name"].split(":")[0] for pv in plan["spec"].get("persistentVolumes") or [])


def entry(plan, source):
    return next(pv for pv in plan["spec"]["persistentVolumes"] if pv["pvc"]["name"].split(":")[0] == source)


def test_successful_cutover_suspends_plan_until_refresh(env):
    """planSuspended + updatePvs/validatePvSelections skipped while Suspended; spec.refresh un-suspends
    for one reconcile and is cleared; a Succeeded rollback un-suspends (B1)."""
    make_vm(env.kube, env.ns, "vm1", ["vm1-disk"])
    env.step()
    env.ready_plan("p", live=False)
    name = env.n("p")
    make_migration(env.kube, name, "cutover", name=env.n("cut"))
    suspended_while_running = False
    for _ in range(200):
        env.step("cut")
        mig = env.mig("cut")
        if get_condition(mig, "Running") and (mig.get("status") or {}).get("phase") not in ("StartRefresh", "WaitForRefresh"):
            suspended_while_running |= get_condition(env.plan(name), "Suspended") is not None
        if mig["status"].get("phase") == "Completed":
            break
    assert get_condition(env.mig("cut"), "Succeeded")
    assert suspended_while_running, "a Running migration suspends its plan"
    env.step()
    plan = env.plan(name)
    assert get_condition(plan, "Suspended")["message"] == (
        "The migrations plan is in suspended state; Limited validation enforced; PV discovery and "
        "resource reconciliation suspended.")
    assert get_condition(plan, "PvsDiscovered") and get_condition(plan, "Ready")
    # a new Bound PVC is NOT discovered while suspended
    make_bound_pvc(env.kube, env.ns, "vm2-disk")
    for _ in range(3):
        env.step()
    assert sources(env.plan(name)) == ["vm1-disk"]
    # an invalid selection is not validated while suspended: no PvInvalidStorageClass, still Ready
    pvs = copy.deepcopy(env.plan(name)["spec"]["persistentVolumes"])
    pvs[0]["selection"]["storageClass"] = "no-such-class"
    env.kube.patch(R.MIGPLAN, name, {"spec": {"persistentVolumes": pvs}}, MTC_NAMESPACE)
    env.step()
    plan = env.plan(name)
    assert get_condition(plan, "PvInvalidStorageClass") is None and get_condition(plan, "Ready")
    # spec.refresh: one full reconcile (discovery + validation), then refresh is false again
    env.kube.patch(R.MIGPLAN, name, {"spec": {"refresh": True}}, MTC_NAMESPACE)
    env.step()
    plan = env.plan(name)
    assert plan["spec"]["refresh"] is False
    assert sources(plan) == ["vm1-disk", "vm2-disk"]
    assert get_condition(plan, "Suspended") is None and get_condition(plan, "PvInvalidStorageClass")
    assert get_condition(plan, "Ready") is None
    env.step()
    plan = env.plan(name)
    assert get_condition(plan, "Suspended"), "the newest migration still Succeeded: suspended again"
    assert get_condition(plan, "PvInvalidStorageClass") is None, "validation skipped again"
    select_all(env.kube, name, "fast")
    env.run("p", "rollback", "rb")
    env.step()
    assert get_condition(env.plan(name), "Suspended") is None, "a Succeeded rollback un-suspends"


def test_hostpath_pv_supports_only_skip_and_copy_is_reverted(env):
    """pvlist.go getSupportedActions (hostPath → [skip]) + migplan_types.go PV.Update (a single supported
    action overwrites selection.action on every reconcile); the observedDigest returns to the value it had
    before the user's edit (resource.go MarkReconciled, digest of the spec) (B2)."""
    make_hostpath_pvc(env.kube, env.ns, "hp-disk")
    make_bound_pvc(env.kube, env.ns, "csi-disk")
    name = env.n("p")
    make_plan(env.kube, env.ns, name, live=False)
    env.until(lambda: get_condition(env.plan(name), "Ready"))
    plan = env.plan(name)
    hp, csi = entry(plan, "hp-disk"), entry(plan, "csi-disk")
    assert hp["supported"]["actions"] == ["skip"] and hp["selection"]["action"] == "skip"
    assert csi["supported"]["actions"] == ["skip", "copy"] and csi["selection"]["action"] == "copy"
    before = plan["status"]["observedDigest"]
    assert before == spec_digest(plan["spec"])
    select_all(env.kube, name, "fast")  # copy for both
    assert entry(env.plan(name), "hp-disk")["selection"]["action"] == "copy"
    env.step()
    plan = env.plan(name)
    assert entry(plan, "hp-disk")["selection"] == {"action": "skip", "storageClass": "fast",
                                                   "copyMethod": "filesystem"}
    assert entry(plan, "csi-disk")["selection"]["action"] == "copy"
    assert get_condition(plan, "PvInvalidAction") is None and get_condition(plan, "Ready")
    assert plan["status"]["observedDigest"] == spec_digest(plan["spec"])


def test_discovery_skips_only_this_plans_targets_and_labels(env):
    """pvlist.go getClaims: ``-mig-<this plan's suffix>`` names, PVC-owned PVCs, and (storage conversion)
    migrated-by-migplan=<this plan's UID> / source-for-directvolumemigration=<another plan's UID>; a
    closed plan is no conflict (model.go ListPlans) so a second plan can discover the first one's
    target (B3)."""
    make_bound_pvc(env.kube, env.ns, "disk")
    p1 = env.n("p1")
    make_plan(env.kube, env.ns, p1, live=False)
    env.until(lambda: get_condition(env.plan(p1), "Ready"))
    plan1 = env.plan(p1)
    suffix, uid = plan1["status"]["suffix"], plan1["metadata"]["uid"]
    mine = f"disk-mig-{suffix}"
    make_bound_pvc(env.kube, env.ns, mine, labels_={"migration.openshift.io/migrated-by-migplan": uid})
    make_bound_pvc(env.kube, env.ns, "other-mig-zz99")  # another plan's suffix: discovered
    make_bound_pvc(env.kube, env.ns, "by-me", labels_={"migration.openshift.io/migrated-by-migplan": uid})
    make_bound_pvc(env.kube, env.ns, "by-other", labels_={"migration.openshift.io/migrated-by-migplan": "x-uid"})
    make_bound_pvc(env.kube, env.ns, "src-of-other",
                   labels_={"migration.openshift.io/source-for-directvolumemigration": "x-uid"})
    owner = env.kube.get(R.PVC, "disk", env.ns)
    make_bound_pvc(env.kube, env.ns, "temp", owner={"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                    "name": "disk", "uid": owner["metadata"]["uid"],
                                                    "controller": True})
    env.step()
    plan1 = env.plan(p1)
    assert sources(plan1) == ["by-other", "disk", "other-mig-zz99"]
    assert entry(plan1, "other-mig-zz99")["pvc"]["name"] == f"other-mig-zz99:other-mig-{suffix}"
    # a second open plan on the namespace (same host MigCluster) conflicts; once p1 is closed it does not
    p2 = env.n("p2")
    make_plan(env.kube, env.ns, p2, live=False)
    env.until(lambda: get_condition(env.plan(p2), "PlanConflict"))
    env.kube.patch(R.MIGPLAN, p1, {"spec": {"closed": True}}, MTC_NAMESPACE)
    env.until(lambda: get_condition(env.plan(p2), "Ready") and not get_condition(env.plan(p2), "PlanConflict"))
    plan2 = env.plan(p2)
    assert plan2["status"]["suffix"] != suffix
    assert mine in sources(plan2) and "by-me" in sources(plan2), "p1's migrated PVCs are ordinary claims to p2"
    assert entry(plan2, mine)["pvc"]["name"] == f"{mine}:disk-mig-{plan2['status']['suffix']}"


def test_conflict_needs_a_shared_migcluster_ref(env):
    """migplan_types.go HasConflict: plans covering the same namespace conflict only if they share a
    MigCluster ref."""
    make_bound_pvc(env.kube, env.ns, "disk")
    other = f"other-{env.ns}"[:63]
    env.kube.create(R.MIGCLUSTER, {"apiVersion": R.MIGCLUSTER.api_version, "kind": "MigCluster",
                                   "metadata": {"name": other, "namespace": MTC_NAMESPACE},
                                   "spec": {"isHostCluster": False, "url": "https://remote.example:6443"}},
                    MTC_NAMESPACE)
    try:
        p1, p2 = env.n("p1"), env.n("p2")
        make_plan(env.kube, env.ns, p1, live=False)
        body = make_plan(env.kube, env.ns, p2, live=False)
        ref = {"name": other, "namespace": MTC_NAMESPACE}
        env.kube.patch(R.MIGPLAN, body["metadata"]["name"],
                       {"spec": {"srcMigClusterRef": ref, "destMigClusterRef": ref}}, MTC_NAMESPACE)
        env.until(lambda: get_condition(env.plan(p1), "Ready"))
        for _ in range(3):
            env.step()
        assert get_condition(env.plan(p1), "PlanConflict") is None
    finally:
        delete_any(env.kube, R.MIGCLUSTER, other, MTC_NAMESPACE)


def test_closed_plan_is_never_reconciled_again(env):
    """migplan_controller.go handleClosed/ensureClosed: Closed set, Ready removed, then no reconcile:
    observedDigest, refresh and the PV list stay as they are (M10); a MigMigration gets PlanClosed and
    PlanNotReady with ', subject: ns/name' (migmigration/validation.go validatePlan, C4)."""
    make_bound_pvc(env.kube, env.ns, "disk")
    name = env.n("p")
    make_plan(env.kube, env.ns, name, live=False)
    env.until(lambda: get_condition(env.plan(name), "Ready"))
    env.kube.patch(R.MIGPLAN, name, {"spec": {"closed": True}}, MTC_NAMESPACE)
    env.step()
    plan = env.plan(name)
    assert get_condition(plan, "Closed")["message"] == "The migration plan is closed."
    assert get_condition(plan, "Ready") is None
    digest = plan["status"]["observedDigest"]
    make_bound_pvc(env.kube, env.ns, "disk2")
    env.kube.patch(R.MIGPLAN, name, {"spec": {"refresh": True}}, MTC_NAMESPACE)
    make_migration(env.kube, name, "cutover", name=env.n("m"))
    for _ in range(4):
        env.step("m")
    plan = env.plan(name)
    assert plan["status"]["observedDigest"] == digest and plan["spec"]["refresh"] is True
    assert sources(plan) == ["disk"]
    mig = env.mig("m")
    subject = f"{MTC_NAMESPACE}/{name}"
    assert get_condition(mig, "PlanClosed")["message"] == f"The associated migration plan is closed, subject: {subject}."
    assert get_condition(mig, "PlanNotReady")["message"] == \
        f"The referenced `migPlanRef` does not have a `Ready` condition, subject: {subject}."
    assert not (mig["status"].get("itinerary") or mig["status"].get("phase"))


def test_only_openshift_migration_is_reconciled(env):
    """Every watch is filtered to openshift-migration (migplan/predicate.go, migmigration/predicate.go):
    a MigPlan/MigMigration elsewhere never gets a status (B4)."""
    make_bound_pvc(env.kube, env.ns, "disk")
    plan = {"apiVersion": R.MIGPLAN.api_version, "kind": "MigPlan",
            "metadata": {"name": "elsewhere", "namespace": env.ns},
            "spec": {"srcMigClusterRef": {"name": "host", "namespace": MTC_NAMESPACE},
                     "destMigClusterRef": {"name": "host", "namespace": MTC_NAMESPACE}, "namespaces": [env.ns]}}
    env.kube.create(R.MIGPLAN, plan, env.ns)
    env.kube.create(R.MIGMIGRATION, {"apiVersion": R.MIGMIGRATION.api_version, "kind": "MigMigration",
                                     "metadata": {"name": "elsewhere", "namespace": env.ns},
                                     "spec": {"migPlanRef": {"name": "elsewhere", "namespace": env.ns},
                                              "stage": False, "migrateState": True}}, env.ns)
    for _ in range(5):
        env.step()
    assert not env.kube.get(R.MIGPLAN, "elsewhere", env.ns).get("status")
    assert not env.kube.get(R.MIGMIGRATION, "elsewhere", env.ns).get("status")


class _NoKubeVirtApi:
    """The API server as seen on a cluster without the kubevirt.io group (every other call passes)."""

    def __init__(self, kube):
        self._kube = kube

    def has_api(self, group, version=None):
        return False if group == "kubevirt.io" else self._kube.has_api(group, version)

    def __getattr__(self, name):
        return getattr(self._kube, name)


def test_no_kubevirt_api_sets_no_kubevirt_condition(env):
    """validation.go validateKubeVirtInstalled: meta.IsNoMatchError → return nil (no condition) (C6)."""
    make_bound_pvc(env.kube, env.ns, "disk")
    name = env.n("p")
    plan = make_plan(env.kube, env.ns, name, live=True)
    clusters = {mc["metadata"]["name"]: mc for mc in env.kube.items(R.MIGCLUSTER, MTC_NAMESPACE)}
    scs = env.kube.items(R.STORAGECLASS)
    for _ in range(2):
        plan = reconcile_plan(_NoKubeVirtApi(env.kube), env.plan(name), [plan], clusters, scs, [])
    types = {c["type"] for c in plan["status"]["conditions"]}
    assert "Ready" in types and not {t for t in types if t.startswith("KubeVirt")}


def test_missing_plan_ref_text_names_the_subject(env):
    """migmigration/validation.go validatePlan: InvalidPlanRef NotFound "…, subject: <ns>/<name>." (C4)."""
    mig = make_migration(env.kube, env.n("missing"), "cutover", name=env.n("m"))
    # a plan-less migration is left to the unscoped controller instance; reconcile it directly
    env.mtc.migrations.reconcile(mig, [mig], {})
    cond = get_condition(env.mig("m"), "InvalidPlanRef")
    assert cond["reason"] == "NotFound" and cond["category"] == "Critical"
    assert cond["message"] == ("The `migPlanRef` must reference a valid `migplan`, "
                               f"subject: {MTC_NAMESPACE}/{env.n('missing')}.")


def test_handle_source_labels_marks_every_pvc_but_the_mapping_values(env):
    """migmigration/storage.go handleSourceLabels after a cutover: EVERY PVC of the namespace gets
    source-for-directvolumemigration=<plan UID> - an earlier run's target too - except the mapping's values
    (getPVCNameMapping: this run's targets, and skipped PVs, which map to themselves), from which it is removed."""
    from tests.sim.mtc_plan import LBL_SOURCE_FOR
    from tests.sim.mtc_workloads import handle_source_labels

    for name, lbl in (("copied", {}), ("skipped", {LBL_SOURCE_FOR: "old-uid"}), ("copied-mig-ab12", {LBL_SOURCE_FOR: "u"}),
                      ("earlier-mig-zz99", {}), ("unlisted", {LBL_SOURCE_FOR: "old-uid"})):
        make_bound_pvc(env.kube, env.ns, name, labels_=lbl)
    handle_source_labels(env.kube, env.ns, ["copied-mig-ab12", "skipped"], "u", LBL_SOURCE_FOR)
    got = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(LBL_SOURCE_FOR)
           for p in env.kube.items(R.PVC, env.ns)}
    assert got == {"copied": "u", "skipped": None, "copied-mig-ab12": None, "earlier-mig-zz99": "u", "unlisted": "u"}
