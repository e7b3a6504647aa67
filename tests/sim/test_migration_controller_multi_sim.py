"""The kubevirt-migration-controller stand-in's MultiNamespace reconcilers (tests/sim/migration_controller_multi.py)
against the real API server; each expectation is the upstream behaviour named there. (Split from
test_migration_controller_sim.py, whose fixtures and helpers it uses.)"""
import pytest

from kubectl_vmmig import resources as R
from tests.sim import migration_controller as MC
from tests.sim import migration_controller_multi as MULTI
from tests.sim.common import wait_for
from tests.sim.kvtest_helpers import condition, get, wait_obj
from tests.sim.test_migration_controller_sim import TIMEOUT, mc, phase_of, plan_body, two_disk_vm  # noqa: F401


# ---- MultiNamespace (tests/sim/migration_controller_multi.py) ---------------------------------------
def mn_plan_body(name, per_ns, to="fast"):
    return {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "MultiNamespaceVirtualMachineStorageMigrationPlan",
            "metadata": {"name": name}, "spec": {"namespaces": [
                {"name": ns, **plan_body("x", vms, to=to)["spec"]} for ns, vms in per_ns]}}


def test_namespaced_plan_name_is_naming_get_name_253():
    assert MULTI.namespaced_plan_name("fleet", "ns-a") == "fleet-ns-a"
    long = MULTI.namespaced_plan_name("p" * 250, "ns-a")
    assert len(long) == 253 and long.endswith("-ns-a")


@pytest.mark.cluster
def test_multi_namespace_plan_children_status_mirror_and_migration(mc, cp, namespace):  # noqa: F811
    from tests.conftest import make_namespace

    other = make_namespace(mc, "mn-other")
    for ns in (namespace, other):
        two_disk_vm(mc, ns, "vm1", running=False)
    mp = mc.create(R.MN_VMSM_PLAN, mn_plan_body("fleet", [(namespace, [("vm1", ["rootdisk"])]),
                                                          (other, [("vm1", ["rootdisk", "data"])])]), namespace)
    child = {ns: wait_obj(mc, R.VMSM_PLAN, f"fleet-{ns}", ns, lambda o: (condition(o, "Ready") or {}).get(
        "status") == "True", "child plan Ready", TIMEOUT) for ns in (namespace, other)}
    c = child[other]
    assert c["metadata"]["labels"] == {MULTI.PLAN_UID_LABEL: mp["metadata"]["uid"]}
    assert c["metadata"]["annotations"][MULTI.PLAN_NAME_ANNOTATION] == "fleet"
    assert not c["metadata"].get("ownerReferences")  # upstream sets none: deleting the parent leaves the children
    assert [t["volumeName"] for t in c["spec"]["virtualMachines"][0]["targetMigrationPVCs"]] == ["rootdisk", "data"]
    # the home namespace's child wakes the parent (its annotations lead back to it): mirrored
    wait_for(lambda: {e["name"]: e.get("suffix") for e in (get(mc, R.MN_VMSM_PLAN, "fleet", namespace).get(
        "status") or {}).get("namespaces") or []}.get(namespace) == child[namespace]["status"]["suffix"],
        timeout=TIMEOUT, what="parent mirrors the home child's status")
    mc.create(R.MN_VMSM, {"apiVersion": "migrations.kubevirt.io/v1alpha1",
                          "kind": "MultiNamespaceVirtualMachineStorageMigration", "metadata": {"name": "go"},
                          "spec": {"multiNamespaceVirtualMachineStorageMigrationPlanRef": {"name": "fleet"}}},
              namespace)
    for ns in (namespace, other):
        wait_for(lambda: phase_of(mc, ns, f"fleet-{ns}") == "Completed", timeout=TIMEOUT, what=f"{ns} Completed")
        m = mc.get(R.VMSM, f"fleet-{ns}", ns)
        assert m["metadata"]["annotations"][MULTI.MIG_NAME_ANNOTATION] == "go"
        assert m["spec"]["virtualMachineStorageMigrationPlanRef"] == {"namespace": ns, "name": f"fleet-{ns}"}
    wait_for(lambda: [e.get("phase") for e in (get(mc, R.MN_VMSM, "go", namespace).get("status") or {}).get(
        "namespaces") or []] == ["Completed", "Completed"], timeout=TIMEOUT, what="parent mirrors Completed")
    assert not condition(get(mc, R.MN_VMSM, "go", namespace), "Ready")  # no verdict of its own


@pytest.mark.cluster
def test_multi_namespace_migration_recreates_a_deleted_child_and_flags_a_missing_plan(mc, manual_namespace):  # noqa: F811,E501
    ns = manual_namespace
    ctl = MC.MigrationController(mc, namespaces=[ns])
    mc.create(R.MN_VMSM, {"apiVersion": "migrations.kubevirt.io/v1alpha1",
                          "kind": "MultiNamespaceVirtualMachineStorageMigration", "metadata": {"name": "go"},
                          "spec": {"multiNamespaceVirtualMachineStorageMigrationPlanRef": {"name": "fleet"}}}, ns)
    ctl.step()
    c = condition(mc.get(R.MN_VMSM, "go", ns), "InvalidPlanRef")
    assert (c["category"], c["reason"]) == ("Critical", "NotFound")
    mc.create(R.MN_VMSM_PLAN, mn_plan_body("fleet", [(ns, [("vm1", ["rootdisk"])])]), ns)
    MULTI.reconcile_migration(ctl, mc.get(R.MN_VMSM, "go", ns))  # the child plan does not exist yet: not awaited
    assert mc.get(R.VMSM, f"fleet-{ns}", ns)
    assert get(mc, R.VMSM_PLAN, f"fleet-{ns}", ns) is None
    MULTI.reconcile_plan(ctl, mc.get(R.MN_VMSM_PLAN, "fleet", ns))
    assert mc.get(R.VMSM_PLAN, f"fleet-{ns}", ns)
    mc.request("DELETE", R.VMSM.path(ns, f"fleet-{ns}"))  # no finalizer yet: gone at once
    MULTI.reconcile_migration(ctl, mc.get(R.MN_VMSM, "go", ns))
    assert mc.get(R.VMSM, f"fleet-{ns}", ns)  # re-created while the MultiNamespace migration exists
    mc.request("DELETE", R.NAMESPACE.path(None, ns))  # Terminating for good: no namespace controller here
    MULTI.reconcile_plan(ctl, mc.get(R.MN_VMSM_PLAN, "fleet", ns))
    c = condition(mc.get(R.MN_VMSM_PLAN, "fleet", ns), MULTI.INVALID_NAMESPACE)
    assert (c["status"], c["category"], c["message"]) == ("True", "", f"namespace {ns} is being deleted")


@pytest.mark.cluster
def test_a_child_outside_the_parents_namespace_never_wakes_the_parent_plan(mc, cp):  # noqa: F811
    """createNamespacePlan annotates a child with ITS OWN namespace as the parent's: the watch's map function
    finds no parent for a child elsewhere, so its changes do not reconcile the parent (its mirror goes stale)."""
    from tests.conftest import make_namespace

    home, other = (make_namespace(mc, f"mn-wake-{i}", manual=True) for i in range(2))
    ctl = MC.MigrationController(mc, namespaces=[home, other])
    mp = mc.create(R.MN_VMSM_PLAN, mn_plan_body("fleet", [(home, [("vm1", ["rootdisk"])]),
                                                          (other, [("vm1", ["rootdisk"])])]), home)
    MULTI.reconcile_plan(ctl, mp)
    kids = {ns: mc.get(R.VMSM_PLAN, f"fleet-{ns}", ns) for ns in (home, other)}
    assert kids[other]["metadata"]["annotations"][MULTI.PLAN_NAMESPACE_ANNOTATION] == other  # not home
    args = (MULTI.PLAN_NAME_ANNOTATION, MULTI.PLAN_NAMESPACE_ANNOTATION)
    parent = mc.get(R.MN_VMSM_PLAN, "fleet", home)
    assert ctl.triggers.due(parent, list(kids.values()), *args)  # first sight
    assert not ctl.triggers.due(parent, list(kids.values()), *args)  # nothing changed
    kids[other] = mc.patch(R.VMSM_PLAN, f"fleet-{other}", {"metadata": {"annotations": {"x": "1"}}}, other)
    assert not ctl.triggers.due(parent, list(kids.values()), *args)  # the other namespace's child: no event
    kids[home] = mc.patch(R.VMSM_PLAN, f"fleet-{home}", {"metadata": {"annotations": {"x": "1"}}}, home)
    assert ctl.triggers.due(parent, list(kids.values()), *args)  # the home child: reconciled
