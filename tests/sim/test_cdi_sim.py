"""The CDI stand-in against the real API server: DataVolume phases, PVC/PV binding, StorageProfiles."""
import re
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
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
    # spec.storage + Filesystem: request inflated by the 6% filesystem overhead
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1090Mi"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["status"]["phase"] == "Bound" and pvc["status"]["capacity"]["storage"] == "1090Mi"
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
    # size omitted with spec.storage: the source size (2Gi) plus the filesystem overhead
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2179Mi"
