"""kube-scheduler's part for virt-launcher pods (this control plane runs no scheduler): what a launcher pod asks
of a node, which nodes fit it, and the FailedScheduling message when none does. Pure.

- What the pod asks (kubevirt pkg/virt-controller/services/template.go renderLaunchManifest): ``nodeSelector`` from
  nodeselectorrenderer.go NewNodeSelectorRenderer (``kubevirt.io/schedulable=true``, ``kubernetes.io/arch`` when the
  VMI names an architecture, the KubeVirt CR's ``developerConfiguration.nodeSelectors``, then the VMI's own: later
  wins), the VMI's ``tolerations`` and a copy of its ``affinity``. A migration target pod adds a required
  anti-affinity to the pods of the same VMI per hostname (watch/migration/migration.go
  createMigrationPodAntiAffinityRule): never the source pod's node.
- What the scheduler checks, first failure per node, in the default filter order (kubernetes
  pkg/scheduler/framework/plugins): NodeUnschedulable (``spec.unschedulable`` unless tolerated), TaintToleration
  (taint_toleration.go Filter: an untolerated NoSchedule/NoExecute taint), NodeAffinity (node_affinity.go: the
  ``nodeSelector`` and the required node-affinity terms), InterPodAffinity (the anti-affinity above).
- A node whose Ready condition is False carries ``node.kubernetes.io/not-ready``, Unknown ``unreachable``, with
  NoSchedule: the node lifecycle controller's taints (pkg/controller/nodelifecycle/node_lifecycle_controller.go
  doNoScheduleTaintingPass, nodeConditionToTaintKeyStatusMap), a controller not run here. A node with no Ready
  condition at all counts as Unknown, as monitorNodeHealth marks a node whose kubelet never posted one.
- The message (framework/types.go FitError.Error): ``0/N nodes are available: <count reason>, ... .`` with the
  reasons sorted, then the default preemption's ``preemption: 0/N nodes are available: ...`` (a node failing an
  unresolvable filter: "Preemption is not helpful for scheduling"; the anti-affinity: "No preemption victims
  found for incoming pod", there being nothing of lower priority to evict here).

Written from the upstream code above, not from kubectl_vmmig/placement.py, on purpose: the plugin's preflight
counts nodes by the same rules, and tests/e2e/test_placement.py holds the two against each other - one shared
implementation would make that comparison prove nothing.
"""
import copy
from typing import Iterable, List, Optional, Tuple

SCHEDULABLE = "kubevirt.io/schedulable"          # api/core/v1 NodeSchedulable
ARCH = "kubernetes.io/arch"                      # k8sv1.LabelArchStable
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


# ---- what a launcher pod asks ----------------------------------------------------------------------------------
def launcher_scheduling(vmi_spec: dict, kubevirt_cr: Optional[dict]) -> dict:
    """The pod spec fields of template.go renderLaunchManifest that place the pod."""
    selectors = {SCHEDULABLE: "true"}
    if vmi_spec.get("architecture"):
        selectors[ARCH] = vmi_spec["architecture"].lower()
    conf = (((kubevirt_cr or {}).get("spec") or {}).get("configuration") or {})
    selectors.update((conf.get("developerConfiguration") or {}).get("nodeSelectors") or {})
    selectors.update(vmi_spec.get("nodeSelector") or {})
    out = {"nodeSelector": selectors}
    if vmi_spec.get("tolerations"):
        out["tolerations"] = copy.deepcopy(vmi_spec["tolerations"])
    if vmi_spec.get("affinity"):
        out["affinity"] = copy.deepcopy(vmi_spec["affinity"])
    return out


# ---- what the scheduler checks -----------------------------------------------------------------------------------
def node_taints(node: dict) -> List[dict]:
    """The node's taints, with the lifecycle controller's NoSchedule taint of a node that is not Ready
    (doNoScheduleTaintingPass: Ready False -> not-ready, Unknown -> unreachable)."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = (ready or {}).get("status", "Unknown")
    key = {"False": "node.kubernetes.io/not-ready", "Unknown": "node.kubernetes.io/unreachable"}.get(status)
    if key and not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
        taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def tolerates(tolerations: Iterable[dict], taint: dict) -> bool:
    """component-helpers corev1 Toleration.ToleratesTaint: same effect (or none), then Exists (an empty key matches
    every key) or Equal on key and value."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("key") and t["key"] != taint.get("key"):
            continue
        if t.get("operator", "Equal") == "Exists":
            return True
        if t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirement_holds(labels: dict, req: dict) -> bool:
    """A NodeSelectorRequirement on labels (component-helpers nodeaffinity: In, NotIn, Exists, DoesNotExist, Gt, Lt)."""
    op, key, values = req.get("operator"), req.get("key"), req.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _term_matches(node: dict, term: dict) -> bool:
    """A NodeSelectorTerm: all its requirements (labels, and the ``metadata.name`` field); an empty one matches none."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    name = {"metadata.name": (node.get("metadata") or {}).get("name")}
    return all(_requirement_holds(labels, r) for r in exprs) and all(_requirement_holds(name, r) for r in fields)


def node_affinity_matches(node: dict, pod_spec: dict) -> bool:
    """node_affinity.go Filter: every nodeSelector label, and one of the required terms (ORed)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(_term_matches(node, t) for t in required.get("nodeSelectorTerms") or [])


def filter_failure(node: dict, pod_spec: dict, anti_nodes: Iterable[str] = ()) -> Optional[Tuple[str, bool]]:
    """The first filter ``node`` fails for the pod, as (reason, preemption could help), or None when it fits."""
    tolerations = pod_spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and \
            not tolerates(tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return "node(s) were unschedulable", False
    for taint in node_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}", False
    if not node_affinity_matches(node, pod_spec):
        return "node(s) didn't match Pod's node affinity/selector", False
    if node["metadata"]["name"] in set(anti_nodes):
        return "node(s) didn't match pod anti-affinity rules", True
    return None


def schedule(nodes: List[dict], pod_spec: dict, anti_nodes: Iterable[str] = ()) -> Tuple[Optional[str], str]:
    """(the node the pod is bound to - the first that fits, by name - or None, and the FailedScheduling message)."""
    failures = {}
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        failed = filter_failure(node, pod_spec, anti_nodes)
        if failed is None:
            return node["metadata"]["name"], ""
        failures[node["metadata"]["name"]] = failed
    return None, fit_error(len(nodes), list(failures.values()))


def fit_error(total: int, failures: List[Tuple[str, bool]]) -> str:
    def histogram(reasons):
        counts = {}
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
        return ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
    msg = f"0/{total} nodes are available"
    if failures:
        msg += f": {histogram(r for r, _ in failures)}."
        msg += (f" preemption: 0/{total} nodes are available: "
                f"{histogram(NO_VICTIMS if helps else NOT_HELPFUL for _, helps in failures)}.")
    else:
        msg += "."
    return msg
