"""Issue 16, the migration-controller engine's fleet unit end to end: `migrate -A -l SEL --engine
migration-controller` through the real kubectl writes ONE MultiNamespaceVirtualMachineStorageMigrationPlan for every
namespace (the kubevirt-migration-controller stand-in fans it out, tests/sim/migration_controller_multi.py), moves
every VM, `status -A` shows every namespace's rows, and `cancel FLEET` stops every namespace."""
import json
import uuid

import pytest

from kubectl_vmmig import resources as R
from kubectl_vmmig.engines.migration_controller import fleet as FL
from tests.conftest import make_namespace
from tests.e2e.test_migration_controller_engine import claims, controller, make_vm, mc, vs, wait_for  # noqa: F401
from tests.sim import factories as F
from tests.sim.common import set_faults

pytestmark = pytest.mark.cluster


def ours(kube, res, spaces):
    return [o for ns in spaces for o in kube.items(res, ns, label_selector="vm-storage.kubevirt-tools.io/engine="
                                                                            "migration-controller")]


def fleet(kube, tag, n=3, running=(0,), base="mcfleet"):
    spaces = sorted(make_namespace(kube, f"{base}-{i}") for i in range(n))
    for i, ns in enumerate(spaces):
        make_vm(kube, ns, "vm1", [F.pvc_disk("data", size="1Gi")], running=i in running)
        kube.patch(R.VM, "vm1", {"metadata": {"labels": {"fleet": tag}}}, ns)
    return spaces


def test_migrate_all_namespaces_writes_one_multinamespace_plan_and_moves_every_vm(mc, kubectl):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    spaces = fleet(mc, tag)
    make_vm(mc, spaces[1], "other", [F.pvc_disk("data", size="1Gi")], running=False)  # no label: left alone
    sel = ("-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller")
    dry = vs(kubectl, "migrate", *sel, "--dry-run=client", "-o", "json")
    assert dry.returncode == 0, dry.stderr[-2000:]
    objs = json.loads(dry.stdout)["objects"]  # ONE preview: what apply_fleet writes
    assert [o["kind"] for o in objs] == ["DataVolume"] * 3 + ["MultiNamespaceVirtualMachineStorageMigrationPlan",
                                                              "MultiNamespaceVirtualMachineStorageMigration"]
    assert [o["metadata"]["namespace"] for o in objs[:3]] == spaces
    server = vs(kubectl, "migrate", *sel, "--dry-run=server", "--yes")
    assert server.returncode == 0, server.stderr[-2000:]
    assert not ours(mc, R.MN_VMSM_PLAN, spaces) and not ours(mc, R.DATAVOLUME, spaces)  # nothing persisted
    r = vs(kubectl, "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller",
           "--wait", "--yes", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "fleet: 3 VM(s) in 3 namespace(s)" in r.stderr
    [mp] = ours(mc, R.MN_VMSM_PLAN, spaces)  # ONE plan for the fleet, in its first namespace
    name = mp["metadata"]["name"]
    assert mp["metadata"]["namespace"] == spaces[0]
    assert [e["name"] for e in mp["spec"]["namespaces"]] == spaces
    assert mc.get(R.MN_VMSM, name, spaces[0])
    assert ours(mc, R.VMSM_PLAN, spaces) and {p["metadata"]["name"] for p in ours(mc, R.VMSM_PLAN, spaces)} == {
        FL.child_name(name, ns) for ns in spaces}  # no one-namespace plan: upstream's children, marked
    for ns in spaces:
        assert claims(mc, ns, "vm1") == {"data": "vm1-data-fast"}, ns
        assert mc.get(R.PVC, "vm1-data", ns)  # keepSource
    assert claims(mc, spaces[1], "other") == {"data": "other-data"}
    st = vs(kubectl, "status", "-A", "-o", "json")
    assert st.returncode == 0, st.stderr
    rows = {m["namespace"]: m for m in json.loads(st.stdout)["migrations"] if m["namespace"] in spaces}
    assert sorted(rows) == spaces
    for ns, m in rows.items():
        assert (m["engine"], m["plan"], m["result"]) == ("migration-controller", FL.child_name(name, ns),
                                                         "Succeeded"), m
        assert [(d["vm"], d["targetPVC"], d["phase"]) for d in m["disks"]] == [("vm1", "vm1-data-fast", "Succeeded")]
    assert {d["mode"] for m in rows.values() for d in m["disks"]} == {"live", "offline"}
    by_name = vs(kubectl, "status", name, "-A", "-o", "json")  # the fleet by its name: every namespace's row
    assert by_name.returncode == 0, by_name.stderr
    assert sorted(m["namespace"] for m in json.loads(by_name.stdout)["migrations"]) == spaces
    again = vs(kubectl, "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller",
               "--wait", "--yes", timeout=200)  # the same command again: every disk is there, nothing new
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(ours(mc, R.MN_VMSM_PLAN, spaces)) == 1


def test_cancel_of_the_fleet_stops_every_namespace_a_part_alone_is_refused(mc, kubectl):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    spaces = fleet(mc, tag, n=2, running=(0, 1))
    for ns in spaces:
        set_faults(mc, ns, liveMigrationFail="true")  # KubeVirt keeps failing: the migrations stay running
    r = vs(kubectl, "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller",
           "--yes", timeout=200)
    assert r.returncode == 0, r.stderr[-2000:]
    [mp] = ours(mc, R.MN_VMSM_PLAN, spaces)
    name, home = mp["metadata"]["name"], mp["metadata"]["namespace"]
    for ns in spaces:
        wait_for(lambda: claims(mc, ns, "vm1") == {"data": "vm1-data-fast"}, what=f"{ns}: VM patched by the run")
    part = vs(kubectl, "cancel", FL.child_name(name, spaces[1]), "-n", spaces[1])
    assert part.returncode != 0 and f"cancel {name} -n {home}" in part.stderr, part.stderr
    assert mc.get(R.VMSM, FL.child_name(name, spaces[1]), spaces[1])  # nothing was changed
    c = vs(kubectl, "cancel", name, "-n", home)
    assert c.returncode == 0, c.stderr
    assert "2 namespace(s)" in c.stdout
    assert mc.get_or_none(R.MN_VMSM, name, home) is None
    for ns in spaces:
        wait_for(lambda: mc.get_or_none(R.VMSM, FL.child_name(name, ns), ns) is None,
                 what=f"{ns}: child migration reverted and gone (not re-created)")
        assert claims(mc, ns, "vm1") == {"data": "vm1-data"}
        assert mc.get(R.PVC, "vm1-data", ns)
    st = vs(kubectl, "status", "-A", "-o", "json")
    rows = {m["namespace"]: m["result"] for m in json.loads(st.stdout)["migrations"] if m["namespace"] in spaces}
    assert rows == {ns: "Canceled" for ns in spaces}


def test_fleet_as_a_user_with_only_the_shipped_roles_bound_as_the_readme_says(mc, kubectl):  # noqa: F811
    """README, RBAC: the namespace role bound cluster-wide (migrate -A / status -A list across namespaces) + the
    cluster role. A user of its own (impersonated with --as): no other test's grants leak into it."""
    from tests.cluster.rbac import CLUSTERROLEBINDING, binding, user_subject
    from tests.e2e.reliability_kit import Grant

    tag = uuid.uuid4().hex[:6]
    user = f"fleet-{tag}"
    spaces = fleet(mc, tag, n=2)
    g = Grant(mc, "migration-controller", spaces[0], user=user)
    try:
        role = next(n for res, n, _ in g.created if res.kind == "ClusterRole" and "-cluster-" not in n)
        g.create(CLUSTERROLEBINDING, binding("ClusterRoleBinding", {"kind": "ClusterRole", "metadata": {
            "name": role}}, None, user_subject(user)))
        r = vs(kubectl, "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller",
               "--wait", "--yes", "--as", user, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]
        assert len(ours(mc, R.MN_VMSM_PLAN, spaces)) == 1
        st = vs(kubectl, "status", "-A", "-o", "json", "--as", user)
        assert st.returncode == 0, st.stderr
        rows = {m["namespace"]: m["result"] for m in json.loads(st.stdout)["migrations"] if m["namespace"] in spaces}
        assert rows == {ns: "Succeeded" for ns in spaces}
    finally:
        g.revoke()


def test_a_child_plan_the_controller_refuses_takes_the_whole_fleet_back_before_any_volume(mc, cp):  # noqa: F811
    """fleet_run.apply_fleet in-process against the real API server, the MultiNamespace reconciler stepped by hand
    and the child plans' verdicts written by hand (manual namespaces): one namespace refused (Critical
    InvalidPVCs) -> the fleet plan AND both children (unowned upstream) are deleted, no DataVolume, no migration."""
    import threading
    import types

    from kubectl_vmmig import errors
    from kubectl_vmmig.engines.migration_controller.surface import MigrationController
    from tests.sim import migration_controller as MC
    from tests.sim import migration_controller_multi as MULTI

    spaces = sorted(make_namespace(mc, f"mcref-{i}", manual=True) for i in range(2))
    plans = []
    for ns in spaces:
        F.apply(mc, ns, *F.make_vm_bundle("vm1", [F.pvc_disk("data")], running=False))
        plans.append({"namespace": ns, "vms": ["vm1"], "targetStorageClass": "fast", "requestedMode": "auto",
                      "mode": "offline", "skipped": [], "findings": [], "moves": [{
                          "vm": "vm1", "namespace": ns, "volume": "data", "kind": "pvc",
                          "dataVolumeTemplateIndex": None, "sourcePVC": "vm1-data", "targetPVC": "vm1-data-fast",
                          "sourceSC": "standard", "targetSC": "fast", "mode": "offline", "size": "1Gi",
                          "sizeBytes": 1 << 30, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                          "targetAccessMode": None, "targetVolumeMode": "Filesystem"}]})
    eng = MigrationController(cp.admin, {"poll": 0.05, "plan_timeout": 30})
    got, events = {}, []

    def run():
        try:
            eng.apply_fleet(plans, types.SimpleNamespace(dry_run="none"), events.append)
        except errors.PreflightRefused as exc:
            got["refused"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    ctl = MC.MigrationController(mc, namespaces=spaces)
    name = FL.fleet_name(plans)
    wait_for(lambda: mc.get_or_none(R.MN_VMSM_PLAN, name, spaces[0]), what="fleet plan created")
    MULTI.reconcile_plan(ctl, mc.get(R.MN_VMSM_PLAN, name, spaces[0]))  # createNamespacePlan x2
    from tests.sim.common import set_condition

    def write_status(ns):  # what validation.go would write: namespace 0 ready, namespace 1 InvalidPVCs (Critical)
        child = mc.get(R.VMSM_PLAN, FL.child_name(name, ns), ns)
        entry = {"name": "vm1", "sourcePVCs": [{"volumeName": "data", "name": "vm1-data", "namespace": ns,
                                                 "sourcePVC": {"spec": {"storageClassName": "standard"}}}],
                 "targetMigrationPVCs": child["spec"]["virtualMachines"][0]["targetMigrationPVCs"]}
        child["status"] = {"suffix": "ab12", "readyMigrations" if ns == spaces[0] else "invalidMigrations": [entry]}
        if ns == spaces[1]:
            set_condition(child, "InvalidPVCs", "True", "NotFound", "Critical", "storage class fast not found")
        set_condition(child, "Ready", "True" if ns == spaces[0] else "False", None, "Required", None)
        mc.request("PUT", R.VMSM_PLAN.path(ns, child["metadata"]["name"], "status"), body=child)

    for ns in spaces:
        for _ in range(20):  # the plugin marks the same child meanwhile: a stale write is a 409, read again
            try:
                write_status(ns)
                break
            except errors.Conflict:
                continue
        else:
            raise AssertionError(f"could not write the status of the child plan in {ns}")
    worker.join(40)
    assert not worker.is_alive()
    exc = got.get("refused")
    assert exc is not None and f"in namespace {spaces[1]}" in exc.message and "InvalidPVCs" in exc.message, got
    assert mc.get_or_none(R.MN_VMSM_PLAN, name, spaces[0]) is None
    for ns in spaces:
        assert mc.get_or_none(R.VMSM_PLAN, FL.child_name(name, ns), ns) is None, ns
        assert mc.items(R.DATAVOLUME, ns) == [] and mc.items(R.VMSM, ns) == []
    assert mc.items(R.MN_VMSM, spaces[0]) == []


def test_one_namespace_failing_does_not_stop_the_others_and_the_run_says_which(mc, kubectl):  # noqa: F811
    """Upstream reports no failure and mirrors each child (multinamespacestoragemig Reconcile): the others move on;
    the plugin's per-namespace verdict names the failed one and the command exits 4 (migration failed)."""
    tag = uuid.uuid4().hex[:6]
    # 46-character namespaces: the child names <fleet>-<namespace> are longer than a label value may be
    spaces = fleet(mc, tag, n=2, running=(0,), base="a-namespace-name-long-enough-for-the-limit")
    assert all(len(FL.child_name("fleet-to-fast-12345", ns)) > 63 for ns in spaces)
    set_faults(mc, spaces[0], liveMigrationFail="true")
    r = vs(kubectl, "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "migration-controller",
           "--wait", "--yes", timeout=300)
    assert r.returncode == 4, r.stdout + r.stderr[-3000:]
    assert f"in namespace {spaces[0]} failed: vm1/data: " in r.stderr, r.stderr[-2000:]
    assert claims(mc, spaces[1], "vm1") == {"data": "vm1-data-fast"}  # the other namespace moved
    st = vs(kubectl, "status", "-A", "-o", "json")
    rows = {m["namespace"]: m["result"] for m in json.loads(st.stdout)["migrations"] if m["namespace"] in spaces}
    assert rows == {spaces[0]: "Failed", spaces[1]: "Succeeded"}
