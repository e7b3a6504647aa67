"""mig-controller stand-in, plan side: the host MigCluster and MigPlan reconcile (classification, PV
discovery, target names, validations). Follows shared/reference/mtc/BEHAVIOR.md §2, §6 and API.md §1."""
import re
from typing import Dict, List, Optional, Tuple

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, create_or_get, ensure_namespace, get_condition, labels, now, rand_string,
                     set_condition)

STORAGE_CONVERSION = "StorageConversionPlan"
LBL_MIGRATED_BY_PLAN = "migration.openshift.io/migrated-by-migplan"
LBL_MIGRATED_BY_MIGRATION = "migration.openshift.io/migrated-by-migmigration"
LBL_SOURCE_FOR = "migration.openshift.io/source-for-directvolumemigration"
SUFFIX_RE = re.compile(r"(.*)-mig-([0-9a-zA-Z]{4})$")

MSG = {
    "StorageConversionPlan": "This is an intra-cluster migration plan and none of the source namespaces are "
                             "mapped to different destination namespaces. This plan can only be used for "
                             "Storage Conversion.",
    "StateMigrationPlan": "This is an intra-cluster migration plan and all of the source namespaces are mapped "
                          "to different destination namespaces. This plan can only be used for State Migration.",
    "NamespaceMigrationPlan": "Indirect migration modes can only be used for full namespace migrations.",
    "PvsDiscovered": "The `persistentVolumes` list has been updated with discovered PVs.",
    "Ready": "The migration plan is ready.",
}
# migcluster_types.go accessModeList (subset); an unknown provisioner gets Filesystem:[RWO] only, no Block.
ACCESS_MODES = {
    "openshift-storage.rbd.csi.ceph.com": [("Filesystem", ["ReadWriteOnce"]),
                                           ("Block", ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"])],
    "openshift-storage.cephfs.csi.ceph.com": [("Filesystem", ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"])],
    "kubevirt.io.hostpath-provisioner": [("Filesystem", ["ReadWriteOnce"])],
}
VALID_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "auto")


def items_msg(template: str, items: List[str]) -> str:
    """mig-controller expands the ``[]`` placeholder with the comma-joined item list."""
    return template.replace("[]", "[" + ",".join(items) + "]", 1)


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


# ---- target names --------------------------------------------------------------------------------
def target_name(source: str, previous_target: Optional[str], suffix: str) -> str:
    """getMappedNameForPVC: ``<base>-mig-<suffix>``; base = previous target or source, minus a trailing
    ``-mig-XXXX`` / legacy ``-new``, truncated to 247; result truncated to 253."""
    base = previous_target or source
    m = SUFFIX_RE.match(base)
    if m:
        base = m.group(1)
    elif base.endswith("-new"):
        base = base[:-4]
    return (base[:247] + "-mig-" + suffix)[:253]


def split_pvc_name(name: str) -> Tuple[str, str]:
    if ":" in name:
        src, dst = name.split(":", 1)
        return src, dst
    return name, name


# ---- PV discovery --------------------------------------------------------------------------------
def _owner_type(kube_pods: List[dict], pvc_name: str, vms: List[dict]) -> Tuple[bool, str]:
    """(hasReference, ownerType) from the pods mounting the claim; virt-launcher/hp- pods → VirtualMachine.
    Simplification: with no pod, a VM template naming the claim also counts as VirtualMachine."""
    for pod in kube_pods:
        claims = [((v.get("persistentVolumeClaim") or {}).get("claimName"))
                  for v in (pod.get("spec") or {}).get("volumes") or []]
        if pvc_name not in claims:
            continue
        for ref in pod["metadata"].get("ownerReferences") or []:
            kind = ref.get("kind")
            if kind == "VirtualMachineInstance" or (kind == "Pod" and pod["metadata"]["name"].startswith("hp-")):
                return True, "VirtualMachine"
            if kind == "ReplicaSet":
                return True, "Deployment"
            if kind in ("StatefulSet", "DaemonSet", "Job", "ReplicationController"):
                return True, {"ReplicationController": "DeploymentConfig"}.get(kind, kind)
        return True, "Unknown"
    for vm in vms:
        for v in ((vm.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []:
            if pvc_name in ((v.get("persistentVolumeClaim") or {}).get("claimName"),
                            (v.get("dataVolume") or {}).get("name")):
                return False, "VirtualMachine"
    return False, "Unknown"


def discover(kube, plan: dict, suffix: str, storage_classes: List[dict]) -> List[dict]:
    """updatePvs for a StorageConversionPlan: every Bound claim of the plan namespaces, sorted by PV name."""
    uid = plan["metadata"]["uid"]
    old = {pv["name"]: pv for pv in plan.get("spec", {}).get("persistentVolumes") or []}
    sc_names = {sc["metadata"]["name"] for sc in storage_classes}
    out = []
    for ns in [n.split(":")[0] for n in plan["spec"].get("namespaces") or []]:
        pods = kube.items(R.POD, ns)
        vms = kube.items(R.VM, ns) if _has_kubevirt(kube) else []
        for pvc in kube.items(R.PVC, ns):
            md, spec = pvc["metadata"], pvc.get("spec") or {}
            if (pvc.get("status") or {}).get("phase") != "Bound" or not spec.get("volumeName"):
                continue
            if md.get("deletionTimestamp"):
                continue
            lb = labels(pvc)
            m = SUFFIX_RE.match(md["name"])
            if m and m.group(2) == suffix:
                continue
            if lb.get(LBL_MIGRATED_BY_PLAN) == uid:
                continue
            if lb.get(LBL_SOURCE_FOR) and lb.get(LBL_SOURCE_FOR) != uid:
                continue
            if any(r.get("kind") == "PersistentVolumeClaim" and r.get("controller")
                   for r in md.get("ownerReferences") or []):
                continue
            pv = kube.get_or_none(R.PV, spec["volumeName"])
            if not pv:
                continue
            prev = old.get(pv["metadata"]["name"]) or {}
            prev_pvc = prev.get("pvc") or {}
            _, prev_target = split_pvc_name(prev_pvc.get("name", "")) if prev_pvc.get("name") else (None, None)
            if prev_target == md["name"]:
                prev_target = None
            source_sc = pv["spec"].get("storageClassName") or spec.get("storageClassName") or ""
            block = (pv["spec"].get("volumeMode") or "Filesystem") == "Block"
            has_ref, owner = _owner_type(pods, md["name"], vms)
            selection = prev.get("selection") or {
                "action": "copy",
                "storageClass": source_sc if source_sc in sc_names else "",
                "copyMethod": "block" if block else "filesystem",
            }
            out.append({
                "name": pv["metadata"]["name"],
                "capacity": (pv["spec"].get("capacity") or {}).get("storage"),
                "storageClass": source_sc,
                "supported": {"actions": ["skip", "copy"], "copyMethods": ["filesystem", "block", "snapshot"]},
                "selection": selection,
                "pvc": {"namespace": ns,
                        "name": f"{md['name']}:{target_name(md['name'], prev_target, suffix)}",
                        "accessModes": prev_pvc.get("accessModes") or list(spec.get("accessModes") or []),
                        "volumeMode": prev_pvc.get("volumeMode") or spec.get("volumeMode") or "Filesystem",
                        "hasReference": has_ref, "ownerType": owner},
            })
    out.sort(key=lambda e: e["name"])
    return out


_KV_CACHE: Dict[int, bool] = {}


def _has_kubevirt(kube) -> bool:
    key = id(kube)
    if key not in _KV_CACHE:
        _KV_CACHE[key] = kube.has_api("kubevirt.io", "v1")
    return _KV_CACHE[key]


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
def _version_tuple(text: str) -> Optional[Tuple[int, int]]:
    m = re.match(r"v?(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def kubevirt_conditions(kube) -> List[tuple]:
    """validateKubeVirtInstalled (liveMigrate plans): (type, category, reason, message)."""
    if not _has_kubevirt(kube):
        return [("KubeVirtNotInstalledSourceCluster", "Advisory", "NotFound",
                 "KubeVirt is not installed on the source cluster")]
    kvs = kube.items(R.KUBEVIRT, all_namespaces=True)
    if not kvs:
        return [("KubeVirtNotInstalledSourceCluster", "Advisory", "NotFound",
                 "KubeVirt is not installed on the source cluster")]
    kv = kvs[0]
    out = []
    ver = _version_tuple((kv.get("status") or {}).get("operatorVersion", ""))
    if ver is None or ver < (1, 3):
        out.append(("KubeVirtVersionNotSupported", "Warn", "NotSupported",
                    "KubeVirt version does not support storage live migration, Virtual Machines will be "
                    "stopped instead"))
        return out
    conf = (kv.get("spec") or {}).get("configuration") or {}
    dev = conf.get("developerConfiguration")
    gates = set((dev or {}).get("featureGates") or [])
    disabled = conf.get("vmRolloutStrategy") != "LiveUpdate" or dev is None
    if ver < (1, 5) and not {"VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures"} <= gates:
        disabled = True
    if disabled:
        out.append(("KubeVirtStorageLiveMigrationNotEnabled", "Warn", "NotSupported",
                    "KubeVirt storage live migration is not enabled, Virtual Machines will be stopped instead"))
    return out


def validate_pv_selections(pvs: List[dict], dest_scs: List[dict]) -> List[tuple]:
    """validatePvSelections, messages verbatim from pkg/controller/migplan/validation.go."""
    scs = {}
    for sc in dest_scs:
        scs[sc["name"]] = {m["volumeMode"]: m["accessModes"] for m in sc["volumeAccessModes"]}
    buckets: Dict[str, List[str]] = {k: [] for k in (
        "invalidAction", "invalidSC", "invalidAM", "missingSC", "unavailableAM", "missingCM", "invalidCM",
        "snapshot", "nameConflict")}
    for pv in pvs:
        sel, pvc = pv.get("selection") or {}, pv.get("pvc") or {}
        if sel.get("action") not in (pv.get("supported") or {}).get("actions", []):
            buckets["invalidAction"].append(pv["name"])
            continue
        if sel.get("action") != "copy":
            continue
        if not sel.get("storageClass"):
            buckets["missingSC"].append(pv["name"])
        elif sel["storageClass"] in scs:
            modes = scs[sel["storageClass"]].get(pvc.get("volumeMode") or "Filesystem", [])
            if sel.get("accessMode"):
                if sel["accessMode"] not in VALID_ACCESS_MODES:
                    buckets["invalidAM"].append(pv["name"])
                elif sel["accessMode"] != "auto" and sel["accessMode"] not in modes:
                    buckets["unavailableAM"].append(pv["name"])
            elif not any(m in modes for m in pvc.get("accessModes") or []):
                buckets["unavailableAM"].append(pv["name"])
        else:
            buckets["invalidSC"].append(pv["name"])
        if not sel.get("copyMethod"):
            buckets["missingCM"].append(pv["name"])
        elif sel["copyMethod"] not in pv["supported"].get("copyMethods", []):
            buckets["invalidCM"].append(pv["name"])
        elif sel["copyMethod"] == "snapshot":
            buckets["snapshot"].append(pv["name"])
        src, dst = split_pvc_name(pvc.get("name", ""))
        if src == dst:
            buckets["nameConflict"].append(pvc.get("name", ""))
    table = [
        ("invalidAction", "PvInvalidAction", "Error", "NotDone", "PV in `persistentVolumes` [] has an unsupported `action`."),
        ("invalidSC", "PvInvalidStorageClass", "Error", "NotDone", "PV in `persistentVolumes` [] has an unsupported `storageClass`."),
        ("invalidAM", "PvInvalidAccessMode", "Error", None, "PV in `persistentVolumes` [] has an invalid `accessMode`."),
        ("missingSC", "PvNoStorageClassSelection", "Warn", "NotFound",
         "PV in `persistentVolumes` [] has no `Selected.StorageClass`. Make sure that the necessary static "
         "persistent volumes exist in the destination cluster."),
        ("unavailableAM", "PvWarnAccessModeUnavailable", "Warn", None,
         "AccessMode for PVC in `persistentVolumes` [] unavailable in chosen storage class."),
        ("missingCM", "PvNoCopyMethodSelection", "Error", "NotFound", "PV in `persistentVolumes` [] has no `Selected.CopyMethod`."),
        ("invalidCM", "PvInvalidCopyMethod", "Error", None, "PV in `persistentVolumes` [] has an invalid `copyMethod`."),
        ("snapshot", "PvWarnCopyMethodSnapshot", "Warn", None,
         "CopyMethod for PV in `persistentVolumes` [] is set to `snapshot`. Make sure that the chosen storage class "
         "is compatible with the source volume's storage type for Snapshot support."),
        ("nameConflict", "PvNameConflict", "Error", None,
         "This is a storage migration plan and source PVCs [] are not mapped to distinct destination PVCs. This "
         "either indicates a problem in user input or controller failing to automatically add a prefix to "
         "destination PVC name. Please map the PVC names correctly."),
    ]
    return [(ctype, cat, reason, items_msg(msg, buckets[key])) for key, ctype, cat, reason, msg in table
            if buckets[key]]


def plan_conditions(kube, plan: dict, plans: List[dict], clusters: Dict[str, dict],
                    pvs: List[dict], dest_scs: List[dict]) -> Tuple[List[tuple], Optional[str]]:
    """All conditions of one reconcile as (type, category, reason, message); returns (conds, planType)."""
    spec = plan.get("spec") or {}
    conds: List[tuple] = []
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
    if conds:
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
    # One plan per namespace: HasConflict = same clusters and overlapping source namespaces (open plans).
    mine = {n.split(":")[0] for n in namespaces}
    others = [p["metadata"]["name"] for p in plans
              if p["metadata"]["uid"] != plan["metadata"]["uid"] and not (p.get("spec") or {}).get("closed")
              and mine & {n.split(":")[0] for n in (p.get("spec") or {}).get("namespaces") or []}]
    if others:
        conds.append(("PlanConflict", "Error", "Conflict",
                      items_msg("The migration plan is in conflict with [].", sorted(others))))
    if plan_type == STORAGE_CONVERSION:
        conds.append(("PvsDiscovered", "Required", "Done", MSG["PvsDiscovered"]))
        if len(dest_scs) < 2:
            conds.append(("StorageClassConversionUnavailable", "Critical", "NotSupported",
                          "At least two Storage Classes must be available in the cluster for Storage Class "
                          "Conversion."))
        elif not any((pv.get("selection") or {}).get("action") == "copy" for pv in pvs):
            conds.append(("StorageClassConversionUnavailable", "Critical", "NotSupported",
                          "At least one PVC must be selected for Storage Class Conversion."))
        conds.extend(validate_pv_selections(pvs, dest_scs))
    if spec.get("liveMigrate"):
        conds.extend(kubevirt_conditions(kube))
    return conds, plan_type


def apply_conditions(obj: dict, desired: List[tuple], keep=("Closed",)) -> None:
    """Replace obj's conditions by ``desired`` (keeping lastTransitionTime of unchanged ones), like
    mig-controller's BeginStagingConditions/EndStagingConditions; Ready is added when nothing blocks."""
    old = (obj.get("status") or {}).get("conditions") or []
    st = {"status": {"conditions": [c for c in old if c.get("type") in keep]}}
    for ctype, cat, reason, msg in desired:
        prev = next((c for c in old if c.get("type") == ctype), None)
        if prev:
            st["status"]["conditions"].append(dict(prev))
        set_condition(st, ctype, "True", reason, cat, msg)
    if not any(cat in ("Critical", "Error") for _, cat, _, _ in desired):
        prev = next((c for c in old if c.get("type") == "Ready"), None)
        if prev:
            st["status"]["conditions"].append(dict(prev))
        set_condition(st, "Ready", "True", None, "Required", MSG["Ready"])
    obj.setdefault("status", {})["conditions"] = st["status"]["conditions"]


def reconcile_plan(kube, plan: dict, plans: List[dict], clusters: Dict[str, dict],
                   storage_classes: List[dict]) -> dict:
    """One MigPlan reconcile: suffix, discovery (spec), conditions + storage classes (status)."""
    md = plan["metadata"]
    status = dict(plan.get("status") or {})
    suffix = status.get("suffix") or rand_string(4)
    sc_status = storage_class_status(storage_classes)
    pvs = list((plan.get("spec") or {}).get("persistentVolumes") or [])
    pre, plan_type = plan_conditions(kube, plan, plans, clusters, pvs, sc_status)
    blocked_discovery = any(c[0] in ("InvalidSourceClusterRef", "SourceClusterNotReady",
                                     "InvalidDestinationClusterRef", "DestinationClusterNotReady",
                                     "NamespaceNotFoundOnSourceCluster", "NamespaceListEmpty") for c in pre)
    spec_patch = {}
    if plan_type == STORAGE_CONVERSION and not blocked_discovery:
        new_pvs = discover(kube, plan, suffix, storage_classes)
        if new_pvs != pvs:
            spec_patch["persistentVolumes"] = new_pvs
            pvs = new_pvs
    if (plan.get("spec") or {}).get("refresh"):
        spec_patch["refresh"] = False
    if spec_patch:
        body = dict(plan)
        body["spec"] = dict(plan.get("spec") or {}, **spec_patch)
        # PUT with resourceVersion: a concurrent user edit of a selection makes this 409 → retried next step.
        plan = kube.replace(R.MIGPLAN, body, MTC_NAMESPACE)
        conds, plan_type = plan_conditions(kube, plan, plans, clusters, pvs, sc_status)
    else:
        conds = pre
    new = {"status": {"conditions": list(status.get("conditions") or [])}}
    apply_conditions(new, conds)
    new_status = dict(status, conditions=new["status"]["conditions"], suffix=suffix,
                      srcStorageClasses=sc_status, destStorageClasses=sc_status,
                      observedDigest=str(md.get("generation", "")))
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


def safe_reconcile_plan(kube, plan, plans, clusters, scs) -> Optional[dict]:
    try:
        return reconcile_plan(kube, plan, plans, clusters, scs)
    except errors.Conflict:
        return None  # someone edited the plan meanwhile: next step re-reads it
