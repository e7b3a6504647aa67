"""Pure: where a VM's virt-launcher pod can run - the one rule both engines count for live migration's
second node (a live storage migration starts the VM again on ANOTHER node).

KubeVirt renders the launcher pod's placement from the VMI (kubevirt pkg/virt-controller/services/template.go
renderLaunchManifest): ``NodeSelector`` from nodeselectorrenderer.go NewNodeSelectorRenderer - always
``kubevirt.io/schedulable=true``, ``kubernetes.io/arch`` when the VMI names an architecture, then the KubeVirt
CR's cluster-wide ``spec.configuration.developerConfiguration.nodeSelectors`` (virt-config.go GetNodeSelectors),
then the VMI's own ``nodeSelector``, each overriding the one before (maps.Copy) - ``Affinity`` a copy of the
VMI's, ``Tolerations`` the VMI's. The scheduler then needs every nodeSelector label, one of the required
node-affinity terms (k8s.io/component-helpers scheduling/corev1/nodeaffinity nodeaffinity.go
GetRequiredNodeAffinity/Match) and a toleration for each NoSchedule/NoExecute taint.
Preferred affinity, pod (anti-)affinity and resources are not counted: they rank nodes or depend on what else
runs there, and a preflight that guessed them would refuse moves that work.
"""
from typing import Dict, Iterable, List, Optional

from .findings import finding
from .labels import NODE_SCHEDULABLE

ARCH_LABEL = "kubernetes.io/arch"  # k8sv1.LabelArchStable


def _selector(architecture, cluster_wide, own) -> Dict[str, str]:
    """NewNodeSelectorRenderer's order: schedulable, arch, cluster-wide, the VMI's own (later ones win)."""
    selector = {NODE_SCHEDULABLE: "true"}
    if architecture:
        selector[ARCH_LABEL] = str(architecture).lower()
    selector.update(cluster_wide or {})
    selector.update(own or {})
    return selector


def of_template(tspec: dict) -> dict:
    """The placement facts of a VM's ``spec.template.spec`` (what the launcher pod will carry); ``nodeSelector``
    without the cluster-wide selectors, which ``with_cluster_selectors`` adds from the KubeVirt CR."""
    required = ((((tspec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms"))
    return {"tolerations": list(tspec.get("tolerations") or []),
            "nodeSelector": _selector(tspec.get("architecture"), None, tspec.get("nodeSelector")),
            "architecture": tspec.get("architecture"), "ownNodeSelector": dict(tspec.get("nodeSelector") or {}),
            "nodeSelectorTerms": required}


def cluster_node_selectors(kubevirt_cr: Optional[dict]) -> Dict[str, str]:
    """The KubeVirt CR's spec.configuration.developerConfiguration.nodeSelectors (virt-config.go GetNodeSelectors),
    which template.go hands every launcher pod."""
    conf = (((kubevirt_cr or {}).get("spec") or {}).get("configuration") or {}).get("developerConfiguration") or {}
    return {str(k): str(v) for k, v in (conf.get("nodeSelectors") or {}).items()}


def with_cluster_selectors(placement: Optional[dict], cluster_wide: Dict[str, str]) -> Optional[dict]:
    if not cluster_wide:
        return placement
    placement = placement or DEFAULT
    return dict(placement, nodeSelector=_selector(placement.get("architecture"), cluster_wide,
                                                  placement.get("ownNodeSelector")))


DEFAULT = of_template({})  # a VM that asks for nothing: KubeVirt's own selector only


def tolerates(tolerations, taint: dict) -> bool:
    """Kubernetes' toleration match (k8s.io/api core/v1 toleration.go ToleratesTaint)."""
    for t in tolerations or ():
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirement(req: dict, values: Dict[str, str]) -> bool:
    """One NodeSelectorRequirement (k8s.io/apimachinery labels.Selector built by nodeaffinity.go
    nodeSelectorRequirementsAsSelector): In, NotIn (an absent key matches), Exists, DoesNotExist, Gt, Lt."""
    key, op, vals = req.get("key"), req.get("operator"), list(req.get("values") or [])
    have = values.get(key)
    if op == "In":
        return have is not None and have in vals
    if op == "NotIn":
        return have is None or have not in vals
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(vals) == 1:
        try:
            a, b = int(have), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False  # an unknown operator selects nothing (the API server rejects it at admission anyway)


def _term(term: dict, node: dict) -> bool:
    """A NodeSelectorTerm: every matchExpression on the labels and every matchField (only metadata.name)
    holds; a term with neither matches no node (nodeaffinity.go nodeSelectorTerm.match)."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    md = node.get("metadata") or {}
    labels = md.get("labels") or {}
    if not all(_requirement(r, labels) for r in exprs):
        return False
    names = {"metadata.name": md.get("name")}
    return all(r.get("key") == "metadata.name" and _requirement(r, names) for r in fields)


def schedulable(node: dict, placement: Optional[dict] = None) -> bool:
    """Whether the VM's launcher (target) pod can land on ``node``: Ready, not cordoned, every nodeSelector
    label (``kubevirt.io/schedulable=true`` included: virt-handler sets it, heartbeat.go), one required
    node-affinity term when the VM has any, and no NoSchedule/NoExecute taint it does not tolerate
    (control-plane taints included: launcher pods carry no toleration for them by default)."""
    placement = placement or DEFAULT
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (placement.get("nodeSelector") or {}).items()):
        return False
    terms = placement.get("nodeSelectorTerms")
    if terms is not None and not any(_term(t, node) for t in terms):
        return False
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or [])
    no_sched = any(t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(placement.get("tolerations"), t)
                   for t in (node.get("spec") or {}).get("taints") or [])
    return ready and not no_sched


def node_names(nodes: Iterable[dict], placement: Optional[dict] = None) -> list:
    return sorted((n.get("metadata") or {}).get("name") or "" for n in nodes if schedulable(n, placement))


# ---- the finding every engine makes for its live moves -------------------------------------------------
def node_findings(nodes: List[dict], placement: Optional[dict] = None, vm: str = "") -> List[dict]:
    """Nodes a launcher pod of the VM (its nodeSelector, required node affinity, tolerations) can land on."""
    names = node_names(nodes, placement)
    who = f" for VM {vm}" if vm else ""
    if len(names) < 2:
        return [finding("schedulable-nodes", "error",
                        f"{len(names)} schedulable node(s){who} ({', '.join(names) or 'none'}; KubeVirt needs Ready, "
                        "uncordoned nodes labelled kubevirt.io/schedulable=true that match the VM's nodeSelector and "
                        "required node affinity, without a NoSchedule taint the VM does not tolerate): a live storage "
                        "migration copies the disks to a VM started on ANOTHER node, so it needs at least two; use "
                        "--mode offline")]
    return [finding("schedulable-nodes", "ok", f"{len(names)} schedulable nodes{who}")]


def live_node_findings(nodes: List[dict], inventory: dict, ns: str, live_vms: List[str],
                       kubevirt_cr: Optional[dict] = None) -> List[dict]:
    """node_findings for the VMs that move live: one finding when they share a placement, else one each."""
    cluster_wide = cluster_node_selectors(kubevirt_cr)
    places = {v: with_cluster_selectors((inventory["vms"].get(f"{ns}/{v}") or {}).get("placement"), cluster_wide)
              for v in live_vms}
    if len({repr(p) for p in places.values()}) <= 1:
        return node_findings(nodes, places[live_vms[0]]) if live_vms else []
    return [f for v in live_vms for f in node_findings(nodes, places[v], v)]
