"""mig-controller stand-in, plan side: the host MigCluster and the MigPlan reconcile — closed plans,
suspension, classification, PV discovery (mtc_discovery), validations. Follows migtools/mig-controller
pkg/controller/migplan/migplan_controller.go (Reconcile, handleClosed, ensureClosed, planSuspended) and
validation.go; shared/reference/mtc/AUDIT.md where it corrects BEHAVIOR.md/API.md."""
import hashlib
import json
from typing import Dict, List, Optional, Tuple

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, create_or_get, ensure_namespace, get_condition, now, rand_string,
                     set_condition)
from .mtc_discovery import (LBL_MIGRATED_BY_MIGRATION, LBL_MIGRATED_BY_PLAN, LBL_SOURCE_FOR,  # noqa: F401
                            SUFFIX_RE, discover, split_pvc_name, target_name)
from .mtc_validation import (_has_kubevirt, items_msg, kubevirt_conditions,  # noqa: F401
                             validate_pv_selections)

STORAGE_CONVERSION = "StorageConversionPlan"

MSG = {
    "StorageConversionPlan": "This is an intra-cluster migration plan and none of the source namespaces are "
                             "mapped to different destination namespaces. This plan can only be used for "
                             "Storage Conversion.",
    "StateMigrationPlan": "This is an intra-cluster migration plan and all of the source namespaces are mapped "
                          "to different destination namespaces. This plan can only be used for State Migration.",
    "NamespaceMigrationPlan": "Indirect migration modes can only be used for full namespace migrations.",
    "PvsDiscovered": "The `persistentVolumes` list has been updated with discovered PVs.",
    "Ready": "The migration plan is ready.",
    "Suspended": "The migrations plan is in suspended state; Limited validation enforced; PV discovery and "
                 "resource reconciliation suspended.",
    "Closed": "The migration plan is closed.",
}
# pvlist.go updatePvs: while Suspended these conditions are re-staged (kept if present); every other
# condition of PV discovery/validatePvSelections is not set, so it disappears (EndStagingConditions).
SUSPENDED_RESTAGED = ("PvsDiscovered", "PvNoSupportedAction", "PvNoStorageClassSelection",
                      "PvWarnAccessModeUnavailable", "PvWarnCopyMethodSnapshot", "PvWarnNoCephAvailable",
                      "PvLimitExceeded")
# migcluster_types.go accessModeList (subset); an unknown provisioner gets Filesystem:[RWO] only, no Block.
ACCESS_MODES = {
    "openshift-storage.rbd.csi.ceph.com": [("Filesystem", ["ReadWriteOnce"]),
                                           ("Block", ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"])],
    "openshift-storage.cephfs.csi.ceph.com": [("Filesystem", ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"])],
    "kubevirt.io.hostpath-provisioner": [("Filesystem", ["ReadWriteOnce"])],
}


# ---- MTC install ---------------------------------------------------------------------------------
def install_mtc(kube, cluster_name: str = "host") -> dict:
    """Test/sandbox helper: namespace openshift-migration + the host MigCluster (like
    samples/mig-cluster-local.yaml), marked Ready as mig-controller would."""
    ensure_namespace(kube, MTC_NAMESPACE)
    mc = create_or_get(kube, R.MIGCLUSTER, {
        "apiVersion": R.MIGCLUSTER.api_version, "kind": "MigCluster",
        "metadata": {"name": cluster_name, "namespace": MTC_NAMESPACE, "labels": {"controller-tools.k8s.io": "1.0"}},
        "spec": {"isHostCluster": True, "refresh": False}}, MTC_NAMESPACE)
    reconcile_cluster(kube, mc)
    return kube.get(R.MIGCLUSTER, cluster_name, MTC_NAMESPACE)


def reconcile_cluster(kube, mc: dict) -> None:
    if get_condition(mc, "Ready") and (mc.get("status") or {}).get("operatorVersion"):
        return
    st = {"conditions": list((mc.get("status") or {}).get("conditions") or [])}
    obj = {"status": st}
    if mc.get("spec", {}).get("isHostCluster"):
        set_condition(obj, "Ready", "True", None, "Required", "The cluster is ready.")
    st["operatorVersion"] = "1.8.9"
    st["observedDigest"] = "sim"
    kube.patch(R.MIGCLUSTER, mc["metadata"]["name"], {"status": st}, MTC_NAMESPACE)


def storage_class_status(storage_classes: List[dict]) -> List[dict]:
    out = []
    for sc in storage_classes:
        ann = sc["metadata"].get("annotations") or {}
        modes = ACCESS_MODES.get(sc.get("provisioner"), [("Filesystem", ["ReadWriteOnce"])])
        out.append({"name": sc["metadata"]["name"], "provisioner": sc.get("provisioner"),
                    "default": ann.get("storageclass.kubernetes.io/is-default-class") == "true",
                    "volumeAccessModes": [{"volumeMode": vm, "accessModes": am} for vm, am in modes]})
    return out


# ---- validations ---------------------------------------------------------------------------------
def has_conflict(plan: dict, other: dict) -> bool:
    """migplan_types.go HasConflict: a MigCluster ref in common (src/dest in any combination, name and
    namespace) AND a ``spec.namespaces`` entry in common (exact strings)."""
    def ref(p, key):
        r = (p.get("spec") or {}).get(key) or {}
        return (r.get("namespace"), r.get("name"))
    mine = {ref(plan, "srcMigClusterRef"), ref(plan, "destMigClusterRef")}
    theirs = {ref(other, "srcMigClusterRef"), ref(other, "destMigClusterRef")}
    if not mine & theirs:
        return False
    return bool(set((plan.get("spec") or {}).get("namespaces") or [])
                & set((other.get("spec") or {}).get("namespaces") or []))


def plan_conditions(kube, plan: dict, plans: List[dict], clusters: Dict[str, dict],
                    pvs: List[dict], dest_scs: List[dict], suspended: bool = False) -> Tuple[List[tuple], Optional[str]]:
    """All conditions of one reconcile as (type, category, reason, message); returns (conds, planType).
    ``suspended``: planSuspended said so — Suspended is set, PV discovery conditions are only re-staged
    (pvlist.go updatePvs) and validatePvSelections is skipped (validation.go)."""
    spec = plan.get("spec") or {}
    conds: List[tuple] = []
    if suspended:
        conds.append(("Suspended", "Advisory", None, MSG["Suspended"]))
    refs = []
    for key, prefix in (("srcMigClusterRef", "Source"), ("destMigClusterRef", "Destination")):
        ref = spec.get(key) or {}
        if not ref.get("name"):
            conds.append((f"Invalid{prefix}ClusterRef", "Critical", "NotSet",
                          f"The `{key}` must reference a `migcluster`."))
        elif ref["name"] not in clusters:
            conds.append((f"Invalid{prefix}ClusterRef", "Critical", "NotFound",
                          f"The `{key}` must reference a valid `migcluster`."))
        elif not get_condition(clusters[ref["name"]], "Ready"):
            conds.append((f"{prefix}ClusterNotReady", "Critical", "NotReady",
                          f"The {prefix.lower()} cluster is not ready."))
        refs.append(clusters.get(ref.get("name")))
    namespaces = spec.get("namespaces") or []
    if not namespaces:
        conds.append(("NamespaceListEmpty", "Critical", "NotFound", "The `namespaces` list may not be empty."))
    missing = [n.split(":")[0] for n in namespaces if not kube.get_or_none(R.NAMESPACE, n.split(":")[0])]
    if missing:
        conds.append(("NamespaceNotFoundOnSourceCluster", "Critical", "NotFound",
                      items_msg("Namespaces [] not found on the source cluster.", missing)))
    plan_type = None
    if [c for c in conds if c[0] != "Suspended"]:
        return conds, plan_type
    intra = refs[0] and refs[1] and (refs[0]["spec"].get("url") or "") == (refs[1]["spec"].get("url") or "")
    mapped = [n for n in namespaces if ":" in n and n.split(":")[0] != n.split(":")[1]]
    if spec.get("indirectVolumeMigration") or spec.get("indirectImageMigration"):
        plan_type = "NamespaceMigrationPlan"
        if intra and spec.get("indirectVolumeMigration"):
            conds.append(("IntraClusterMigration", "Critical", "NamespaceMigrationPlan",
                          "Indirect volume migration mode cannot be used in intra-cluster migrations."))
    elif intra and not mapped:
        plan_type = STORAGE_CONVERSION
    elif intra and len(mapped) == len(namespaces):
        plan_type = "StateMigrationPlan"
    elif intra:
        conds.append(("IntraClusterMigration", "Critical", "ConflictingNamespaces",
                      "This is an intra-cluster migration plan. Either all or none of the source namespaces "
                      "should be mapped to distinct destination namespaces."))
    else:
        plan_type = "NamespaceMigrationPlan"
    if plan_type:
        conds.insert(0, ("MigrationTypeIdentified", "Advisory", plan_type, MSG[plan_type]))
    # validation.go validateConflict: migapi.ListPlans lists only OPEN plans of openshift-migration
    # (model.go, MatchingFields{ClosedIndexField: "false"}); HasConflict needs a shared MigCluster ref.
    others = [p["metadata"]["name"] for p in plans
              if p["metadata"]["uid"] != plan["metadata"]["uid"] and not (p.get("spec") or {}).get("closed")
              and p["metadata"].get("namespace") == MTC_NAMESPACE and has_conflict(plan, p)]
    if others:
        conds.append(("PlanConflict", "Error", "Conflict",
                      items_msg("The migration plan is in conflict with [].", sorted(others))))
    if plan_type == STORAGE_CONVERSION:
        if suspended:
            old = {c.get("type"): c for c in (plan.get("status") or {}).get("conditions") or []}
            conds.extend((t, old[t].get("category"), old[t].get("reason"), old[t].get("message"))
                         for t in SUSPENDED_RESTAGED if t in old)
        else:
            conds.append(("PvsDiscovered", "Required", "Done", MSG["PvsDiscovered"]))
            conds.extend(validate_pv_selections(pvs, dest_scs))
    if spec.get("liveMigrate"):
        conds.extend(kubevirt_conditions(kube))
    return conds, plan_type


def apply_conditions(obj: dict, desired: List[tuple], keep=("Closed",)) -> None:
    """Replace obj's conditions by ``desired`` (keeping lastTransitionTime of unchanged ones), like
    mig-controller's BeginStagingConditions/EndStagingConditions; Ready is added when nothing blocks
    (migplan_controller.go Reconcile: PvsDiscovered for a storage conversion plan, no blocker)."""
    old = (obj.get("status") or {}).get("conditions") or []
    st = {"status": {"conditions": [c for c in old if c.get("type") in keep]}}
    for ctype, cat, reason, msg in desired:
        prev = next((c for c in old if c.get("type") == ctype), None)
        if prev:
            st["status"]["conditions"].append(dict(prev))
        set_condition(st, ctype, "True", reason, cat, msg)
    types = {c[0] for c in desired}
    sc_plan = any(c[0] == "MigrationTypeIdentified" and c[2] == STORAGE_CONVERSION for c in desired)
    if not any(cat in ("Critical", "Error") for _, cat, _, _ in desired) and (not sc_plan or "PvsDiscovered" in types):
        prev = next((c for c in old if c.get("type") == "Ready"), None)
        if prev:
            st["status"]["conditions"].append(dict(prev))
        set_condition(st, "Ready", "True", None, "Required", MSG["Ready"])
    obj.setdefault("status", {})["conditions"] = st["status"]["conditions"]


def spec_digest(spec: dict) -> str:
    """resource.go MarkReconciled: ``status.observedDigest = digest(r.Spec)`` (sha256 of the spec's JSON),
    so it changes exactly when the spec does — and comes back to an earlier value when the controller
    reverts a user edit (PV.Update forcing the only supported action)."""
    return hashlib.sha256(json.dumps(spec or {}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_suspended(plan: dict, migrations: List[dict]) -> bool:
    """migplan_controller.go planSuspended: the plan's MigMigrations newest first — one with a Running
    condition, or the newest Succeeded one with neither ``stage`` nor ``rollback`` (the plugin's
    migrateState stage runs AND cutovers), suspends it; a Succeeded rollback un-suspends it; others are
    passed over. ``spec.refresh: true`` un-suspends for this reconcile."""
    if (plan.get("spec") or {}).get("refresh"):
        return False
    mine = [m for m in migrations
            if ((m.get("spec") or {}).get("migPlanRef") or {}).get("name") == plan["metadata"]["name"]]
    mine.sort(key=lambda m: (m["metadata"].get("creationTimestamp") or "", m["metadata"]["name"]), reverse=True)
    for m in mine:
        spec = m.get("spec") or {}
        if get_condition(m, "Running"):
            return True
        if get_condition(m, "Succeeded") and not spec.get("stage") and not spec.get("rollback"):
            return True
        if get_condition(m, "Succeeded") and spec.get("rollback"):
            return False
    return False


def handle_closed(kube, plan: dict) -> dict:
    """migplan_controller.go handleClosed/ensureClosed: the first reconcile of a closed plan removes Ready
    (SetReady false), StorageEnsured, RegistriesEnsured and Suspended, adds Closed (Advisory) and marks it
    reconciled; once Closed is present the plan is never reconciled again (observedDigest stays)."""
    if get_condition(plan, "Closed"):
        return plan
    drop = ("Ready", "StorageEnsured", "RegistriesEnsured", "Suspended")
    st = {"status": {"conditions": [c for c in (plan.get("status") or {}).get("conditions") or []
                                    if c.get("type") not in drop]}}
    set_condition(st, "Closed", "True", None, "Advisory", MSG["Closed"])
    new_status = dict(plan.get("status") or {}, conditions=st["status"]["conditions"],
                      observedDigest=spec_digest(plan.get("spec")))
    return kube.patch(R.MIGPLAN, plan["metadata"]["name"], {"status": new_status}, MTC_NAMESPACE)


def reconcile_plan(kube, plan: dict, plans: List[dict], clusters: Dict[str, dict],
                   storage_classes: List[dict], migrations: Optional[List[dict]] = None) -> dict:
    """One MigPlan reconcile (migplan_controller.go Reconcile): handleClosed, suffix, planSuspended,
    validations, updatePvs (spec), validatePvSelections, Ready, ``spec.refresh = false``, MarkReconciled."""
    md = plan["metadata"]
    if (plan.get("spec") or {}).get("closed"):
        return handle_closed(kube, plan)
    status = dict(plan.get("status") or {})
    suffix = status.get("suffix") or rand_string(4)
    if migrations is None:
        migrations = kube.items(R.MIGMIGRATION, MTC_NAMESPACE)
    suspended = plan_suspended(plan, migrations)
    sc_status = storage_class_status(storage_classes)
    pvs = list((plan.get("spec") or {}).get("persistentVolumes") or [])
    pre, plan_type = plan_conditions(kube, plan, plans, clusters, pvs, sc_status, suspended)
    blocked_discovery = any(c[0] in ("InvalidSourceClusterRef", "SourceClusterNotReady",
                                     "InvalidDestinationClusterRef", "DestinationClusterNotReady",
                                     "NamespaceNotFoundOnSourceCluster", "NamespaceListEmpty") for c in pre)
    spec_patch = {}
    # pvlist.go updatePvs returns at once while Suspended: no discovery, storage class lists unchanged.
    discovering = plan_type == STORAGE_CONVERSION and not blocked_discovery and not suspended
    if discovering:
        new_pvs = discover(kube, plan, suffix, storage_classes, _has_kubevirt(kube))
        if new_pvs != pvs:
            spec_patch["persistentVolumes"] = new_pvs
            pvs = new_pvs
    if (plan.get("spec") or {}).get("refresh"):
        spec_patch["refresh"] = False  # "Mark as refreshed", at the end of every full reconcile
    if spec_patch:
        body = dict(plan)
        body["spec"] = dict(plan.get("spec") or {}, **spec_patch)
        # PUT with resourceVersion: a concurrent user edit of a selection makes this 409 → retried next step.
        plan = kube.replace(R.MIGPLAN, body, MTC_NAMESPACE)
        conds, plan_type = plan_conditions(kube, plan, plans, clusters, pvs, sc_status, suspended)
    else:
        conds = pre
    new = {"status": {"conditions": list(status.get("conditions") or [])}}
    apply_conditions(new, conds)
    new_status = dict(status, conditions=new["status"]["conditions"], suffix=suffix,
                      observedDigest=spec_digest(plan.get("spec")))
    if discovering or not status.get("destStorageClasses"):
        new_status.update(srcStorageClasses=sc_status, destStorageClasses=sc_status)
    if new_status != (plan.get("status") or {}):
        plan = kube.patch(R.MIGPLAN, md["name"], {"status": new_status}, MTC_NAMESPACE)
    return plan


def plan_type(plan: dict) -> Optional[str]:
    c = get_condition(plan, "MigrationTypeIdentified")
    return c.get("reason") if c else None


def plan_ready(plan: dict) -> bool:
    return get_condition(plan, "Ready") is not None


def touch_time() -> str:
    return now()


def safe_reconcile_plan(kube, plan, plans, clusters, scs, migrations=None) -> Optional[dict]:
    try:
        return reconcile_plan(kube, plan, plans, clusters, scs, migrations)
    except errors.Conflict:
        return None  # someone edited the plan meanwhile: next step re-reads it
