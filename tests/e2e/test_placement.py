"""Where a live move may go: the plugin's preflight (placement.py) and KubeVirt's placement of the target pod
(the stand-in's kube-scheduler filters, tests/sim/kubevirt_scheduling.py: the launcher pod's nodeSelector from
nodeselectorrenderer.go, never the source node) agree, through the real kubectl on the real API server."""
import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F

from .test_kubevirt_engine import ENGINE, claims, kv, wait_for  # noqa: F401

pytestmark = pytest.mark.cluster


def label_nodes(kube, key, values):
    for node, value in values.items():
        kube.patch(R.NODE, node, {"metadata": {"labels": {key: value}}})


def test_a_pinned_vm_moves_live_only_when_a_second_node_matches_its_selector(kv, kubectl, namespace):
    ns, key = namespace, f"vmstorage-test/zone-{namespace[-5:]}"
    label_nodes(kv, key, {"node01": "a", "node02": "b"})
    try:
        *pvcs, vm = F.make_vm_bundle("pinned", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()])
        vm["spec"]["template"]["spec"]["nodeSelector"] = {key: "a"}
        F.apply(kv, ns, *pvcs, vm)
        vmi = wait_for(lambda: (lambda v: v if v and (v.get("status") or {}).get("phase") == "Running" else None)(
            kv.get_or_none(R.VMI, "pinned", ns)), 60, "VMI pinned Running")
        assert vmi["status"]["nodeName"] == "node01"

        # only node01 matches: the preflight refuses the live move before any write
        refused = kubectl("vm-storage", "migrate", "pinned", "--to", "fast", "-n", ns, *ENGINE, "--mode", "live")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "1 schedulable node(s) (node01;" in refused.stderr
        assert kv.get_or_none(R.DATAVOLUME, "pinned-data-fast", ns) is None

        # node02 matches too: the move runs, and the target pod lands on the other matching node
        label_nodes(kv, key, {"node02": "a"})
        moved = kubectl("vm-storage", "migrate", "pinned", "--to", "fast", "-n", ns, *ENGINE, "--mode", "live",
                        "--wait", timeout=300)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        vmi = kv.get(R.VMI, "pinned", ns)
        assert vmi["status"]["nodeName"] == "node02" and vmi["status"]["migrationState"]["sourceNode"] == "node01"
        assert claims(kv.get(R.VM, "pinned", ns))["data"] == "pinned-data-fast"
    finally:
        label_nodes(kv, key, {"node01": None, "node02": None})
