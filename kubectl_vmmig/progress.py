"""Progress: status objects -> ``Migration`` dicts (the ``status -o json`` contract) + result judgement.

Pure: dicts in, dicts out, no I/O. The engine-specific readers live in ``engines/<name>/progress.py``;
this module holds what they share: the row/Migration constructors (so both
engines emit exactly the same keys and types), the result rules, the ETA estimate and stall detection.

Keys whose name starts with ``_`` are internal hints for the renderer (current step, warnings, object
to inspect); ``public()`` strips them, so ``-o json|yaml`` shows only the documented contract.
"""
import datetime
import re
from typing import Iterable, List, Optional

from .conditions import true_by_type

RUNNING, SUCCEEDED, FAILED, CANCELED = "Running", "Succeeded", "Failed", "Canceled"
TERMINAL_RESULTS = (SUCCEEDED, FAILED, CANCELED)
# Disk phases that will not change any more.
TERMINAL_DISK_PHASES = ("Succeeded", "Failed", "Skipped", "Canceled", "NotStarted", "Interrupted")

MIGRATION_KEYS = ("plan", "namespace", "engine", "type", "phase", "result", "started", "completed", "disks",
                  "startedBy")
# who started a migration (the additive "startedBy" field): the plugin, or what the cluster shows for others
STARTED_BY = ("plugin", "migration-controller", "MTC", "manual")
DISK_KEYS = ("vm", "volume", "sourcePVC", "targetPVC", "sourceStorageClass", "targetStorageClass", "mode",
             "phase", "progressPercent", "transferRate", "elapsed", "attempt", "message")


def disk_row(vm="", volume="", source_pvc="", target_pvc="", source_sc="", target_sc="", mode="offline",
             phase="Pending", progress=None, rate=None, elapsed=None, attempt=None, message="", **hints) -> dict:
    """One row per VM disk. Strings are never None except where the contract allows null."""
    row = {
        "vm": vm or "", "volume": volume or "", "sourcePVC": source_pvc or "", "targetPVC": target_pvc or "",
        "sourceStorageClass": source_sc or "", "targetStorageClass": target_sc or "",
        "mode": mode if mode in ("live", "offline") else "offline", "phase": phase or "",
        "progressPercent": _number_or_none(progress), "transferRate": rate or None, "elapsed": elapsed or None,
        "attempt": int(attempt) if attempt not in (None, "") else None, "message": message or "",
    }
    for key, value in hints.items():
        row["_" + key] = value
    return row


def migration(plan, namespace, engine, type_, phase, result, started=None, completed=None, disks=None,
              started_by="plugin", **hints) -> dict:
    """One migration. ``hints`` become ``_``-prefixed render hints (step, warnings, errors, inspect...)."""
    from .engines import REGISTRY

    assert engine in REGISTRY, engine
    assert result in (RUNNING,) + TERMINAL_RESULTS, result
    assert started_by in STARTED_BY, started_by
    out = {"plan": plan or "", "namespace": namespace or "", "engine": engine, "type": type_ or "",
           "phase": phase or "", "result": result, "started": started or None, "completed": completed or None,
           "disks": list(disks or []), "startedBy": started_by}
    for key, value in hints.items():
        out["_" + key] = value
    return out


def public(migrations: Iterable[dict]) -> List[dict]:
    """The documented contract only (render hints removed), keys in contract order."""
    out = []
    for m in migrations:
        pm = {k: m.get(k) for k in MIGRATION_KEYS}
        pm["disks"] = [{k: d.get(k) for k in DISK_KEYS} for d in m.get("disks") or []]
        out.append(pm)
    return out


def document(migrations: Iterable[dict]) -> dict:
    """What ``status -o json|yaml`` prints."""
    return {"migrations": public(migrations)}


# ---- small readers of controller field formats ------------------------------------------------
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def percent(text) -> Optional[float]:
    """'33%' -> 33, '' / None -> None. Reads a percentage *field*, never a progress sentence."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return _number_or_none(text)
    m = _PERCENT.match(str(text))
    return _number_or_none(float(m.group(1))) if m else None


def _number_or_none(value):
    if value is None or value == "":
        return None
    value = float(value)
    value = max(0.0, min(100.0, value)) if value >= 0 else 0.0
    return int(value) if value == int(value) else round(value, 1)


def go_duration_seconds(text) -> Optional[float]:
    """Parse a Go duration string ('1m30s', '2h0m5s', '150ms') as a length of time (a sign is dropped); None if
    empty or unparsable (go_duration.py: Go's grammar)."""
    from .go_duration import parse_seconds

    if not text:
        return None
    return parse_seconds(str(text).lstrip("-"))


def go_duration(seconds: float) -> str:
    """Go ``Duration.Round(time.Second).String()``: 0s, 5s, 1m30s, 1h2m3s."""
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def parse_time(text) -> Optional[datetime.datetime]:
    """RFC3339 (as Kubernetes writes metav1.Time) -> aware datetime; None if empty/unparsable."""
    if not text:
        return None
    t = str(text).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(t)
    except ValueError:
        try:  # fractional seconds with more than 6 digits (RFC3339Nano)
            base, frac = t.split(".", 1)
            tz = frac[len(frac.rstrip("0123456789")) - len(frac):] if not frac[-1].isdigit() else ""
            digits = frac[: len(frac) - len(tz)][:6]
            return datetime.datetime.fromisoformat(f"{base}.{digits}{tz}")
        except (ValueError, IndexError):
            return None


def seconds_between(start, end) -> Optional[float]:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return max(0.0, (b - a).total_seconds())


conditions = true_by_type  # type -> condition that holds (the readers live in conditions.py)


# ---- result judgement ---------------------------------------------------------------------------
def judge(succeeded=False, failed=False, canceled=False, hidden_failure=False, disks=()) -> str:
    """The one rule for both engines.

    Canceled wins (a canceled migration is not a failure of the tool), then Failed. "Succeeded" only when
    the engine reports success AND no disk failed AND nothing hid a failure (MTC's SucceededWithWarnings
    with DirectVolumeMigrationFailed or a Failed DVM). Anything else is still Running.
    """
    if canceled:
        return CANCELED
    if failed:
        return FAILED
    if succeeded:
        if hidden_failure or any(d.get("phase") == "Failed" for d in disks):
            return FAILED
        return SUCCEEDED
    return RUNNING


def finish_disks(disks: List[dict], result: str) -> None:
    """Once a migration ended, disks that did not reach an end of their own are marked so: Canceled,
    NotStarted (never began) or Interrupted (stopped mid-copy because the migration ended)."""
    if result == RUNNING:
        return
    for d in disks:
        if d["phase"] in TERMINAL_DISK_PHASES:
            continue
        if result == CANCELED:
            d["phase"] = "Canceled"
        elif d["phase"] in ("", "Pending", "Unknown"):
            d["phase"] = "NotStarted"
        else:
            d["phase"] = "Interrupted"


def ended(migrations: Iterable[dict]) -> bool:
    ms = list(migrations)
    return bool(ms) and all(m.get("result") in TERMINAL_RESULTS for m in ms)


def failed_disks(m: dict) -> List[dict]:
    return [d for d in m.get("disks") or [] if d.get("phase") == "Failed"]


# ---- ETA and stall detection --------------------------------------------------------------------
def eta_from_elapsed(disk: dict) -> Optional[float]:
    """Seconds left, extrapolated from elapsed time and percent done (None when not estimable)."""
    p, el = disk.get("progressPercent"), go_duration_seconds(disk.get("elapsed"))
    if p is None or el is None or el <= 0 or not 0 < p < 100:
        return None
    return el * (100.0 - p) / p


class Tracker:
    """Remembers successive observations while following, for rate-based ETA and stall warnings.

    Pure apart from the clock, which the caller passes in (``now`` in seconds, e.g. time.monotonic()).
    A disk is "stalled" when it is neither terminal nor advancing (same percent and phase) for
    ``stall_after`` seconds; the warning names the object to inspect (the ``_inspect`` row hint).
    """

    def __init__(self, stall_after: float = 600.0):
        self.stall_after = stall_after
        self._seen = {}  # key -> (first_time, first_pct, last_change_time, last_state)

    @staticmethod
    def _key(m, d):
        return (m.get("engine"), m.get("namespace"), m.get("plan"), m.get("_migration"), d.get("vm"), d.get("volume"),
                d.get("sourcePVC"))

    def observe(self, migrations: Iterable[dict], now: float) -> None:
        for m in migrations:
            for d in m.get("disks") or []:
                key = self._key(m, d)
                state = (d.get("phase"), d.get("progressPercent"), d.get("attempt"))
                prev = self._seen.get(key)
                if prev is None:
                    self._seen[key] = (now, d.get("progressPercent"), now, state)
                elif prev[3] != state:
                    first_t, first_p = prev[0], prev[1]
                    if first_p is None or (d.get("progressPercent") or 0) < first_p:  # restarted: new baseline
                        first_t, first_p = now, d.get("progressPercent")
                    self._seen[key] = (first_t, first_p, now, state)

    def eta(self, m: dict, d: dict, now: float) -> Optional[float]:
        """Seconds left from the observed rate, else from elapsed; None when not estimable."""
        p = d.get("progressPercent")
        if d.get("phase") in TERMINAL_DISK_PHASES or p is None or not 0 < p < 100:
            return None
        prev = self._seen.get(self._key(m, d))
        if prev and prev[1] is not None and p > prev[1] and now > prev[0]:
            rate = (p - prev[1]) / (now - prev[0])  # percent per second
            return (100.0 - p) / rate
        return eta_from_elapsed(d)

    def stalls(self, migrations: Iterable[dict], now: float) -> List[str]:
        out = []
        for m in migrations:
            if m.get("result") != RUNNING:
                continue
            for d in m.get("disks") or []:
                prev = self._seen.get(self._key(m, d))
                if d.get("phase") in TERMINAL_DISK_PHASES or prev is None or d.get("_nostall"):
                    continue  # _nostall: the engine reports no progress for this phase (MTC live copy)
                idle = now - prev[2]
                if idle >= self.stall_after:
                    what = f"{d.get('vm') or '?'}/{d.get('volume') or d.get('sourcePVC')}"
                    hint = d.get("_inspect") or m.get("_inspect") or ""
                    out.append(f"no progress on {what} for {go_duration(idle)}"
                               + (f"; inspect: {hint}" if hint else ""))
        return out


def without_shadowed(migrations: Iterable[dict]) -> List[dict]:
    """Drop a migration an engine only *observed* (``_observed``: e.g. a VM volume update KubeVirt shows) when
    another engine's migration - read from its controller's own objects (a MigPlan, a storage migration plan) -
    already shows every one of its disks (same namespace, VM and destination claim): one move, one entry."""
    ms = list(migrations)
    shown = {(m.get("namespace"), d.get("vm"), d.get("targetPVC")) for m in ms if not m.get("_observed")
             for d in m.get("disks") or []}
    return [m for m in ms if not (m.get("_observed") and m.get("disks") and all(
        (m.get("namespace"), d.get("vm"), d.get("targetPVC")) in shown for d in m["disks"]))]


def select(migrations: Iterable[dict], name: Optional[str]) -> List[dict]:
    """``status NAME``: the migrations whose plan is NAME (or whose fleet is NAME: an engine's ``_fleet`` hint
    ``namespace/name``, one migration per namespace), else those moving VM NAME (only its disks)."""
    ms = list(migrations)
    if not name:
        return ms
    by_plan = [m for m in ms if m.get("plan") == name or (m.get("_fleet") or "").split("/")[-1] == name]
    if by_plan:
        return by_plan
    out = []
    for m in ms:
        disks = [d for d in m.get("disks") or [] if d.get("vm") == name]
        if disks:
            out.append(dict(m, disks=disks))
    return out
