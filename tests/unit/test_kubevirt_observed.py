"""engines/kubevirt/observed.py: volume migrations nobody's record tells, from dumps shaped like the reference
samples (fixtures/kubevirt/04-07 = shared/reference/kubevirt/samples) - issue 14."""
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


def vmim(phase="Running", labelled=True, **state):
    m = load("06")
    m["status"]["phase"] = phase
    if not labelled:  # a drain / evacuation / virtctl migrate: no workload-updater label (finding 10)
        m["metadata"]["name"], m["metadata"]["labels"] = "evacuation-x1", {}
        m["metadata"].pop("annotations")
    if phase != "Succeeded":
        m["status"]["migrationState"] = dict(m["status"]["migrationState"], completed=phase == "Failed",
                                             failed=phase == "Failed", **state)
        if phase == "Failed" and "targetNodeDomainReadyTimestamp" not in state:
            m["status"]["migrationState"].pop("targetNodeDomainReadyTimestamp")
    return m


def finished_vmi():
    vmi = load("05")
    st = vmi["status"]
    st["conditions"] = [c for c in st["conditions"] if c["type"] != "VolumesChange"]
    st.pop("migratedVolumes")
    st["migrationState"].update(completed=True, failed=False, endTimestamp="2026-08-20T10:14:02Z")
    return vmi


def derived(objs, **kw):
    ms = KV.from_objects(objs, now=NOW, **kw)
    assert all(P.public([m])[0]["startedBy"] in P.STARTED_BY for m in ms)
    return ms


def test_hand_patched_vm_mid_copy_is_a_running_migration():
    [m] = derived([load("04"), load("05"), vmim()])
    assert (m["plan"], m["namespace"], m["engine"], m["result"], m["startedBy"]) == \
        ("vm-dv", "vm-ns", "kubevirt", "Running", "manual")
    [d] = m["disks"]
    assert (d["vm"], d["volume"], d["sourcePVC"], d["targetPVC"], d["mode"]) == \
        ("vm-dv", "datavolumedisk1", "src-dv", "dst-dv", "live")
    assert d["phase"] == "Running" and d["attempt"] == 1 and d["elapsed"] == "1m0s"  # since startTimestamp
    assert "startedBy" in P.document([m])["migrations"][0]


def test_success_through_an_unlabelled_vmim_is_succeeded():
    [m] = derived([load("04"), finished_vmi(), vmim("Succeeded", labelled=False)])
    assert m["result"] == "Succeeded" and m["completed"] == "2026-08-20T10:14:02Z"
    assert m["disks"][0]["phase"] == "Succeeded" and m["disks"][0]["progressPercent"] == 100


def test_manual_recovery_after_the_copy_completed_says_keep_the_destinations():
    vm = load("07")
    failed = vmim("Failed", targetNodeDomainReadyTimestamp="2026-08-20T10:14:01Z")
    vmi_gone = [vm, failed]  # the VMI was removed: no VMI in the dump
    [m] = derived(vmi_gone)
    assert m["result"] == "Failed"
    msg = m["disks"][0]["message"]
    assert "keep the destination volumes" in msg and "targetNodeDomainReadyTimestamp" in msg
    assert "kubectl vm-storage cancel" not in msg  # the plugin has no record to cancel; the patch is given
    assert "remove spec.updateVolumesStrategy" in msg


def test_manual_recovery_before_the_copy_completed_says_restore_the_sources():
    [m] = derived([load("07"), vmim("Failed")])
    msg = m["disks"][0]["message"]
    assert m["result"] == "Failed" and "restore the original volumes" in msg
    assert "kubectl patch vm vm-dv -n vm-ns --type=json" in msg
    patch = json.loads(msg.split("-p '")[1].split("'")[0])
    assert {"op": "replace", "path": "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName",
            "value": "src-dv"} in patch
    assert "kubectl vm-storage cancel" not in msg and "kubectl vm-storage cancel" not in " ".join(m["_errors"])


def test_refused_update_restart_required_is_failed_with_the_restore_patch():
    vm = load("04")
    vm["status"].pop("volumeUpdateState")
    vm["status"]["conditions"] = [c for c in vm["status"]["conditions"] if c["type"] != "VolumesChange"] + [
        {"type": "RestartRequired", "status": "True",
         "message": "cannot migrate the VM. The volume datavolumedisk2 is RWO and not included in the migration "
                    "volumes"}]
    vmi = load("05")  # KubeVirt did not accept: VMI on the source, nothing migrating
    vmi["spec"]["volumes"][0]["dataVolume"]["name"] = "src-dv"
    vmi["status"].pop("migratedVolumes")
    vmi["status"].pop("migrationState")
    vmi["status"]["conditions"] = [c for c in vmi["status"]["conditions"] if c["type"] != "VolumesChange"]
    [m] = derived([vm, vmi])
    d = m["disks"][0]
    assert m["result"] == "Failed" and d["sourcePVC"] == "src-dv" and d["targetPVC"] == "dst-dv"
    assert "WITHOUT copying data" in d["message"] and "kubectl patch vm vm-dv -n vm-ns --type=json" in d["message"]


def test_destination_smaller_than_source_warns_that_every_retry_fails():
    vm = load("04")
    mv = vm["status"]["volumeUpdateState"]["volumeMigrationState"]["migratedVolumes"][0]
    mv["destinationPVCInfo"]["capacity"] = {"storage": "1Gi"}
    [m] = derived([vm, load("05"), vmim("Failed")])
    d = m["disks"][0]
    assert m["result"] == "Running" and d["phase"] == "Retrying"
    assert "destination smaller than the source" in d["message"] and "every retry will fail" in d["message"]
    assert any("every retry will fail" in w for w in m["_warnings"])
    [ok] = derived([load("04"), load("05"), vmim("Failed")])  # 5Gi destination for a 2Gi source: no warning
    assert "smaller" not in ok["disks"][0]["message"]


def test_started_by_comes_from_the_destination_labels():
    def dv(labels):
        return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                "metadata": {"name": "dst-dv", "namespace": "vm-ns", "labels": labels}}

    base = [load("04"), load("05"), vmim()]
    mc = dv({"virtualmachinestoragemigration.kubevirt.io/virtualmachinestoragemigration-uid": "u1"})
    mtc_pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "dst-dv", "namespace": "vm-ns",
                            "labels": {"migration.openshift.io/migrated-by-migmigration": "u2"}},
               "spec": {"storageClassName": "fast"}}
    plugin = dv({"app.kubernetes.io/managed-by": "kubectl-vm-storage"})
    assert derived(base + [mc])[0]["startedBy"] == "migration-controller"
    [m] = derived(base + [mtc_pvc])
    assert m["startedBy"] == "MTC" and m["disks"][0]["targetStorageClass"] == "fast"
    assert derived(base + [plugin])[0]["startedBy"] == "plugin"  # a detached run whose record was deleted


def _record(result, targets):
    rec = {"name": "vm-dv-to-fast", "namespace": "vm-ns", "result": result, "phase": result, "disks": [],
           "vms": {"vm-dv": {"mode": "live", "result": result, "targetClaims": targets}}}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vm-storage-vm-dv-to-fast", "namespace": "vm-ns",
                         "labels": {"vm-storage.kubevirt-tools.io/engine": "kubevirt"}},
            "data": {"record": json.dumps(rec)}}


def test_no_duplicate_when_the_plugins_record_covers_the_vm():
    objs = [load("04"), load("05"), vmim()]
    assert [m["plan"] for m in derived(objs + [_record("Running", {"x": "y"})])] == ["vm-dv-to-fast"]
    done = [m["plan"] for m in derived(objs + [_record("Succeeded", {"datavolumedisk1": "dst-dv"})])]
    assert done == ["vm-dv-to-fast"]
    # an ended record of an earlier move to other claims does not hide today's update
    later = derived(objs + [_record("Succeeded", {"datavolumedisk1": "older-dv"})])
    assert sorted(m["plan"] for m in later) == ["vm-dv", "vm-dv-to-fast"]


def test_settled_or_unrelated_vms_are_not_migrations():
    restarted = finished_vmi()  # a new VMI on the destinations, nothing in flight, older VMIMs only
    restarted["metadata"]["creationTimestamp"] = "2026-08-21T08:00:00Z"
    restarted["status"].pop("migrationState")
    old = vmim("Succeeded")
    old["metadata"]["creationTimestamp"] = "2026-08-20T10:12:02Z"
    vm = load("04")  # KubeVirt mirrors the VMI's conditions: VolumesChange went with the finished update
    vm["status"]["conditions"] = [c for c in vm["status"]["conditions"] if c["type"] != "VolumesChange"]
    assert derived([vm, restarted, old]) == []
    [shown] = derived([vm, finished_vmi(), old])  # the same VMI that moved: its migrationState proves the copy
    assert shown["result"] == "Succeeded"
    replacement = load("04")
    replacement["spec"].pop("updateVolumesStrategy")
    assert derived([replacement, load("05"), vmim()]) == []
    assert derived([load("04"), load("05"), vmim()], namespace="other") == []


def test_derivation_does_not_change_the_objects():
    objs = [load("07"), vmim("Failed")]
    before = copy.deepcopy(objs)
    derived(objs)
    assert objs == before


def test_an_observed_update_another_engine_already_shows_is_not_listed_twice():
    [seen] = derived([load("04"), load("05"), vmim()])
    mtc = P.migration("vm-storage-vm-ns", "vm-ns", "mtc", "cutover", "DirectVolume", "Running",
                      disks=[P.disk_row(vm="vm-dv", volume="datavolumedisk1", source_pvc="src-dv",
                                        target_pvc="dst-dv", mode="live")])
    assert P.without_shadowed([mtc, seen]) == [mtc]
    other = dict(mtc, disks=[dict(mtc["disks"][0], targetPVC="elsewhere")])
    assert P.without_shadowed([other, seen]) == [other, seen]
    assert P.without_shadowed([seen]) == [seen]
