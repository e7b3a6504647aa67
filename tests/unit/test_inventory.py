"""inventory.py: VM shapes -> disk facts."""
from kubectl_vmmig.inventory import build_inventory, parse_quantity, run_strategy, claims_in_use

from tests.unit.vmshapes import dv, launcher_pod, pvc, sc, vm, vmi


def test_parse_quantity():
    assert parse_quantity("10Gi") == 10 * 2 ** 30
    assert parse_quantity("1.5G") == 1_500_000_000
    assert parse_quantity("512Mi") == 512 * 2 ** 20
    assert parse_quantity(1024) == 1024
    assert parse_quantity("100") == 100
    assert parse_quantity(None) is None
    assert parse_quantity("ten") is None
    assert parse_quantity("5Xi") is None


def test_run_strategy_running_field_and_default():
    assert run_strategy(vm("a", running=True)) == "Always"
    assert run_strategy(vm("a", running=False)) == "Halted"
    assert run_strategy(vm("a", run_strategy="Manual")) == "Manual"
    v = vm("a")
    del v["spec"]["runStrategy"]
    assert run_strategy(v) == "Halted"


def test_dv_template_disk_facts_from_pvc_capacity():
    v = vm("vm1", dvs=[("rootdisk", "vm1-root")], templates=[("vm1-root", "standard", "10Gi")])
    inv = build_inventory([v], [vmi("vm1")], [pvc("vm1-root", capacity="10752Mi")], [dv("vm1-root")],
                          [sc("standard", default=True), sc("fast")], [launcher_pod("vm1", claims=["vm1-root"])])
    facts = inv["vms"]["ns1/vm1"]
    assert facts["running"] is True and facts["node"] == "node01"
    assert facts["launcherPods"] == ["virt-launcher-vm1-abcde"]
    (d,) = facts["disks"]
    assert d["kind"] == "dataVolume" and d["claim"] == "vm1-root" and d["dataVolumeTemplateIndex"] == 0
    # the size is the PVC's real capacity, not the request, so a destination is never smaller
    assert d["size"] == "10752Mi" and d["sizeBytes"] == 10752 * 2 ** 20 and d["requestedSize"] == "10Gi"
    assert d["storageClass"] == "standard" and d["accessModes"] == ["ReadWriteOnce"]
    assert d["volumeMode"] == "Filesystem" and d["dataVolumePhase"] == "Succeeded"
    assert not (d["shareable"] or d["lun"] or d["virtiofs"] or d["hotplug"])
    assert inv["defaultStorageClass"] == "standard"


def test_plain_pvc_and_non_storage_volumes_ignored():
    v = vm("vm2", pvcs=[("data", "data-pvc")],
           extra_volumes=[{"name": "cd", "containerDisk": {"image": "x"}},
                          {"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config"}}])
    inv = build_inventory([v], [], [pvc("data-pvc", sc_name="slow", modes=("ReadWriteMany",), volume_mode="Block")])
    facts = inv["vms"]["ns1/vm2"]
    assert facts["running"] is False and facts["vmiPhase"] is None
    assert [d["volume"] for d in facts["disks"]] == ["data"]
    d = facts["disks"][0]
    assert d["kind"] == "pvc" and d["dataVolumeTemplateIndex"] is None
    assert d["storageClass"] == "slow" and d["volumeMode"] == "Block" and d["accessModes"] == ["ReadWriteMany"]


def test_missing_pvc_template_storage_class_falls_back():
    v = vm("vm3", dvs=[("root", "vm3-root")], templates=[("vm3-root", None, "5Gi")])
    inv = build_inventory([v], [], [], [], [sc("standard", default=True)])
    d = inv["vms"]["ns1/vm3"]["disks"][0]
    assert d["pvcExists"] is False and d["pvcPhase"] is None
    assert d["storageClass"] == "standard" and d["size"] == "5Gi"


def test_flags_shareable_lun_virtiofs_hotplug_hostdisk():
    v = vm("vm4", pvcs=[("a", "pa"), ("b", "pb"), ("c", "pc"), ("d", "pd")],
           extra_volumes=[{"name": "h", "hostDisk": {"path": "/x", "type": "Disk"}}],
           disks_override={"a": {"name": "a", "disk": {}, "shareable": True}, "b": {"name": "b", "lun": {}}})
    v["spec"]["template"]["spec"]["domain"]["devices"]["disks"] = [
        d for d in v["spec"]["template"]["spec"]["domain"]["devices"]["disks"] if d["name"] != "c"]
    v["spec"]["template"]["spec"]["domain"]["devices"]["filesystems"] = [{"name": "c", "virtiofs": {}}]
    v["spec"]["template"]["spec"]["volumes"][3]["persistentVolumeClaim"]["hotpluggable"] = True
    inv = build_inventory([v], [], [pvc(n) for n in ("pa", "pb", "pc", "pd")])
    facts = inv["vms"]["ns1/vm4"]
    by = {d["volume"]: d for d in facts["disks"]}
    assert by["a"]["shareable"] and by["a"]["diskType"] == "disk"
    assert by["b"]["lun"] and by["b"]["diskType"] == "lun"
    assert by["c"]["virtiofs"] and by["c"]["diskType"] == "filesystem"
    assert by["d"]["hotplug"]
    assert facts["hostDisks"] == ["h"]


def test_hotplug_from_vmi_volume_status_and_vm_requests():
    v = vm("vm5", pvcs=[("x", "px"), ("y", "py")])
    v["status"]["volumeRequests"] = [{"addVolumeOptions": {"name": "y"}}]
    i = vmi("vm5", volume_status=[{"name": "x", "hotplugVolume": {"attachPodName": "hp-1"}}])
    facts = build_inventory([v], [i], [pvc("px"), pvc("py")])["vms"]["ns1/vm5"]
    assert all(d["hotplug"] for d in facts["disks"])


def test_conditions_are_indexed_and_vmi_not_running():
    v = vm("vm6", pvcs=[("x", "px")])
    v["status"]["conditions"] = [{"type": "RestartRequired", "status": "True", "message": "m"}]
    i = vmi("vm6", phase="Scheduling",
            conditions=[{"type": "StorageLiveMigratable", "status": "False", "reason": "NotMigratable"}])
    facts = build_inventory([v], [i], [pvc("px")])["vms"]["ns1/vm6"]
    assert facts["running"] is False and facts["vmiPhase"] == "Scheduling"
    assert facts["conditions"]["RestartRequired"]["status"] == "True"
    assert facts["vmiConditions"]["StorageLiveMigratable"]["reason"] == "NotMigratable"


def test_vmi_in_other_namespace_does_not_count():
    facts = build_inventory([vm("a", pvcs=[("x", "p")])], [vmi("a", ns="other")], [pvc("p")])["vms"]["ns1/a"]
    assert facts["running"] is False


def test_claims_in_use():
    inv = build_inventory([vm("a", pvcs=[("x", "p1")]), vm("b", dvs=[("y", "d1")]), vm("c", ns="n2", pvcs=[("z", "p9")])])
    assert claims_in_use(inv, "ns1") == {"p1": "a/x", "d1": "b/y"}



def test_access_modes_are_what_the_pvc_asked_for():
    """Audit 17: KubeVirt's RWO rule reads pvc.Spec.AccessModes (vmi/storage.go, volume-migration.go); a PV that
    offers RWO+RWX does not make an RWO claim shared."""
    claim = pvc("data-pvc", modes=("ReadWriteOnce",))
    claim["status"]["accessModes"] = ["ReadWriteOnce", "ReadWriteMany"]
    inv = build_inventory([vm("vm2", pvcs=[("data", "data-pvc")])], [], [claim])
    assert inv["vms"]["ns1/vm2"]["disks"][0]["accessModes"] == ["ReadWriteOnce"]
