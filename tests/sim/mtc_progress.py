"""mig-controller stand-in: the progress strings the MigMigration shows for its DirectVolume step
(pkg/controller/migmigration/dvm.go, BEHAVIOR.md §5.3)."""
from typing import List, Tuple

from kubectl_vmmig import resources as R

from .common import MTC_NAMESPACE
from .mtc_dvm import DEFAULT_BACKOFF, dvmp_name


def _tail(pct, rate, elapsed) -> str:
    out = ""
    if pct:
        out += f" {pct}"
    if rate:
        out += f" (Transfer rate {rate})"
    if elapsed:
        out += f" ({elapsed})"
    return out


def dvm_progress(kube, dvm: dict) -> Tuple[List[str], str]:
    """(progress lines, "<N> total volumes; <S> successful; <R> running; <F> failed")."""
    st = dvm.get("status") or {}
    limit = dvm["spec"].get("backOffLimit") or DEFAULT_BACKOFF
    attempts = {(o["pvcReference"]["namespace"], o["pvcReference"]["name"]): o.get("currentAttempt") or 0
                for o in st.get("rsyncOperations") or []}
    lines = []
    for key, state in (("pendingPods", "Pending"), ("runningPods", "Running"), ("successfulPods", "Completed"),
                       ("failedPods", "Failed"), ("unknownPods", "Pending")):
        for e in st.get(key) or []:
            ref = e.get("pvcRef") or {}
            attempt = attempts.get((ref.get("namespace"), ref.get("name")), 0)
            line = f"[{ref.get('name')}] {e.get('namespace')}/{e.get('name')}: {state}"
            if state in ("Running", "Pending") and attempt > 1:
                line += f" - Attempt {attempt} of {limit}"
            lines.append(line + _tail(e.get("lastObservedProgressPercent"), e.get("lastObservedTransferRate"),
                                      e.get("totalElapsedTime")))
    for key, state in (("pendingLiveMigration", "Pending"), ("runningLiveMigration", "Running"),
                       ("successfulLiveMigration", "Completed"), ("failedLiveMigration", "Failed")):
        for e in st.get(key) or []:
            ref = e.get("pvcRef") or {}
            line = f"[{ref.get('name')}] Live Migration {e.get('vmNamespace')}/{e.get('vmName')}: {state}"
            if e.get("message"):
                line += f" {e['message']}"
            lines.append(line + _tail(e.get("lastObservedProgressPercent"), e.get("lastObservedTransferRate"),
                                      e.get("totalElapsedTime")))
    n = len(dvm["spec"].get("persistentVolumeClaims") or [])
    ok = len(st.get("successfulPods") or []) + len(st.get("successfulLiveMigration") or [])
    running = len(st.get("runningPods") or []) + len(st.get("runningLiveMigration") or [])
    failed = len(st.get("failedPods") or []) + len(st.get("failedLiveMigration") or [])
    return sorted(lines), f"{n} total volumes; {ok} successful; {running} running; {failed} failed"


def dvmps_of(kube, dvm: dict) -> List[dict]:
    return kube.items(R.DVMP, MTC_NAMESPACE, label_selector=f"directvolumemigration={dvm['metadata']['uid']}")


__all__ = ["dvm_progress", "dvmps_of", "dvmp_name"]
