"""volume_swap_patch / revert_patch / clear_strategy_patch on many VM shapes, applied with `jsonpatch`."""
import copy
import json
from pathlib import Path

import jsonpatch
import pytest
import yaml

from kubectl_vmmig.patches import (clear_strategy_patch, revert_patch, template_storage_classes,
                                   volume_claims, volume_swap_patch)

SAMPLES = Path("/work/shared/reference/kubevirt/samples")


def vm_with(volumes, templates=None, generation=3, strategy=None, disks=None):
    vm = {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": "vm1", "namespace": "ns", "generation": generation, "resourceVersion": "77"},
        "spec": {"runStrategy": "Always", "template": {"spec": {
            "domain": {"devices": {"disks": disks or [{"name": v["name"], "disk": {"bus": "virtio"}}
                                                       for v in volumes]}},
            "volumes": volumes}}},
    }
    if templates is not None:
        vm["spec"]["dataVolumeTemplates"] = templates
    if strategy:
        vm["spec"]["updateVolumesStrategy"] = strategy
    return vm


def dv_template(name, sc="standard", key="storage"):
    return {"metadata": {"name": name},
            "spec": {key: {"accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                           "resources": {"requests": {"storage": "2Gi"}}},
                     "source": {"registry": {"url": "docker://x"}}}}


def apply(vm, ops):
    return jsonpatch.apply_patch(vm, ops)


def test_sample01_template_renamed_and_strategy_set():
    vm = yaml.safe_load((SAMPLES / "01-vm-with-datavolume-template.yaml").read_text())
    ops = volume_swap_patch(vm, {"src-dv": "dst-dv"}, live=True, target_storage_class="fast")
    out = apply(vm, ops)
    assert out["spec"]["updateVolumesStrategy"] == "Migration"
    assert out["spec"]["template"]["spec"]["volumes"][0] == {"name": "datavolumedisk1",
                                                             "dataVolume": {"name": "dst-dv"}}
    tpl = out["spec"]["dataVolumeTemplates"][0]
    assert tpl["metadata"]["name"] == "dst-dv"
    assert tpl["spec"]["storage"]["storageClassName"] == "fast"
    # everything else identical
    out["spec"].pop("updateVolumesStrategy")
    out["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] = "src-dv"
    out["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] = "local"
    out["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"] = "src-dv"
    assert out == vm


def test_sample03_same_result_as_reference_ops():
    vm = yaml.safe_load((SAMPLES / "01-vm-with-datavolume-template.yaml").read_text())
    ref = json.loads((SAMPLES / "03-vm-volume-migration-patches.json").read_text())
    expected = apply(vm, ref["start_to_dv_keep_template"])
    assert apply(vm, volume_swap_patch(vm, {"src-dv": "dst-dv"}, live=True)) == expected
    # and the reference cancel ops give the same VM as our revert
    reverted_ref = apply(expected, ref["cancel_revert_to_source"])
    assert apply(expected, revert_patch(expected, {"src-dv": "dst-dv"})) == reverted_ref


def test_plain_pvcs_containerdisk_cloudinit_untouched():
    vols = [{"name": "boot", "containerDisk": {"image": "quay.io/x"}},
            {"name": "data1", "persistentVolumeClaim": {"claimName": "pvc-a"}},
            {"name": "data2", "persistentVolumeClaim": {"claimName": "pvc-b", "readOnly": False}},
            {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config"}}]
    vm = vm_with(vols)
    out = apply(vm, volume_swap_patch(vm, {"pvc-a": "pvc-a-fast", "pvc-b": "pvc-b-fast"}, live=True))
    got = out["spec"]["template"]["spec"]["volumes"]
    assert got[0] == vols[0] and got[3] == vols[3]
    assert got[1] == {"name": "data1", "persistentVolumeClaim": {"claimName": "pvc-a-fast"}}
    assert got[2] == {"name": "data2", "persistentVolumeClaim": {"claimName": "pvc-b-fast", "readOnly": False}}
    assert "dataVolumeTemplates" not in out["spec"]
    assert out["metadata"] == vm["metadata"]
    assert out["spec"]["template"]["spec"]["domain"] == vm["spec"]["template"]["spec"]["domain"]


def test_only_mapped_volumes_move():
    vols = [{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}},
            {"name": "b", "persistentVolumeClaim": {"claimName": "pb"}}]
    vm = vm_with(vols)
    out = apply(vm, volume_swap_patch(vm, {"pb": "pb-new"}, live=False))
    assert volume_claims(out) == {"a": "pa", "b": "pb-new"}


def test_several_templates_mixed_with_pvc_and_pvc_style_template():
    vols = [{"name": "root", "dataVolume": {"name": "root-dv"}},
            {"name": "data", "dataVolume": {"name": "data-dv"}},
            {"name": "logs", "persistentVolumeClaim": {"claimName": "logs-pvc"}}]
    tpls = [dv_template("root-dv"), dv_template("data-dv", key="pvc")]
    vm = vm_with(vols, tpls)
    mapping = {"root-dv": "root-dv-mig", "data-dv": "data-dv-mig", "logs-pvc": "logs-pvc-mig"}
    out = apply(vm, volume_swap_patch(vm, mapping, live=True, target_storage_class="fast"))
    assert volume_claims(out) == {"root": "root-dv-mig", "data": "data-dv-mig", "logs": "logs-pvc-mig"}
    names = [t["metadata"]["name"] for t in out["spec"]["dataVolumeTemplates"]]
    assert names == ["root-dv-mig", "data-dv-mig"]
    assert out["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] == "fast"
    assert out["spec"]["dataVolumeTemplates"][1]["spec"]["pvc"]["storageClassName"] == "fast"
    # template source untouched (destination DV exists, so the controller never imports it again)
    assert out["spec"]["dataVolumeTemplates"][0]["spec"]["source"] == {"registry": {"url": "docker://x"}}


def test_template_without_storage_class_gets_one():
    tpl = dv_template("root-dv")
    del tpl["spec"]["storage"]["storageClassName"]
    vm = vm_with([{"name": "root", "dataVolume": {"name": "root-dv"}}], [tpl])
    out = apply(vm, volume_swap_patch(vm, {"root-dv": "root-new"}, live=True, target_storage_class="fast"))
    assert out["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] == "fast"


def test_hotplugged_volume_swapped_with_flag_kept():
    vols = [{"name": "root", "persistentVolumeClaim": {"claimName": "root"}},
            {"name": "hp", "dataVolume": {"name": "hp-dv", "hotpluggable": True}}]
    vm = vm_with(vols)
    out = apply(vm, volume_swap_patch(vm, {"root": "root-n", "hp-dv": "hp-dv-n"}, live=True))
    assert out["spec"]["template"]["spec"]["volumes"][1] == {
        "name": "hp", "dataVolume": {"name": "hp-dv-n", "hotpluggable": True}}


def test_offline_has_no_strategy_and_live_without_set_strategy():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}}])
    for ops in (volume_swap_patch(vm, {"pa": "pb"}, live=False),
                volume_swap_patch(vm, {"pa": "pb"}, live=True, set_strategy=False)):
        assert not any(o["path"] == "/spec/updateVolumesStrategy" for o in ops)
        assert "updateVolumesStrategy" not in apply(vm, ops)["spec"]


def test_guards_come_first_and_cover_generation_names_and_claims():
    vm = vm_with([{"name": "a", "dataVolume": {"name": "pa"}}], [dv_template("pa")])
    ops = volume_swap_patch(vm, {"pa": "pb"}, live=True)
    first_change = next(i for i, o in enumerate(ops) if o["op"] != "test")
    assert all(o["op"] != "test" for o in ops[first_change:])
    tests = {o["path"]: o["value"] for o in ops if o["op"] == "test"}
    assert tests == {"/metadata/generation": 3, "/spec/template/spec/volumes/0/name": "a",
                     "/spec/template/spec/volumes/0/dataVolume/name": "pa",
                     "/spec/dataVolumeTemplates/0/metadata/name": "pa"}
    assert not any("resourceVersion" in o["path"] for o in ops)


@pytest.mark.parametrize("edit", [
    lambda v: v["metadata"].__setitem__("generation", 4),
    lambda v: v["spec"]["template"]["spec"]["volumes"][0]["dataVolume"].__setitem__("name", "other"),
    lambda v: v["spec"]["template"]["spec"]["volumes"].insert(0, {"name": "x", "emptyDisk": {}}),
])
def test_concurrent_edit_makes_patch_fail(edit):
    vm = vm_with([{"name": "a", "dataVolume": {"name": "pa"}}], [dv_template("pa")])
    ops = volume_swap_patch(vm, {"pa": "pb"}, live=True)
    edited = copy.deepcopy(vm)
    edit(edited)
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        apply(edited, ops)


def test_no_generation_means_no_generation_guard():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}}], generation=None)
    del vm["metadata"]["generation"]
    assert not any(o["path"] == "/metadata/generation" for o in volume_swap_patch(vm, {"pa": "pb"}, live=True))


def test_unknown_claim_is_an_error_and_empty_mapping_is_noop():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}},
                  {"name": "b", "containerDisk": {"image": "x"}}])
    with pytest.raises(ValueError, match="nope"):
        volume_swap_patch(vm, {"nope": "x"}, live=True)
    assert volume_swap_patch(vm, {}, live=True) == []
    assert volume_swap_patch(vm, {"pa": "pa"}, live=True) == []


def test_existing_strategy_is_kept_as_migration():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}}], strategy="Replacement")
    out = apply(vm, volume_swap_patch(vm, {"pa": "pb"}, live=True))
    assert out["spec"]["updateVolumesStrategy"] == "Migration"


def test_revert_restores_exact_original_claims_and_template_classes():
    vols = [{"name": "root", "dataVolume": {"name": "root-dv"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
            {"name": "ci", "cloudInitNoCloud": {"userData": "x"}}]
    tpl = dv_template("root-dv", sc="standard")
    tpl2 = dv_template("other-dv")
    del tpl2["spec"]["storage"]["storageClassName"]
    vols.append({"name": "other", "dataVolume": {"name": "other-dv"}})
    vm = vm_with(vols, [tpl, tpl2])
    mapping = {"root-dv": "root-dv-f", "data-pvc": "data-pvc-f", "other-dv": "other-dv-f"}
    classes = template_storage_classes(vm, mapping)
    assert classes == {"root-dv": "standard", "other-dv": None}
    migrated = apply(vm, volume_swap_patch(vm, mapping, live=True, target_storage_class="fast"))
    migrated["metadata"]["generation"] = 4          # the API server bumped it
    back = apply(migrated, revert_patch(migrated, mapping, classes))
    assert back["spec"].pop("updateVolumesStrategy") == "Migration"   # kept: cleared after the cancel
    back["metadata"]["generation"] = 3
    assert back == vm


def test_revert_guards_on_current_destination_claims():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pb"}}], strategy="Migration")
    ops = revert_patch(vm, {"pa": "pb"})
    assert {"op": "test", "path": "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName",
            "value": "pb"} in ops
    assert apply(vm, ops)["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "pa"
    # already reverted: nothing to do
    assert revert_patch(apply(vm, ops), {"pa": "pb"}) == []


def test_clear_strategy_patch():
    vm = vm_with([{"name": "a", "persistentVolumeClaim": {"claimName": "pa"}}], strategy="Migration")
    ops = clear_strategy_patch(vm)
    assert ops[0] == {"op": "test", "path": "/spec/updateVolumesStrategy", "value": "Migration"}
    assert "updateVolumesStrategy" not in apply(vm, ops)["spec"]
    assert clear_strategy_patch(vm_with([])) == []
