"""The migration-controller engine's pure core: builders, checks, the one verdict (no cluster)."""
import json

import pytest

from kubectl_vmmig.engines.migration_controller import build as B
from kubectl_vmmig.engines.migration_controller import checks as C
from kubectl_vmmig.engines.migration_controller import progress as P

T0, T1 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:05Z"


def move(vm="vm1", volume="root", src="vm1-root", dst="vm1-root-fast", mode="live", tmpl=None):
    return {"vm": vm, "namespace": "ns1", "volume": volume, "kind": "pvc", "dataVolumeTemplateIndex": tmpl,
            "sourcePVC": src, "targetPVC": dst, "sourceSC": "standard", "targetSC": "fast", "mode": mode,
            "size": "1Gi", "sizeBytes": 1 << 30, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
            "targetAccessMode": None, "targetVolumeMode": "Filesystem"}


def plan(*moves):
    return {"namespace": "ns1", "vms": sorted({m["vm"] for m in moves}), "targetStorageClass": "fast",
            "requestedMode": "auto", "mode": "live", "moves": list(moves), "skipped": [], "findings": []}


def test_plan_names_every_destination_keeps_sources_and_records_what_was_planned():
    p = plan(move(), move(volume="data", src="vm1-data", dst="vm1-data-fast"))
    name = B.plan_name(p)
    assert name == B.plan_name(p) and name.startswith("vm1-to-fast-") and len(name) <= 63
    assert B.plan_name(plan(move(src="vm1-root-standard"))) != name  # a later move back and forth: a new plan
    sp = B.storage_plan(p, name)
    assert sp["spec"]["retentionPolicy"] == "keepSource"
    assert sp["spec"]["virtualMachines"] == [{"name": "vm1", "targetMigrationPVCs": [
        {"volumeName": "root", "destinationPVC": {"name": "vm1-root-fast", "storageClassName": "fast",
                                                  "volumeMode": "Filesystem"}},
        {"volumeName": "data", "destinationPVC": {"name": "vm1-data-fast", "storageClassName": "fast",
                                                  "volumeMode": "Filesystem"}}]}]
    assert sp["metadata"]["labels"]["vm-storage.kubevirt-tools.io/engine"] == "migration-controller"
    assert B.read_record(sp) == {"vm1": {"mode": "live", "volumes": {
        "root": ["vm1-root", "vm1-root-fast", "standard"], "data": ["vm1-data", "vm1-data-fast", "standard"]}}}
    mig = B.storage_migration(sp)
    assert mig["spec"] == {"virtualMachineStorageMigrationPlanRef": {"name": name}}


def test_destination_datavolumes_blank_live_clone_offline():
    live, off = B.destination_datavolumes(plan(move(), move(vm="vm2", src="vm2-root", dst="vm2-root-fast",
                                                             mode="offline")), "p", {})
    assert live["spec"]["source"] == {"blank": {}}
    assert off["spec"]["source"] == {"pvc": {"namespace": "ns1", "name": "vm2-root"}}
    assert off["metadata"]["labels"]["vm-storage.kubevirt-tools.io/engine"] == "migration-controller"


@pytest.mark.parametrize("status,conds,healthy", [
    ("Deployed", {"Available": "True", "Degraded": "False"}, True),
    ("Deployed", {"Available": "True", "Degraded": "True"}, False),
    ("Deploying", {"Available": "False"}, False),
])
def test_controller_runs_only_when_its_migcontroller_is_deployed_available_not_degraded(status, conds, healthy):
    mc = {"metadata": {"name": "m", "namespace": "x"}, "status": {"phase": status, "conditions": [
        {"type": t, "status": s} for t, s in conds.items()]}}
    assert (C.controller_state([mc]) is None) is healthy
    assert C.controller_state([]) is not None


def kv(version="v1.6.0", rollout="LiveUpdate", dev=True):
    conf = {"developerConfiguration": {}} if dev else {}
    if rollout:
        conf["vmRolloutStrategy"] = rollout
    return {"spec": {"configuration": conf}, "status": {"operatorVersion": version}}


@pytest.mark.parametrize("cr,ok", [(kv(), True), (kv(rollout=None), False), (kv(dev=False), False),
                                   (kv(version="v1.2.0"), False), (kv(version="v1.4.0"), False), (None, False)])
def test_the_controllers_own_kubevirt_rule_blocks_even_an_unset_rollout(cr, ok):
    f = C.controller_kubevirt_findings(cr)
    assert (f[0]["severity"] == "ok") is ok


def vmsm_plan(ready=("vm1",), conds=(), sources=None):
    st = {"suffix": "ab12", "conditions": [{"type": "Ready", "status": "True", "category": "Required"}] + list(conds),
          "readyMigrations": [{"name": v, "sourcePVCs": [{"volumeName": "root", "name": (sources or {}).get(
              v, f"{v}-root")}]} for v in ready]}
    return {"metadata": {"name": "p"}, "status": st}


def test_plan_findings_block_on_critical_conditions_and_unready_vms():
    assert [f["severity"] for f in C.plan_findings(vmsm_plan(), ["vm1"])] == ["ok"]
    warn = {"type": "FilesystemPVCsWithoutKubeVirtContentType", "status": "True", "category": "Warn",
            "message": "x"}
    assert [f["severity"] for f in C.plan_findings(vmsm_plan(conds=[warn]), ["vm1"])] == ["warning"]
    crit = {"type": "StorageMigrationNotPossible", "status": "True", "category": "Critical",
            "reason": "KubeVirtStorageLiveMigrationNotEnabled", "message": "not enabled"}
    out = C.plan_findings(vmsm_plan(ready=(), conds=[crit]), ["vm1"])
    assert {f["severity"] for f in out} == {"error"} and "KubeVirtStorageLiveMigrationNotEnabled" in out[0]["message"]
    assert any("vm2" in f["message"] for f in C.plan_findings(vmsm_plan(), ["vm1", "vm2"]) if f["severity"] == "error")


def test_lost_sources_names_the_vms_whose_plan_record_drifted():
    rec = {"vm1": {"volumes": {"root": ["vm1-root", "vm1-root-fast"]}}}
    assert C.lost_sources(vmsm_plan(), rec) == []
    assert C.lost_sources(vmsm_plan(sources={"vm1": "vm1-root-fast"}), rec) == ["vm1"]


# ---- the verdict --------------------------------------------------------------------------------------------
LIVE = {"mode": "live", "volumes": {"root": ["vm1-root", "vm1-root-fast"]}}
OFF = {"mode": "offline", "volumes": {"root": ["vm1-root", "vm1-root-fast"]}}


def vm(claim):
    vol = {"name": "root", "persistentVolumeClaim": {"claimName": claim}}
    return {"spec": {"template": {"spec": {"volumes": [vol]}}}}


def vmi(claim, volumes_change=False, migrated=False):
    st = {"phase": "Running"}
    if volumes_change:
        st["conditions"] = [{"type": "VolumesChange", "status": "True"}]
    if migrated:
        st["migratedVolumes"] = [{"volumeName": "root"}]
    return {"spec": {"volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": claim}}]}, "status": st}


def vmim(name, phase, created=T1, completed=None, failed=False, reason=None):
    ms = {} if completed is None else {"completed": completed, "failed": failed}
    if reason:
        ms["failureReason"] = reason
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"vmiName": "vm1"},
            "status": {"phase": phase, "migrationState": ms}}


def test_live_succeeded_only_when_the_vmim_succeeded_and_the_vmi_runs_on_the_targets():
    ok = vmim("m1", "Succeeded", completed=True)
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root-fast"), [ok], {}, T0, False)["result"] == \
        "Succeeded"
    # the controller's Completed is not enough: VMI still on the source / still migrating -> Running
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root"), [ok], {}, T0, False)["result"] == "Running"
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root-fast", volumes_change=True), [ok], {}, T0,
                     False)["result"] == "Running"
    # a VMIM from before this migration does not count
    old = vmim("m0", "Succeeded", created="2026-12-01T09:00:00Z", completed=True)
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root-fast"), [old], {}, T0, False)["result"] == \
        "Running"


def test_a_failed_vmim_is_failed_never_succeeded_even_while_kubevirt_queues_the_next_attempt():
    failed = vmim("m1", "Failed", completed=True, failed=True, reason="Live migration failed")
    queued = vmim("m2", "Pending", created="2026-12-01T10:00:09Z")
    v = P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root", migrated=True), [failed, queued], {}, T0, False)
    assert v["result"] == "Failed" and "Live migration failed" in v["message"] and "m1" in v["message"]
    # a migrationState that says completed but failed is no success either
    bad = vmim("m1", "Succeeded", completed=True, failed=True)
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root-fast"), [bad], {}, T0, False)["result"] != \
        "Succeeded"


def dv(phase, src="vm1-root"):
    return {"spec": {"source": {"pvc": {"namespace": "ns1", "name": src}}}, "status": {"phase": phase}}


@pytest.mark.parametrize("phase,result", [("Succeeded", "Succeeded"), ("WaitForFirstConsumer", "Running"),
                                          ("PendingPopulation", "Running"), ("CloneInProgress", "Running"),
                                          ("Failed", "Failed")])
def test_offline_done_only_when_the_clone_succeeded(phase, result):
    v = P.verdict(OFF, "vm1", vm("vm1-root-fast"), None, [], {"vm1-root-fast": dv(phase)}, T0, False)
    assert v["result"] == result


def test_offline_a_destination_that_is_no_clone_of_the_source_is_failed():
    blank = {"spec": {"source": {"blank": {}}}, "status": {"phase": "Succeeded"}}
    v = P.verdict(OFF, "vm1", vm("vm1-root-fast"), None, [], {"vm1-root-fast": blank}, T0, False)
    assert v["result"] == "Failed" and "not a clone" in v["message"]


def test_canceled_once_the_vm_names_its_sources_again():
    assert P.verdict(LIVE, "vm1", vm("vm1-root"), vmi("vm1-root"), [], {}, T0, True)["result"] == "Canceled"
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), vmi("vm1-root"), [], {}, T0, True)["phase"] == "Canceling"


def test_status_rows_carry_the_controllers_progress_and_the_engine_name():
    p = plan(move())
    sp = B.storage_plan(p, "p1")
    sp["metadata"]["creationTimestamp"] = T0
    sp["kind"] = "VirtualMachineStorageMigrationPlan"
    mig = {"kind": "VirtualMachineStorageMigration", "metadata": {"name": "p1", "namespace": "ns1",
                                                                   "creationTimestamp": T0},
           "spec": {"virtualMachineStorageMigrationPlanRef": {"name": "p1"}},
           "status": {"phase": "WaitForLiveMigrationToComplete", "runningMigrations": [{"name": "vm1",
                                                                                          "progress": "42.17"}]}}
    running = vmim("m1", "Running")
    running["kind"], running["metadata"]["namespace"] = "VirtualMachineInstanceMigration", "ns1"
    out = P.from_objects([sp, mig, running, dict(vm("vm1-root-fast"), kind="VirtualMachine",
                                                 metadata={"name": "vm1", "namespace": "ns1"})], "ns1")
    assert len(out) == 1
    m = out[0]
    assert (m["engine"], m["result"]) == ("migration-controller", "Running")
    assert m["phase"] == "WaitForLiveMigrationToComplete"
    assert m["disks"][0]["progressPercent"] == 42.2 and m["disks"][0]["sourceStorageClass"] == "standard"
    json.dumps(m)


def test_live_success_read_from_the_vmi_once_the_controller_deleted_the_succeeded_vmim():
    """task.go cleanupCompletedVMIMs deletes the Succeeded VMIM; the VMI's migrationState still tells."""
    done = vmi("vm1-root-fast")
    done["status"]["migrationState"] = {"completed": True, "failed": False, "startTimestamp": T1}
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), done, [], {}, T0, False)["result"] == "Succeeded"
    done["status"]["migrationState"]["startTimestamp"] = "2026-12-01T09:00:00Z"  # an older migration
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), done, [], {}, T0, False)["result"] == "Running"
    done["status"]["migrationState"] = {"completed": True, "failed": True, "startTimestamp": T1}
    assert P.verdict(LIVE, "vm1", vm("vm1-root-fast"), done, [], {}, T0, False)["result"] != "Succeeded"


def test_a_plan_someone_else_made_is_shown_from_the_controllers_status_lists():
    """The console or a script drives kubevirt-migration-controller directly: no plugin record on the plan. Its
    sources and (defaulted) destinations are read from the status lists the plan controller fills."""
    foreign = {"kind": "VirtualMachineStorageMigrationPlan", "apiVersion": B.API_VERSION,
               "metadata": {"name": "console-plan", "namespace": "ns1", "creationTimestamp": T0},
               "spec": {"virtualMachines": [{"name": "vm1", "targetMigrationPVCs": [
                   {"volumeName": "root", "destinationPVC": {"storageClassName": "fast"}}]}]},
               "status": {"suffix": "ab12", "completedMigrations": [{
                   "name": "vm1",
                   "sourcePVCs": [{"volumeName": "root", "name": "vm1-root", "namespace": "ns1",
                                   "sourcePVC": {"spec": {"storageClassName": "standard"}}}],
                   "targetMigrationPVCs": [{"volumeName": "root", "destinationPVC": {
                       "name": "vm1-root-mig-ab12", "storageClassName": "fast"}}]}]}}
    mig = {"kind": "VirtualMachineStorageMigration", "metadata": {"name": "console-mig", "namespace": "ns1",
                                                                   "creationTimestamp": T0},
           "spec": {"virtualMachineStorageMigrationPlanRef": {"name": "console-plan"}},
           "status": {"phase": "Completed", "completedMigrations": ["vm1"]}}
    done = dict(vmi("vm1-root-mig-ab12"), kind="VirtualMachineInstance", metadata={"name": "vm1", "namespace": "ns1"})
    done["status"]["migrationState"] = {"completed": True, "failed": False, "startTimestamp": T1}
    objs = [foreign, mig, done, dict(vm("vm1-root-mig-ab12"), kind="VirtualMachine",
                                     metadata={"name": "vm1", "namespace": "ns1"})]
    [m] = P.from_objects(objs, "ns1")
    assert (m["plan"], m["startedBy"], m["result"]) == ("console-plan", "migration-controller", "Succeeded")
    [d] = m["disks"]
    assert (d["sourcePVC"], d["targetPVC"], d["sourceStorageClass"], d["mode"]) == (
        "vm1-root", "vm1-root-mig-ab12", "standard", "live")
    # the same plan before the controller filled its lists: nothing to show rows from, never a false success
    bare = dict(foreign, status={})
    [m] = P.from_objects([bare, mig] + objs[2:], "ns1")
    assert m["result"] != "Succeeded" and m["startedBy"] == "migration-controller"
