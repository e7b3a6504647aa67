"""kubevirt-migration-controller stand-in: the two MultiNamespace reconcilers (v0.2.x).

Each function follows one upstream function of kubevirt/kubevirt-migration-controller:
internal/controller/multinamespacestoragemigplan/controller.go (MultiNamespaceStorageMigPlanReconciler) and
internal/controller/multinamespacestoragemig/controller.go (MultiNamespaceStorageMigrationReconciler).

What upstream does NOT do, and so neither does this stand-in (the plugin's engine must make up for it):
- no ownerReferences and no finalizer on the per-namespace plans and migrations it creates (only a UID label and
  name/namespace annotations): deleting the MultiNamespace plan or migration leaves every child in place;
- no phase, no Ready, no verdict of its own: ``status.namespaces`` only mirrors each child's status;
- it never waits for the per-namespace plans before creating the per-namespace migrations, and it re-creates a
  per-namespace migration that was deleted (cancel) while the MultiNamespace migration still exists.
"""
import copy
import json
from typing import Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import remove_condition, set_condition
from .migration_controller_plan import get_name
from .migration_controller_run import blocked

# multinamespacestoragemigplan/controller.go constants
PLAN_UID_LABEL = "migration.kubevirt.io/multi-namespace-storage-mig-plan-uid"
PLAN_NAME_ANNOTATION = "migration.kubevirt.io/multi-namespace-storage-mig-plan-name"
PLAN_NAMESPACE_ANNOTATION = "migration.kubevirt.io/multi-namespace-storage-mig-plan-namespace"
INVALID_NAMESPACE = "InvalidNamespace"
# multinamespacestoragemig/controller.go constants
MIG_UID_LABEL = "migration.kubevirt.io/multi-namespace-storage-mig-uid"
MIG_NAME_ANNOTATION = "migration.kubevirt.io/multi-namespace-storage-mig-name"
MIG_NAMESPACE_ANNOTATION = "migration.kubevirt.io/multi-namespace-storage-mig-namespace"
DNS1123_SUBDOMAIN_MAX = 253  # kvalidation.DNS1123SubdomainMaxLength


def namespaced_plan_name(plan_name: str, namespace: str) -> str:
    """api/.../multinamespacevmstoragemigrationplan_types.go GetNamespacedPlanName: naming.GetName(plan, ns, 253).
    The per-namespace plan AND the per-namespace migration both carry this name."""
    return get_name(plan_name, namespace, DNS1123_SUBDOMAIN_MAX)


def _by_name(items):
    return sorted(items, key=lambda e: e.get("name") or "")


# ---- when a reconcile runs (the watches of SetupWithManager) -----------------------------------------------------
class Triggers:
    """controller-runtime runs a reconcile on an event, not on a timer (no resync within a test): a MultiNamespace
    object is reconciled when it changed, or when a child changed whose annotations map back to it —
    getMultiNamespaceVirtualMachineStorageMigrationsPlanForStorageMigration / ...ForMultiNamespaceStorageMigration
    look the parent up at (name annotation, namespace annotation). createNamespacePlan writes the CHILD's namespace
    into the plan-namespace annotation, so a child outside the parent's namespace maps to nothing: its status
    changes never wake the parent plan, whose ``status.namespaces`` then shows that child as it was at the parent's
    last reconcile. (createNamespacedMigration writes the migration's own namespace: those children do wake it.)"""

    def __init__(self):
        self.seen = {}  # parent uid (+ child ns/name) -> resourceVersion at the parent's last reconcile

    def due(self, parent: dict, children: list, name_key: str, ns_key: str) -> bool:
        md = parent["metadata"]
        key = md["uid"]
        mine = [c for c in children if (c["metadata"].get("annotations") or {}).get(name_key) == md["name"]
                and (c["metadata"].get("annotations") or {}).get(ns_key) == md["namespace"]]
        now = {key: md.get("resourceVersion")}
        now.update({(key, c["metadata"]["namespace"], c["metadata"]["name"]): c["metadata"].get("resourceVersion")
                    for c in mine})
        gone = [k for k in self.seen if isinstance(k, tuple) and k[0] == key and k not in now]  # a delete event
        changed = bool(gone) or any(self.seen.get(k) != v for k, v in now.items())
        for k in gone:
            del self.seen[k]
        self.seen.update(now)
        return changed


# ---- MultiNamespaceVirtualMachineStorageMigrationPlan ---------------------------------------------------------
def validate_namespace(kube, ns_spec: dict) -> str:
    """multinamespacestoragemigplan/controller.go validateNamespace: '' when fine, else the message."""
    if set(ns_spec) <= {"name"}:  # the CRD requires virtualMachines and defaults retentionPolicy: unreachable
        return f"namespace {ns_spec.get('name')} has no plan"  # VirtualMachineStorageMigrationPlanSpec == nil
    ns = kube.get_or_none(R.NAMESPACE, ns_spec["name"])
    if ns is None:
        return f"namespace {ns_spec['name']} not found"
    if ns["metadata"].get("deletionTimestamp"):
        return f"namespace {ns_spec['name']} is being deleted"
    return ""


def child_plan(plan: dict, ns_spec: dict) -> dict:
    """multinamespacestoragemigplan/controller.go createNamespacePlan: the namespace's spec (without ``name``),
    the parent's retentionPolicy only when it is not the default keepSource and the child's is (or unset)."""
    spec = {k: copy.deepcopy(v) for k, v in ns_spec.items() if k != "name"}
    parent = (plan.get("spec") or {}).get("retentionPolicy")
    if parent and parent != "keepSource" and spec.get("retentionPolicy") in (None, "keepSource"):
        spec["retentionPolicy"] = parent
    md = plan["metadata"]
    return {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "VirtualMachineStorageMigrationPlan",
            "metadata": {"name": namespaced_plan_name(md["name"], ns_spec["name"]), "namespace": ns_spec["name"],
                         "labels": {PLAN_UID_LABEL: md["uid"]},
                         "annotations": {PLAN_NAME_ANNOTATION: md["name"], PLAN_NAMESPACE_ANNOTATION: ns_spec["name"]}},
            "spec": spec}


def update_namespace_plan_status(plan: dict, child: dict) -> None:
    """multinamespacestoragemigplan/controller.go updateNamespacePlanStatus: the child's whole status, copied
    under its namespace's name; the list sorted by name."""
    entries = [e for e in (plan["status"].get("namespaces") or []) if e.get("name") != child["metadata"]["namespace"]]
    entries.append({"name": child["metadata"]["namespace"], **copy.deepcopy(child.get("status") or {})})
    plan["status"]["namespaces"] = _by_name(entries)


def reconcile_plan(ctl, plan: dict) -> None:
    """multinamespacestoragemigplan/controller.go Reconcile. An error (creating a child in a namespace that does
    not exist) ends the pass before the status write, as upstream returns it: InvalidNamespace is then never seen
    for that namespace."""
    kube = ctl.kube
    new = copy.deepcopy(plan)
    new.setdefault("status", {})
    invalid = False
    for ns_spec in (plan.get("spec") or {}).get("namespaces") or []:
        message = validate_namespace(kube, ns_spec)
        if message:
            # SetCondition(Type InvalidNamespace, Status True, Message) — no reason, category "" (not a blocker;
            # conditions.go Condition.Category has no omitempty)
            set_condition(new, INVALID_NAMESPACE, "True", None, "", message)
            invalid = True
        name = namespaced_plan_name(plan["metadata"]["name"], ns_spec["name"])
        child = kube.get_or_none(R.VMSM_PLAN, name, ns_spec["name"])  # getNamespacePlan
        if child is None:
            try:
                kube.create(R.VMSM_PLAN, child_plan(plan, ns_spec), ns_spec["name"])
            except errors.Conflict:
                pass  # IsAlreadyExists -> nil
            except errors.ApiError as exc:
                ctl.errors = (ctl.errors + [f"{plan['metadata']['namespace']}/{plan['metadata']['name']}: "
                                            f"createNamespacePlan {ns_spec['name']}: {exc}"])[-20:]
                return
        else:
            update_namespace_plan_status(new, child)
    if not invalid:
        remove_condition(new, INVALID_NAMESPACE)
    if json.dumps(new["status"], sort_keys=True) != json.dumps(plan.get("status") or {}, sort_keys=True):
        try:  # Status().Update; the r.Update that follows upstream rewrites an unchanged spec (a no-op here)
            kube.request("PUT", R.MN_VMSM_PLAN.path(plan["metadata"]["namespace"], plan["metadata"]["name"],
                                                   "status"), body=new)
        except (errors.Conflict, errors.NotFound):
            pass


# ---- MultiNamespaceVirtualMachineStorageMigration -------------------------------------------------------------
def child_migration(plan_name: str, mig: dict, ns_spec: dict) -> dict:
    """multinamespacestoragemig/controller.go createNamespacedMigration."""
    name = namespaced_plan_name(plan_name, ns_spec["name"])
    md = mig["metadata"]
    return {"apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "VirtualMachineStorageMigration",
            "metadata": {"name": name, "namespace": ns_spec["name"], "labels": {MIG_UID_LABEL: md["uid"]},
                         "annotations": {MIG_NAME_ANNOTATION: md["name"], MIG_NAMESPACE_ANNOTATION: md["namespace"]}},
            "spec": {"virtualMachineStorageMigrationPlanRef": {"namespace": ns_spec["name"], "name": name}}}


def reconcile_migration(ctl, mig: dict) -> None:
    """multinamespacestoragemig/controller.go Reconcile: plan lookup (InvalidPlanRef, Critical), then per namespace
    of the plan's spec: create the missing per-namespace migration and END the pass (one per reconcile, the
    status is not written), else mirror its status; the list is rebuilt from scratch on every unblocked pass."""
    kube = ctl.kube
    ref = (mig.get("spec") or {}).get("multiNamespaceVirtualMachineStorageMigrationPlanRef")
    if ref is None:
        return  # "No multi-namespace plan reference found"
    ns = mig["metadata"]["namespace"]  # the ref's namespace is overwritten with the migration's own
    new = copy.deepcopy(mig)
    new.setdefault("status", {})
    plan: Optional[dict] = kube.get_or_none(R.MN_VMSM_PLAN, ref.get("name") or "", ns)
    if plan is not None:
        remove_condition(new, "InvalidPlanRef")
    else:
        set_condition(new, "InvalidPlanRef", "True", "NotFound", "Critical",
                      "The referenced `multiNamespaceVirtualMachineStorageMigrationPlanRef` does not exist, "
                      f"subject: {ns}/{ref.get('name')}.")
    if not blocked(new):
        entries = []
        for ns_spec in (plan.get("spec") or {}).get("namespaces") or []:
            child = kube.get_or_none(R.VMSM, namespaced_plan_name(plan["metadata"]["name"], ns_spec["name"]),
                                     ns_spec["name"])  # getVirtualMachineStorageMigration
            if child is None:
                try:
                    kube.create(R.VMSM, child_migration(plan["metadata"]["name"], mig, ns_spec), ns_spec["name"])
                except errors.Conflict:
                    pass
                except errors.ApiError as exc:
                    ctl.errors = (ctl.errors + [f"{ns}/{mig['metadata']['name']}: createNamespacedMigration "
                                                f"{ns_spec['name']}: {exc}"])[-20:]
                return
            entries.append({"name": ns_spec["name"], **copy.deepcopy(child.get("status") or {})})
        new["status"]["namespaces"] = _by_name(entries)  # updateNamespaceMigrationStatus + SortFunc
    if json.dumps(new["status"], sort_keys=True) != json.dumps(mig.get("status") or {}, sort_keys=True):
        try:
            kube.request("PUT", R.MN_VMSM.path(ns, mig["metadata"]["name"], "status"), body=new)
        except (errors.Conflict, errors.NotFound):
            pass
