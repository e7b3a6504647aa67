"""MTC progress: MigPlan + MigMigration + DirectVolumeMigration(Progress) + VMs -> Migration dicts.

``build``/``from_objects`` are pure and read only structured fields (mig-controller pkg/apis/migration/v1alpha1
directvolumemigration_types.go, directvolumemigrationprogress_types.go, migmigration_types.go): the DVM's per-PVC lists (pod lists and the singular-named live lists),
``rsyncOperations``, ``skippedVolumes``, the DVMP status, and the MigMigration conditions, pipeline,
phase and itinerary. The human progress strings in ``pipeline[].progress`` are never parsed.
``collect`` is the only function here that talks to the API: a constant number of LISTs, none per VM.
"""
import hashlib
from typing import Dict, Iterable, List, Optional, Tuple

from ...progress import FAILED, RUNNING, conditions, disk_row, finish_disks, migration, percent
from .build import FATAL_MIGRATION_CONDITIONS, migration_result

DEFAULT_MTC_NAMESPACE = "openshift-migration"
LABEL_DVM_OF_MIGRATION = "migration-direct-volume"    # DVM label: UID of its MigMigration
LABEL_DVMP_OF_DVM = "directvolumemigration"           # DVMP label: UID of its DVM
LABEL_CREATED_FOR_PVC = "migration.openshift.io/created-for-pvc"

LIVE_BUCKETS = (("failedLiveMigration", "Failed"), ("successfulLiveMigration", "Succeeded"),
                ("runningLiveMigration", "Running"), ("pendingLiveMigration", "Pending"))
POD_BUCKETS = (("failedPods", "Failed"), ("successfulPods", "Succeeded"), ("runningPods", "Running"),
               ("pendingSinceTimeLimitPods", "Pending"), ("pendingPods", "Pending"), ("unknownPods", "Unknown"))
# MigMigration Critical conditions that mean it will never run (as opposed to Postponed / PlanNotReady).
FATAL_BLOCKERS = FATAL_MIGRATION_CONDITIONS
KINDS = ("MigPlan", "MigMigration", "DirectVolumeMigration", "DirectVolumeMigrationProgress", "VirtualMachine",
         "PersistentVolumeClaim")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _meta(obj) -> dict:
    return obj.get("metadata") or {}


def _status(obj) -> dict:
    return (obj or {}).get("status") or {}


def _owner_uid(obj, kind) -> Optional[str]:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return ref.get("uid")
    return None


def plan_namespaces(plan) -> List[str]:
    """Source namespaces of a plan ("src" or "src:dst" entries)."""
    return [n.split(":", 1)[0] for n in (plan.get("spec") or {}).get("namespaces") or []]


def migration_type(mig) -> str:
    spec = mig.get("spec") or {}
    if spec.get("rollback"):
        return "rollback"
    return "cutover" if spec.get("quiescePods") else "stage"


def latest_migration(migs: Iterable[dict]) -> Optional[dict]:
    def key(m):
        return (_meta(m).get("creationTimestamp") or "", _status(m).get("startTimestamp") or "", _meta(m).get("name"))

    migs = list(migs)
    return max(migs, key=key) if migs else None


# ---- VM index: which VM/volume uses a claim --------------------------------------------------------
def index_vms(vms: Iterable[dict]) -> Dict[Tuple[str, str], Tuple[str, str, dict]]:
    """(namespace, claim) -> (vm name, volume name, vm). Includes the claims a volume migration came from,
    so a disk is still attributed to its VM after the swap to the target claim."""
    out = {}
    for vm in vms:
        ns, name = _meta(vm).get("namespace") or "", _meta(vm).get("name") or ""
        tmpl = (((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
        for vol in tmpl.get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName") or (vol.get("dataVolume") or {}).get("name")
            if claim:
                out.setdefault((ns, claim), (name, vol.get("name") or "", vm))
        state = (_status(vm).get("volumeUpdateState") or {}).get("volumeMigrationState") or {}
        for mv in state.get("migratedVolumes") or []:
            for side in ("sourcePVCInfo", "destinationPVCInfo"):
                claim = (mv.get(side) or {}).get("claimName")
                if claim:
                    out.setdefault((ns, claim), (name, mv.get("volumeName") or "", vm))
    return out


def vm_running(vm: Optional[dict]) -> bool:
    st = _status(vm)
    return bool(st.get("ready")) or st.get("printableStatus") in ("Running", "Migrating")


# ---- DVM / DVMP reading ---------------------------------------------------------------------------
class _DvmView:
    """Per-PVC lookups into one DVM's status and its DVMPs."""

    def __init__(self, dvm: Optional[dict], dvmps: List[dict]):
        self.dvm = dvm
        st = _status(dvm)
        self.live, self.pods, self.ops = {}, {}, {}
        for field, phase in LIVE_BUCKETS:
            for e in st.get(field) or []:
                self.live.setdefault(_pvc_key(e.get("pvcRef")), (phase, field, e))
        for field, phase in POD_BUCKETS:
            for e in st.get(field) or []:
                self.pods.setdefault(_pvc_key(e.get("pvcRef")), (phase, field, e))
        for op in st.get("rsyncOperations") or []:
            self.ops[_pvc_key(op.get("pvcReference"))] = op
        self.skipped = set(st.get("skippedVolumes") or [])
        self.dvmps_by_name = {_meta(p).get("name"): p for p in dvmps}
        self.dvmps_by_selector = {}
        for p in dvmps:
            spec = p.get("spec") or {}
            sel = (spec.get("podSelector") or {}).get(LABEL_CREATED_FOR_PVC)
            if sel:
                self.dvmps_by_selector[(spec.get("podNamespace") or "", sel)] = p
        conds = conditions(dvm) if dvm else {}
        self.succeeded = "Succeeded" in conds
        self.failed = "Failed" in conds
        self.conditions = conds

    def dvmp(self, ns, pvc) -> Optional[dict]:
        if not self.dvm:
            return None
        # DVMP name = md5(<dvm name><pvc name><source namespace>) (rsync.go createPVProgressCR).
        found = self.dvmps_by_name.get(_md5(f"{_meta(self.dvm).get('name')}{pvc}{ns}"))
        return found or self.dvmps_by_selector.get((ns, _md5(pvc)))


def _pvc_key(ref) -> Tuple[str, str]:
    ref = ref or {}
    return (ref.get("namespace") or "", ref.get("name") or "")


def _lookup(table, ns, names):
    for n in names:
        if n and (ns, n) in table:
            return table[(ns, n)]
        if n and ("", n) in table:
            return table[("", n)]
    return None


def _attempts(dvmp_status) -> Optional[int]:
    history = {h.get("podName") for h in dvmp_status.get("rsyncPodStatuses") or [] if h.get("podName")}
    current = dvmp_status.get("podName")
    n = len(history) + (1 if current and current not in history else 0)
    return n or None


def _rsync_failure(st) -> str:
    parts = []
    if st.get("exitCode") not in (None, 0):
        parts.append(f"rsync exited with code {st['exitCode']}")
    last = [ln.strip() for ln in str(st.get("logMessage") or "").replace("\\n", "\n").splitlines() if ln.strip()]
    if last:
        parts.append(last[-1].strip('"'))
    return ": ".join(parts)


def _disk(pair, view: _DvmView, vm_info, live_plan: bool, mtc_ns: str, mig_name: str) -> dict:
    ns, names = pair["namespace"], (pair["source"], pair["target"])
    vm_name, volume, vm = vm_info or ("", "", None)
    phase, mode, progress, rate, elapsed, attempt, message = None, None, None, None, None, None, ""
    inspect = f"kubectl describe migmigration {mig_name} -n {mtc_ns}"
    if view.dvm:
        inspect = f"kubectl describe dvm {_meta(view.dvm).get('name')} -n {mtc_ns}"
    live = _lookup(view.live, ns, names)
    pod = _lookup(view.pods, ns, names)
    op = _lookup(view.ops, ns, names)
    dvmp = None
    for n in names:
        dvmp = dvmp or (view.dvmp(ns, n) if n else None)
    if live:
        phase, _, e = live
        mode = "live"
        vm_name = e.get("vmName") or vm_name
        progress = percent(e.get("lastObservedProgressPercent"))
        rate, elapsed, message = e.get("lastObservedTransferRate"), e.get("totalElapsedTime"), e.get("message") or ""
        inspect = f"kubectl get vmim -n {ns} -l kubevirt.io/volume-update-migration={vm_name}"
    elif pod or dvmp or op:
        mode = "offline"
        if pod:
            phase, field, e = pod
            progress = percent(e.get("lastObservedProgressPercent"))
            rate, elapsed = e.get("lastObservedTransferRate"), e.get("totalElapsedTime")
            if field == "pendingSinceTimeLimitPods":
                message = f"rsync client pod {e.get('namespace')}/{e.get('name')} pending for more than 10 minutes"
        if dvmp:
            st = _status(dvmp)
            inspect = f"kubectl describe dvmp {_meta(dvmp).get('name')} -n {mtc_ns}"
            progress = percent(st.get("totalProgressPercentage")) if st.get("totalProgressPercentage") else progress
            rate = st.get("lastObservedTransferRate") or rate
            elapsed = st.get("rsyncElapsedTime") or elapsed
            attempt = _attempts(st)
            if phase is None and st.get("phase"):
                phase = st["phase"]
            if st.get("phase") == "Failed" or (phase == "Failed" and st.get("exitCode") not in (None, 0)):
                message = message or _rsync_failure(st)
            elif st.get("phase") == "Pending" and st.get("podName"):
                inspect = f"kubectl describe pod {st['podName']} -n {(dvmp.get('spec') or {}).get('podNamespace') or ns}"
        if op:
            attempt = op.get("currentAttempt") or attempt
            if op.get("failed"):
                phase = "Failed"
            elif op.get("succeeded") and phase != "Failed":
                phase = "Succeeded"
        if phase == "Failed" and not (op and op.get("failed")) and not view.failed and not view.succeeded \
                and not pod:
            # The newest rsync pod failed but the operation has retries left: still running.
            phase, message = "Running", f"attempt {attempt or '?'} failed, retrying" + (f" ({message})" if message else "")
        if phase == "Failed" and not message:
            message = "rsync failed" + (f" after {attempt} attempts" if attempt else "")
    elif any(f"{ns}/{n}" in view.skipped for n in names if n):
        phase, mode = "Skipped", "live" if live_plan else "offline"
        message = "VM running: skipped by the stage run, moved live at cutover" if live_plan else "skipped"
    else:
        mode = "live" if live_plan and vm_running(vm) else "offline"
        phase = "Succeeded" if view.succeeded else "Pending"
    if phase == "Succeeded" and progress is None:
        progress = 100
    if phase == "Failed" and not message and view.dvm:
        message = "; ".join(_status(view.dvm).get("errors") or [])
    return disk_row(vm=vm_name, volume=volume, source_pvc=pair["source"], target_pvc=pair["target"],
                    source_sc=pair["source_sc"], target_sc=pair["target_sc"], mode=mode, phase=phase or "Pending",
                    progress=progress, rate=rate, elapsed=elapsed, attempt=attempt, message=message,
                    inspect=inspect)


def _pairs(plan, dvm, pvc_sc) -> List[dict]:
    """The source/target PVC pairs of this migration: the DVM's list once it exists, else the plan's copy
    selections (``pvc.name`` is "<source>:<target>" for a storage-conversion plan)."""
    by_source = {}
    for pv in (plan.get("spec") or {}).get("persistentVolumes") or []:
        pvc = pv.get("pvc") or {}
        src, _, tgt = (pvc.get("name") or "").partition(":")
        sel = pv.get("selection") or {}
        by_source[(pvc.get("namespace") or "", src)] = {
            "namespace": pvc.get("namespace") or "", "source": src, "target": tgt or src,
            "source_sc": pv.get("storageClass") or pvc_sc.get((pvc.get("namespace") or "", src), ""),
            "target_sc": sel.get("storageClass") or "", "action": sel.get("action") or "copy"}
    if dvm:
        out = []
        for p in (dvm.get("spec") or {}).get("persistentVolumeClaims") or []:
            ns, src = p.get("namespace") or "", p.get("name") or ""
            base = by_source.get((ns, src), {})
            out.append({"namespace": ns, "source": src, "target": p.get("targetName") or base.get("target") or src,
                        "source_sc": base.get("source_sc") or pvc_sc.get((ns, src), ""),
                        "target_sc": p.get("targetStorageClass") or base.get("target_sc") or ""})
        return out
    return [p for p in by_source.values() if p["action"] == "copy"]


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


def _warnings(mig, view: _DvmView, plan) -> List[str]:
    out = []
    for obj in (plan, mig, view.dvm):
        for ctype, c in (conditions(obj) if obj else {}).items():
            if c.get("category") in ("Warn", "Error") or (c.get("category") == "Critical" and ctype != "Failed"):
                text = f"{ctype}: {c.get('message') or c.get('reason') or ''}".rstrip(": ")
                if text not in out:
                    out.append(text)
    return out


def build_one(plan, mig, dvm, dvmps, vm_index, pvc_sc=None) -> dict:
    pvc_sc = pvc_sc or {}
    mtc_ns = _meta(mig).get("namespace") or DEFAULT_MTC_NAMESPACE
    view = _DvmView(dvm, dvmps)
    mtype = migration_type(mig)
    live_plan = bool((plan.get("spec") or {}).get("liveMigrate"))
    pairs = _pairs(plan, dvm, pvc_sc)
    if mtype == "rollback":  # data and VMs move from the migrated claims back to the originals
        for p in pairs:
            p["source"], p["target"] = p["target"], p["source"]
            p["source_sc"], p["target_sc"] = p["target_sc"], p["source_sc"]
    disks = []
    for pair in pairs:
        info = _lookup(vm_index, pair["namespace"], (pair["source"], pair["target"]))
        disks.append(_disk(pair, view, info, live_plan, mtc_ns, _meta(mig).get("name")))
    disks.sort(key=lambda d: (d["vm"], d["volume"], d["sourcePVC"]))

    conds, st = conditions(mig), _status(mig)
    fatal = [conds[t] for t in FATAL_BLOCKERS if t in conds and conds[t].get("category") == "Critical"]
    hidden = "DirectVolumeMigrationFailed" in conds or view.failed
    result, verdict = migration_result(mig, dvm, disks)  # the one MTC verdict (also migrate --wait and rollback)
    finish_disks(disks, result)
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
    if result == FAILED and hidden and "DirectVolumeMigrationFailed" in conds:
        errors.append(conds["DirectVolumeMigrationFailed"].get("message") or "DirectVolumeMigration failed")
    if result == FAILED and not errors and verdict:
        errors.append(verdict)  # e.g. "completed with warnings: ..." (the verdict says why it is not a success)
    namespaces = plan_namespaces(plan)
    name = _meta(mig).get("name")
    return migration(
        plan=_meta(plan).get("name"), namespace=namespaces[0] if namespaces else "", engine="mtc", type_=mtype,
        phase=st.get("phase") or "Created", result=result,
        started=st.get("startTimestamp") or _meta(mig).get("creationTimestamp"), completed=completed, disks=disks,
        step=current_step(mig) if result == RUNNING else result, warnings=_warnings(mig, view, plan),
        errors=errors, migration=name, itinerary=st.get("itinerary") or "",
        inspect=f"kubectl describe migmigration {name} -n {mtc_ns}")


def build(plans, migrations, dvms, dvmps, vms, pvcs=(), namespace: Optional[str] = None) -> List[dict]:
    """One Migration per plan (its most recent MigMigration) covering ``namespace`` (all when None)."""
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
        mig = latest_migration(migs_by_plan.get((_meta(plan).get("namespace") or "", _meta(plan).get("name")), []))
        if mig is None:
            continue
        candidates = dvm_by_mig.get(_meta(mig).get("uid"), [])
        dvm = latest_migration(candidates) if candidates else None
        out.append(build_one(plan, mig, dvm, dvmps_by_dvm.get(_meta(dvm).get("uid"), []) if dvm else [],
                             vm_index, pvc_sc))
    out.sort(key=lambda m: (m["namespace"], m["plan"]))
    return out


def from_objects(objects: Iterable[dict], namespace: Optional[str] = None) -> List[dict]:
    """Migrations from a pile of objects (a dump, a must-gather, or what ``fetch_objects`` listed)."""
    by_kind = {k: [] for k in KINDS}
    for obj in objects:
        if isinstance(obj, dict) and obj.get("kind") in by_kind:
            by_kind[obj["kind"]].append(obj)
    return build(by_kind["MigPlan"], by_kind["MigMigration"], by_kind["DirectVolumeMigration"],
                 by_kind["DirectVolumeMigrationProgress"], by_kind["VirtualMachine"],
                 by_kind["PersistentVolumeClaim"], namespace=namespace)


# ---- shell: the constant-size read ---------------------------------------------------------------------
def fetch_objects(kube, namespace: Optional[str] = None, all_namespaces: bool = False,
                  mtc_namespace: Optional[str] = None, vms: Optional[List[dict]] = None) -> List[dict]:
    """LIST what ``from_objects`` needs: MigPlans (one cluster-wide LIST finds MTC's namespace), then per
    MTC namespace (normally one) MigMigrations, DVMs and DVMPs by label selector, and the VMs (unless
    given). Five requests whatever the number of VMs; one when no plan covers the namespace."""
    from ... import errors
    from ... import resources as R

    ns = None if all_namespaces else (namespace or kube.namespace)
    try:
        if mtc_namespace:
            plans = kube.items(R.MIGPLAN, mtc_namespace)
        else:
            try:
                plans = kube.items(R.MIGPLAN, all_namespaces=True)
            except errors.Forbidden:
                plans = kube.items(R.MIGPLAN, DEFAULT_MTC_NAMESPACE)
    except errors.NotFound:  # MTC's CRDs are not installed
        return []
    plans = [p for p in plans if ns is None or ns in plan_namespaces(p)]
    if not plans:
        return []
    objects = list(plans)
    for mtc_ns in sorted({_meta(p).get("namespace") for p in plans}):
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
    ns = None if all_namespaces else (namespace or kube.namespace)
    return from_objects(fetch_objects(kube, namespace, all_namespaces, mtc_namespace, vms), namespace=ns)
