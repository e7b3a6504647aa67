"""engines/mtc/build.py: MigPlan / selection patch / MigMigration / names / result judgement."""
import pytest

from kubectl_vmmig.engines.mtc import build as B
from kubectl_vmmig.inventory import build_inventory
from kubectl_vmmig.plan import build_plan

from tests.unit.vmshapes import pvc, sc, vm, vmi


def _plan(mode="auto", vms=("ns1/a", "ns1/b"), **kw):
    inv = build_inventory([vm("a", pvcs=[("d", "a-disk")]), vm("b", dvs=[("r", "b-root")]), vm("c", pvcs=[("d", "c-disk")])],
                          [vmi("a")], [pvc("a-disk", volume_mode="Block"), pvc("b-root"), pvc("c-disk"), pvc("other")],
                          [], [sc("standard", True), sc("fast")])
    return build_plan(inv, list(vms), "fast", mode, {"liveMigration": True},
                      naming=lambda d: B.target_name(d["claim"], "ab12"), **kw)


@pytest.mark.parametrize("source,suffix,want", [
    ("disk", "ab12", "disk-mig-ab12"),
    ("disk-mig-zz99", "ab12", "disk-mig-ab12"),     # re-migrating an already migrated disk
    ("disk-new", "ab12", "disk-mig-ab12"),          # legacy -new naming
    ("disk-new-mig-zz99", "ab12", "disk-new-mig-ab12"),  # C1: trimSuffix strips one suffix or the other
    ("disk", None, "disk-mig-xxxx"),                # suffix unknown before the plan exists (preview)
    ("x" * 300, "ab12", ("x" * 247 + "-mig-ab12")[:253]),  # MTC cuts the base to 247, the result to 253
])
def test_target_name(source, suffix, want):
    assert B.target_name(source, suffix) == want


def test_plan_name_deterministic_and_short():
    assert B.plan_name("ns1") == "vm-storage-ns1"
    long = B.plan_name("n" * 63)
    assert len(long) <= 63 and long == B.plan_name("n" * 63)


def test_build_migplan_recipe():
    p = B.build_migplan(_plan(), "openshift-migration", "host", hooks=[("h1", "PreBackup")])
    assert p["kind"] == "MigPlan" and p["metadata"]["namespace"] == "openshift-migration"
    spec = p["spec"]
    assert spec["namespaces"] == ["ns1"]  # no src:dst mapping -> StorageConversionPlan
    assert spec["srcMigClusterRef"] == spec["destMigClusterRef"] == {"name": "host", "namespace": "openshift-migration"}
    assert spec["liveMigrate"] is True
    assert "migStorageRef" not in spec and "indirectVolumeMigration" not in spec and "persistentVolumes" not in spec
    assert spec["hooks"][0]["phase"] == "PreBackup" and spec["hooks"][0]["reference"]["name"] == "h1"
    lab = p["metadata"]["labels"]
    assert lab["app.kubernetes.io/managed-by"] == "kubectl-vm-storage"
    assert lab["vm-storage.kubevirt-tools.io/engine"] == "mtc"
    assert lab["vm-storage.kubevirt-tools.io/migration"] == "vm-storage-ns1"


def test_build_migmigration_kinds():
    plan = _plan()
    cut = B.build_migmigration(plan, "mtc", "cutover")
    assert cut["spec"] == {"migPlanRef": {"name": "vm-storage-ns1", "namespace": "mtc"}, "stage": False,
                           "migrateState": True, "quiescePods": True}
    stage = B.build_migmigration(plan, "mtc", "stage")
    assert stage["spec"]["migrateState"] is True and stage["spec"]["quiescePods"] is False
    assert stage["spec"]["stage"] is False  # stage:true is rejected for storage conversion
    assert cut["metadata"]["name"] != stage["metadata"]["name"]
    assert B.build_migmigration(plan, "mtc", "cutover")["metadata"]["name"] == cut["metadata"]["name"]
    assert B.build_migmigration(plan, "mtc", "stage", 2)["metadata"]["name"].endswith("-2")
    other = B.build_migmigration(_plan(vms=("ns1/a",)), "mtc", "cutover")
    assert other["metadata"]["name"] != cut["metadata"]["name"]
    rb = B.build_rollback({"metadata": {"name": "p", "namespace": "mtc", "uid": "u"}}, after="m1")
    assert rb["spec"] == {"migPlanRef": {"name": "p", "namespace": "mtc"}, "stage": False, "rollback": True}
    assert B.build_rollback({"metadata": {"name": "p", "namespace": "mtc", "uid": "u"}}, after="m2")["metadata"]["name"] \
        != rb["metadata"]["name"]


def _pvs():
    # as discovery lists them: every bound PVC of the namespace, sorted by PV name, default copy
    return [{"name": f"pv-{n}", "pvc": {"name": f"{n}:{n}-mig-ab12", "namespace": "ns1", "volumeMode": vm_},
             "selection": {"action": "copy", "storageClass": "standard", "copyMethod": cm},
             "supported": {"actions": ["skip", "copy"], "copyMethods": ["filesystem", "block", "snapshot"]}}
            for n, vm_, cm in (("a-disk", "Block", "block"), ("b-root", "Filesystem", "filesystem"),
                               ("c-disk", "Filesystem", "filesystem"), ("other", "Filesystem", "filesystem"))]


def test_selection_patch_copy_chosen_skip_everything_else():
    ops, missing = B.selection_patch(_pvs(), _plan(access_mode="ReadWriteMany"), verify=True)
    assert missing == []
    sel = {op["path"]: op["value"] for op in ops if op["path"].endswith("/selection")}
    assert sel["/spec/persistentVolumes/0/selection"] == {"action": "copy", "storageClass": "fast",
                                                          "copyMethod": "block", "accessMode": "ReadWriteMany",
                                                          "verify": True}
    assert sel["/spec/persistentVolumes/1/selection"]["action"] == "copy"
    assert sel["/spec/persistentVolumes/2/selection"]["action"] == "skip"
    assert sel["/spec/persistentVolumes/3/selection"]["action"] == "skip"
    tests = [op for op in ops if op["op"] == "test"]
    assert [t["value"] for t in tests] == ["pv-a-disk", "pv-b-root", "pv-c-disk", "pv-other"]
    assert not any("volumeMode" in op["path"] for op in ops)


def test_selection_patch_volume_mode_and_missing():
    plan = _plan(volume_mode="Block")
    ops, missing = B.selection_patch(_pvs()[1:], plan)
    assert missing == ["a-disk"]
    vm_ops = [op for op in ops if op["path"].endswith("/pvc/volumeMode")]
    assert vm_ops == [{"op": "add", "path": "/spec/persistentVolumes/0/pvc/volumeMode", "value": "Block"}]


def test_predicted_persistent_volumes_sorted_and_bound_only():
    pvcs = [pvc("z"), pvc("a"), pvc("pending", phase="Pending"), pvc("x-mig-ab12"), pvc("elsewhere", ns="ns2")]
    got = B.predicted_persistent_volumes(pvcs, "ns1")
    assert [e["name"] for e in got] == ["pv-a", "pv-z"]
    # C2: with the adopted plan's suffix only its own targets are left out (pvlist.go updatePvs)
    got = B.predicted_persistent_volumes(pvcs + [pvc("y-mig-cd34")], "ns1", suffix="ab12")
    assert [e["name"] for e in got] == ["pv-a", "pv-y-mig-cd34", "pv-z"]


def test_parse_hooks():
    assert B.parse_hooks(["h:preBackup", "g:POSTRESTORE"]) == [("h", "PreBackup"), ("g", "PostRestore")]
    for bad in (["h"], ["h:during"], [":preBackup"], ["a:preBackup", "b:prebackup"]):
        with pytest.raises(ValueError):
            B.parse_hooks(bad)


def test_plan_conditions_helpers():
    plan = {"status": {"conditions": [{"type": "Ready", "status": "True", "category": "Required"},
                                      {"type": "KubeVirtStorageLiveMigrationNotEnabled", "status": "True",
                                       "category": "Warn"}]}}
    assert B.plan_ready(plan)
    assert [c["type"] for c in B.live_blocking_conditions(plan)] == ["KubeVirtStorageLiveMigrationNotEnabled"]
    plan["status"]["conditions"].append({"type": "PvInvalidStorageClass", "status": "True", "category": "Error"})
    assert not B.plan_ready(plan)
    assert B.covers_namespace({"spec": {"namespaces": ["ns1:ns2"]}}, "ns1")
    assert not B.covers_namespace({"spec": {"namespaces": ["ns10"]}}, "ns1")
    assert B.is_own(B.build_migplan(_plan(), "m", "host")) and not B.is_own({"metadata": {}})
