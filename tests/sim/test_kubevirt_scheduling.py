"""kube-scheduler's filters for launcher pods (tests/sim/kubevirt_scheduling.py), pure, and through the stand-in
on the real API server: where a VM starts and where its migration target may go."""
import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import kubevirt_scheduling as S
from tests.sim.kvtest_helpers import get, running_vm, wait_obj


def node(name, labels=None, taints=None, unschedulable=False, ready="True"):
    return {"metadata": {"name": name, "labels": dict({"kubernetes.io/hostname": name, S.SCHEDULABLE: "true"},
                                                       **(labels or {}))},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_the_launcher_pod_selects_schedulable_arch_cluster_wide_then_its_own_labels_later_wins():
    cr = {"spec": {"configuration": {"developerConfiguration": {"nodeSelectors": {"zone": "a", "tier": "kv"}}}}}
    out = S.launcher_scheduling({"architecture": "AMD64", "nodeSelector": {"zone": "b"},
                                 "tolerations": [{"key": "gpu", "operator": "Exists"}]}, cr)
    assert out["nodeSelector"] == {S.SCHEDULABLE: "true", S.ARCH: "amd64", "zone": "b", "tier": "kv"}
    assert out["tolerations"] == [{"key": "gpu", "operator": "Exists"}] and "affinity" not in out


def test_filters_in_order_and_the_fit_error_counts_each_node_once():
    pod = {"nodeSelector": {S.SCHEDULABLE: "true", "zone": "a"}}
    nodes = [node("n1", {"zone": "a"}), node("n2", {"zone": "b"}), node("n3", {"zone": "a"}, unschedulable=True),
             node("n4", {"zone": "a"}, taints=[{"key": "maint", "value": "yes", "effect": "NoSchedule"}]),
             node("n5", {"zone": "a"}, ready="False")]
    assert S.schedule(nodes, pod) == ("n1", "")
    got, msg = S.schedule(nodes, pod, anti_nodes=["n1"])
    assert got is None
    assert msg == ("0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                   "1 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint "
                   "{maint: yes}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                   "1 node(s) were unschedulable. preemption: 0/5 nodes are available: "
                   "1 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling.")


def test_tolerations_and_required_node_affinity_terms():
    taint = {"key": "maint", "value": "yes", "effect": "NoSchedule"}
    assert S.tolerates([{"key": "maint", "operator": "Equal", "value": "yes"}], taint)
    assert S.tolerates([{"operator": "Exists"}], taint)
    assert not S.tolerates([{"key": "maint", "value": "no"}], taint)
    assert not S.tolerates([{"key": "maint", "operator": "Exists", "effect": "NoExecute"}], taint)
    n = node("n1", {"zone": "a", "cores": "8"})
    terms = lambda *t: {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {  # noqa: E731
        "nodeSelectorTerms": list(t)}}}}
    assert S.node_affinity_matches(n, terms({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                                                                  {"key": "cores", "operator": "Gt", "values": ["4"]}]}))
    assert not S.node_affinity_matches(n, terms({"matchExpressions": [{"key": "zone", "operator": "NotIn",
                                                                       "values": ["a"]}]}))
    assert S.node_affinity_matches(n, terms({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                                            {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                              "values": ["n1"]}]}))
    assert not S.node_affinity_matches(n, terms({}))  # an empty term matches no node


def test_unschedulable_is_tolerated_only_by_its_taint_key():
    n = node("n1", unschedulable=True)
    assert S.filter_failure(n, {}) == ("node(s) were unschedulable", False)
    assert S.filter_failure(n, {"tolerations": [{"key": S.UNSCHEDULABLE_TAINT, "operator": "Exists",
                                                 "effect": "NoSchedule"}]}) is None


@pytest.mark.cluster
def test_a_vm_pinned_to_one_node_starts_there_and_its_migration_target_never_schedules(kv, namespace):
    """The VMI's nodeSelector reaches the launcher pod; with two nodes, one of them the source, the target pod of
    a migration fits nowhere and the scheduler's message names both reasons."""
    kv.patch(R.NODE, "node01", {"metadata": {"labels": {"vmstorage-test/pin": namespace[-5:]}}})
    try:
        *pvcs, vm = F.make_vm_bundle("pinned", [F.dv_disk("d", dv="pinned-dv", size="1Gi")])
        vm["spec"]["template"]["spec"]["nodeSelector"] = {"vmstorage-test/pin": namespace[-5:]}
        F.apply(kv, namespace, *pvcs, vm)
        _, vmi = running_vm(kv, namespace, "pinned")
        assert vmi["status"]["nodeName"] == "node01"
        pod = next(p for p in kv.items(R.POD, namespace)
                   if p["metadata"]["labels"].get("kubevirt.io/created-by") == vmi["metadata"]["uid"])
        assert pod["spec"]["nodeSelector"]["vmstorage-test/pin"] == namespace[-5:]
        kv.create(R.VMIM, {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                           "metadata": {"name": "move-pinned"}, "spec": {"vmiName": "pinned"}}, namespace)

        def target_unschedulable(_):
            pods = [p for p in kv.items(R.POD, namespace) if "kubevirt.io/migrationJobUID" in p["metadata"]["labels"]]
            return any("didn't match Pod's node affinity/selector" in (c.get("message") or "")
                       for p in pods for c in (p.get("status") or {}).get("conditions") or [])
        wait_obj(kv, R.VMIM, "move-pinned", namespace, target_unschedulable, "target pod unschedulable")
        assert get(kv, R.VMI, "pinned", namespace)["status"]["nodeName"] == "node01"
    finally:
        kv.patch(R.NODE, "node01", {"metadata": {"labels": {"vmstorage-test/pin": None}}})
