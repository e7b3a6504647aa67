"""Pure builders of the kubevirt engine: names, destination DataVolumes, record, preview, stop/start patches."""
import copy

import jsonpatch

from kubectl_vmmig.engines.kubevirt import build as B


def move(vm="vm1", volume="root", src="root-dv", dst="root-dv-fast", mode="live", tpl=0, **kw):
    m = {"vm": vm, "namespace": "ns", "volume": volume, "kind": "dataVolume", "dataVolumeTemplateIndex": tpl,
         "sourcePVC": src, "targetPVC": dst, "sourceSC": "standard", "targetSC": "fast", "mode": mode,
         "size": "10Gi", "sizeBytes": 10 * 2 ** 30, "accessModes": ["ReadWriteOnce"], "volumeMode": "Block",
         "targetAccessMode": None, "targetVolumeMode": "Block"}
    m.update(kw)
    return m


def vm_obj(name="vm1", run="Always", gen=2):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": gen},
            "spec": {"runStrategy": run,
                     "dataVolumeTemplates": [{"metadata": {"name": "root-dv"},
                                              "spec": {"storage": {"storageClassName": "standard"},
                                                       "source": {"blank": {}}}}],
                     "template": {"spec": {"volumes": [
                         {"name": "root", "dataVolume": {"name": "root-dv"}},
                         {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
                         {"name": "ci", "cloudInitNoCloud": {"userData": "x"}}]}}}}


def plan_of(moves):
    return {"namespace": "ns", "vms": sorted({m["vm"] for m in moves}), "targetStorageClass": "fast",
            "moves": moves}


def test_names_are_deterministic_and_bounded():
    assert B.destination_name("root-dv", "fast") == "root-dv-fast"
    long = B.destination_name("x" * 70, "fast")
    assert len(long) <= 63 and long == B.destination_name("x" * 70, "fast")
    assert B.destination_name("x" * 70, "fast") != B.destination_name("x" * 70 + "y", "fast")
    assert B.migration_name(plan_of([move()])) == "vm1-to-fast"
    two = B.migration_name(plan_of([move(), move(vm="vm2")]))
    assert two.startswith("ns-to-fast-") and two == B.migration_name(plan_of([move(vm="vm2"), move()]))


def test_live_destination_is_blank_sized_from_capacity_modes_kept():
    dv = B.destination_datavolume(move(), "vm1-to-fast", live=True, vm_uid="u-1")
    assert dv["spec"]["source"] == {"blank": {}}
    assert dv["spec"]["storage"] == {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                                     "volumeMode": "Block", "resources": {"requests": {"storage": "10Gi"}}}
    md = dv["metadata"]
    assert md["name"] == "root-dv-fast" and md["namespace"] == "ns"
    assert md["annotations"]["cdi.kubevirt.io/allowClaimAdoption"] == "true"
    assert md["labels"] == {"app.kubernetes.io/managed-by": "kubectl-vm-storage",
                            "vm-storage.kubevirt-tools.io/migration": "vm1-to-fast",
                            "vm-storage.kubevirt-tools.io/engine": "kubevirt"}
    assert md["ownerReferences"][0]["uid"] == "u-1" and md["ownerReferences"][0]["controller"] is True


def test_offline_destination_is_a_clone_and_overrides_apply():
    dv = B.destination_datavolume(move(tpl=None), "m", live=False, access_mode="ReadWriteMany",
                                  volume_mode="Filesystem", vm_uid="u-1")
    assert dv["spec"]["source"] == {"pvc": {"namespace": "ns", "name": "root-dv"}}
    assert dv["spec"]["storage"]["accessModes"] == ["ReadWriteMany"]
    assert dv["spec"]["storage"]["volumeMode"] == "Filesystem"
    assert "ownerReferences" not in dv["metadata"]      # plain PVC source: no owner
    auto = B.destination_datavolume(move(targetAccessMode="auto", targetVolumeMode="auto", volumeMode="auto"),
                                    "m", live=True)
    assert "accessModes" not in auto["spec"]["storage"] and "volumeMode" not in auto["spec"]["storage"]


def test_record_holds_originals_and_roundtrips():
    moves = [move(), move(volume="data", src="data-pvc", dst="data-pvc-fast", tpl=None)]
    rec = B.new_record(plan_of(moves), {"vm1": vm_obj()}, "vm1-to-fast", started="t0")
    r = rec["vms"]["vm1"]
    assert r["originalClaims"] == {"root": "root-dv", "data": "data-pvc"}
    assert r["targetClaims"] == {"root": "root-dv-fast", "data": "data-pvc-fast"}
    assert r["templateStorageClasses"] == {"root-dv": "standard"}
    assert r["mode"] == "live" and rec["result"] == "Running"
    assert [d["targetPVC"] for d in rec["disks"]] == ["root-dv-fast", "data-pvc-fast"]
    cm = B.record_configmap(rec)
    assert cm["metadata"]["name"] == "vm-storage-vm1-to-fast"
    assert cm["metadata"]["labels"]["vm-storage.kubevirt-tools.io/engine"] == "kubevirt"
    assert B.record_from_configmap(cm) == rec


def test_preview_live_lists_dvs_swap_and_cleanup_patches():
    moves = [move(), move(volume="data", src="data-pvc", dst="data-pvc-fast", tpl=None)]
    vm = vm_obj()
    pv = B.build_preview(plan_of(moves), {"vm1": vm}, checks=[{"name": "x", "severity": "ok", "message": "m"}])
    kinds = [o["kind"] for o in pv["objects"]]
    assert kinds == ["ConfigMap", "DataVolume", "DataVolume"]
    # finding 1: no removal of updateVolumesStrategy after success (it would raise RestartRequired on the running VM)
    assert [p["step"] for p in pv["patches"]] == ["swap-volumes"]
    swap = pv["patches"][0]
    assert (swap["apiVersion"], swap["kind"], swap["namespace"], swap["name"]) == (
        "kubevirt.io/v1", "VirtualMachine", "ns", "vm1")
    out = jsonpatch.apply_patch(vm, swap["patch"])
    assert out["spec"]["updateVolumesStrategy"] == "Migration"
    assert out["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "root-dv-fast"
    assert pv["checks"] == [{"name": "x", "severity": "ok", "message": "m"}]
    assert not any(op["op"] == "remove" and op["path"] == "/spec/updateVolumesStrategy"
                   for p in pv["patches"] for op in p["patch"])


def test_preview_offline_with_stop_predicts_generation_and_restores_strategy():
    moves = [move(mode="offline")]
    vm = vm_obj(gen=5)
    vmi = {"status": {"phase": "Running"}}
    pv = B.build_preview(plan_of(moves), {"vm1": vm}, stop=True, vmis={"vm1": vmi})
    steps = [p["step"] for p in pv["patches"]]
    assert steps == ["stop", "swap-volumes", "start"]
    stopped = jsonpatch.apply_patch(vm, pv["patches"][0]["patch"])
    assert stopped["spec"]["runStrategy"] == "Halted"
    stopped["metadata"]["generation"] = 6           # what the API server does on a spec change
    swapped = jsonpatch.apply_patch(stopped, pv["patches"][1]["patch"])
    assert "updateVolumesStrategy" not in swapped["spec"]
    started = jsonpatch.apply_patch(swapped, pv["patches"][2]["patch"])
    assert started["spec"]["runStrategy"] == "Always"
    dv = [o for o in pv["objects"] if o["kind"] == "DataVolume"][0]
    assert "pvc" in dv["spec"]["source"]


def test_stop_and_start_patch_with_deprecated_running_field():
    vm = vm_obj()
    del vm["spec"]["runStrategy"]
    vm["spec"]["running"] = True
    stopped = jsonpatch.apply_patch(copy.deepcopy(vm), B.stop_patch(vm))
    assert stopped["spec"]["running"] is False and "runStrategy" not in stopped["spec"]
    assert B.predicted_after_stop(vm)["spec"] == stopped["spec"]
    back = jsonpatch.apply_patch(stopped, B.start_patch("Always", True))
    assert back["spec"]["running"] is True
