"""MTC disk rows: one DirectVolumeMigration (DVM) + its DVMPs + the VMs -> per-disk rows. Pure.

Reads only structured fields (migtools/mig-controller pkg/apis/migration/v1alpha1/directvolumemigration_types.go and
directvolumemigrationprogress_types.go): the DVM's per-PVC pod lists and the singular-named live lists,
``rsyncOperations``, ``skippedVolumes`` and the DVMP status.
"""
import hashlib
from typing import Dict, Iterable, List, Optional, Tuple

from ...progress import conditions, disk_row, go_duration, go_duration_seconds, percent, seconds_between

DEFAULT_MTC_NAMESPACE = "openshift-migration"
LABEL_DVM_OF_MIGRATION = "migration-direct-volume"    # DVM label: UID of its MigMigration
LABEL_DVMP_OF_DVM = "directvolumemigration"           # DVMP label: UID of its DVM
LABEL_CREATED_FOR_PVC = "migration.openshift.io/created-for-pvc"

LIVE_BUCKETS = (("failedLiveMigration", "Failed"), ("successfulLiveMigration", "Succeeded"),
                ("runningLiveMigration", "Running"), ("pendingLiveMigration", "Pending"))
POD_BUCKETS = (("failedPods", "Failed"), ("successfulPods", "Succeeded"), ("runningPods", "Running"),
               ("pendingSinceTimeLimitPods", "Pending"), ("pendingPods", "Pending"), ("unknownPods", "Unknown"))
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
class DvmView:
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
        # pendingSinceTimeLimitPods is never reset (rsync.go updateRsyncProgressStatus appends every reconcile and
        # podPendingSinceTimeLimit re-sets RsyncClientPodsPending from it): it is current only for a PVC whose pod
        # is in no earlier bucket (POD_BUCKETS puts failed/successful/running first).
        self.pending_long = {k for k, (_, field, _) in self.pods.items() if field == "pendingSinceTimeLimitPods"}
        for op in st.get("rsyncOperations") or []:
            self.ops[_pvc_key(op.get("pvcReference"))] = op
        self.skipped = set(st.get("skippedVolumes") or [])
        self.claims = {(p.get("namespace") or "", p.get("name") or "")
                       for p in ((dvm or {}).get("spec") or {}).get("persistentVolumeClaims") or []}
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


def _uses(vm: Optional[dict], claim: str) -> bool:
    tmpl = ((((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {})
    return any(claim in ((v.get("persistentVolumeClaim") or {}).get("claimName"), (v.get("dataVolume") or {}).get("name"))
               for v in tmpl.get("volumes") or [])


def _attempt_progress(st: dict, now: Optional[str]):
    """(percent, elapsed) of the *current* rsync attempt. ``totalProgressPercentage`` is a capped sum over attempts
    and ``rsyncElapsedTime`` leaves out the running one (directvolumemigrationprogress_controller.go: history +
    current, ``math.Min(…, 100)``; ``ContainerElapsedTime`` is nil while the container runs), so neither is shown."""
    pct = percent(st.get("lastObservedProgressPercent"))
    elapsed = st.get("containerElapsedTime")
    if st.get("phase") == "Running" and st.get("creationTimestamp") and now:
        secs = seconds_between(st["creationTimestamp"], now)
        elapsed = go_duration(secs) if secs is not None else None
    return pct, elapsed


def disk(pair, view: DvmView, vm_info, ctx: dict) -> dict:
    """One row. ``ctx``: {"live_plan", "mtc_ns", "mig_name", "type", "now"}."""
    ns, names = pair["namespace"], (pair["source"], pair["target"])
    vm_name, volume, vm = vm_info or ("", "", None)
    phase, mode, progress, rate, elapsed, attempt, message = None, None, None, None, None, None, ""
    nostall = False
    mtc_ns = ctx["mtc_ns"]
    inspect = f"kubectl describe migmigration {ctx['mig_name']} -n {mtc_ns}"
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
        secs = go_duration_seconds(elapsed)  # C3: an unrounded metav1.Duration (vm.go, time.Since) -> "1m23s"
        elapsed = go_duration(secs) if secs is not None else elapsed
        inspect = f"kubectl get vmim -n {ns} -l kubevirt.io/volume-update-migration={vm_name}"
        if phase == "Pending":
            # rsync.go runLiveMigrations reads the VMIM phase only once status.migrationState is set, which KubeVirt
            # writes when the migration ends: during the whole copy the disk is in pendingLiveMigration.
            nostall = True
            message = message or "waiting for or running the live migration; MTC reports it only when KubeVirt finishes"
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
            pct, el = _attempt_progress(st, ctx.get("now"))
            progress = pct if pct is not None else progress
            elapsed = el or (None if st.get("phase") == "Running" else elapsed)
            rate = st.get("lastObservedTransferRate") or rate
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
        phase, mode = "Skipped", "live" if ctx["live_plan"] else "offline"
        if ctx.get("type") == "rollback":
            # rsync.go: "On rollback we are only interested in live migration volumes, skip the rest".
            message = ("not copied back: a rollback copies back only live-migrated disks; writes made on the "
                       "migrated disk since the cutover are not on the original")
        elif ctx["live_plan"]:
            message = "VM running: skipped by the stage run, moved live at cutover"
        else:
            message = "skipped"
    else:
        mode = "live" if ctx["live_plan"] and vm_running(vm) else "offline"
        phase = "Succeeded" if view.succeeded else "Pending"
    if phase == "Succeeded" and progress is None:
        progress = 100
    if phase == "Failed" and not message and view.dvm:
        message = "; ".join(_status(view.dvm).get("errors") or [])
    return disk_row(vm=vm_name, volume=volume, source_pvc=pair["source"], target_pvc=pair["target"],
                    source_sc=pair["source_sc"], target_sc=pair["target_sc"], mode=mode, phase=phase or "Pending",
                    progress=progress, rate=rate, elapsed=elapsed, attempt=attempt, message=message,
                    inspect=inspect, nostall=nostall, usesTarget=_uses(vm, pair["target"]))


def missing_disks(requested, pairs, view: DvmView, ended: bool, namespace: str, vm_index, ctx) -> List[dict]:
    """Rows for requested disks that are not in this run: MTC reset their selection to ``skip`` (``PV.Update`` in
    pkg/apis/migration/v1alpha1/migplan_types.go forces the only supported action, e.g. for a hostPath PV), so
    ``getDirectVolumeClaimList`` (migmigration/dvm.go) left them out. Failed once the DVM exists or the run ended."""
    have = {p["source"] for p in pairs}
    out = []
    for src in requested or ():
        if src in have:
            continue
        info = _lookup(vm_index, namespace, (src,))
        vm_name, volume, _ = info or ("", "", None)
        final = bool(view.dvm) or ended
        out.append(disk_row(vm=vm_name, volume=volume, source_pvc=src, target_pvc="", mode="offline",
                            phase="Failed" if final else "Pending",
                            message="not migrated: MTC's MigPlan does not select this PVC for copy (a PV MTC can "
                                    "only skip, e.g. hostPath); the VM keeps its original disk",
                            inspect=f"kubectl get migplan -n {ctx['mtc_ns']} -o yaml"))
    return out


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

