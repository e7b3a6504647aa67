"""The CDI stand-in against the real API server: DataVolume phases, PVC/PV binding, StorageProfiles."""
import re
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim.cdi import CSIDRIVER, OVERWRITE_ANNOTATION
from tests.sim.kvtest_helpers import TIMEOUT, condition, get, running_vm, wait_obj

PROGRESS = re.compile(r"^\d{1,3}\.\d{2}%$")


@pytest.fixture
def cdi(cp, sims):
    F.install_kubevirt(cp.admin)
    F.install_cdi(cp.admin)
    before = {c.name: list(c.errors) for c in sims.controllers}
    yield cp.admin
    new = [f"{c.name}: {e}" for c in sims.controllers if c.name in ("kubevirt", "cdi")
           for e in c.errors if e not in before.get(c.name, [])]
    assert not new, f"stand-in errors during the test: {new}"


def _watch_dv(kube, ns, name, until="Succeeded", timeout=TIMEOUT):
    """Poll the DV, returning (phases in order of appearance, progress values seen, final object)."""
    phases, progress, deadline = [], [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        dv = get(kube, R.DATAVOLUME, name, ns)
        st = (dv or {}).get("status") or {}
        if st.get("phase") and (not phases or phases[-1] != st["phase"]):
            phases.append(st["phase"])
        if st.get("progress") and st["progress"] not in progress:
            progress.append(st["progress"])
        if st.get("phase") == until:
            return phases, progress, dv
        time.sleep(0.02)
    raise AssertionError(f"DV {name} did not reach {until}: phases {phases}")


@pytest.mark.cluster
def test_blank_datavolume_imports_and_binds(cdi, namespace):
    F.apply(cdi, namespace, F.make_blank_dv("dst-dv", size="1Gi", storage_class="fast"))
    phases, progress, dv = _watch_dv(cdi, namespace, "dst-dv")
    assert phases[0] == "Pending" and phases[-1] == "Succeeded"
    assert "ImportScheduled" in phases and "ImportInProgress" in phases
    assert phases.index("ImportScheduled") < phases.index("ImportInProgress")
    assert dv["status"]["progress"] == "100.0%"
    assert any(PROGRESS.match(p) and p != "100.0%" for p in progress), progress
    st = dv["status"]
    assert st["claimName"] == "dst-dv"
    assert (condition(dv, "Bound")["status"], condition(dv, "Bound")["message"]) == ("True", "PVC dst-dv Bound")
    assert condition(dv, "Ready")["status"] == "True"
    assert (condition(dv, "Running")["status"], condition(dv, "Running")["reason"]) == ("False", "Completed")
    pvc = cdi.get(R.PVC, "dst-dv", namespace)
    assert pvc["metadata"]["ownerReferences"][0]["kind"] == "DataVolume"
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == dv["metadata"]["uid"]
    an = pvc["metadata"]["annotations"]
    assert an["cdi.kubevirt.io/storage.contentType"] == "kubevirt"
    assert an["cdi.kubevirt.io/storage.usePopulator"] == "true"
    assert pvc["spec"]["dataSourceRef"]["kind"] == "VolumeImportSource"
    # spec.storage + Filesystem: GetRequiredSpace = RoundUp(1Gi, 1MiB) x 1.06 bytes (the PV rounds up to MiB here)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1138166334"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["status"]["phase"] == "Bound" and pvc["status"]["capacity"]["storage"] == "1086Mi"
    pv = cdi.get(R.PV, pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"] and pv["status"]["phase"] == "Bound"


@pytest.mark.cluster
def test_storage_profile_fills_access_and_volume_mode(cdi, namespace):
    for sc in ("standard", "fast", "slow"):
        prof = cdi.get(R.STORAGEPROFILE, sc)
        assert prof["status"]["storageClass"] == sc
        assert prof["status"]["claimPropertySets"][0]["accessModes"]
    F.apply(cdi, namespace, F.make_blank_dv("d1", size="1Gi", storage_class="standard", access_modes=None,
                                           volume_mode=None))
    pvc = wait_obj(cdi, R.PVC, "d1", namespace, lambda o: True, "PVC d1")
    assert (pvc["spec"]["accessModes"], pvc["spec"]["volumeMode"]) == (["ReadWriteOnce"], "Filesystem")
    # spec.pvc: raw k8s semantics, no overhead
    F.apply(cdi, namespace, F.make_blank_dv("d2", size="1Gi", storage_class="standard", api="pvc"))
    pvc = wait_obj(cdi, R.PVC, "d2", namespace, lambda o: (o.get("status") or {}).get("phase") == "Bound", "d2 Bound")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"


@pytest.mark.cluster
def test_plain_pvc_is_bound(cdi, namespace):
    F.apply(cdi, namespace, F.make_pvc("plain", size="3Gi", storage_class="slow", access_modes=("ReadWriteMany",),
                                       volume_mode="Block"))
    pvc = wait_obj(cdi, R.PVC, "plain", namespace, lambda o: (o.get("status") or {}).get("phase") == "Bound", "Bound")
    assert pvc["status"]["capacity"] == {"storage": "3Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteMany"]
    pv = cdi.get(R.PV, pvc["spec"]["volumeName"])
    assert (pv["spec"]["volumeMode"], pv["spec"]["storageClassName"]) == ("Block", "slow")


@pytest.mark.cluster
def test_clone_waits_while_source_in_use_then_succeeds(cdi, namespace):
    F.apply(cdi, namespace, *F.make_vm_bundle("vm1", [F.pvc_disk("data", claim="src-pvc", size="2Gi")]))
    running_vm(cdi, namespace, "vm1")
    F.apply(cdi, namespace, F.make_clone_dv("clone-dv", "src-pvc", namespace, storage_class="fast"))
    dv = wait_obj(cdi, R.DATAVOLUME, "clone-dv", namespace,
                  lambda o: (condition(o, "Running") or {}).get("reason") == "CloneSourceInUse", "CloneSourceInUse")
    assert dv["status"]["phase"] == "CloneScheduled"
    events = cdi.items(R.EVENT, namespace, field_selector="involvedObject.name=clone-dv")
    assert any(e["reason"] == "CloneSourceInUse" and "src-pvc" in e["message"] for e in events)
    time.sleep(0.5)
    assert cdi.get(R.DATAVOLUME, "clone-dv", namespace)["status"]["phase"] == "CloneScheduled"
    cdi.patch(R.VM, "vm1", {"spec": {"runStrategy": "Halted"}}, namespace)
    phases, progress, dv = _watch_dv(cdi, namespace, "clone-dv")
    assert phases[-2:] == ["CloneInProgress", "Succeeded"]
    assert any(PROGRESS.match(p) and p != "100.0%" for p in progress), progress
    pvc = cdi.get(R.PVC, "clone-dv", namespace)
    assert pvc["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "copy"
    assert pvc["status"]["phase"] == "Bound"
    # size omitted with spec.storage: the source size (2Gi) plus the filesystem overhead (GetRequiredSpace)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2276332667"


# ---- AUDIT S5: populators only for CSI classes; the legacy WaitForFirstConsumer import -----------------------
def _non_csi_wffc_class(kube, namespace):
    """A rancher.io/local-path-like class: WaitForFirstConsumer, no CSIDriver object for its provisioner."""
    name = f"local-{namespace}"[:63]
    kube.create(R.STORAGECLASS, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                                 "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
                                 "volumeBindingMode": "WaitForFirstConsumer"})
    return name


@pytest.mark.cluster
def test_populators_only_for_classes_with_a_csidriver(cdi, namespace):
    assert cdi.get(CSIDRIVER, "fast.csi.example.com")  # registered by the control plane, as a CSI driver would
    local = _non_csi_wffc_class(cdi, namespace)
    F.apply(cdi, namespace, F.make_blank_dv("csi-dv", storage_class="fast"),
            F.make_blank_dv("legacy-dv", storage_class=local))
    csi = wait_obj(cdi, R.PVC, "csi-dv", namespace, lambda o: True, "PVC csi-dv")
    legacy = wait_obj(cdi, R.PVC, "legacy-dv", namespace, lambda o: True, "PVC legacy-dv")
    assert csi["metadata"]["annotations"]["cdi.kubevirt.io/storage.usePopulator"] == "true"
    assert csi["spec"]["dataSourceRef"]["kind"] == "VolumeImportSource"
    assert legacy["metadata"]["annotations"]["cdi.kubevirt.io/storage.usePopulator"] == "false"
    assert "dataSourceRef" not in legacy["spec"]
    # legacy flow on a WFFC class: WaitForFirstConsumer (not PendingPopulation) until a consumer binds the PVC
    dv = wait_obj(cdi, R.DATAVOLUME, "legacy-dv", namespace,
                  lambda o: (o.get("status") or {}).get("phase") == "WaitForFirstConsumer", "WaitForFirstConsumer")
    time.sleep(0.5)
    assert cdi.get(R.DATAVOLUME, "legacy-dv", namespace)["status"]["phase"] == "WaitForFirstConsumer"
    assert cdi.get(R.PVC, "legacy-dv", namespace)["status"]["phase"] == "Pending"
    F.apply(cdi, namespace, *F.make_vm_bundle("consumer", [F.dv_disk("disk0", dv="legacy-dv", template=False)]))
    phases, _, dv = _watch_dv(cdi, namespace, "legacy-dv")
    assert phases[-1] == "Succeeded" and "ImportScheduled" in phases
    assert cdi.get(R.PVC, "legacy-dv", namespace)["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]


@pytest.mark.cluster
def test_legacy_import_writes_a_blank_image_over_a_live_migration_target(cdi, namespace):
    """kubevirt/kubevirt#13696: a persistentVolumeClaim volume moved onto a not-yet-imported legacy WFFC DataVolume
    PVC is accepted (volume-migration.go ValidateVolumes checks DataVolume volumes only); the migration target pod
    binds the PVC, and CDI's import (import-controller.go shouldReconcilePVC: bound PVC) then writes its blank image."""
    local = _non_csi_wffc_class(cdi, namespace)
    F.apply(cdi, namespace, *F.make_vm_bundle("vm-pvc", [F.pvc_disk("disk0", claim="src-pvc", size="1Gi")]))
    running_vm(cdi, namespace, "vm-pvc")
    F.apply(cdi, namespace, F.make_blank_dv("dst-legacy", size="1Gi", storage_class=local))
    wait_obj(cdi, R.DATAVOLUME, "dst-legacy", namespace,
             lambda o: (o.get("status") or {}).get("phase") == "WaitForFirstConsumer", "WaitForFirstConsumer")
    cdi.patch(R.VM, "vm-pvc", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "disk0", "persistentVolumeClaim": {"claimName": "dst-legacy"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    _watch_dv(cdi, namespace, "dst-legacy", timeout=60)
    pv = cdi.get(R.PV, cdi.get(R.PVC, "dst-legacy", namespace)["spec"]["volumeName"])
    writer = pv["metadata"]["annotations"].get(OVERWRITE_ANNOTATION, "")
    assert writer.startswith("virt-launcher-vm-pvc-"), pv["metadata"].get("annotations")
    target = cdi.get(R.POD, writer, namespace)
    assert "kubevirt.io/migrationJobUID" in target["metadata"]["labels"]


@pytest.mark.cluster
def test_a_populator_destination_is_never_overwritten(cdi, namespace):
    F.apply(cdi, namespace, *F.make_vm_bundle("vm-pvc", [F.pvc_disk("disk0", claim="src-pvc", size="1Gi")]))
    running_vm(cdi, namespace, "vm-pvc")
    F.apply(cdi, namespace, F.make_blank_dv("dst-csi", size="1Gi", storage_class="fast"))
    _watch_dv(cdi, namespace, "dst-csi")
    cdi.patch(R.VM, "vm-pvc", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "disk0", "persistentVolumeClaim": {"claimName": "dst-csi"}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}], namespace, patch_type="json")
    wait_obj(cdi, R.VMI, "vm-pvc", namespace, lambda o: o["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
             == "dst-csi" and not o["status"].get("migratedVolumes"), "migrated to dst-csi")
    pv = cdi.get(R.PV, cdi.get(R.PVC, "dst-csi", namespace)["spec"]["volumeName"])
    assert OVERWRITE_ANNOTATION not in (pv["metadata"].get("annotations") or {})


@pytest.mark.cluster
def test_the_pvc_carries_the_datavolume_labels(cdi, namespace):
    # controller-base.go newPersistentVolumeClaim copies every DV label onto the PVC it creates: the plugin's
    # destination-name check reads a re-run's half-made destination PVC by that label (an interrupted fleet
    # re-run was refused when the stand-in dropped it)
    dv = F.make_blank_dv("lab-dv", size="1Gi", storage_class="fast")
    dv["metadata"].setdefault("labels", {})["vm-storage.kubevirt-tools.io/migration"] = "m1"
    F.apply(cdi, namespace, dv)
    _watch_dv(cdi, namespace, "lab-dv")
    labels = cdi.get(R.PVC, "lab-dv", namespace)["metadata"]["labels"]
    assert labels["vm-storage.kubevirt-tools.io/migration"] == "m1"
    assert labels["app"] == "containerized-data-importer"
    assert labels["alerts.k8s.io/KubePersistentVolumeFillingUp"] == "disabled"  # a Filesystem claim
