"""The sliding window wired into the kubevirt engine's Driver (--parallel / --max-per-node), in-memory."""
import copy

from kubectl_vmmig.engines.kubevirt import build as B
from kubectl_vmmig.engines.kubevirt import progress as KP
from kubectl_vmmig.engines.kubevirt.steps import Driver
from tests.unit.test_kubevirt_steps import Kube


def a_vm(i):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": f"vm{i}", "namespace": "ns", "generation": 3, "uid": f"uid{i}"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": f"p{i}"}}]}}}}


def fleet_plan(n):
    return {"namespace": "ns", "vms": [f"vm{i}" for i in range(n)], "targetStorageClass": "fast",
            "moves": [{"vm": f"vm{i}", "namespace": "ns", "volume": "data", "kind": "pvc", "sourcePVC": f"p{i}",
                       "targetPVC": f"p{i}-fast", "sourceSC": "standard", "targetSC": "fast", "mode": "offline",
                       "size": "1Gi", "sizeBytes": 2 ** 30, "accessModes": ["ReadWriteOnce"],
                       "volumeMode": "Filesystem", "targetBindingMode": "Immediate", "dataVolumeTemplateIndex": None}
                      for i in range(n)]}


def in_flight(rec):
    return sorted(v for v, r in rec["vms"].items() if r["phase"] not in ("Queued", "Pending", "Completed"))


def finish_copies(kube):
    """CDI: every destination DataVolume created so far completes (the stand-in's clone, instantly)."""
    for (kind, _), o in kube.objs.items():
        if kind == "DataVolume":
            o["status"] = {"phase": "Succeeded", "progress": "100.0%"}


def test_never_more_than_n_in_flight_and_the_next_starts_as_one_ends():
    n = 7
    kube = Kube(*[a_vm(i) for i in range(n)])
    rec = B.new_record(fleet_plan(n), {f"vm{i}": a_vm(i) for i in range(n)}, "m", "t")
    driver = Driver(kube, rec, {"parallel": 3, "max_per_node": 2}, lambda line: None)
    driver.advance()
    assert in_flight(rec) == ["vm0", "vm1", "vm2"]
    assert [r["phase"] for v, r in rec["vms"].items() if v not in in_flight(rec)] == ["Queued"] * 4
    assert sorted(k[1] for k in kube.objs if k[0] == "DataVolume") == ["p0-fast", "p1-fast", "p2-fast"]
    # one copy ends: exactly one more starts (a sliding window, not a wave)
    kube.objs[("DataVolume", "p1-fast")]["status"] = {"phase": "Succeeded", "progress": "100.0%"}
    driver.advance()
    driver.advance()
    assert rec["vms"]["vm1"]["phase"] == "Completed"
    assert in_flight(rec) == ["vm0", "vm2", "vm3"]
    peak = 3
    for _ in range(20):
        finish_copies(kube)
        driver.advance()
        peak = max(peak, len(in_flight(rec)))
        if rec["result"] != "Running":
            break
    assert rec["result"] == "Succeeded" and peak <= 3
    assert all(r["phase"] == "Completed" for r in rec["vms"].values())


def test_queued_shows_in_the_rows_and_a_rerun_does_not_redo_finished_vms():
    n = 4
    kube = Kube(*[a_vm(i) for i in range(n)])
    rec = B.new_record(fleet_plan(n), {f"vm{i}": a_vm(i) for i in range(n)}, "m", "t")
    Driver(kube, rec, {"parallel": 2}, lambda line: None).advance()
    [m] = KP.from_objects([dict(B.record_configmap(rec), kind="ConfigMap")] + list(kube.objs.values()),
                          namespace="ns")
    phases = {d["vm"]: d["phase"] for d in m["disks"]}
    assert phases["vm2"] == phases["vm3"] == "Queued" and "Queued" not in (phases["vm0"], phases["vm1"])
    finish_copies(kube)
    for _ in range(3):
        Driver(kube, rec, {"parallel": 2}, lambda line: None).advance()
    assert [rec["vms"][f"vm{i}"]["phase"] for i in range(2)] == ["Completed"] * 2
    # interrupted here; the re-run loads the saved record: finished VMs are skipped, no patch is sent again
    saved = B.record_from_configmap(copy.deepcopy(B.record_configmap(rec)))
    patched_before = [c for c in kube.calls if c[0] == "patch"]
    rerun = Driver(kube, saved, {"parallel": 2}, lambda line: None)
    for _ in range(6):
        finish_copies(kube)
        rerun.advance()
    assert saved["result"] == "Succeeded"
    patched = [c[1] for c in kube.calls if c[0] == "patch"][len(patched_before):]
    assert sorted(patched) == ["vm2", "vm3"]


def test_no_limits_given_means_no_queue():
    kube = Kube(*[a_vm(i) for i in range(3)])
    rec = B.new_record(fleet_plan(3), {f"vm{i}": a_vm(i) for i in range(3)}, "m", "t")
    Driver(kube, rec, {}, lambda line: None).advance()
    assert not [r for r in rec["vms"].values() if r["phase"] == "Queued"]


def test_a_waiting_pass_reads_one_list_per_kind_whatever_the_number_of_vms():
    """Issue 16: a pass GOT each VM, VMI and DataVolume and LISTed VMIMs once per VM (20 requests at 10 VMs,
    2 000 at 1 000); now one LIST per kind."""
    from bench.driver_requests import one_pass

    small, large = one_pass(10), one_pass(400)
    assert small == large
    assert all(verb == "list" and n == 1 for (verb, _), n in large.items())
    assert sum(large.values()) == 4
