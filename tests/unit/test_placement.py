"""placement.py: where a VM's launcher pod can run (the live-migration second-node rule)."""
from kubectl_vmmig import placement as P
from kubectl_vmmig.placement import schedulable

READY = {"status": {"conditions": [{"type": "Ready", "status": "True"}]},
         "metadata": {"name": "a", "labels": {"kubevirt.io/schedulable": "true"}}}


def node(name, **labels):
    return {"status": READY["status"],
            "metadata": {"name": name, "labels": dict({"kubevirt.io/schedulable": "true"}, **labels)}}


def test_schedulable_nodes():
    ready = READY
    assert schedulable(ready)
    assert not schedulable(dict(ready, spec={"unschedulable": True}))
    assert not schedulable(dict(ready, spec={"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}))
    # finding 9: launcher pods select kubevirt.io/schedulable=true (nodeselectorrenderer.go) and tolerate no
    # control-plane taint by default
    assert not schedulable(dict(ready, metadata={"name": "a"}))
    master = dict(ready, spec={"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]})
    assert not schedulable(master)
    assert schedulable(master, P.of_template({"tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}]}))
    assert schedulable(master, P.of_template({"tolerations": [{"operator": "Exists"}]}))
    assert not schedulable(master, P.of_template({"tolerations": [{"key": "other", "operator": "Exists"}]}))
    assert not schedulable({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})


def test_the_vms_node_selector_must_match():
    # template.go renderLaunchManifest: the launcher pod's NodeSelector carries the VMI's nodeSelector
    place = P.of_template({"nodeSelector": {"disktype": "ssd"}})
    assert schedulable(node("a", disktype="ssd"), place)
    assert not schedulable(node("b", disktype="hdd"), place)
    assert not schedulable(node("c"), place)
    assert place["nodeSelector"]["kubevirt.io/schedulable"] == "true"  # KubeVirt's own label stays


def test_the_architecture_selects_nodes():
    place = P.of_template({"architecture": "ARM64"})
    assert schedulable(node("a", **{"kubernetes.io/arch": "arm64"}), place)
    assert not schedulable(node("b", **{"kubernetes.io/arch": "amd64"}), place)


def test_required_node_affinity_terms_are_ored_and_their_expressions_anded():
    place = P.of_template({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                                  {"key": "gpu", "operator": "DoesNotExist"}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
        ]}}}})
    assert schedulable(node("a", zone="z1"), place)
    assert not schedulable(node("b", zone="z1", gpu="yes"), place)
    assert not schedulable(node("c", zone="z3"), place)
    assert schedulable(node("special"), place)
    assert [n for n in P.node_names([node("a", zone="z2"), node("x"), node("special")], place)] == ["a", "special"]


def test_node_selector_requirement_operators():
    r = P._requirement
    assert r({"key": "k", "operator": "NotIn", "values": ["a"]}, {}) is True  # an absent key is not in
    assert r({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "a"}) is False
    assert r({"key": "k", "operator": "Exists"}, {"k": ""}) is True
    assert r({"key": "n", "operator": "Gt", "values": ["3"]}, {"n": "4"}) is True
    assert r({"key": "n", "operator": "Lt", "values": ["3"]}, {"n": "4"}) is False
    assert r({"key": "n", "operator": "Gt", "values": ["3"]}, {"n": "x"}) is False
    assert P._term({}, node("a")) is False  # an empty term selects no node


def test_preferred_affinity_is_not_a_requirement():
    place = P.of_template({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}]}}]}}})
    assert schedulable(node("a", zone="z1"), place)


def test_the_kubevirt_crs_cluster_wide_node_selectors_count_and_the_vms_own_win():
    """nodeselectorrenderer.go NewNodeSelectorRenderer: schedulable, arch, then the KubeVirt CR's
    developerConfiguration.nodeSelectors (virt-config.go GetNodeSelectors), then the VMI's own - later wins."""
    kv = {"spec": {"configuration": {"developerConfiguration": {"nodeSelectors": {"zone": "a"}}}}}
    assert P.cluster_node_selectors(kv) == {"zone": "a"}
    assert P.cluster_node_selectors(None) == {} and P.cluster_node_selectors({"spec": {}}) == {}
    nodes = [node("a1", zone="a", disktype="ssd"), node("a2", zone="a", disktype="hdd"),
             node("a3", zone="a", disktype="ssd"), node("b1", zone="b", disktype="ssd")]
    inventory = {"vms": {f"ns/{name}": {"placement": P.of_template(t)} for name, t in (
        ("plain", {}), ("ssd", {"nodeSelector": {"disktype": "ssd"}}), ("zone-b", {"nodeSelector": {"zone": "b"}}))}}

    def count(vm, cr=None):
        [f] = P.live_node_findings(nodes, inventory, "ns", [vm], cr)
        return f["severity"], int(f["message"].split()[0])

    assert count("plain") == ("ok", 4)           # no KubeVirt CR selectors: every node
    assert count("plain", kv) == ("ok", 3)       # zone=a from the CR
    assert count("ssd", kv) == ("ok", 2)         # the CR's zone=a and the VM's disktype=ssd
    assert count("zone-b", kv) == ("error", 1)   # the VM's own zone=b wins over the CR's zone=a
