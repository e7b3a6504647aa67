"""The kubevirt engine end to end: the real kubectl running the plugin against the real API server, with the
KubeVirt and CDI stand-ins playing the controllers (tests/sim)."""
import json
import subprocess

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim.common import set_faults
from tests.e2e.reliability_kit import wait_for

pytestmark = pytest.mark.cluster

ENGINE = ("--engine", "kubevirt")


@pytest.fixture
def kv(cp, sims):
    """KubeVirt v1.6 configured for volume migration (samples/08) + CDI; the stand-ins run in the background."""
    F.install_kubevirt(cp.admin)
    F.install_cdi(cp.admin)
    # The API server's TaintNodesByCondition admission taints new nodes not-ready; with no node lifecycle
    # controller in the test cluster nobody lifts it, and the preflight rightly counts such nodes unschedulable.
    for node in cp.admin.items(R.NODE):
        if node["spec"].get("taints"):
            cp.admin.patch(R.NODE, node["metadata"]["name"], {"spec": {"taints": None}})
    return cp.admin



def running_vm(kube, ns, name, disks):
    F.apply(kube, ns, *F.make_vm_bundle(name, disks))

    def up():
        vmi = kube.get_or_none(R.VMI, name, ns)
        return vmi if vmi and (vmi.get("status") or {}).get("phase") == "Running" else None

    return wait_for(up, 60, f"VMI {name} Running")


def claims(vm):
    out = {}
    for v in vm["spec"]["template"]["spec"]["volumes"]:
        c = (v.get("dataVolume") or {}).get("name") or (v.get("persistentVolumeClaim") or {}).get("claimName")
        if c:
            out[v["name"]] = c
    return out


def record(kube, ns, name):
    cm = kube.get(R.CONFIGMAP, f"vm-storage-{name}", ns)
    return json.loads(cm["data"]["record"])


def two_disk_vm(kube, ns, name="vm1"):
    return running_vm(kube, ns, name, [F.dv_disk("rootdisk", size="1Gi"),
                                       F.pvc_disk("data", size="2Gi"), F.cloudinit_disk()])


def test_live_two_disks_dry_run_patch_is_the_applied_one(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns)
    before = kv.get(R.VM, "vm1", ns)
    dry = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--dry-run=client", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    swap = [p for p in preview["patches"] if p.get("step") == "swap-volumes"]
    assert len(swap) == 1 and swap[0]["name"] == "vm1"
    assert {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"} in swap[0]["patch"]
    assert [o["kind"] for o in preview["objects"]].count("DataVolume") == 2
    assert not [c for c in preview["checks"] if c["severity"] == "error"], preview["checks"]
    assert kv.items(R.DATAVOLUME, ns, label_selector="vm-storage.kubevirt-tools.io/engine=kubevirt") == []

    run = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr

    vm = kv.get(R.VM, "vm1", ns)
    assert claims(vm) == {"rootdisk": "vm1-rootdisk-fast", "data": "vm1-data-fast"}
    assert vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "vm1-rootdisk-fast"
    assert vm["spec"]["dataVolumeTemplates"][0]["spec"]["storage"]["storageClassName"] == "fast"
    # finding 1: the strategy stays on the running VM (removing it raises RestartRequired, vm.go)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"
    vmi = kv.get(R.VMI, "vm1", ns)
    assert claims({"spec": {"template": {"spec": vmi["spec"]}}}) == claims(vm)
    # sources are never deleted
    assert kv.get_or_none(R.PVC, "vm1-data", ns) and kv.get_or_none(R.DATAVOLUME, "vm1-rootdisk", ns)
    for name in ("vm1-rootdisk-fast", "vm1-data-fast"):
        assert kv.get(R.DATAVOLUME, name, ns)["spec"]["storage"]["storageClassName"] == "fast"
    # the patch and objects the run applied are exactly the previewed ones
    rec = record(kv, ns, "vm1-to-fast")
    assert rec["vms"]["vm1"]["patch"] == swap[0]["patch"]
    assert rec["vms"]["vm1"]["dataVolumes"] == [o for o in preview["objects"] if o["kind"] == "DataVolume"]
    assert rec["result"] == "Succeeded"
    assert before["metadata"]["generation"] + 1 == vm["metadata"]["generation"]  # the swap only

    st = kubectl("vm-storage", "status", "vm1-to-fast", "-n", ns, "-o", "json")
    assert st.returncode == 0, st.stderr
    mig = json.loads(st.stdout)["migrations"]
    assert len(mig) == 1 and mig[0]["engine"] == "kubevirt" and mig[0]["result"] == "Succeeded"
    assert sorted(d["targetPVC"] for d in mig[0]["disks"]) == ["vm1-data-fast", "vm1-rootdisk-fast"]
    assert all(d["mode"] == "live" and d["phase"] == "Succeeded" for d in mig[0]["disks"])
    assert "kubectl delete dv,pvc" in run.stderr  # how to remove the sources


def test_offline_with_stop_clones_swaps_and_restarts(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "vm2")
    run = kubectl("vm-storage", "migrate", "vm2", "--to", "fast", "-n", ns, *ENGINE, "--mode", "offline", "--stop",
                  "--yes", "--wait", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    vm = kv.get(R.VM, "vm2", ns)
    assert claims(vm) == {"rootdisk": "vm2-rootdisk-fast", "data": "vm2-data-fast"}
    assert vm["spec"]["runStrategy"] == "Always" and "updateVolumesStrategy" not in vm["spec"]
    for name, src in (("vm2-rootdisk-fast", "vm2-rootdisk"), ("vm2-data-fast", "vm2-data")):
        dv = kv.get(R.DATAVOLUME, name, ns)
        assert dv["spec"]["source"] == {"pvc": {"namespace": ns, "name": src}}
        assert dv["status"]["phase"] == "Succeeded"
    wait_for(lambda: (kv.get_or_none(R.VMI, "vm2", ns) or {}).get("status", {}).get("phase") == "Running",
             60, "VM restarted")
    rec = record(kv, ns, "vm2-to-fast")
    assert rec["result"] == "Succeeded" and rec["vms"]["vm2"]["stoppedByPlugin"]


def test_offline_running_vm_without_stop_is_refused_and_server_dry_run_writes_nothing(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "vm3")
    before = kv.get(R.VM, "vm3", ns)
    dry = kubectl("vm-storage", "migrate", "vm3", "--to", "fast", "-n", ns, *ENGINE, "--dry-run=server")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "server dry run" in dry.stderr
    assert kv.get(R.VM, "vm3", ns)["spec"] == before["spec"]
    assert kv.get_or_none(R.CONFIGMAP, "vm-storage-vm3-to-fast", ns) is None
    run = kubectl("vm-storage", "migrate", "vm3", "--to", "fast", "-n", ns, *ENGINE, "--mode", "offline", "--wait")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "--stop" in run.stderr
    assert kv.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage") == []


def test_shareable_disk_refused_for_live_with_why_and_what_to_do(kv, kubectl, namespace):
    ns = namespace
    running_vm(kv, ns, "vm4", [F.pvc_disk("shared", size="1Gi", access_modes=("ReadWriteMany",), shareable=True)])
    run = kubectl("vm-storage", "migrate", "vm4", "--to", "fast", "-n", ns, *ENGINE, "--mode", "live", "--wait")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "shareable" in run.stderr and "cannot copy it consistently" in run.stderr
    assert "--mode offline --stop" in run.stderr
    assert claims(kv.get(R.VM, "vm4", ns)) == {"shared": "vm4-shared"}
    assert kv.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage") == []
    assert kv.get_or_none(R.CONFIGMAP, "vm-storage-vm4-to-fast", ns) is None


def test_failure_with_retries_then_cancel_restores_the_vm(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "vm5")
    before = kv.get(R.VM, "vm5", ns)
    set_faults(kv, ns, liveMigrationFail=True)
    run = kubectl("vm-storage", "migrate", "vm5", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "failed attempts" in run.stderr and "cancel vm5-to-fast" in run.stderr
    vmims = kv.items(R.VMIM, ns, label_selector="kubevirt.io/volume-update-migration=vm5")
    assert len([m for m in vmims if (m.get("status") or {}).get("phase") == "Failed"]) >= 3
    st = kubectl("vm-storage", "status", "vm5-to-fast", "-n", ns, "-o", "json")
    mig = json.loads(st.stdout)["migrations"][0]
    assert mig["result"] == "Failed" and all(d["attempt"] >= 3 for d in mig["disks"]), mig
    assert all("failed" in d["message"] for d in mig["disks"]), mig

    cancel = kubectl("vm-storage", "cancel", "vm5-to-fast", "-n", ns, timeout=300)   # engine found by record
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    vm = kv.get(R.VM, "vm5", ns)
    assert claims(vm) == {"rootdisk": "vm5-rootdisk", "data": "vm5-data"}
    # claims and templates (name + class) restored; the strategy stays on the running VM (finding 1)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"
    assert {k: v for k, v in vm["spec"].items() if k != "updateVolumesStrategy"} == before["spec"]
    vmi = kv.get(R.VMI, "vm5", ns)
    assert claims({"spec": {"template": {"spec": vmi["spec"]}}}) == {"rootdisk": "vm5-rootdisk", "data": "vm5-data"}
    assert not (vmi["status"].get("migratedVolumes"))
    assert record(kv, ns, "vm5-to-fast")["result"] == "Canceled"
    assert "kubectl delete dv" in cancel.stderr + cancel.stdout     # destinations kept, told how to remove
    assert kv.get_or_none(R.DATAVOLUME, "vm5-data-fast", ns) is not None
    st = kubectl("vm-storage", "status", "vm5-to-fast", "-n", ns, "-o", "json")
    assert json.loads(st.stdout)["migrations"][0]["result"] == "Canceled"


def test_manual_recovery_required_is_detected_and_cancel_recovers(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "vm6")
    set_faults(kv, ns, liveMigrationFail=True)
    run = kubectl("vm-storage", "migrate", "vm6", "--to", "fast", "-n", ns, *ENGINE, "--detach", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    wait_for(lambda: kv.items(R.VMIM, ns, label_selector="kubevirt.io/volume-update-migration=vm6"), 60, "a VMIM")
    # the VM is stopped while the volume migration is pending -> ManualRecoveryRequired (BEHAVIOR §10)
    kv.patch(R.VM, "vm6", {"spec": {"runStrategy": "Halted"}}, ns)

    def mrr():
        vm = kv.get(R.VM, "vm6", ns)
        return any(c["type"] == "ManualRecoveryRequired" and c["status"] == "True"
                   for c in (vm.get("status") or {}).get("conditions") or [])

    wait_for(mrr, 60, "ManualRecoveryRequired")
    st = kubectl("vm-storage", "status", "vm6-to-fast", "-n", ns, "-o", "json")
    mig = json.loads(st.stdout)["migrations"][0]
    assert mig["result"] == "Failed"
    assert any("manual recovery" in d["message"] and "restore the original volumes" in d["message"]
               for d in mig["disks"]), mig
    cancel = kubectl("vm-storage", "cancel", "vm6-to-fast", "-n", ns, *ENGINE, timeout=300)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    vm = kv.get(R.VM, "vm6", ns)
    assert claims(vm) == {"rootdisk": "vm6-rootdisk", "data": "vm6-data"}
    assert "updateVolumesStrategy" not in vm["spec"]
    wait_for(lambda: not mrr(), 30, "ManualRecoveryRequired cleared")


def test_concurrent_edit_makes_the_patch_fail_and_nothing_is_overwritten(cp, kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "vm7")
    set_faults(kv, ns, stall=True)      # CDI holds the destination DVs, so the plugin waits before patching
    env = dict(cp.env)
    proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "migrate", "vm7", "--to", "fast", "-n", ns, *ENGINE,
                             "--wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: kv.get_or_none(R.DATAVOLUME, "vm7-data-fast", ns), 60, "destination DV")
        # someone edits the VM between the plugin's read and its patch
        kv.patch(R.VM, "vm7", {"spec": {"template": {"metadata": {"labels": {"edited": "yes"}}}}}, ns)
        set_faults(kv, ns, stall=False)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 6, out + err
    assert "changed after it was read" in err and "nothing was" in err and "overwritten" in err
    vm = kv.get(R.VM, "vm7", ns)
    assert vm["spec"]["template"]["metadata"]["labels"]["edited"] == "yes"
    assert claims(vm) == {"rootdisk": "vm7-rootdisk", "data": "vm7-data"}
    assert "updateVolumesStrategy" not in vm["spec"]
    assert record(kv, ns, "vm7-to-fast")["vms"]["vm7"]["result"] == "Failed"
