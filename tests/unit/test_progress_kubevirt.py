"""engines/kubevirt/progress.py on the reference samples (fixtures/kubevirt/04-07, from shared/reference/kubevirt/samples)
and records in the format engines/kubevirt/build.py writes."""
import copy
import json
from pathlib import Path

import yaml

from kubectl_vmmig import progress as P
from kubectl_vmmig.engines.kubevirt import progress as KV

FIX = Path(__file__).parent / "fixtures" / "kubevirt"
NOW = "2026-08-20T10:13:20Z"


def load(prefix):
    [path] = FIX.glob(prefix + "-*.yaml")
    return yaml.safe_load(path.read_text())


def record(mode="live", result="Running", vm_result="Running", patched=True, phase="Migrating"):
    rec = {"name": "vm-dv-to-fast", "namespace": "vm-ns", "engine": "kubevirt", "targetStorageClass": "fast",
           "started": "2026-08-20T10:12:00Z", "completed": None, "phase": phase, "result": result, "message": "",
           "disks": [{"vm": "vm-dv", "volume": "datavolumedisk1", "sourcePVC": "src-dv", "targetPVC": "dst-dv",
                      "sourceStorageClass": "standard", "targetStorageClass": "fast", "mode": mode}],
           "vms": {"vm-dv": {"mode": mode, "phase": "Migrating", "result": vm_result, "message": "",
                             "originalClaims": {"datavolumedisk1": "src-dv"},
                             "targetClaims": {"datavolumedisk1": "dst-dv"}, "mapping": {"src-dv": "dst-dv"},
                             "templateStorageClasses": {}, "patch": [], "knownVMIMs": ["old-uid"],
                             "patchedAt": "2026-08-20T10:12:00Z" if patched else None, "vmim": None, "attempts": 0,
                             "migrationState": None}}}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vm-storage-vm-dv-to-fast", "namespace": "vm-ns",
                         "labels": {"app.kubernetes.io/managed-by": "kubectl-vm-storage",
                                    "vm-storage.kubevirt-tools.io/migration": "vm-dv-to-fast",
                                    "vm-storage.kubevirt-tools.io/engine": "kubevirt"}},
            "data": {"record": json.dumps(rec)}}


def running_vmim():
    m = load("06")
    m["status"]["phase"] = "Running"
    m["status"]["phaseTransitionTimestamps"] = m["status"]["phaseTransitionTimestamps"][:6]
    m["status"].pop("migrationState")
    return m


def succeeded_vmi():
    vmi = load("05")
    st = vmi["status"]
    st["conditions"] = [c for c in st["conditions"] if c["type"] != "VolumesChange"]
    st.pop("migratedVolumes")
    st["migrationState"].update(completed=True, failed=False, endTimestamp="2026-08-20T10:14:02Z",
                                targetNodeDomainReadyTimestamp="2026-08-20T10:14:01Z")
    return vmi


def one(objs, **kw):
    ms = KV.from_objects(objs, now=NOW, **kw)
    assert len(ms) == 1, ms
    return ms[0]


def test_live_running_mid_migration():
    m = one([record(), load("04"), load("05"), running_vmim()])
    assert (m["plan"], m["namespace"], m["engine"], m["type"], m["result"]) == \
        ("vm-dv-to-fast", "vm-ns", "kubevirt", "cutover", "Running")
    [d] = m["disks"]
    assert (d["vm"], d["volume"], d["sourcePVC"], d["targetPVC"]) == ("vm-dv", "datavolumedisk1", "src-dv", "dst-dv")
    assert (d["sourceStorageClass"], d["targetStorageClass"], d["mode"]) == ("standard", "fast", "live")
    assert d["phase"] == "Running" and d["attempt"] == 1
    assert d["elapsed"] == "1m0s"  # migrationState.startTimestamp 10:12:20 -> now 10:13:20
    assert d["progressPercent"] is None and d["transferRate"] is None  # no percentage in any KubeVirt CR
    assert "kubevirt.io/volume-update-migration=vm-dv" in d["_inspect"]


def test_live_success_judged_from_cluster_when_engine_detached():
    vm = load("04")
    m = one([record(), vm, succeeded_vmi(), load("06")])
    assert m["result"] == "Succeeded" and m["phase"] == "Succeeded"
    [d] = m["disks"]
    assert (d["phase"], d["progressPercent"], d["elapsed"]) == ("Succeeded", 100, "1m42s")


def test_vmim_succeeded_but_vmi_not_finalized_is_still_running():
    m = one([record(), load("04"), load("05"), load("06")])
    assert m["result"] == "Running" and m["disks"][0]["phase"] == "Finalizing"


def test_failed_attempt_is_retrying_not_failed():
    vmim = load("06")
    vmim["status"]["phase"] = "Failed"
    vmim["status"]["migrationState"].update(failed=True, failureReason="destination volume is smaller")
    m = one([record(), load("04"), load("05"), vmim])
    [d] = m["disks"]
    assert m["result"] == "Running" and d["phase"] == "Retrying" and "destination volume is smaller" in d["message"]


def test_manual_recovery_required_fails_with_recovery_text():
    m = one([record(), load("07")])
    assert m["result"] == "Failed"
    [d] = m["disks"]
    assert d["phase"] == "Failed" and "manual recovery" in d["message"] and "src-dv" in d["message"]
    assert m["_errors"]


def test_engine_verdict_is_trusted_when_vmims_are_gone():
    m = one([record(result="Succeeded", vm_result="Succeeded", phase="Completed"), load("04"), succeeded_vmi()])
    assert m["result"] == "Succeeded" and m["disks"][0]["phase"] == "Succeeded"


def test_canceled_record():
    m = one([record(result="Canceled", vm_result="Canceled", phase="Canceled"), load("04")])
    assert m["result"] == "Canceled" and m["disks"][0]["phase"] == "Canceled"


def test_old_vmims_from_before_the_patch_are_ignored():
    old = load("06")
    old["metadata"]["uid"] = "old-uid"
    m = one([record(), load("04"), load("05"), old])
    assert m["result"] == "Running" and m["disks"][0]["attempt"] is None


def test_offline_clone_progress_from_datavolume():
    dv = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
          "metadata": {"name": "dst-dv", "namespace": "vm-ns"},
          "status": {"phase": "CloneInProgress", "progress": "45.20%"}}
    m = one([record(mode="offline", patched=False, phase="WaitingForVolumes"), load("07"), dv])
    [d] = m["disks"]
    assert (d["mode"], d["phase"], d["progressPercent"]) == ("offline", "Running", 45.2)
    assert "CloneInProgress" in d["message"] and "datavolume dst-dv" in d["_inspect"]
    dv["status"] = {"phase": "Failed"}
    m = one([record(mode="offline", patched=False), load("07"), dv])
    assert m["disks"][0]["phase"] == "Failed" and m["result"] == "Running"


def test_contract_types_and_namespace_filter():
    objs = [record(), load("04"), load("05"), running_vmim()]
    doc = P.document(KV.from_objects(objs))
    [m] = doc["migrations"]
    assert list(m) == list(P.MIGRATION_KEYS) and list(m["disks"][0]) == list(P.DISK_KEYS)
    assert m["disks"][0]["elapsed"] is None  # without 'now' (a dump) a running migration has no elapsed
    assert KV.from_objects(objs, namespace="other") == []
    not_ours = copy.deepcopy(record())
    not_ours["metadata"]["labels"].pop("vm-storage.kubevirt-tools.io/engine")
    assert KV.from_objects([not_ours]) == []


class FakeKube:
    namespace = "vm-ns"

    def __init__(self, objs):
        self.objs, self.calls = objs, []

    def items(self, res, namespace=None, label_selector=None, all_namespaces=False, **kw):
        self.calls.append((res.kind, label_selector))
        return [copy.deepcopy(o) for o in self.objs if o["kind"] == res.kind]


def test_collect_requests_are_constant_and_selective():
    extra = [dict(load("04"), metadata={"name": f"vm{i}", "namespace": "vm-ns"}) for i in range(200)]
    k = FakeKube([record(), load("04"), load("05"), running_vmim()] + extra)
    [m] = KV.collect(k, "vm-ns")
    assert m["disks"][0]["phase"] == "Running"
    assert len(k.calls) == 5
    sel = dict(k.calls)
    assert sel["ConfigMap"] == "vm-storage.kubevirt-tools.io/engine=kubevirt"
    # finding 10: every VMIM of the namespace (unlabelled evacuation/drain migrations carry the update too)
    assert sel["VirtualMachineInstanceMigration"] is None
    empty = FakeKube([load("04")])
    assert KV.collect(empty, "vm-ns") == [] and len(empty.calls) == 1
