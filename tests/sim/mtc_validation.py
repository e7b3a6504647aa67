"""mig-controller stand-in: MigPlan validations of migtools/mig-controller
pkg/controller/migplan/validation.go (validatePvSelections, validateKubeVirtInstalled,
parseKubeVirtOperatorSemver), messages verbatim."""
import re
from typing import Dict, List, Optional, Tuple

from kubectl_vmmig import resources as R

from .mtc_discovery import split_pvc_name

VALID_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "auto")


def items_msg(template: str, items: List[str]) -> str:
    """mig-controller expands the ``[]`` placeholder with the comma-joined item list."""
    return template.replace("[]", "[" + ",".join(items) + "]", 1)


_KV_CACHE: Dict[int, tuple] = {}


def _has_kubevirt(kube) -> bool:
    """Whether the kubevirt.io API exists (cached per client; the client is kept so its id is not reused)."""
    hit = _KV_CACHE.get(id(kube))
    if hit is None or hit[0] is not kube:
        hit = _KV_CACHE[id(kube)] = (kube, kube.has_api("kubevirt.io", "v1"))
    return hit[1]


def _version_tuple(text: str) -> Optional[Tuple[int, int]]:
    """validation.go parseKubeVirtOperatorSemver: at least three dot-separated tokens, optional "v"."""
    tokens = (text or "").split(".")
    if len(tokens) < 3:
        return None
    m = re.match(r"v?(\d+)$", tokens[0])
    n = re.match(r"(\d+)$", tokens[1])
    b = re.match(r"(\d+)(-|$)", tokens[2])
    return (int(m.group(1)), int(n.group(1))) if m and n and b else None


def kubevirt_conditions(kube) -> List[tuple]:
    """validation.go validateKubeVirtInstalled (liveMigrate plans): (type, category, reason, message).
    No KubeVirt API at all (meta.IsNoMatchError) → no condition; zero or more than one KubeVirt CR →
    KubeVirtNotInstalledSourceCluster; the version is the CR's status.operatorVersion."""
    if not _has_kubevirt(kube):
        return []
    kvs = kube.items(R.KUBEVIRT, all_namespaces=True)
    if len(kvs) != 1:
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
    """validation.go validatePvSelections (storage conversion plan), messages verbatim. Not run at all
    while the plan is Suspended (``if plan.Status.HasAnyCondition(Suspended) { return nil }``)."""
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
    out = [(ctype, cat, reason, items_msg(msg, buckets[key])) for key, ctype, cat, reason, msg in table
           if buckets[key]]
    # storage class conversion specific validations (same function): every volume skipped / < 2 classes
    if len(dest_scs) < 2:
        out.append(("StorageClassConversionUnavailable", "Critical", None,
                    "At least two Storage Classes must be available in the cluster for Storage Class Conversion."))
    elif all((pv.get("selection") or {}).get("action") == "skip" for pv in pvs):
        out.append(("StorageClassConversionUnavailable", "Critical", None,
                    "At least one PVC must be selected for Storage Class Conversion."))
    return out
