"""mig-controller stand-in: the DVM's RunRsyncOperations phase — simulated rsync attempts written to the
DVMPs (API.md §4, BEHAVIOR.md §5.1) and live migrations observed through VMIMs (BEHAVIOR.md §3.3–3.5)."""
from typing import Dict, List

from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, fault_int, go_duration, now, parse_go_duration, parse_time, seconds_since)
from .mtc_dvm import DEFAULT_BACKOFF, dvmp_name, new_pod_name, rate
from .mtc_workloads import live_update_vm

WAITING_VMIM_PHASES = ("Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady")


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
        s = {"podName": new_pod_name(), "phase": "Pending", "creationTimestamp": now(),
             "rsyncPodStatuses": history or None}
    elif phase == "Pending":
        s.update(phase="Running", lastObservedProgressPercent="0%", lastObservedTransferRate=rate())
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


def _vmim_for(vmims: List[dict], vm: str, dvm: dict):
    created = parse_time(dvm["metadata"].get("creationTimestamp"))
    cands = [m for m in vmims if (m.get("spec") or {}).get("vmiName") == vm
             and (created is None or (parse_time(m["metadata"].get("creationTimestamp")) or created) >= created)]
    cands.sort(key=lambda m: (m["metadata"].get("creationTimestamp") or "", m["metadata"]["name"]))
    # mig-controller matches "a VMIM with spec.vmiName == VM" among all of them; KubeVirt queues a new Pending
    # attempt soon after a failure. Read a copying/finished attempt first, else a failed one, so the failure is
    # not hidden behind the next queued attempt (deterministic, whatever the poll timing).
    for wanted in (("Running", "Succeeded"), ("Failed",)):
        hit = [m for m in cands if (m.get("status") or {}).get("phase") in wanted]
        if hit:
            return hit[-1]
    return cands[-1] if cands else None


def _live_entry(vmim, vmi, vm, p):
    entry = {"vmName": vm, "vmNamespace": p["namespace"],
             "pvcRef": {"namespace": p["namespace"], "name": p["name"]}}
    if vmim:
        ms = (vmim.get("status") or {}).get("migrationState") or {}
        start = ms.get("startTimestamp")
        if not start:
            for t in (vmim.get("status") or {}).get("phaseTransitionTimestamps") or []:
                if t.get("phase") == "Running":
                    start = t.get("phaseTransitionTimestamp")
        if start:
            end = parse_time(ms.get("endTimestamp"))
            secs = (end - parse_time(start)).total_seconds() if end else seconds_since(start)
            entry["totalElapsedTime"] = go_duration(secs)
    return entry


def live_status(rec, dvm: dict, live: Dict[str, str], lists: Dict[str, list]) -> None:
    """updateVolumeLiveMigrationProgressStatus: one entry per PVC of a running VM."""
    ns = rec._ns(dvm)
    vmims = rec.kube.items(R.VMIM, ns)
    for p in rec._pvcs(dvm):
        vm = live.get(p["name"])
        if not vm:
            continue
        vmim = _vmim_for(vmims, vm, dvm)
        vmi = rec.kube.get_or_none(R.VMI, vm, ns)
        entry = _live_entry(vmim, vmi, vm, p)
        phase = (vmim.get("status") or {}).get("phase") if vmim else None
        if phase == "Succeeded":
            entry["lastObservedProgressPercent"] = "100%"
            lists["successfulLiveMigration"].append(entry)
        elif phase == "Failed":
            if vmi and not vmi["metadata"].get("deletionTimestamp") and (vmi.get("status") or {}).get("phase") == "Running":
                ms = (vmim.get("status") or {}).get("migrationState") or {}
                entry["message"] = ms.get("failureReason") or "Live migration failed"
                lists["failedLiveMigration"].append(entry)
        elif phase == "Running":
            # No Prometheus in the stand-in: the percentage stays blank, as upstream without a URL.
            lists["runningLiveMigration"].append(entry)
        elif phase in WAITING_VMIM_PHASES:
            lists["pendingLiveMigration"].append(entry)
        elif vmim is None and vmi:
            conds = {c.get("type"): c for c in (vmi.get("status") or {}).get("conditions") or []}
            vc, lm = conds.get("VolumesChange"), conds.get("LiveMigratable")
            if vc and vc.get("status") == "True" and (not lm or lm.get("status") != "True"):
                entry["message"] = (lm or {}).get("message") or "VMI is not live migratable"
                lists["failedLiveMigration"].append(entry)
            else:
                lists["pendingLiveMigration"].append(entry)


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
        else:
            lists["unknownPods"].append(entry)
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
    if busy or ok + bad + len(skipped) != n:
        return False
    if bad:
        msgs = [e["message"] for e in lists["failedLiveMigration"] if e.get("message")]
        if lists["failedPods"]:
            msgs.append(f"direct volume migration failed. {n} total volumes; {ok} successful; 0 running; "
                        f"{bad} failed")
        rec._fail(dvm, st, "Critical", msgs)
        return False
    return True
