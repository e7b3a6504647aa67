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


def fleet(kube, tag, n=3, running=(0,)):
    spaces = sorted(make_namespace(kube, f"mcfleet-{i}") for i in range(n))
    for i, ns in enumerate(spaces):
        make_vm(kube, ns, "vm1", [F.pvc_disk("data", size="1Gi")], running=i in running)
        kube.patch(R.VM, "vm1", {"metadata": {"labels": {"fleet": tag}}}, ns)
    return spaces


def test_migrate_all_namespaces_writes_one_multinamespace_plan_and_moves_every_vm(mc, kubectl):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    spaces = fleet(mc, tag)
    make_vm(mc, spaces[1], "other", [F.pvc_disk("data", size="1Gi")], running=False)  # no label: left alone
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
