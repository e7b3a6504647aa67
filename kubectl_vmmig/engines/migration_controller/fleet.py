"""Pure rules of the migration-controller engine's fleet unit: ONE MultiNamespaceVirtualMachineStorageMigrationPlan
(+ the MultiNamespaceVirtualMachineStorageMigration that starts it) for every namespace's prepared plan, and the
fleet verdict.

Upstream (kubevirt/kubevirt-migration-controller internal/controller/multinamespacestoragemigplan/controller.go and
multinamespacestoragemig/controller.go) only fans out and mirrors:
- createNamespacePlan copies each namespace's spec into a VirtualMachineStorageMigrationPlan named
  GetNamespacedPlanName(plan, namespace), with a UID label and name/namespace annotations but no ownerReference;
  createNamespacedMigration makes the VirtualMachineStorageMigration of the same name, likewise unowned;
- status.namespaces is each child's status copied; there is no phase, Ready or verdict of the fleet's own;
- the migration reconciler re-creates a deleted child migration while the MultiNamespace migration exists.
So the engine marks each child plan with its own labels and per-namespace record (build.RECORD, before the run
starts: status and cancel then treat a child like a plan of a single namespace), judges every child's plan
conditions itself before any volume is made, removes the children too when it takes a refused plan back, cancels
by deleting the MultiNamespace migration FIRST, and judges the fleet from the per-namespace verdicts here.
"""
import hashlib
import json
from typing import Dict, List, Optional

from ... import labels as L
from ... import resources as R
from ...progress import CANCELED, FAILED, RUNNING, SUCCEEDED
from . import build as B

# multinamespacestoragemigplan/controller.go multiNamespaceStorageMigPlanNameAnnotation / ...NamespaceAnnotation /
# ...UIDLabel. createNamespacePlan writes the CHILD's own namespace into the namespace annotation, so it does not
# lead back to the parent (and the parent's watch never wakes for a child outside its namespace: its
# status.namespaces goes stale). The engine finds children by name + the UID label and marks them with L.FLEET.
PARENT_PLAN_NAME = "migration.kubevirt.io/multi-namespace-storage-mig-plan-name"
PARENT_PLAN_NAMESPACE = "migration.kubevirt.io/multi-namespace-storage-mig-plan-namespace"
PARENT_PLAN_UID = "migration.kubevirt.io/multi-namespace-storage-mig-plan-uid"
# multinamespacestoragemig/controller.go multiNamespaceStorageMigrationNameAnnotation / ...NamespaceAnnotation
PARENT_MIG_NAME = "migration.kubevirt.io/multi-namespace-storage-mig-name"
PARENT_MIG_NAMESPACE = "migration.kubevirt.io/multi-namespace-storage-mig-namespace"


def _fnv32a(text: str) -> str:
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def child_name(fleet: str, namespace: str, max_length: int = 253) -> str:
    """GetNamespacedPlanName (multinamespacevmstoragemigrationplan_types.go) = openshift/library-go
    pkg/build/naming GetName(plan, namespace, DNS1123SubdomainMaxLength): the child plan's AND migration's name."""
    name = f"{fleet}-{namespace}"
    if len(name) <= max_length:
        return name
    base_length = max_length - 10 - len(namespace)
    if base_length <= 0:
        return f"{fleet[:min(len(fleet), max(0, max_length - 9))]}-{_fnv32a(name)}"[:max_length]
    return f"{fleet[:base_length]}-{_fnv32a(fleet)}-{namespace}"


def fleet_name(plans: List[dict]) -> str:
    """``fleet-to-<class>-<hash of every namespace's source claims>``: a re-run finds its plan again."""
    sources = ",".join(sorted(f"{p['namespace']}/{m['sourcePVC']}" for p in plans for m in p.get("moves") or []))
    base = f"fleet-to-{plans[0]['targetStorageClass']}"[:40].rstrip("-.")
    return f"{base}-{hashlib.sha256(sources.encode()).hexdigest()[:5]}"


def home_namespace(plans: List[dict]) -> str:
    """Where the MultiNamespace objects live: the fleet's first namespace (a namespace the user may write to)."""
    return sorted(p["namespace"] for p in plans)[0]


def fleet_plan(plans: List[dict], name: str, namespace: str) -> dict:
    """The MultiNamespaceVirtualMachineStorageMigrationPlan: per namespace the same VM list as the one-namespace
    plan (build.storage_plan), sources kept; the annotation holds every namespace's record ({ns: record})."""
    spaces = [{"name": p["namespace"], "retentionPolicy": "keepSource",
               "virtualMachines": B.storage_plan(p, name)["spec"]["virtualMachines"]}
              for p in sorted(plans, key=lambda p: p["namespace"])]
    record = {p["namespace"]: B.record_of(p) for p in plans}
    return {"apiVersion": B.API_VERSION, "kind": R.MN_VMSM_PLAN.kind,
            "metadata": {"name": name, "namespace": namespace, "labels": B.labels(name),
                         "annotations": {B.RECORD: json.dumps(record, sort_keys=True)}},
            "spec": {"retentionPolicy": "keepSource", "namespaces": spaces}}


def fleet_migration(mn_plan: dict) -> dict:
    md = mn_plan["metadata"]
    return {"apiVersion": B.API_VERSION, "kind": R.MN_VMSM.kind,
            "metadata": {"name": md["name"], "namespace": md["namespace"], "labels": B.labels(md["name"])},
            "spec": {"multiNamespaceVirtualMachineStorageMigrationPlanRef": {"name": md["name"]}}}


def label_value(name: str) -> str:
    """A child's name as a label value (at most 63 characters; ``<fleet>-<namespace>`` may be up to 253): cut, plus a
    hash of the whole name so two children never share one."""
    if len(name) <= 63:
        return name
    return f"{name[:54].rstrip('-.')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def child_marks(fleet: str, home: str, plan: dict) -> dict:
    """The merge patch that makes an upstream-made child plan the engine's: its labels, its namespace's record and
    its fleet (``home/fleet``; upstream's own labels and annotations are kept)."""
    return {"metadata": {"labels": B.labels(label_value(child_name(fleet, plan["namespace"]))),
                         "annotations": {B.RECORD: json.dumps(B.record_of(plan), sort_keys=True),
                                         L.FLEET: f"{home}/{fleet}"}}}


def preview(plans: List[dict], vms_by_ns: Dict[str, Dict[str, dict]], checks: List[dict]) -> dict:
    """What apply_fleet will write, for the client dry run: every namespace's destination DataVolumes, the ONE
    MultiNamespace plan and its migration (the per-namespace plans and migrations are upstream's to make), and the
    VM changes the controller will make in each namespace."""
    name = fleet_name(plans)
    mp = fleet_plan(plans, name, home_namespace(plans))
    ordered = sorted(plans, key=lambda p: p["namespace"])
    dvs = [d for p in ordered for d in B.destination_datavolumes(p, B.plan_name(p), vms_by_ns.get(p["namespace"], {}))]
    return {"objects": dvs + [mp, fleet_migration(mp)],
            "patches": [x for p in ordered for x in B.vm_patches(p, vms_by_ns.get(p["namespace"], {}))],
            "checks": list(checks)}


def read_fleet_record(mn_plan: Optional[dict]) -> Dict[str, dict]:
    rec = B.read_record(mn_plan)
    return {ns: r for ns, r in rec.items() if isinstance(r, dict)}


def parent_of(obj: Optional[dict], name_key: str = PARENT_MIG_NAME, ns_key: str = PARENT_MIG_NAMESPACE):
    """(namespace, name) of the MultiNamespace object that made ``obj``, or None."""
    ann = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return (ann[ns_key], ann[name_key]) if ann.get(name_key) and ann.get(ns_key) else None


def fleet_verdict(record: Dict[str, dict], docs: List[dict]) -> str:
    """The fleet's one result from the per-namespace migration documents (progress.build_one's verdicts):
    Succeeded only when every namespace of the record has its document and every recorded disk of it is a
    Succeeded row (copied and in use); Failed when any namespace failed; Canceled when all were canceled."""
    by_ns = {d.get("namespace"): d for d in docs}
    results = []
    for ns, rec in record.items():
        doc = by_ns.get(ns)
        if doc is None:
            results.append(RUNNING)
            continue
        want = {(vm, vol) for vm, r in rec.items() for vol in (r.get("volumes") or {})}
        done = {(d.get("vm"), d.get("volume")) for d in doc.get("disks") or [] if d.get("phase") == "Succeeded"}
        results.append(SUCCEEDED if doc.get("result") == SUCCEEDED and want and want <= done else
                       doc.get("result") if doc.get("result") != SUCCEEDED else RUNNING)
    if not results:
        return RUNNING
    if FAILED in results:
        return FAILED
    if all(r == SUCCEEDED for r in results):
        return SUCCEEDED
    if all(r == CANCELED for r in results):
        return CANCELED
    return RUNNING


def ours(obj: Optional[dict]) -> bool:
    return ((((obj or {}).get("metadata") or {}).get("labels") or {}).get(L.ENGINE)) == B.ENGINE
