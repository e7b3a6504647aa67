"""Issue 18: `migrate --engine kubevirt --detach` returns within seconds, says what is left and who does it, and
`status` stays truthful until the documented continuation completes it (real kubectl, real API server, the
KubeVirt/CDI stand-ins stalled in the namespace with sim-faults stall)."""
import json
import time

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim.common import set_faults

from .test_kubevirt_engine import ENGINE, claims, kv, record, two_disk_vm, wait_for  # noqa: F401

pytestmark = pytest.mark.cluster


def status(kubectl, ns, name):
    st = kubectl("vm-storage", "status", name, "-n", ns, "-o", "json")
    assert st.returncode in (0, 4), st.stdout + st.stderr  # a running migration: exit 0
    return json.loads(st.stdout)["migrations"][0]


def dv_phase(kube, ns, name):
    return ((kube.get_or_none(R.DATAVOLUME, name, ns) or {}).get("status") or {}).get("phase")


def test_detach_returns_at_once_and_the_continuation_completes_both(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "hot")
    F.apply(kv, ns, *F.make_vm_bundle("cold", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()], running=False))
    wait_for(lambda: (kv.get(R.PVC, "cold-data", ns).get("status") or {}).get("phase") == "Bound", 60, "PVC Bound")
    set_faults(kv, ns, stall=True)

    t0 = time.monotonic()
    cold = kubectl("vm-storage", "migrate", "cold", "--to", "fast", "-n", ns, *ENGINE, "--detach", timeout=60)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert time.monotonic() - t0 < 30
    assert "nothing is left for the plugin" in cold.stderr and "CDI clones" in cold.stderr
    # the stopped VM already points at its destination; KubeVirt would not start it before CDI populated it
    assert claims(kv.get(R.VM, "cold", ns)) == {"data": "cold-data-fast"}
    assert dv_phase(kv, ns, "cold-data-fast") != "Succeeded"
    m = status(kubectl, ns, "cold-to-fast")
    assert m["result"] == "Running" and all(d["phase"] != "Succeeded" for d in m["disks"]), m

    t0 = time.monotonic()
    hot = kubectl("vm-storage", "migrate", "hot", "--to", "fast", "-n", ns, *ENGINE, "--detach", timeout=60)
    assert hot.returncode == 0, hot.stdout + hot.stderr
    assert time.monotonic() - t0 < 30
    assert "kubectl vm-storage resume hot-to-fast -n " + ns in hot.stderr
    # the running VM is not touched before its destinations are usable
    assert claims(kv.get(R.VM, "hot", ns)) == {"rootdisk": "hot-rootdisk", "data": "hot-data"}
    assert "updateVolumesStrategy" not in kv.get(R.VM, "hot", ns)["spec"]
    m = status(kubectl, ns, "hot-to-fast")
    assert m["result"] == "Running"
    assert all("waiting for the plugin to finish: run 'kubectl vm-storage resume hot-to-fast" in d["message"]
               for d in m["disks"]), m

    set_faults(kv, ns, stall=False)

    # the stopped VM needs nothing more: status turns Succeeded once the clone is, never before
    def cold_done():
        got = status(kubectl, ns, "cold-to-fast")
        if got["result"] == "Succeeded":
            assert dv_phase(kv, ns, "cold-data-fast") == "Succeeded", got
            return got
        return None

    wait_for(cold_done, 120, "cold-to-fast Succeeded")
    assert kv.get_or_none(R.VMI, "cold", ns) is None  # still stopped

    # the running VM: the printed continuation completes it
    assert status(kubectl, ns, "hot-to-fast")["result"] == "Running"
    res = kubectl("vm-storage", "resume", "hot-to-fast", "-n", ns, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    vm = kv.get(R.VM, "hot", ns)
    assert claims(vm) == {"rootdisk": "hot-rootdisk-fast", "data": "hot-data-fast"}
    vmi = kv.get(R.VMI, "hot", ns)
    assert claims({"spec": {"template": {"spec": vmi["spec"]}}}) == claims(vm)
    assert status(kubectl, ns, "hot-to-fast")["result"] == "Succeeded"
    assert record(kv, ns, "hot-to-fast")["result"] == "Succeeded"
    # nothing left to resume
    again = kubectl("vm-storage", "resume", "hot-to-fast", "-n", ns)
    assert again.returncode == 2 and "nothing to resume" in again.stderr, again.stderr
