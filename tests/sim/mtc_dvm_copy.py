"""mig-controller stand-in: the DVM's RunRsyncOperations phase — simulated rsync attempts written to the
DVMPs (API.md §4, BEHAVIOR.md §5.1) and live migrations observed through VMIMs (BEHAVIOR.md §3.3–3.5)."""
import datetime
from typing import Dict, List

from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, fault_int, go_duration, now, parse_go_duration, parse_time, seconds_since,
                     set_condition)
from .mtc_dvm import DEFAULT_BACKOFF, dvmp_name, new_pod_name, rate
from .mtc_workloads import live_update_vm, running_vm_volumes



def _pct(text) -> int:
    try:
        return int(str(text or "0").rstrip("%"))
    except ValueError:
        return 0


def _op(st: dict, p: dict) -> dict:
    ops = st.setdefault("rsyncOperations", []) or []
    st["rsyncOperations"] = ops
    for op in ops:
        if op["pvcReference"]["name"] == p["name"] and op["pvcReference"]["namespace"] == p["namespace"]:
            return op
    op = {"pvcReference": {"namespace": p["namespace"], "name": p["name"]}, "currentAttempt": 0}
    ops.append(op)
    return op


def _totals(s: dict):
    """directvolumemigrationprogress_controller.go updateCumulativeProgressPercentage: the history
    entries other than the current pod PLUS the current attempt, capped at 100 (so failed attempts add
    up: three failures at 40 % read "100%"); updateCumulativeElapsedTime: the same sum of
    containerElapsedTime — nil for a Running (Ready) container (getRsyncClientContainerStatus), so the
    running attempt counts 0s."""
    current = s.get("podName")
    hist = [h for h in s.get("rsyncPodStatuses") or [] if h.get("podName") != current]
    total = min(100, sum(_pct(h.get("lastObservedProgressPercent")) for h in hist)
                + _pct(s.get("lastObservedProgressPercent")))
    elapsed = sum(parse_go_duration(h.get("containerElapsedTime")) for h in hist) + \
        parse_go_duration(s.get("containerElapsedTime"))
    return total, elapsed


def step_rsync(rec, dvm: dict, st: dict, p: dict, faults: Dict[str, str]) -> None:
    """Advance one simulated rsync attempt of PVC ``p`` by one increment (writes its DVMP status)."""
    kube = rec.kube
    name = dvmp_name(dvm["metadata"]["name"], p["name"], p["namespace"])
    dvmp = kube.get_or_none(R.DVMP, name, MTC_NAMESPACE)
    if not dvmp:
        rec._ensure_dvmp(dvm, p)
        return
    op = _op(st, p)
    if op.get("succeeded") or op.get("failed"):
        return
    limit = dvm["spec"].get("backOffLimit") or DEFAULT_BACKOFF
    fail_at = fault_int(faults, "rsyncFailAt")
    fail_attempts = fault_int(faults, "rsyncFailAttempts", limit)
    target_pvc = faults.get("rsyncFailPVC")
    failing = fail_at is not None and (not target_pvc or target_pvc == p["name"])
    inc = fault_int(faults, "rsyncStep", rec.rsync_increment) or rec.rsync_increment
    s = dict(dvmp.get("status") or {})
    history = list(s.get("rsyncPodStatuses") or [])
    phase = s.get("phase")
    attempt = op.get("currentAttempt") or 0
    if not s.get("podName") or phase == "Failed":
        attempt += 1
        op["currentAttempt"] = attempt
        created = now()
        pending_for = fault_int(faults, "rsyncPendingFor")
        if pending_for and attempt == 1:  # the attempt's pod has been Pending that long already
            created = (parse_time(created) - datetime.timedelta(seconds=pending_for)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A Pending (ContainerCreating) pod's containerElapsedTime is the time since its creation.
        s = {"podName": new_pod_name(), "phase": "Pending", "creationTimestamp": created,
             "containerElapsedTime": go_duration(seconds_since(created)), "rsyncPodStatuses": history or None}
    elif phase == "Pending":
        s.update(phase="Running", lastObservedProgressPercent="0%", lastObservedTransferRate=rate(),
                 containerElapsedTime=None)
    elif phase == "Running":
        done_before = sum(_pct(h.get("lastObservedProgressPercent")) for h in history)
        pct = _pct(s.get("lastObservedProgressPercent")) + inc
        elapsed = go_duration(seconds_since(s.get("creationTimestamp")))
        attempt_fails = failing and attempt <= fail_attempts
        if attempt_fails and pct >= fail_at:
            s.update(phase="Failed", exitCode=11, containerElapsedTime=elapsed,
                     lastObservedProgressPercent=f"{fail_at}%",
                     logMessage="rsync error: error in file IO (code 11) at receiver.c(374) [receiver=3.1.3]")
            history.append({k: s.get(k) for k in ("podName", "phase", "exitCode", "containerElapsedTime",
                                                  "logMessage", "lastObservedProgressPercent",
                                                  "lastObservedTransferRate", "creationTimestamp")})
            if attempt >= limit:
                op["failed"] = True
        elif not attempt_fails and done_before + pct >= 100:
            s.update(phase="Succeeded", exitCode=0, containerElapsedTime=elapsed, lastObservedProgressPercent="100%",
                     logMessage="sent 1.07G bytes  received 35 bytes  total size 1.07G")
            history.append({k: s.get(k) for k in ("podName", "phase", "exitCode", "containerElapsedTime",
                                                  "logMessage", "lastObservedProgressPercent",
                                                  "lastObservedTransferRate", "creationTimestamp")})
            op["succeeded"] = True
        else:
            r = rate()
            s.update(lastObservedProgressPercent=f"{pct}%", lastObservedTransferRate=r,
                     logMessage=f"{pct * 10.7:.2f}M  {pct}%   {r}    0:00:0{pct % 10} (xfr#1, to-chk=0/1)")
        s["rsyncPodStatuses"] = history or None
    total, elapsed_s = _totals(s)
    s["totalProgressPercentage"] = f"{total}%"
    s["rsyncElapsedTime"] = go_duration(elapsed_s)
    s["observedDigest"] = "sim"
    s["conditions"] = [{"type": "Ready", "status": "True", "category": "Required",
                        "message": "The progress is ready",
                        "lastTransitionTime": s.get("creationTimestamp") or now()}]
    for k in ("exitCode", "containerElapsedTime", "logMessage", "lastObservedProgressPercent",
              "lastObservedTransferRate"):
        s.setdefault(k, None)
    kube.patch(R.DVMP, name, {"status": s}, MTC_NAMESPACE)


VMI_NOT_FOUND = "not found"  # vm.go vmiNotFound
PENDING_POD_WARNING_SECONDS = 10 * 60  # rsync.go PendingPodWarningTimeLimit


def pending_pods(st: dict) -> None:
    """rsync.go podPendingSinceTimeLimit, run on every RunRsyncOperations reconcile (not Rollback): a
    non-empty pendingSinceTimeLimitPods (re-)sets the RsyncClientPodsPending Warn condition."""
    pods = st.get("pendingSinceTimeLimitPods") or []
    if pods:
        names = ", ".join(f"{e.get('namespace')}/{e.get('name')}" for e in pods)
        set_condition({"status": st}, "RsyncClientPodsPending", "True", "PodStuckInContainerCreating", "Warn",
                      f"Rsync Client Pods [{names}] are stuck in Pending state for more than 10 mins")


def _vmims_for(vmims: List[dict], vm: str) -> List[dict]:
    """The VMIMs with ``spec.vmiName == vm`` in API list order (the real client lists them as the API
    server returns them: by name), stale ones from earlier attempts included."""
    return [m for m in vmims if (m.get("spec") or {}).get("vmiName") == vm]


def vm_migration_status(kube, vmims: List[dict], vm: str, ns: str) -> str:
    """vm.go virtualMachineMigrationStatus: judged on the FIRST listed VMIM of the VM
    (findVirtualMachineInstanceMigration) — only when its status.migrationState is set — then on the
    VMI: VolumesChange True and LiveMigratable not True → the LiveMigratable message. "" = no failure."""
    first = next(iter(_vmims_for(vmims, vm)), None)
    ms = ((first or {}).get("status") or {}).get("migrationState")
    if ms:
        if ms.get("failed"):
            return ms.get("failureReason") or ""
        abort = {"Succeeded": "Migration canceled", "Failed": "Migration canceled failed",
                 "Aborting": "Migration cancel in progress"}.get(ms.get("abortStatus") or "")
        if abort:
            return abort
        if ms.get("completed"):
            return ""
    vmi = kube.get_or_none(R.VMI, vm, ns)
    if not vmi:
        return VMI_NOT_FOUND
    conds = {c.get("type"): c for c in (vmi.get("status") or {}).get("conditions") or []}
    vc, lm = conds.get("VolumesChange") or {}, conds.get("LiveMigratable") or {}
    if vc.get("status") == "True" and lm.get("status") != "True":
        return lm.get("message") or ""
    return ""


def _vmim_elapsed(vmim: dict) -> str:
    """vm.go getVMIMElapsedTime: migrationState.startTimestamp (else the Running phase transition) to
    endTimestamp, or to now while it runs. (Real: an unrounded Go duration; rounded here.)"""
    st = vmim.get("status") or {}
    ms = st.get("migrationState") or {}
    start = ms.get("startTimestamp")
    if not start:
        for t in st.get("phaseTransitionTimestamps") or []:
            if t.get("phase") == "Running":
                start = t.get("phaseTransitionTimestamp")
    if not start:
        return go_duration(0)
    end = parse_time(ms.get("endTimestamp"))
    return go_duration((end - parse_time(start)).total_seconds() if end else seconds_since(start))


def live_status(rec, dvm: dict, live: Dict[str, str], lists: Dict[str, list]) -> None:
    """rsync.go updateVolumeLiveMigrationProgressStatus, one call per PVC of a running VM. The VMIM is
    the LAST listed one of the VM (vm.go getVolumeVMIMInNamespaces overwrites its map per match), read
    only when KubeVirt has set its status.migrationState (which KubeVirt writes when the migration
    ends): by phase Succeeded/Failed (only while the VMI exists, is not terminating and is Running)/
    Running/Pending, any other phase is in no list. Without migrationState: virtualMachineMigrationStatus
    (first listed VMIM, then the VMI) — a message → failedLiveMigration, else pendingLiveMigration; no
    VMI → no entry."""
    ns = rec._ns(dvm)
    vmims = rec.kube.items(R.VMIM, ns)
    previous = {f"{e.get('vmNamespace')}/{e.get('vmName')}": e
                for k in ("runningLiveMigration", "failedLiveMigration")
                for e in ((dvm.get("status") or {}).get(k) or [])}
    for p in rec._pvcs(dvm):
        vm = live.get(p["name"])
        if not vm:
            continue
        entry = {"vmName": "", "vmNamespace": p["namespace"],
                 "pvcRef": {"namespace": p["namespace"], "name": p["name"]}}
        listed = _vmims_for(vmims, vm)
        vmim = listed[-1] if listed else None
        ms = ((vmim or {}).get("status") or {}).get("migrationState")
        if vmim is not None and ms:
            entry["vmName"] = vmim["spec"]["vmiName"]
            entry["totalElapsedTime"] = _vmim_elapsed(vmim)
            if ms.get("failureReason"):
                entry["message"] = ms["failureReason"]
            phase = (vmim.get("status") or {}).get("phase")
            if phase == "Succeeded":
                entry["lastObservedProgressPercent"] = "100%"
                lists["successfulLiveMigration"].append(entry)
            elif phase == "Failed":
                vmi = rec.kube.get_or_none(R.VMI, vm, p["namespace"])
                if vmi and not vmi["metadata"].get("deletionTimestamp") and \
                        (vmi.get("status") or {}).get("phase") == "Running":
                    lists["failedLiveMigration"].append(entry)
            elif phase == "Running":
                # No Prometheus in the stand-in: the percentage stays blank, as upstream without a URL.
                lists["runningLiveMigration"].append(entry)
            elif phase == "Pending":
                lists["pendingLiveMigration"].append(entry)
            continue
        message = vm_migration_status(rec.kube, vmims, vm, p["namespace"])
        if message == VMI_NOT_FOUND:
            continue
        entry["vmName"] = vm
        if message:
            entry["message"] = message
            prev = previous.get(f"{p['namespace']}/{vm}") or {}
            start = (dvm.get("status") or {}).get("startTimestamp")
            elapsed = prev.get("totalElapsedTime") or (go_duration(seconds_since(start)) if start else None)
            if elapsed:
                entry["totalElapsedTime"] = elapsed
            lists["failedLiveMigration"].append(entry)
        else:
            lists["pendingLiveMigration"].append(entry)


def live_verdict(rec, dvm: dict) -> List[str]:
    """rsync.go processMigrationOperationStatus: per VM running on a DVM source PVC (getRunningVmVolumeMap
    of the source claim names), virtualMachineMigrationStatus (FIRST listed VMIM); every non-empty message
    — "not found" included — is a failure reason. It ignores the DVM's live-migration lists, so a
    failedLiveMigration entry (last listed VMIM) need not fail the DVM and an old Failed VMIM listed first
    fails it although the retry succeeded."""
    ns = rec._ns(dvm)
    if not ns:
        return []
    running = running_vm_volumes(rec.kube.items(R.POD, ns))
    vms = sorted({running[p["name"]] for p in rec._pvcs(dvm) if p["name"] in running})
    vmims = rec.kube.items(R.VMIM, ns)
    reasons = []
    for vm in vms:
        message = vm_migration_status(rec.kube, vmims, vm, ns)
        if message:
            reasons.append(message)
    return reasons


def start_live_migrations(rec, dvm: dict, live: Dict[str, str]) -> List[str]:
    """startLiveMigrations: per VM one update (forward: source → target; Rollback: target → source)."""
    ns = rec._ns(dvm)
    rollback = dvm["spec"].get("migrationType") == "Rollback"
    reasons = []
    by_vm: Dict[str, Dict[str, str]] = {}
    sc: Dict[str, str] = {}
    for p in rec._pvcs(dvm):
        vm = live.get(p["name"])
        if not vm:
            continue
        if rollback:
            by_vm.setdefault(vm, {})[p["targetName"]] = p["name"]
            src = rec.kube.get_or_none(R.PVC, p["name"], ns) or {}
            sc[p["name"]] = (src.get("spec") or {}).get("storageClassName")
        else:
            by_vm.setdefault(vm, {})[p["name"]] = p["targetName"]
            sc[p["targetName"]] = p["targetStorageClass"]
    for vm_name, pairs in sorted(by_vm.items()):
        vm = rec.kube.get_or_none(R.VM, vm_name, ns)
        if vm:
            reason = live_update_vm(rec.kube, vm, pairs, sc)
            if reason:
                reasons.append(reason)
    return reasons


def advance_copies(rec, dvm: dict, st: dict, faults: Dict[str, str]) -> bool:
    mtype = dvm["spec"].get("migrationType")
    live = rec._live_pvcs(dvm)
    reasons = []
    if live and mtype in ("CutOver", "Rollback"):
        reasons += start_live_migrations(rec, dvm, live)
    skipped = []
    lists: Dict[str, list] = {k: [] for k in ("successfulPods", "failedPods", "runningPods", "pendingPods",
                                              "unknownPods", "successfulLiveMigration", "runningLiveMigration",
                                              "pendingLiveMigration", "failedLiveMigration")}
    for p in rec._pvcs(dvm):
        if p["name"] in live:
            if mtype == "Stage":
                skipped.append(f"{p['namespace']}/{p['name']}")
            continue
        if mtype == "Rollback":
            skipped.append(f"{p['namespace']}/{p['name']}")  # offline volumes are not copied back
            continue
        step_rsync(rec, dvm, st, p, faults)
        dvmp = rec.kube.get_or_none(R.DVMP, dvmp_name(dvm["metadata"]["name"], p["name"], p["namespace"]),
                                    MTC_NAMESPACE)
        s = (dvmp or {}).get("status") or {}
        op = _op(st, p)
        entry = {"name": s.get("podName"), "namespace": p["namespace"],
                 "pvcRef": {"namespace": p["namespace"], "name": p["name"]},
                 "lastObservedProgressPercent": s.get("totalProgressPercentage"),
                 "lastObservedTransferRate": s.get("lastObservedTransferRate"),
                 "totalElapsedTime": s.get("rsyncElapsedTime")}
        entry = {k: v for k, v in entry.items() if v}
        ph = s.get("phase")
        if op.get("failed"):
            lists["failedPods"].append(entry)
        elif ph == "Succeeded":
            lists["successfulPods"].append(entry)
        elif ph in ("Running", "Failed"):  # a failed attempt with retries left is still in progress
            lists["runningPods"].append(entry)
        elif ph == "Pending":
            lists["pendingPods"].append(entry)
            # rsync.go updateRsyncProgressStatus: Pending for more than PendingPodWarningTimeLimit (10 min)
            # → appended to pendingSinceTimeLimitPods on EVERY reconcile; resetProgressCounters never
            # clears that list, so it (and RsyncClientPodsPending) outlives the pod's start.
            if seconds_since(s.get("creationTimestamp")) > PENDING_POD_WARNING_SECONDS:
                st["pendingSinceTimeLimitPods"] = list(st.get("pendingSinceTimeLimitPods") or []) + [entry]
        else:
            lists["unknownPods"].append(entry)
    if mtype != "Rollback":
        pending_pods(st)
    if mtype in ("CutOver", "Rollback"):  # a Stage DVM only skips running-VM volumes
        live_status(rec, dvm, live, lists)
    for k, v in lists.items():
        st[k] = v or None
    st["skippedVolumes"] = skipped or None
    n = len(rec._pvcs(dvm))
    ok = len(lists["successfulPods"]) + len(lists["successfulLiveMigration"])
    bad = len(lists["failedPods"]) + len(lists["failedLiveMigration"])
    busy = sum(len(lists[k]) for k in ("runningPods", "pendingPods", "unknownPods", "runningLiveMigration",
                                       "pendingLiveMigration"))
    if reasons:
        rec._fail(dvm, st, "Critical", reasons)
        return False
    # directvolumemigration_types.go AllReportingCompleted: nothing running/pending/unknown and
    # successful + failed + skipped + live successful/failed == the DVM's PVCs.
    if busy or ok + bad + len(skipped) != n:
        return False
    live_reasons = live_verdict(rec, dvm) if dvm["spec"].get("liveMigrate") and mtype in ("CutOver", "Rollback") else []
    if lists["failedPods"] or live_reasons:
        # task.go RunRsyncOperations: anyFailed → t.fail(MigrationFailed, Critical, failureReasons). The
        # rsync part adds NO reason: rsync.go processRsyncOperationStatus assigns
        # `failureReasons, err := t.reportAdvancedRsyncErrorHeuristics()` inside `if status.Failed() > 0`,
        # shadowing the slice it returns — so an rsync-only failure leaves dvm.status.errors EMPTY.
        rec._fail(dvm, st, "Critical", live_reasons)
        return False
    return True
