"""The kubevirt engine's verdicts against the corrected stand-ins (issue 11 findings 2, 8, 11, 13): through the real
kubectl, with faults injected into the KubeVirt stand-in (tests/sim, sim-faults ConfigMap)."""
import json

import pytest

from kubectl_vmmig import resources as R
from tests.sim.common import set_faults

from .test_kubevirt_engine import ENGINE, claims, kv, record, two_disk_vm, wait_for  # noqa: F401

pytestmark = pytest.mark.cluster


def result_of(kubectl, ns, name):
    st = kubectl("vm-storage", "status", name, "-n", ns, "-o", "json")
    return json.loads(st.stdout)["migrations"][0]


def test_findings_2_13_restart_required_after_success_is_not_a_cancel_and_cancel_refuses(kv, kubectl, namespace):
    """Someone removes updateVolumesStrategy from the running VM after the copy: KubeVirt raises RestartRequired
    (vm.go syncRestartRequired vs the start revision). status still says Succeeded (the VMI runs on the
    destination) and cancel refuses instead of pointing the VM back at stale source disks."""
    ns = namespace
    two_disk_vm(kv, ns, "rr")
    run = kubectl("vm-storage", "migrate", "rr", "--to", "fast", "-n", ns, *ENGINE, "--detach", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    wait_for(lambda: result_of(kubectl, ns, "rr-to-fast")["result"] == "Succeeded", 120, "copy done")
    kv.patch(R.VM, "rr", [{"op": "remove", "path": "/spec/updateVolumesStrategy"}], ns, patch_type="json")

    def restart_required():
        return any(c["type"] == "RestartRequired" and c["status"] == "True"
                   for c in (kv.get(R.VM, "rr", ns).get("status") or {}).get("conditions") or [])

    wait_for(restart_required, 60, "RestartRequired raised by the stand-in")
    mig = result_of(kubectl, ns, "rr-to-fast")
    assert mig["result"] == "Succeeded", mig
    assert not any("cancel" in d["message"] for d in mig["disks"]), mig
    cancel = kubectl("vm-storage", "cancel", "rr-to-fast", "-n", ns, timeout=120)
    assert cancel.returncode == 2, cancel.stdout + cancel.stderr
    assert "already finished copying rr" in cancel.stderr and "copy back" in cancel.stderr
    assert claims(kv.get(R.VM, "rr", ns)) == {"rootdisk": "rr-rootdisk-fast", "data": "rr-data-fast"}


def test_finding8_a_transient_volumes_update_error_keeps_following(kv, kubectl, namespace):
    ns = namespace
    two_disk_vm(kv, ns, "tr")
    set_faults(kv, ns, volumesUpdateError="2")
    run = kubectl("vm-storage", "migrate", "tr", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert claims(kv.get(R.VM, "tr", ns)) == {"rootdisk": "tr-rootdisk-fast", "data": "tr-data-fast"}
    assert record(kv, ns, "tr-to-fast")["result"] == "Succeeded"


def test_finding11_a_give_up_is_not_final(kv, kubectl, namespace):
    """KubeVirt retries after the plugin stopped following: status re-judges from the cluster, a re-run records it."""
    ns = namespace
    two_disk_vm(kv, ns, "gu")
    set_faults(kv, ns, liveMigrationFail="3")   # the first 3 attempts fail, the 4th succeeds
    run = kubectl("vm-storage", "migrate", "gu", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "KubeVirt keeps retrying" in run.stderr
    wait_for(lambda: result_of(kubectl, ns, "gu-to-fast")["result"] == "Succeeded", 180,
             "status re-judges the give-up as Succeeded after KubeVirt's next attempt")
    again = kubectl("vm-storage", "migrate", "gu", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert record(kv, ns, "gu-to-fast")["result"] == "Succeeded"
