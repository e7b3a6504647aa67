"""Pure builders for the MTC engine: MigPlan, selection patch, MigMigration, names, result judgement.

Follows mig-controller's storage conversion (migtools/mig-controller pkg/controller/migplan: validation.go, an
unmapped namespace entry makes a StorageConversionPlan; pvlist.go, the discovered PVs): one plan per namespace in MTC's
namespace, PV selections patched after discovery (copy for the chosen disks, skip for every other PVC),
then a MigMigration with ``migrateState: true`` (cutover adds ``quiescePods: true``; rollback is
``rollback: true``). Nothing here does I/O.
"""
import hashlib
import json
import re
from typing import Dict, List, Optional, Tuple

from ... import labels as L
from ...conditions import condition, true_conditions

GROUP_VERSION = "migration.openshift.io/v1alpha1"
MANAGED_BY, MANAGER, MIGRATION_LABEL, ENGINE_LABEL = L.MANAGED_BY, L.MANAGER, L.MIGRATION, L.ENGINE
TYPE_LABEL, REQUEST_ANNOTATION, REQUEST_HASH_LABEL = L.TYPE, L.REQUEST, L.REQUEST_HASH
DEFAULT_NAMESPACE = "openshift-migration"
GENERATION_LABEL, SUPERSEDED_ANNOTATION, MIGPLAN_LABEL = L.PLAN_GENERATION, L.SUPERSEDED_BY, L.MTC_MIGRATED_BY_MIGPLAN
SOURCE_FOR_LABEL = L.MTC_SOURCE_FOR
HOOK_PHASES = {p.lower(): p for p in ("PreBackup", "PostBackup", "PreRestore", "PostRestore")}
BLOCKING = ("Critical", "Error")
# Plan conditions that mean the cluster cannot live-migrate storage (mig-controller pkg/controller/migplan/
# validation.go validateKubeVirtInstalled).
LIVE_BLOCKING_PLAN_CONDITIONS = ("KubeVirtNotInstalledSourceCluster", "KubeVirtVersionNotSupported",
                                 "KubeVirtStorageLiveMigrationNotEnabled")
FATAL_MIGRATION_CONDITIONS = ("InvalidSpec", "InvalidPlanRef", "PlanClosed", "HasFinalMigration",
                              "ConflictingPVCMappings")
_MIG_SUFFIX = re.compile(r"-mig-[a-z0-9]{4}$")
SUFFIX_PLACEHOLDER = "xxxx"


def labels(migration: str, extra: Optional[dict] = None) -> Dict[str, str]:
    out = L.ours("mtc", migration)
    out.update(extra or {})
    return out


def is_own(obj: dict) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == MANAGER


def check_mtc_namespace(wanted: Optional[str]) -> str:
    """MTC's namespace is ``openshift-migration``: every mig-controller watch is filtered to
    ``migapi.OpenshiftMigrationNamespace`` (migmigration/predicate.go, migplan/predicate.go,
    directvolumemigration_controller.go), so objects written anywhere else are never reconciled."""
    from ... import errors

    if wanted and wanted != DEFAULT_NAMESPACE:
        raise errors.BadInput(f"--mtc-namespace {wanted}: mig-controller reconciles only namespace "
                              f"{DEFAULT_NAMESPACE}", f"drop --mtc-namespace (or pass {DEFAULT_NAMESPACE})")
    return DEFAULT_NAMESPACE


def plan_name(namespace: str, generation: int = 1) -> str:
    """Deterministic: the namespace (and, from the second, the plan's generation) names the plan. Two open plans
    cannot cover one namespace (PlanConflict, migplan/validation.go), so a namespace has one open plan at a time."""
    tail = "" if generation <= 1 else f"-{generation}"
    name = f"vm-storage-{namespace}{tail}"
    if len(name) > 63:  # keep it usable as a label value
        name = f"vm-storage-{namespace}"[:54 - len(tail)] + "-" + hashlib.sha256(namespace.encode()).hexdigest()[:8] \
            + tail
    return name


def target_name(source: str, suffix: Optional[str]) -> str:
    """MTC's ``getMappedNameForPVC`` for a StorageConversionPlan: ``<base>-mig-<suffix>`` (pkg/controller/migplan/pvlist.go).

    ``<base>`` drops a trailing ``-mig-XXXX``, else a legacy ``-new`` (``trimSuffix``: one or the other), and is cut
    to 247 chars."""
    base = _MIG_SUFFIX.sub("", source)
    if base == source and base.endswith("-new"):
        base = base[:-4]
    return (base[:247] + "-mig-" + (suffix or SUFFIX_PLACEHOLDER))[:253]


def request_of(plan: dict, kind: str) -> dict:
    """What the user asked for, stored on the objects so a re-run can recognise its own migration."""
    return {"type": kind, "namespace": plan["namespace"], "targetStorageClass": plan["targetStorageClass"],
            "liveMigrate": plan["liveMigrate"], "vms": sorted(plan["vms"]),
            "disks": sorted(m["sourcePVC"] for m in plan["moves"])}


def request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]


def parse_hooks(specs) -> List[Tuple[str, str]]:
    """'NAME:PHASE' (phase preBackup|postBackup|preRestore|postRestore, any case) -> [(name, Phase)]."""
    out, phases = [], set()
    for spec in specs or ():
        name, sep, phase = str(spec).partition(":")
        canon = HOOK_PHASES.get(phase.strip().lower())
        if not sep or not name.strip() or canon is None:
            raise ValueError(f"--hook {spec!r}: expected NAME:PHASE with PHASE one of "
                             "preBackup, postBackup, preRestore, postRestore")
        if canon in phases:
            raise ValueError(f"--hook: more than one hook for phase {canon}; MTC allows one hook per phase")
        phases.add(canon)
        out.append((name.strip(), canon))
    if len(out) > 4:
        raise ValueError("--hook: at most four hooks (one per phase)")
    return out


def build_migplan(plan: dict, mtc_namespace: str, host_cluster: str, hooks=(),
                  service_account: str = "migration-controller", gen: int = 1) -> dict:
    """The MigPlan as the plugin creates it (PV selections are patched after discovery)."""
    name = plan_name(plan["namespace"], gen)
    ref = {"name": host_cluster, "namespace": mtc_namespace}
    spec = {"srcMigClusterRef": dict(ref), "destMigClusterRef": dict(ref),
            "namespaces": [plan["namespace"]], "liveMigrate": bool(plan["liveMigrate"])}
    if hooks:
        spec["hooks"] = [{"reference": {"name": h, "namespace": mtc_namespace}, "phase": ph,
                          "executionNamespace": mtc_namespace, "serviceAccount": service_account}
                         for h, ph in hooks]
    return {"apiVersion": GROUP_VERSION, "kind": "MigPlan",
            "metadata": {"name": name, "namespace": mtc_namespace,
                         "labels": labels(name, {GENERATION_LABEL: str(gen)} if gen > 1 else None),
                         "annotations": {REQUEST_ANNOTATION: json.dumps(request_of(plan, "plan"), sort_keys=True)}},
            "spec": spec}


def migration_name(plan_nm: str, kind: str, req_hash: str, attempt: int = 1) -> str:
    base = f"{plan_nm}-{kind}-{req_hash}"
    return base if attempt <= 1 else f"{base}-{attempt}"


def build_migmigration(plan: dict, mtc_namespace: str, kind: str, attempt: int = 1,
                       pname: Optional[str] = None) -> dict:
    """kind: 'cutover' (quiesce + swap), 'stage' (pre-copy, repeatable) or 'rollback'."""
    pname = pname or plan_name(plan["namespace"])
    req = request_of(plan, kind)
    h = request_hash(req)
    spec = {"migPlanRef": {"name": pname, "namespace": mtc_namespace}, "stage": False}
    if kind == "rollback":
        spec["rollback"] = True
    else:
        spec["migrateState"] = True
        spec["quiescePods"] = kind == "cutover"
    # which VM disk each PVC is, so the run stays attributed after a later run moved the VM on (status history)
    disks = {m["sourcePVC"]: f"{m['vm']}/{m['volume']}" for m in plan["moves"]}
    return {"apiVersion": GROUP_VERSION, "kind": "MigMigration",
            "metadata": {"name": migration_name(pname, kind, h, attempt), "namespace": mtc_namespace,
                         "labels": labels(pname, {TYPE_LABEL: kind, REQUEST_HASH_LABEL: h}),
                         "annotations": {REQUEST_ANNOTATION: json.dumps(req, sort_keys=True),
                                         L.DISKS: json.dumps(disks, sort_keys=True)}},
            "spec": spec}


def build_rollback(plan_obj: dict, after: str = "") -> dict:
    """A rollback MigMigration for an existing MigPlan object (``rollback PLAN``); named after the
    migration it undoes (``after``), so asking twice re-attaches instead of rolling back twice."""
    md = plan_obj["metadata"]
    pname, ns = md["name"], md["namespace"]
    h = hashlib.sha256(f"rollback/{md.get('uid', '')}/{after}".encode()).hexdigest()[:10]
    return {"apiVersion": GROUP_VERSION, "kind": "MigMigration",
            "metadata": {"name": migration_name(pname, "rollback", h), "namespace": ns,
                         "labels": labels(pname, {TYPE_LABEL: "rollback", REQUEST_HASH_LABEL: h})},
            "spec": {"migPlanRef": {"name": pname, "namespace": ns}, "stage": False, "rollback": True}}


def source_name(entry: dict) -> str:
    return str(((entry.get("pvc") or {}).get("name")) or "").split(":", 1)[0]


def _copy_method(entry: dict, move: dict) -> str:
    current = (entry.get("selection") or {}).get("copyMethod")
    if current in ("filesystem", "block"):
        return current
    mode = ((entry.get("pvc") or {}).get("volumeMode")) or move.get("volumeMode")
    return "block" if mode == "Block" else "filesystem"


def selection_patch(persistent_volumes: List[dict], plan: dict, verify: bool = False,
                    namespace: Optional[str] = None) -> Tuple[List[dict], List[str]]:
    """RFC 6902 ops on ``spec.persistentVolumes``: copy for the plan's disks, skip for every other PVC.

    Each change is guarded by a ``test`` of the entry's PV name, so a concurrent re-discovery that
    reorders the list makes the patch fail instead of selecting the wrong volume. Returns
    ``(ops, missing)``: ``missing`` = source PVCs of the plan that discovery did not list (not bound)."""
    ns = namespace or plan["namespace"]
    moves = {m["sourcePVC"]: m for m in plan["moves"]}
    ops, found = [], set()
    for i, entry in enumerate(persistent_volumes):
        src = source_name(entry)
        pvc_ns = (entry.get("pvc") or {}).get("namespace") or ns
        move = moves.get(src) if pvc_ns == ns else None
        if move is not None:
            found.add(src)
            sel = {"action": "copy", "storageClass": move["targetSC"], "copyMethod": _copy_method(entry, move)}
            if move.get("targetAccessMode"):
                sel["accessMode"] = move["targetAccessMode"]
            if verify:
                sel["verify"] = True
        else:
            sel = {"action": "skip"}
            old = entry.get("selection") or {}
            for k in ("storageClass", "copyMethod"):  # keep what validation would otherwise warn about
                if old.get(k):
                    sel[k] = old[k]
        ops.append({"op": "test", "path": f"/spec/persistentVolumes/{i}/name", "value": entry.get("name")})
        ops.append({"op": "add", "path": f"/spec/persistentVolumes/{i}/selection", "value": sel})
        if move is not None and plan.get("volumeMode") and move.get("targetVolumeMode"):
            ops.append({"op": "add", "path": f"/spec/persistentVolumes/{i}/pvc/volumeMode",
                        "value": move["targetVolumeMode"]})
    missing = sorted(set(moves) - found)
    return ops, missing


def predicted_persistent_volumes(pvcs: List[dict], namespace: str, suffix: Optional[str] = None,
                                  plan_uid: Optional[str] = None) -> List[dict]:
    """What MTC's discovery will list (every Bound PVC of the namespace, sorted by PV name) — for previews. With the
    adopted plan's ``suffix``/``plan_uid``, only the PVCs that plan created are left out (``updatePvs``, pvlist.go);
    without (a new plan), any ``-mig-XXXX`` name is assumed to be some plan's target."""
    out = []
    for p in pvcs:
        md, spec = p.get("metadata") or {}, p.get("spec") or {}
        if md.get("namespace") != namespace or (p.get("status") or {}).get("phase") != "Bound":
            continue
        if (md.get("labels") or {}).get(MIGPLAN_LABEL) == plan_uid and plan_uid:
            continue
        if (str(md.get("name") or "").endswith(f"-mig-{suffix}") if suffix else _MIG_SUFFIX.search(md.get("name") or "")):
            continue
        out.append({"name": spec.get("volumeName") or f"pv-for-{md.get('name')}",
                    "pvc": {"name": md.get("name"), "namespace": namespace,
                            "volumeMode": spec.get("volumeMode") or "Filesystem"},
                    "selection": {"action": "copy"}})
    return sorted(out, key=lambda e: e["name"])


conditions = true_conditions  # the readers live in conditions.py


def blockers(obj: dict) -> List[dict]:
    return [c for c in conditions(obj) if c.get("category") in BLOCKING]


def plan_ready(migplan: dict) -> bool:
    return condition(migplan, "Ready") is not None and not blockers(migplan)


def live_blocking_conditions(migplan: dict) -> List[dict]:
    return [c for c in conditions(migplan) if c.get("type") in LIVE_BLOCKING_PLAN_CONDITIONS]


def covers_namespace(migplan: dict, namespace: str) -> bool:
    for entry in (migplan.get("spec") or {}).get("namespaces") or []:
        if str(entry).split(":", 1)[0] == namespace:
            return True
    return False


def migration_result(migmigration: dict, dvm: Optional[dict] = None, disks=()) -> Tuple[str, str]:
    """The one MTC verdict (``verdict.verdict``), under the name the engine interface documents."""
    from .verdict import verdict

    return verdict(migmigration, dvm, list(disks))


def run_state(migmigration: dict) -> str:
    """Running|Succeeded|Failed|Canceled of a MigMigration from its own conditions (for "is one running?"
    questions); the full verdict, which also reads the DVM and the disk rows, is ``verdict.verdict``."""
    from .verdict import verdict

    return verdict(migmigration, None, [])[0]


def changes(obj, ops) -> bool:
    """Whether applying the ``add`` ops of a JSON patch would change ``obj``."""
    for op in ops:
        if op["op"] != "add":
            continue
        cur = obj
        for part in op["path"].strip("/").split("/"):
            if isinstance(cur, list):
                cur = cur[int(part)] if part.isdigit() and int(part) < len(cur) else None
            elif isinstance(cur, dict):
                cur = cur.get(part.replace("~1", "/").replace("~0", "~"))
            else:
                cur = None
        if cur != op["value"]:
            return True
    return False
