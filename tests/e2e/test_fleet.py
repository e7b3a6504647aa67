"""Issue 16's acceptance run: 3 namespaces x 8 VMs chosen by label across all namespaces (`migrate -A -l`) with
`--parallel 3`, through the real kubectl against the real API server, CDI/KubeVirt stand-ins playing the
controllers; a sampler counts the copies in flight while it runs."""
import threading
import uuid

import pytest

from kubectl_vmmig import resources as R
from tests.conftest import make_namespace
from tests.e2e.test_kubevirt_engine import kv  # noqa: F401 (fixture)
from tests.sim import factories as F

pytestmark = pytest.mark.cluster


def copies_in_flight(kube, namespaces, tag):
    """Destination DataVolumes of this fleet not yet Succeeded (a copy CDI is running or about to)."""
    n = 0
    for ns in namespaces:
        for dv in kube.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage"):
            if ((dv.get("status") or {}).get("phase")) != "Succeeded":
                n += 1
    return n


def test_three_namespaces_by_label_never_more_than_three_copies_in_flight(kv, kubectl, cp):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    spaces = [make_namespace(kv, f"fleet-{i}") for i in range(3)]
    for ns in spaces:
        for i in range(8):
            F.apply(kv, ns, *F.make_vm_bundle(f"vm{i}", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                                              running=False, labels={"fleet": tag}))
    # a VM without the label is left alone
    F.apply(kv, spaces[0], *F.make_vm_bundle("other", [F.pvc_disk("data", size="1Gi")], running=False))
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], copies_in_flight(cp.admin, spaces, tag))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        res = kubectl("vm-storage", "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine", "kubevirt",
                      "--parallel", "3", "--wait", "--yes", timeout=420)
    finally:
        stop.set()
        sampler.join(5)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "fleet: 24 VM(s) in 3 namespace(s)" in res.stderr
    for ns in spaces:
        for i in range(8):
            vols = kv.get(R.VM, f"vm{i}", ns)["spec"]["template"]["spec"]["volumes"]
            assert {"name": "data", "persistentVolumeClaim": {"claimName": f"vm{i}-data-fast"}} in vols, (ns, i)
    other = kv.get(R.VM, "other", spaces[0])["spec"]["template"]["spec"]["volumes"]
    assert other[0]["persistentVolumeClaim"]["claimName"] == "other-data"
    assert 1 <= peak[0] <= 3, peak[0]
