"""The kubevirt engine's state machine (steps.Driver) against an in-memory client: the decisions findings
1, 4, 5, 6, 11, 13, 14 of the KubeVirt audit are about, without a cluster."""
import copy

import jsonpatch
import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from kubectl_vmmig.engines.kubevirt import build as B
from kubectl_vmmig.engines.kubevirt import progress as KP
from kubectl_vmmig.engines.kubevirt.steps import Driver
from kubectl_vmmig.engines.kubevirt.volumes import IMMEDIATE_BINDING, dv_wait_text


class Kube:
    """Objects by (kind, name); JSON patches applied like the API server; subresource calls recorded."""

    namespace = "ns"

    def __init__(self, *objs):
        self.objs = {(o["kind"], o["metadata"]["name"]): copy.deepcopy(o) for o in objs}
        self.calls = []

    def get_or_none(self, res, name, ns=None):
        o = self.objs.get((res.kind, name))
        return copy.deepcopy(o) if o else None

    def get(self, res, name, ns=None):
        o = self.get_or_none(res, name, ns)
        if o is None:
            raise errors.NotFound(f"{res.kind} {name} not found", status=404)
        return o

    def items(self, res, ns=None, **kw):
        return [copy.deepcopy(o) for (k, _), o in self.objs.items() if k == res.kind]

    def create(self, res, body, ns=None, dry_run=False):
        self.objs[(res.kind, body["metadata"]["name"])] = copy.deepcopy(dict(body, kind=res.kind))
        return body

    def patch(self, res, name, ops, ns=None, patch_type="json", dry_run=False):
        self.calls.append(("patch", name, ops))
        before = self.objs[(res.kind, name)]
        after = jsonpatch.apply_patch(before, ops)
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = before["metadata"].get("generation", 0) + 1
        self.objs[(res.kind, name)] = after
        return after

    def subresource(self, method, res, name, sub, namespace=None, body=None):
        self.calls.append((method, name, sub))
        return {}


def the_vm(run="Always", strategy=None):
    spec = {"runStrategy": run, "template": {"spec": {"volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": "pa"}}]}}}
    if strategy:
        spec["updateVolumesStrategy"] = strategy
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "generation": 3, "uid": "vm-uid"}, "spec": spec}


def plan(mode, binding=None):
    return {"namespace": "ns", "vms": ["vm1"], "targetStorageClass": "fast",
            "moves": [{"vm": "vm1", "namespace": "ns", "volume": "data", "kind": "pvc", "sourcePVC": "pa",
                       "targetPVC": "pa-fast", "sourceSC": "standard", "targetSC": "fast", "mode": mode,
                       "size": "1Gi", "sizeBytes": 2 ** 30, "accessModes": ["ReadWriteOnce"],
                       "volumeMode": "Filesystem", "targetBindingMode": binding, "dataVolumeTemplateIndex": None}]}


def dv(phase, **status):
    return {"kind": "DataVolume", "metadata": {"name": "pa-fast", "namespace": "ns", "labels": B.labels("m")},
            "status": dict(status, phase=phase)}


def drive(kube, rec, n=8, **opts):
    lines = []
    d = Driver(kube, rec, dict({"max_failures": 3}, **opts), lines.append)
    for _ in range(n):
        d.advance()
        if rec["result"] != "Running":
            break
    return lines


def test_finding4_offline_clone_to_wffc_class_asks_immediate_binding_and_waits_for_succeeded():
    rec = B.new_record(plan("offline", "WaitForFirstConsumer"), {"vm1": the_vm("Halted")}, "m", "t")
    body = rec["vms"]["vm1"]["dataVolumes"][0]
    assert body["metadata"]["annotations"][IMMEDIATE_BINDING] == "true"
    assert IMMEDIATE_BINDING not in B.new_record(plan("offline", "Immediate"), {"vm1": the_vm("Halted")}, "m", "t")[
        "vms"]["vm1"]["dataVolumes"][0]["metadata"]["annotations"]
    kube = Kube(the_vm("Halted"))
    drive(kube, rec, n=2)
    for phase in ("PendingPopulation", "WaitForFirstConsumer", "CloneInProgress"):
        kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": phase}
        drive(kube, rec, n=2)
        assert rec["vms"]["vm1"]["phase"] == "WaitingForVolumes" and rec["result"] == "Running", phase
        assert not [c for c in kube.calls if c[0] == "patch"]
    kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": "Succeeded", "progress": "100.0%"}
    drive(kube, rec)
    assert rec["result"] == "Succeeded"
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["template"]["spec"]["volumes"][0] == {
        "name": "data", "persistentVolumeClaim": {"claimName": "pa-fast"}}
    assert "kubectl delete dv,pvc" in rec["vms"]["vm1"]["message"]


def test_finding4_status_never_calls_a_pending_clone_copied():
    rec = B.new_record(plan("offline", "WaitForFirstConsumer"), {"vm1": the_vm("Halted")}, "m", "t")
    rec["vms"]["vm1"]["phase"] = "WaitingForVolumes"
    cm = B.record_configmap(rec)
    [m] = KP.from_objects([dict(cm), the_vm("Halted"), dv("PendingPopulation")], namespace="ns")
    assert m["result"] == "Running" and m["disks"][0]["phase"] != "Succeeded" and m["disks"][0].get("progress") != 100


def test_finding5_live_destination_on_legacy_wffc_path_is_refused_before_the_swap():
    kube = Kube(the_vm(), {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"},
                           "status": {"phase": "Running"}})
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    drive(kube, rec, n=2)
    kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": "WaitForFirstConsumer"}
    drive(kube, rec)
    assert rec["result"] == "Failed" and "legacy" in rec["vms"]["vm1"]["message"]
    assert "blank image" in rec["vms"]["vm1"]["message"]
    assert not [c for c in kube.calls if c[0] == "patch"]


def test_finding5_live_pending_population_counts_only_on_the_populator_path():
    kube = Kube(the_vm(), {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"},
                           "status": {"phase": "Running"}})
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    drive(kube, rec, n=2)
    kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": "PendingPopulation"}
    kube.objs[("PersistentVolumeClaim", "pa-fast")] = {"kind": "PersistentVolumeClaim",
                                                       "metadata": {"name": "pa-fast"}, "spec": {}}
    drive(kube, rec, n=2)
    assert rec["vms"]["vm1"]["phase"] == "WaitingForVolumes"
    kube.objs[("PersistentVolumeClaim", "pa-fast")]["spec"]["dataSourceRef"] = {
        "apiGroup": "cdi.kubevirt.io", "kind": "VolumeImportSource", "name": "blank"}
    drive(kube, rec, n=2)
    assert rec["vms"]["vm1"]["phase"] == "Migrating"


def test_finding1_live_success_keeps_update_volumes_strategy():
    vmi = {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"}, "status": {"phase": "Running"},
           "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pa"}}]}}
    kube = Kube(the_vm(), vmi, dv("Succeeded"))
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    drive(kube, rec, n=3)
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["updateVolumesStrategy"] == "Migration"
    kube.objs[("VirtualMachineInstance", "vm1")]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "pa-fast"
    kube.objs[("VirtualMachineInstance", "vm1")]["status"]["migrationState"] = {
        "migrationUid": "new", "completed": True, "failed": False}
    drive(kube, rec)
    assert rec["result"] == "Succeeded"
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["updateVolumesStrategy"] == "Migration"
    assert not any(op.get("op") == "remove" for c in kube.calls if c[0] == "patch" for op in c[2])
    assert "Migration kept" in rec["vms"]["vm1"]["message"]


def test_finding6_manual_vm_is_started_through_the_start_subresource():
    running = {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"}, "status": {"phase": "Running"}}
    vm = the_vm("Manual")
    rec = B.new_record(plan("offline"), {"vm1": vm}, "m", "t", vmis={"vm1": running}, stop=True)
    kube = Kube(vm, running)
    drive(kube, rec, n=1)
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["runStrategy"] == "Halted"
    del kube.objs[("VirtualMachineInstance", "vm1")]
    kube.objs[("VirtualMachine", "vm1")]["status"] = {"printableStatus": "Stopped"}
    drive(kube, rec, n=2)
    kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": "Succeeded"}
    drive(kube, rec)
    assert rec["result"] == "Succeeded", rec["vms"]["vm1"]
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["runStrategy"] == "Manual"
    assert ("PUT", "vm1", "start") in kube.calls
    assert "started" in rec["vms"]["vm1"]["message"]


def test_finding14_dv_wait_shows_cdi_reasons_and_restarts():
    d = dv("CloneScheduled", progress="N/A", restartCount=3, conditions=[
        {"type": "Bound", "status": "False", "reason": "CloneSourceInUse", "message": "source PVC pa is in use"},
        {"type": "Running", "status": "False", "reason": "Pending"}])
    text = dv_wait_text("pa-fast", d)
    assert "CloneSourceInUse: source PVC pa is in use" in text and "3 restarts" in text and "N/A" not in text
    kube = Kube(the_vm("Halted"), d)
    rec = B.new_record(plan("offline"), {"vm1": the_vm("Halted")}, "m", "t")
    lines = drive(kube, rec, n=2)
    assert any("CloneSourceInUse" in ln and "3 restarts" in ln for ln in lines), lines


def _failed_vmim(uid, ts):
    return {"kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": f"kubevirt-workload-update-{uid}", "uid": uid, "creationTimestamp": ts},
            "spec": {"vmiName": "vm1"},
            "status": {"phase": "Failed", "migrationState": {"migrationUid": uid, "completed": True, "failed": True,
                                                              "failureReason": "target pod unschedulable"}}}


def test_finding11_giving_up_is_not_final():
    vmi = {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"}, "status": {
        "phase": "Running", "conditions": [{"type": "VolumesChange", "status": "True"}]},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pa-fast"}}]}}
    kube = Kube(the_vm(), vmi, dv("Succeeded"))
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    drive(kube, rec, n=3)
    for i in range(3):
        kube.create(R.VMIM, _failed_vmim(f"f{i}", f"2026-01-01T00:00:0{i}Z"))
    drive(kube, rec)
    assert rec["result"] == "Failed" and rec["vms"]["vm1"]["gaveUp"] and "keeps retrying" in rec["message"]
    # KubeVirt's next attempt succeeds after the plugin stopped following: status says so
    kube.objs[("VirtualMachineInstance", "vm1")]["status"] = {"phase": "Running", "migrationState": {
        "migrationUid": "ok", "completed": True, "failed": False}}
    cm = B.record_configmap(rec)
    [m] = KP.from_objects([cm] + list(kube.objs.values()), namespace="ns")
    assert m["result"] == "Succeeded"
    # and a re-run re-opens it and finishes it
    assert B.resume_given_up(rec) and rec["result"] == "Running"
    drive(kube, rec)
    assert rec["result"] == "Succeeded"


def test_finding13_cancel_after_kubevirt_finished_refuses_and_says_why():
    from kubectl_vmmig.engines.kubevirt.engine import KubevirtEngine

    vmi = {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"}, "status": {
        "phase": "Running", "migrationState": {"migrationUid": "ok", "completed": True, "failed": False}},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pa-fast"}}]}}
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    rec["vms"]["vm1"].update(phase="Migrating", patchedAt="t")
    cm = dict(B.record_configmap(rec), kind="ConfigMap")
    cm["metadata"]["resourceVersion"] = "1"
    swapped = the_vm(strategy="Migration")
    swapped["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "pa-fast"
    kube = Kube(swapped, vmi, cm)
    kube.items = lambda res, ns=None, **kw: [copy.deepcopy(o) for (k, _), o in kube.objs.items() if k == res.kind
                                             and (res.kind != "ConfigMap" or True)]
    with pytest.raises(errors.BadInput) as exc:
        KubevirtEngine(kube, {"echo": lambda m: None}).cancel("m", "ns")
    assert "already finished copying vm1" in exc.value.message and "copy back" in exc.value.message
    assert not [c for c in kube.calls if c[0] == "patch"]


# ---- issue 18: --detach ------------------------------------------------------------------------------------
def test_detached_offline_copy_of_a_stopped_vm_points_it_at_the_destinations_at_once():
    kube = Kube(the_vm("Halted"))
    rec = B.new_record(plan("offline"), {"vm1": the_vm("Halted")}, "m", "t")
    drive(kube, rec, n=1, detach=True)
    assert rec["vms"]["vm1"]["phase"] == "Cloning" and rec["vms"]["vm1"]["swapEarly"]
    assert kube.objs[("VirtualMachine", "vm1")]["spec"]["template"]["spec"]["volumes"][0] == {
        "name": "data", "persistentVolumeClaim": {"claimName": "pa-fast"}}
    assert B.plugin_steps_left(rec) == []
    assert "nothing is left for the plugin" in B.detached_summary(rec)[0]
    # status: Running while the clone runs, Succeeded once CDI is done - no plugin needed
    cm = B.record_configmap(rec)
    [m] = KP.from_objects([cm, kube.objs[("VirtualMachine", "vm1")], dv("CloneInProgress", progress="40.00%")],
                          namespace="ns")
    assert m["result"] == "Running"
    [m] = KP.from_objects([cm, kube.objs[("VirtualMachine", "vm1")], dv("Succeeded")], namespace="ns")
    assert m["result"] == "Succeeded"
    # a resume / re-run records it
    kube.objs[("DataVolume", "pa-fast")]["status"] = {"phase": "Succeeded"}
    drive(kube, rec)
    assert rec["result"] == "Succeeded" and "kubectl delete dv,pvc" in rec["vms"]["vm1"]["message"]


def test_detached_steps_that_need_the_plugin_are_named_and_status_says_run_resume():
    vmi = {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "ns"},
           "status": {"phase": "Running"}}
    kube = Kube(the_vm(), vmi)
    rec = B.new_record(plan("live"), {"vm1": the_vm()}, "m", "t")
    drive(kube, rec, n=1, detach=True)
    assert rec["vms"]["vm1"]["phase"] == "WaitingForVolumes"
    assert B.plugin_steps_left(rec) == ["vm1"]
    [line] = B.detached_summary(rec)
    assert "kubectl vm-storage resume m -n ns" in line and "WaitingForVolumes" in line
    rec["detached"] = True
    [m] = KP.from_objects([B.record_configmap(rec)] + list(kube.objs.values()), namespace="ns")
    assert m["result"] == "Running"
    assert all("waiting for the plugin to finish: run 'kubectl vm-storage resume m -n ns'" in d["message"]
               for d in m["disks"])
    # a VM stopped with --stop is never pointed at unfinished destinations early (the plugin restarts it)
    running = the_vm()
    rec2 = B.new_record(plan("offline"), {"vm1": running}, "m", "t", vmis={"vm1": vmi}, stop=True)
    assert not Driver(Kube(running, vmi), rec2, {"detach": True}, lambda m: None)._swap_early(rec2["vms"]["vm1"], False)
