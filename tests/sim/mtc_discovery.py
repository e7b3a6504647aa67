"""mig-controller stand-in: MigPlan PV discovery for a StorageConversionPlan.

Follows migtools/mig-controller pkg/controller/migplan/pvlist.go (updatePvs, getPvMap, getClaims,
getSupportedActions, getDefaultSelection, getDestStorageClass, getMappedNameForPVC, trimSuffix) and
pkg/apis/migration/v1alpha1/migplan_types.go (PV.Update, EndPvStaging).
"""
import re
from typing import Dict, List, Optional, Tuple

from kubectl_vmmig import resources as R

from .common import labels

LBL_MIGRATED_BY_PLAN = "migration.openshift.io/migrated-by-migplan"
LBL_MIGRATED_BY_MIGRATION = "migration.openshift.io/migrated-by-migmigration"
LBL_SOURCE_FOR = "migration.openshift.io/source-for-directvolumemigration"
SUFFIX_RE = re.compile(r"(.*)-mig-([0-9a-zA-Z]{4})$")  # pvlist.go suffixMatcher
COPY_METHODS = ["filesystem", "block", "snapshot"]  # pvlist.go getSupportedCopyMethods (static)


# ---- target names --------------------------------------------------------------------------------
def target_name(source: str, previous_target: Optional[str], suffix: str) -> str:
    """pvlist.go getMappedNameForPVC (storage conversion): ``<base>-mig-<suffix>``; base = previous target
    or source, minus ONE trailing ``-mig-XXXX`` (or else a legacy ``-new``) as trimSuffix does, truncated
    to 247; result truncated to 253. (StatefulSet volume naming is not modelled.)"""
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


# ---- supported actions / default selection --------------------------------------------------------
def supported_actions(pv: dict) -> List[str]:
    """pvlist.go getSupportedActions: skip always; a hostPath PV supports ONLY skip; NFS/AWS EBS add copy
    and move; anything else (CSI included) copy. (Settings.Plan.MoveStorageClasses is empty by default.)"""
    spec = pv.get("spec") or {}
    if spec.get("hostPath") is not None:
        return ["skip"]
    if spec.get("nfs") is not None or spec.get("awsElasticBlockStore") is not None:
        return ["skip", "copy", "move"]
    return ["skip", "copy"]


def _dest_storage_class(source_sc: str, storage_classes: List[dict]) -> str:
    """pvlist.go getDestStorageClass (non-gluster/NFS sources): a class with the source's provisioner —
    the source class itself when it is one of them — else the default class, else ""."""
    prov = {sc["metadata"]["name"]: sc.get("provisioner") for sc in storage_classes}
    src_prov = prov.get(source_sc, "")
    matching = [name for name, p in prov.items() if src_prov and p == src_prov]
    if matching:
        return source_sc if source_sc in matching else matching[0]
    for sc in storage_classes:
        if (sc["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
            return sc["metadata"]["name"]
    return ""


def default_selection(pv: dict, source_sc: str, storage_classes: List[dict]) -> dict:
    """pvlist.go getDefaultSelection: the only supported action when there is one, else copy; copyMethod
    block for a Block PV, else filesystem."""
    actions = supported_actions(pv)
    action = actions[0] if len(actions) == 1 else ("copy" if "copy" in actions else "")
    block = ((pv.get("spec") or {}).get("volumeMode") or "Filesystem") == "Block"
    return {"action": action, "storageClass": _dest_storage_class(source_sc, storage_classes),
            "copyMethod": "block" if block else "filesystem"}


# ---- owner types ---------------------------------------------------------------------------------
def _owner_type(kube_pods: List[dict], pvc_name: str, vms: List[dict]) -> Tuple[bool, str]:
    """(hasReference, ownerType) from the pods mounting the claim (createPVCToOwnerTypeMap: virt-launcher
    and hp- pods → VirtualMachine). Simplification: with no pod, a VM template naming the claim also
    counts as VirtualMachine."""
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


# ---- discovery -----------------------------------------------------------------------------------
def _skipped_claim(pvc: dict, plan: dict, suffix: str) -> bool:
    """The claims updatePvs never lists (pvlist.go getClaims):
    - ``strings.HasSuffix(pvc.Name, "-mig-"+plan.GetSuffix())`` — PVCs created by THIS plan (another plan's
      suffix is discovered like any claim);
    - PVCs whose controller owner is a PersistentVolumeClaim (temporary PVCs);
    - storage conversion only: ``alreadyMigrated`` (label migrated-by-migplan == this plan's UID) and
      ``migrationSourceOtherPlan`` (label source-for-directvolumemigration set to ANOTHER plan's UID)."""
    md = pvc["metadata"]
    if md["name"].endswith("-mig-" + suffix):
        return True
    if any(r.get("kind") == "PersistentVolumeClaim" and r.get("controller") for r in md.get("ownerReferences") or []):
        return True
    lb, uid = labels(pvc), plan["metadata"]["uid"]
    if lb.get(LBL_MIGRATED_BY_PLAN) == uid:
        return True
    return bool(lb.get(LBL_SOURCE_FOR)) and lb.get(LBL_SOURCE_FOR) != uid


def _bound_pvs(kube) -> Dict[Tuple[str, str], dict]:
    """getPvMap: every PV whose status.phase is Bound, keyed by its claimRef (namespace, name)."""
    out = {}
    for pv in kube.items(R.PV):
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if (pv.get("status") or {}).get("phase") == "Bound" and ref.get("name"):
            out[(ref.get("namespace"), ref["name"])] = pv
    return out


def discover(kube, plan: dict, suffix: str, storage_classes: List[dict], has_kubevirt: bool) -> List[dict]:
    """updatePvs for a StorageConversionPlan: one entry per listed claim that a Bound PV points at, sorted
    by PV name (EndPvStaging). An existing entry is updated as ``PV.Update`` does: capacity, storageClass,
    supported, pvc are replaced, the user's ``selection`` is kept — EXCEPT that when only one action is
    supported (a hostPath PV: skip) ``selection.action`` is forced to it on every reconcile."""
    old = {pv["name"]: pv for pv in plan.get("spec", {}).get("persistentVolumes") or []}
    pv_map = _bound_pvs(kube)
    out = []
    for ns in [n.split(":")[0] for n in plan["spec"].get("namespaces") or []]:
        pods = kube.items(R.POD, ns)
        vms = kube.items(R.VM, ns) if has_kubevirt else []
        for pvc in kube.items(R.PVC, ns):
            md, spec = pvc["metadata"], pvc.get("spec") or {}
            if _skipped_claim(pvc, plan, suffix):
                continue
            pv = pv_map.get((ns, md["name"]))
            if not pv:
                continue
            prev = old.get(pv["metadata"]["name"]) or {}
            prev_pvc = prev.get("pvc") or {}
            _, prev_target = split_pvc_name(prev_pvc.get("name", "")) if prev_pvc.get("name") else (None, None)
            if prev_target == md["name"]:
                prev_target = None
            source_sc = pv["spec"].get("storageClassName") or \
                (pv["metadata"].get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class") or ""
            actions = supported_actions(pv)
            selection = dict(prev.get("selection") or default_selection(pv, source_sc, storage_classes))
            if len(actions) == 1:  # migplan_types.go PV.Update
                selection["action"] = actions[0]
            has_ref, owner = _owner_type(pods, md["name"], vms)
            entry = {
                "name": pv["metadata"]["name"],
                "capacity": (pv["spec"].get("capacity") or {}).get("storage"),
                "storageClass": source_sc,
                "supported": {"actions": actions, "copyMethods": list(COPY_METHODS)},
                "selection": selection,
                # getClaims: accessModes/volumeMode come from the existing entry (a user edit sticks).
                "pvc": {"namespace": ns,
                        "name": f"{md['name']}:{target_name(md['name'], prev_target, suffix)}",
                        "accessModes": prev_pvc.get("accessModes") or list(spec.get("accessModes") or []),
                        "volumeMode": prev_pvc.get("volumeMode") or spec.get("volumeMode") or "Filesystem",
                        "hasReference": has_ref, "ownerType": owner},
            }
            if pv["spec"].get("nfs"):
                entry["nfs"] = pv["spec"]["nfs"]
            out.append(entry)
    out.sort(key=lambda e: e["name"])
    return out
