"""MTC progress: MigPlan + MigMigration + DirectVolumeMigration(Progress) + VMs -> Migration dicts.

``build``/``from_objects`` are pure and read only structured fields (mig-controller pkg/apis/migration/v1alpha1
directvolumemigration_types.go, directvolumemigrationprogress_types.go, migmigration_types.go): the DVM's per-PVC lists (pod lists and the singular-named live lists),
``rsyncOperations``, ``skippedVolumes``, the DVMP status, and the MigMigration conditions, pipeline,
phase and itinerary. The human progress strings in ``pipeline[].progress`` are never parsed.
``collect`` is the only function here that talks to the API: a constant number of LISTs, none per VM.
"""
from typing import Dict, Iterable, List, Optional, Tuple

from ...progress import conditions, finish_disks, migration, RUNNING
from ...labels import SUPERSEDED_BY
from . import verdict as V
from .rows import (DEFAULT_MTC_NAMESPACE, KINDS, LABEL_DVM_OF_MIGRATION, LABEL_DVMP_OF_DVM, DvmView, _lookup, _meta,
                   _owner_uid, _pairs, _status, disk, index_vms, latest_migration, migration_type, missing_disks,
                   plan_namespaces)

__all__ = ["build", "build_one", "from_objects", "fetch_objects", "collect", "plan_namespaces", "latest_migration",
           "index_vms", "DEFAULT_MTC_NAMESPACE"]


def current_step(mig) -> str:
    st = _status(mig)
    pipeline = st.get("pipeline") or []
    running_cond = conditions(mig).get("Running")
    counter = f" ({running_cond.get('message')})" if running_cond and running_cond.get("message") else ""
    for step in pipeline:
        if step.get("failed"):
            return f"{step.get('name')}: {step.get('message') or 'Failed'}"
    active = [s for s in pipeline if s.get("started") and not s.get("completed")]
    if active:
        s = active[-1]
        return f"{s.get('name')}: {s.get('message') or s.get('phase') or ''}{counter}".strip()
    if pipeline and all(s.get("completed") or s.get("skipped") for s in pipeline):
        return "Completed"
    return (st.get("phase") or "Created") + counter


def _warnings(mig, view: DvmView, plan) -> List[str]:
    out = []
    for obj in (plan, mig, view.dvm):
        for ctype, c in (conditions(obj) if obj else {}).items():
            if ctype == "RsyncClientPodsPending" and obj is view.dvm and not view.pending_long:
                continue  # stale: the DVM never clears it once the pod started (see DvmView.pending_long)
            if c.get("category") in ("Warn", "Error") or (c.get("category") == "Critical" and ctype != "Failed"):
                text = f"{ctype}: {c.get('message') or c.get('reason') or ''}".rstrip(": ")
                if text not in out:
                    out.append(text)
    return out


def build_one(plan, mig, dvm, dvmps, vm_index, pvc_sc=None, now: Optional[str] = None) -> dict:
    """One MigMigration (a stage run, a cutover or a rollback) as a Migration, judged by ``verdict.verdict``."""
    pvc_sc = pvc_sc or {}
    mtc_ns = _meta(mig).get("namespace") or DEFAULT_MTC_NAMESPACE
    view = DvmView(dvm, dvmps)
    mtype = migration_type(mig)
    ctx = {"live_plan": bool((plan.get("spec") or {}).get("liveMigrate")), "mtc_ns": mtc_ns,
           "mig_name": _meta(mig).get("name"), "type": mtype, "now": now}
    pairs = _pairs(plan, dvm, pvc_sc)
    if mtype == "rollback":  # data and VMs move from the migrated claims back to the originals
        for p in pairs:
            p["source"], p["target"] = p["target"], p["source"]
            p["source_sc"], p["target_sc"] = p["target_sc"], p["source_sc"]
    disks = []
    recorded = V.recorded_disks(mig)
    for pair in pairs:
        info = _lookup(vm_index, pair["namespace"], (pair["source"], pair["target"]))
        if info is None:  # the VM moved on since (a later run): the run's own record says whose disk it was
            vm_name, _, volume = (recorded.get(pair["source"]) or recorded.get(pair["target"]) or "").partition("/")
            info = (vm_name, volume, None) if vm_name else None
        disks.append(disk(pair, view, info, ctx))
    namespaces = plan_namespaces(plan)
    ns = namespaces[0] if namespaces else ""
    conds, st = conditions(mig), _status(mig)
    ended = st.get("phase") == "Completed" or any(t in conds for t in ("Succeeded", "SucceededWithWarnings",
                                                                       "Failed", "Canceled"))
    disks += missing_disks(V.requested_disks(mig), pairs, view, ended, ns, vm_index, ctx)
    disks.sort(key=lambda d: (d["vm"], d["volume"], d["sourcePVC"]))

    result, message = V.verdict(mig, dvm, disks, plan_name=_meta(plan).get("name") or "")
    finish_disks(disks, result)
    fatal = [conds[t] for t in V.FATAL_BLOCKERS if t in conds and conds[t].get("category") == "Critical"]
    completed = None
    if result != RUNNING:
        for ctype in ("Canceled", "Failed", "SucceededWithWarnings", "Succeeded"):
            if ctype in conds:
                completed = conds[ctype].get("lastTransitionTime")
                break
        if completed is None and fatal:
            completed = fatal[0].get("lastTransitionTime")
    errors = list(st.get("errors") or []) + [c.get("message") or "" for c in fatal]
    if dvm:
        errors += [e for e in _status(dvm).get("errors") or [] if e not in errors]
    if result == "Failed" and message not in errors:
        errors.append(message)
    name = _meta(mig).get("name")
    return migration(
        plan=_meta(plan).get("name"), namespace=ns, engine="mtc", type_=mtype,
        phase=st.get("phase") or "Created", result=result,
        started=st.get("startTimestamp") or _meta(mig).get("creationTimestamp"), completed=completed, disks=disks,
        step=current_step(mig) if result == RUNNING else result, warnings=_warnings(mig, view, plan),
        errors=errors, migration=name, itinerary=st.get("itinerary") or "", verdict=message,
        inspect=f"kubectl describe migmigration {name} -n {mtc_ns}")


def _order(m) -> Tuple[str, str, str]:
    return (_meta(m).get("creationTimestamp") or "", _status(m).get("startTimestamp") or "", _meta(m).get("name") or "")


def build(plans, migrations, dvms, dvmps, vms, pvcs=(), namespace: Optional[str] = None,
          now: Optional[str] = None) -> List[dict]:
    """Every MigMigration of every plan covering ``namespace`` (all when None) — stage runs, cutovers and rollbacks
    — each a Migration with its own result, oldest first per plan. Earlier runs of a plan carry the render hint
    ``_superseded``: the table shows each with its result, ``status -w`` takes its exit code from the latest."""
    pvc_sc = {(_meta(p).get("namespace") or "", _meta(p).get("name")): (p.get("spec") or {}).get("storageClassName")
              or "" for p in pvcs}
    vm_index = index_vms(vms)
    migs_by_plan: Dict[Tuple[str, str], List[dict]] = {}
    for m in migrations:
        ref = (m.get("spec") or {}).get("migPlanRef") or {}
        key = (ref.get("namespace") or _meta(m).get("namespace") or "", ref.get("name") or "")
        migs_by_plan.setdefault(key, []).append(m)
    dvm_by_mig = {}
    for d in dvms:
        uid = (_meta(d).get("labels") or {}).get(LABEL_DVM_OF_MIGRATION) or _owner_uid(d, "MigMigration")
        if uid:
            dvm_by_mig.setdefault(uid, []).append(d)
    dvmps_by_dvm: Dict[str, List[dict]] = {}
    for p in dvmps:
        uid = (_meta(p).get("labels") or {}).get(LABEL_DVMP_OF_DVM) or _owner_uid(p, "DirectVolumeMigration")
        if uid:
            dvmps_by_dvm.setdefault(uid, []).append(p)
    out = []
    for plan in plans:
        if namespace and namespace not in plan_namespaces(plan):
            continue
        runs = sorted(migs_by_plan.get((_meta(plan).get("namespace") or "", _meta(plan).get("name")), []), key=_order)
        # a plan the plugin closed for a newer one (plans.choose_plan): all its runs are history
        replaced = bool(((_meta(plan).get("annotations") or {}).get(SUPERSEDED_BY)) and (plan.get("spec") or {}).get("closed"))
        for i, mig in enumerate(runs):
            candidates = dvm_by_mig.get(_meta(mig).get("uid"), [])
            dvm = latest_migration(candidates) if candidates else None
            m = build_one(plan, mig, dvm, dvmps_by_dvm.get(_meta(dvm).get("uid"), []) if dvm else [],
                          vm_index, pvc_sc, now=now)
            m["_superseded"] = replaced or i < len(runs) - 1
            m["_created"] = _order(mig)
            out.append(m)
    # plans of a namespace in creation order of their runs, so a newer plan's runs follow an older plan's
    out.sort(key=lambda m: (m["namespace"], m["_created"], m["plan"]))
    return out


def from_objects(objects: Iterable[dict], namespace: Optional[str] = None, now: Optional[str] = None) -> List[dict]:
    """Migrations from a pile of objects (a dump, a must-gather, or what ``fetch_objects`` listed). ``now``
    (RFC 3339) lets a running rsync attempt show its elapsed time."""
    by_kind = {k: [] for k in KINDS}
    for obj in objects:
        if isinstance(obj, dict) and obj.get("kind") in by_kind:
            by_kind[obj["kind"]].append(obj)
    return build(by_kind["MigPlan"], by_kind["MigMigration"], by_kind["DirectVolumeMigration"],
                 by_kind["DirectVolumeMigrationProgress"], by_kind["VirtualMachine"],
                 by_kind["PersistentVolumeClaim"], namespace=namespace, now=now)


# ---- shell: the constant-size read ---------------------------------------------------------------------
def fetch_objects(kube, namespace: Optional[str] = None, all_namespaces: bool = False,
                  mtc_namespace: Optional[str] = None, vms: Optional[List[dict]] = None) -> List[dict]:
    """LIST what ``from_objects`` needs: the MigPlans, MigMigrations, DVMs and DVMPs of ``openshift-migration`` —
    the only namespace mig-controller reconciles (every controller's watch predicate filters on
    ``migapi.OpenshiftMigrationNamespace``, and DVMs/DVMPs are always created there: migmigration/dvm.go,
    directvolumemigration/rsync.go) — and the VMs (unless given). Four requests whatever the number of VMs; one
    when no plan covers the namespace. ``mtc_namespace`` is accepted for the option's sake and must be that one."""
    from ... import errors
    from ... import resources as R
    from .build import check_mtc_namespace

    mtc_ns = check_mtc_namespace(mtc_namespace)
    ns = None if all_namespaces else (namespace or kube.namespace)
    try:
        plans = kube.items(R.MIGPLAN, mtc_ns)
    except errors.NotFound:  # MTC's CRDs are not installed
        return []
    plans = [p for p in plans if ns is None or ns in plan_namespaces(p)]
    if not plans:
        return []
    objects = list(plans)
    objects += kube.items(R.MIGMIGRATION, mtc_ns)
    objects += kube.items(R.DVM, mtc_ns, label_selector=LABEL_DVM_OF_MIGRATION)
    objects += kube.items(R.DVMP, mtc_ns, label_selector=LABEL_DVMP_OF_DVM)
    if vms is None:
        try:
            vms = kube.items(R.VM, ns, all_namespaces=ns is None)
        except errors.NotFound:  # KubeVirt not installed: rows without VM names
            vms = []
    return objects + list(vms)


def collect(kube, namespace: Optional[str] = None, all_namespaces: bool = False,
            mtc_namespace: Optional[str] = None, vms: Optional[List[dict]] = None) -> List[dict]:
    import datetime

    ns = None if all_namespaces else (namespace or kube.namespace)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return from_objects(fetch_objects(kube, namespace, all_namespaces, mtc_namespace, vms), namespace=ns, now=now)
