"""The kubevirt engine where the audit of issue 11 found it breaking on a real cluster: through the real kubectl,
against the real API server, with the KubeVirt/CDI stand-ins (tests/sim) playing the controllers."""
import json
import subprocess
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim.kubevirt import install_kubevirt

from .test_kubevirt_engine import ENGINE, claims, kv, record, two_disk_vm, wait_for  # noqa: F401

pytestmark = pytest.mark.cluster

CSIDRIVER = R.Resource("storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced=False)


def conds(obj):
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def vmi_claims(kube, ns, name):
    vmi = kube.get(R.VMI, name, ns)
    return claims({"spec": {"template": {"spec": vmi["spec"]}}})


def storage_class(kube, name, provisioner, wffc=True, csi=True):
    """A StorageClass (WaitForFirstConsumer by default) and, when ``csi``, the CSIDriver of its provisioner
    (CDI uses populators only for CSI classes: controller-base.go shouldUseCDIPopulator)."""
    kube.create(R.STORAGECLASS, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                                 "provisioner": provisioner, "reclaimPolicy": "Delete",
                                 "volumeBindingMode": "WaitForFirstConsumer" if wffc else "Immediate"})
    if csi and kube.get_or_none(CSIDRIVER, provisioner) is None:
        kube.create(CSIDRIVER, {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                                "metadata": {"name": provisioner}, "spec": {"attachRequired": False}})


def test_day_in_the_life_live_twice_then_restart_runs_on_the_newest_claims(kv, kubectl, namespace):
    """Findings 1/2: the strategy stays on the running VM, KubeVirt raises no RestartRequired, so a second live
    move of the same VM works; after stop/start the VM runs on the newest claims."""
    ns = namespace
    two_disk_vm(kv, ns, "day")
    first = kubectl("vm-storage", "migrate", "day", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    vm = kv.get(R.VM, "day", ns)
    assert vm["spec"].get("updateVolumesStrategy") == "Migration"
    assert claims(vm) == {"rootdisk": "day-rootdisk-fast", "data": "day-data-fast"} == vmi_claims(kv, ns, "day")
    time.sleep(3)  # give the stand-in's VM controller a few syncs to (wrongly) raise RestartRequired
    assert conds(kv.get(R.VM, "day", ns)).get("RestartRequired", {}).get("status") != "True"
    st = json.loads(kubectl("vm-storage", "status", "day-to-fast", "-n", ns, "-o", "json").stdout)
    assert st["migrations"][0]["result"] == "Succeeded"

    second = kubectl("vm-storage", "migrate", "day", "--to", "slow", "-n", ns, *ENGINE, "--mode", "live", "--wait",
                     timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    newest = {"rootdisk": "day-rootdisk-fast-slow", "data": "day-data-fast-slow"}
    assert claims(kv.get(R.VM, "day", ns)) == newest == vmi_claims(kv, ns, "day")
    assert record(kv, ns, "day-to-slow")["vms"]["day"]["mode"] == "live"
    assert conds(kv.get(R.VM, "day", ns)).get("RestartRequired", {}).get("status") != "True"

    kv.patch(R.VM, "day", {"spec": {"runStrategy": "Halted"}}, ns)
    wait_for(lambda: kv.get_or_none(R.VMI, "day", ns) is None, 60, "VM stopped")
    kv.patch(R.VM, "day", {"spec": {"runStrategy": "Always"}}, ns)
    try:
        wait_for(lambda: ((kv.get_or_none(R.VMI, "day", ns) or {}).get("status") or {}).get("phase") == "Running",
                 120, "VM running again")
    except AssertionError as exc:  # say what KubeVirt waits for (it starts no VM before its DataVolumes are ready)
        dvs = {d["metadata"]["name"]: (d.get("status") or {}).get("phase") for d in kv.items(R.DATAVOLUME, ns)}
        vm = kv.get(R.VM, "day", ns)
        raise AssertionError(f"{exc}; DataVolumes {dvs}; VM spec.runStrategy {vm['spec'].get('runStrategy')}, "
                             f"status {vm.get('status')}") from None
    assert vmi_claims(kv, ns, "day") == newest
    # the sources of both moves are kept
    for claim in ("day-data", "day-data-fast"):
        assert kv.get_or_none(R.PVC, claim, ns) is not None


def test_finding3_unset_rollout_strategy_on_v1_6_migrates_live(kv, kubectl, namespace):
    """KubeVirt >= 1.6 reads an unset vmRolloutStrategy as LiveUpdate (virt-config.go): --mode live works."""
    ns = namespace
    install_kubevirt(kv, version="v1.6.0", rollout=None)
    two_disk_vm(kv, ns, "norollout")
    run = kubectl("vm-storage", "migrate", "norollout", "--to", "fast", "-n", ns, *ENGINE, "--mode", "live",
                  "--wait", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert record(kv, ns, "norollout-to-fast")["vms"]["norollout"]["mode"] == "live"
    assert not record(kv, ns, "norollout-to-fast")["vms"]["norollout"]["stoppedByPlugin"]


def test_finding4_offline_to_a_wffc_class_is_never_succeeded_before_the_clone(kv, kubectl, namespace, cp):
    """A clone onto a WaitForFirstConsumer class has no consumer while the VM is stopped: the plugin asks CDI for
    immediate binding and reports Succeeded (and the source-deletion command) only once the clone Succeeded."""
    ns = namespace
    sc = f"wffc-{ns}"
    storage_class(kv, sc, "wffc.csi.example.com")
    F.apply(kv, ns, *F.make_vm_bundle("cold", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()], running=False))
    wait_for(lambda: (kv.get(R.PVC, "cold-data", ns).get("status") or {}).get("phase") == "Bound", 60, "PVC")
    proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "migrate", "cold", "--to", sc, "-n", ns, *ENGINE,
                             "--wait", "-o", "json"], env=dict(cp.env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    dv_name = f"cold-data-{sc}"[:63]
    seen = []
    try:
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline:
            st = kubectl("vm-storage", "status", "-n", ns, "-o", "json")
            dv = kv.get_or_none(R.DATAVOLUME, dv_name, ns)
            phase = ((dv or {}).get("status") or {}).get("phase")
            migs = json.loads(st.stdout or "{}").get("migrations") or []
            for m in migs:
                seen.append((m["result"], [d["phase"] for d in m["disks"]], phase))
                if m["result"] == "Succeeded" or any(d["phase"] == "Succeeded" for d in m["disks"]):
                    assert phase == "Succeeded", (m, dv)
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    dv = kv.get(R.DATAVOLUME, dv_name, ns)
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"] == "true"
    assert dv["status"]["phase"] == "Succeeded"
    assert claims(kv.get(R.VM, "cold", ns)) == {"data": dv_name}
    assert "kubectl delete dv,pvc" in err
    assert seen, "status was never read while the migration ran"


def test_finding5_live_to_a_non_csi_wffc_class_is_refused_naming_why(kv, kubectl, namespace):
    """A blank destination on CDI's legacy WFFC path would get a blank image written over the copy once
    KubeVirt's target pod binds it (kubevirt/kubevirt#13696): refused before any write."""
    ns = namespace
    sc = f"local-{ns}"
    storage_class(kv, sc, "rancher.io/local-path", csi=False)
    two_disk_vm(kv, ns, "loc")
    before = kv.get(R.VM, "loc", ns)
    run = kubectl("vm-storage", "migrate", "loc", "--to", sc, "-n", ns, *ENGINE, "--mode", "live", "--wait")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "not a CSI driver" in run.stderr and "blank image" in run.stderr and "--mode offline" in run.stderr
    assert kv.get(R.VM, "loc", ns)["spec"] == before["spec"]
    assert kv.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage") == []
    assert kv.get_or_none(R.CONFIGMAP, f"vm-storage-loc-to-{sc}", ns) is None


def test_finding6_stop_on_a_manual_vm_restarts_it_through_the_start_subresource(kv, kubectl, namespace):
    """runStrategy Manual: restoring Manual starts nothing (vm.go syncRunStrategy); the plugin asks virt-api's
    start subresource, and the VM runs again on the destination claims."""
    ns = namespace
    F.apply(kv, ns, *F.make_vm_bundle("man", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                                      run_strategy="Manual"))
    kv.subresource("PUT", R.VM, "man", "start", ns, body={})
    wait_for(lambda: ((kv.get_or_none(R.VMI, "man", ns) or {}).get("status") or {}).get("phase") == "Running",
             60, "Manual VM started")
    run = kubectl("vm-storage", "migrate", "man", "--to", "fast", "-n", ns, *ENGINE, "--mode", "offline", "--stop", "--yes",
                  "--wait", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "start subresource" in run.stderr
    vm = kv.get(R.VM, "man", ns)
    assert vm["spec"]["runStrategy"] == "Manual" and claims(vm) == {"data": "man-data-fast"}
    wait_for(lambda: ((kv.get_or_none(R.VMI, "man", ns) or {}).get("status") or {}).get("phase") == "Running",
             60, "Manual VM running again")
    assert vmi_claims(kv, ns, "man") == {"data": "man-data-fast"}
