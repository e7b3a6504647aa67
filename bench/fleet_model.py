"""Pure parts of the fleet benchmark (bench/fleet.py): the stand-ins' copy-time model and the ideal makespan,
the -v 6 request log by verb and kind, per-VM durations from the cluster's timestamps, the floors, the table.

The copy-time model counts reconcile *passes* of the stand-ins, read off their code (a pass is one ``step()``;
``StandIn.run`` waits ``pace`` between passes while they write, tests/sim/common.py). Nothing in either
stand-in depends on the disk's size: a copy takes a fixed number of passes, so its time is passes x the pass
period (pace + the pass's own work, which grows with the number of objects it lists). The period is measured
during the run, the pass counts come from here:

* Offline destination, a CDI clone (tests/sim/cdi.py ``CdiController._sync_dv``): pass 1 creates the PVC and binds
  it (``_bind`` runs over the same pass's PVC map; the classes are Immediate), DV Pending; pass 2 CloneScheduled;
  pass 3 CloneInProgress 0%; then ``clone_steps`` passes of ``100/clone_steps`` % -> Succeeded.
* Live destination, a blank import (same function): Pending, ImportScheduled, ImportInProgress 0%, then
  ``import_steps`` increments -> Succeeded.
* Live volume migration (tests/sim/kubevirt_migration.py ``_advance``, after the plugin's VM patch): the pass that
  sees the patch accepts the update and creates the VMIM, which goes Pending in the same pass
  (``workload_updater`` then ``migrations``); then one phase per pass: Scheduling, Scheduled, PreparingTarget,
  TargetReady, Running; Running lasts ``running_passes`` passes -> Succeeded.
"""
import datetime
import re
import statistics
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlsplit

from .measure import _PLAIN, _STRUCTURED

# ---- the copy-time model --------------------------------------------------------------------------------
BEFORE_COPY_PASSES = 3  # create+bind, *Scheduled, *InProgress 0% (cdi.py _sync_dv)
LIVE_PHASE_PASSES = 6   # the patch's pass (VMIM Pending) + Scheduling, Scheduled, PreparingTarget, TargetReady, Running


def clone_passes(clone_steps: int) -> int:
    return BEFORE_COPY_PASSES + max(1, clone_steps)


def import_passes(import_steps: int) -> int:
    return BEFORE_COPY_PASSES + max(1, import_steps)


def live_passes(running_passes: int) -> int:
    return LIVE_PHASE_PASSES + running_passes


def vm_model_seconds(mode: str, cdi_period: float, kv_period: float, steps: dict) -> float:
    """One VM's copy time by the model: its DataVolumes copy at once (one slot is one VM), so a VM costs one
    DataVolume's passes; a live VM adds KubeVirt's migration after the destination is ready.
    ``steps``: {"clone_steps", "import_steps", "running_passes"} as the stand-ins were built."""
    if mode == "live":
        return import_passes(steps["import_steps"]) * cdi_period + live_passes(steps["running_passes"]) * kv_period
    return clone_passes(steps["clone_steps"]) * cdi_period


def ideal_makespan(per_vm_seconds: Sequence[float], slots: int) -> float:
    """The issue's ideal: the sum of the per-VM (here one disk per VM: per-disk) copy times over the slots -
    never below the longest single copy (one VM cannot be split over slots)."""
    vals = list(per_vm_seconds)
    if not vals or slots <= 0:
        return 0.0
    return max(sum(vals) / min(slots, len(vals)), max(vals))


def pass_periods(starts: Sequence[float], since: Optional[float] = None, until: Optional[float] = None) -> List[float]:
    """Start-to-start intervals of a stand-in's passes (monotonic seconds) within [since, until]."""
    s = [t for t in starts if (since is None or t >= since) and (until is None or t <= until)]
    return [b - a for a, b in zip(s, s[1:])]


def passes_between(starts: Sequence[float], first: float, done: float) -> int:
    """How many passes (by their start time, sorted) a copy took: the pass that first listed it (started at
    ``first``) up to the one that wrote it Succeeded (at ``done``) - checks the model's pass count."""
    import bisect
    return bisect.bisect_right(starts, done) - bisect.bisect_left(starts, first)


# ---- the request log --------------------------------------------------------------------------------------
REVIEWS = ("selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews", "tokenreviews")
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
_KLOG_TIME = re.compile(r"^[IWEF]\d{4} (\d\d):(\d\d):(\d\d(?:\.\d+)?)")


def request_kind(method: str, url: str) -> Tuple[str, str]:
    """(operation, resource) of one request: GET of a collection is LIST, with watch=true WATCH; the resource is
    the plural (with its subresource: ``virtualmachines/status``), ``discovery`` for /api, /apis and group
    versions, ``version`` for /version."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    watch = any(v.lower() in ("true", "1") for v in parse_qs(urlsplit(url).query).get("watch", []))
    if not parts or parts[0] not in ("api", "apis"):
        return method, parts[0] if parts else "/"
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if not rest:
        return method, "discovery"
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    elif rest[0] == "namespaces":
        return ("LIST" if method == "GET" and len(rest) == 1 else method), "namespaces"
    plural, named, sub = rest[0], len(rest) > 1, rest[2:]
    op = method
    if method == "GET" and not named:
        op = "WATCH" if watch else "LIST"
    return op, plural + ("/" + "/".join(sub) if sub else "")


def is_write(op: str, resource: str) -> bool:
    """A request that changes the cluster (an access review is a POST that changes nothing: a read here)."""
    return op in WRITE_VERBS and resource not in REVIEWS


def parse_timed_requests(stderr: str) -> List[dict]:
    """Like measure.parse_requests, with the klog line's time of day in seconds (``t``, None without one)."""
    out = []
    for line in stderr.splitlines():
        m = _STRUCTURED.search(line) or _PLAIN.search(line)
        if not m:
            continue
        tm = _KLOG_TIME.match(line)
        t = int(tm.group(1)) * 3600 + int(tm.group(2)) * 60 + float(tm.group(3)) if tm else None
        out.append({"method": m.group(1), "url": m.group(2), "status": m.group(3), "t": t})
    return out


def request_counts(reqs: Iterable[dict], vms: int) -> dict:
    """Totals, reads/writes, writes and reads by ``"<op> <resource>"``, and per VM."""
    reads: Dict[str, int] = {}
    writes: Dict[str, int] = {}
    total = 0
    for r in reqs:
        op, res = request_kind(r["method"], r["url"])
        bucket = writes if is_write(op, res) else reads
        key = f"{op} {res}"
        bucket[key] = bucket.get(key, 0) + 1
        total += 1

    def ordered(d):
        return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))
    nw, nr = sum(writes.values()), sum(reads.values())
    return {"total": total, "reads": nr, "writes": nw, "writesByKind": ordered(writes), "readsByKind": ordered(reads),
            "perVM": round(total / vms, 2) if vms else None,
            "readsPerVM": round(nr / vms, 2) if vms else None, "writesPerVM": round(nw / vms, 2) if vms else None}


def steady_rate(times: Sequence[Optional[float]], start: float, end: float) -> Optional[float]:
    """Requests per minute whose klog time falls in [start, end) (seconds of day; a window across midnight is
    not handled: the benchmark does not run then)."""
    if end <= start:
        return None
    n = sum(1 for t in times if t is not None and start <= t < end)
    return n * 60.0 / (end - start)


def phases_of_run(reqs: Sequence[dict]) -> dict:
    """From the migrate's timed request log: ``preflight`` = first request to the first destination DataVolume
    create, ``copyWindow`` = that create to the last VM patch (the swap), ``tail`` = the last patch to the last
    request (seconds; None when the log lacks them)."""
    times = [r["t"] for r in reqs if r.get("t") is not None]
    creates = [r["t"] for r in reqs if r.get("t") is not None and request_kind(r["method"], r["url"]) ==
               ("POST", "datavolumes")]
    patches = [r["t"] for r in reqs if r.get("t") is not None and request_kind(r["method"], r["url"]) ==
               ("PATCH", "virtualmachines")]
    if not times or not creates or not patches:
        return {"preflight": None, "copyWindow": None, "tail": None}
    return {"preflight": round(creates[0] - times[0], 2), "copyWindow": round(patches[-1] - creates[0], 2),
            "tail": round(times[-1] - patches[-1], 2)}


# ---- per-VM durations from the cluster -------------------------------------------------------------------
def parse_time(text: Optional[str]) -> Optional[float]:
    """RFC3339 (metav1.Time, second precision) -> POSIX seconds."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def _ready_time(dv: dict) -> Optional[float]:
    if ((dv.get("status") or {}).get("phase")) != "Succeeded":
        return None
    for c in (dv.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def _vmim_succeeded(vmim: dict) -> Optional[float]:
    for p in (vmim.get("status") or {}).get("phaseTransitionTimestamps") or []:
        if p.get("phase") == "Succeeded":
            return parse_time(p.get("phaseTransitionTimestamp"))
    return None


def vm_durations(records: Iterable[dict], dvs: Iterable[dict], vmims: Iterable[dict]) -> List[dict]:
    """Per VM of the plugin's records: ``slot`` = its first destination DataVolume's creation to its end (the
    swap patch, ``patchedAt``, offline; the VMIM's Succeeded transition, live), ``copy`` = the DataVolume's
    creation to its Ready condition (CDI's copy). Second precision (metav1.Time)."""
    by_dv = {((d.get("metadata") or {}).get("namespace"), (d.get("metadata") or {}).get("name")): d for d in dvs}
    by_vmi: Dict[tuple, List[dict]] = {}
    for m in vmims:
        by_vmi.setdefault(((m.get("metadata") or {}).get("namespace"), (m.get("spec") or {}).get("vmiName")), []).append(m)
    out = []
    for rec in records:
        ns = rec.get("namespace")
        for vm, r in (rec.get("vms") or {}).items():
            names = [(b.get("metadata") or {}).get("name") for b in r.get("dataVolumes") or []]
            mine = [by_dv.get((ns, n)) or {} for n in names]
            created = [parse_time((d.get("metadata") or {}).get("creationTimestamp")) for d in mine]
            ready = [_ready_time(d) for d in mine]
            start = min((c for c in created if c is not None), default=None)
            copied = max(ready) if ready and None not in ready else None
            end = parse_time(r.get("patchedAt"))
            if r.get("mode") == "live":
                ends = [_vmim_succeeded(m) for m in by_vmi.get((ns, vm), [])]
                end = max((e for e in ends if e is not None), default=None)
            out.append({"namespace": ns, "vm": vm, "mode": r.get("mode"), "result": r.get("result"),
                        "start": start, "end": end,
                        "copySeconds": None if copied is None or start is None else copied - start,
                        "slotSeconds": None if end is None or start is None else end - start})
    return out


def stats(values: Iterable[Optional[float]]) -> Optional[dict]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    p90 = vals[min(len(vals) - 1, int(round(0.9 * (len(vals) - 1))))]
    return {"n": len(vals), "min": round(vals[0], 3), "median": round(statistics.median(vals), 3),
            "mean": round(statistics.fmean(vals), 3), "p90": round(p90, 3), "max": round(vals[-1], 3)}


# ---- floors and the table -------------------------------------------------------------------------------
def kubevirt_writes_per_disk(disks_per_vm: int) -> float:
    """The kubevirt engine's minimum writes (README.md "Requests"): a DataVolume per disk, and per VM one guarded
    swap patch and one record write - 3 for a one-disk VM."""
    return (disks_per_vm + 2) / disks_per_vm


# ---- -------------------------------------------------------------------------------
def floors(requests_per_vm: Optional[float], writes_per_disk: float, disks_per_vm: int, makespan: Optional[float],
           ideal: Optional[float], idle_per_minute: Optional[float]) -> List[dict]:
    """The issue's floors: requests per VM <= writes per disk x disks + 1; makespan <= 1.2 x ideal; idle
    ``status -w`` <= 5 requests/minute. ``met`` is None when the figure is missing."""
    def row(name, value, limit):
        return {"floor": name, "value": value, "limit": limit,
                "met": None if value is None or limit is None else value <= limit}
    return [row("requests per VM", requests_per_vm, writes_per_disk * disks_per_vm + 1),
            row("makespan s", makespan, None if ideal is None else round(1.2 * ideal, 1)),
            row("idle status -w requests/minute", idle_per_minute, 5.0)]


def _f(v, spec="{:.1f}"):
    return "–" if v is None else spec.format(v)


def table(doc: dict) -> str:
    """The README's markdown: one row per figure, then the floors."""
    m, r, w = doc["migrate"], doc["migrate"]["requests"], doc.get("watch") or {}
    slot, copy = m.get("vmSlotSeconds") or {}, m.get("cdiCopySeconds") or {}
    mix = f" (1 VM in {doc['runningEvery']} running: live)" if doc.get("runningEvery") else " (all stopped: offline)"
    rows = [("VMs / namespaces / --parallel", f"{doc['vms']} / {doc['namespaces']} / {doc['parallel']}{mix}"),
            ("moved (volumes on the destination) / exit", f"{m['moved']} / {m['exit']}"),
            ("makespan (migrate wall time)", f"{_f(m['seconds'])} s"),
            ("of which preflight / copy window (first DV create → last swap patch) / tail",
             f"{_f(m['phases']['preflight'])} / {_f(m['phases']['copyWindow'])} / {_f(m['phases']['tail'])} s"),
            ("ideal (model: sum of copy times / slots)", f"{_f(m['idealSeconds'])} s ({_f(m['makespanRatio'], '{:.2f}')}×)"),
            ("stand-in pass period CDI / KubeVirt (mean)", f"{_f(m['cdiPeriod'], '{:.2f}')} s / {_f(m['kvPeriod'], '{:.2f}')} s"),
            ("per-VM copy, CDI's own clock (median / p90 / max)",
             f"{_f(copy.get('median'))} / {_f(copy.get('p90'))} / {_f(copy.get('max'))} s"),
            ("CDI passes per copy, measured (min / median / max) vs model",
             f"{_f((m.get('cdiCopyPasses') or {}).get('min'), '{:.0f}')} / "
             f"{_f((m.get('cdiCopyPasses') or {}).get('median'), '{:.0f}')} / "
             f"{_f((m.get('cdiCopyPasses') or {}).get('max'), '{:.0f}')} vs {m['modelPasses']['clone']} (clone)"
             + (f", {m['modelPasses']['import']} (import)" if doc.get("runningEvery") else "")),
            ("per-VM slot, DV created → swap patch (live: → VMIM Succeeded) (median / p90 / max)",
             f"{_f(slot.get('median'))} / {_f(slot.get('p90'))} / {_f(slot.get('max'))} s"),
            ("destination DataVolumes in flight (peak)", str(m.get("peakInFlight"))),
            ("requests total (reads / writes)", f"{r['total']} ({r['reads']} / {r['writes']})"),
            ("requests per VM", _f(r["perVM"], "{:.2f}")),
            ("writes by kind", ", ".join(f"{k} {n}" for k, n in r["writesByKind"].items()) or "–"),
            ("plugin CPU seconds / peak RSS", f"{_f(m['cpuSeconds'])} s / {_f(m['maxrssMB'], '{:.0f}')} MB"),
            ("idle `status -w -A`: requests/minute (steady, after warm-up)",
             f"{_f(w.get('steadyPerMinute'))} ({w.get('requests', '–')} requests in {_f(w.get('seconds'))} s, "
             f"{w.get('watchRequests', '–')} watches; long run + re-watch "
             f"{_f((w.get('watchCost') or {}).get('rewatchPerMinute'), '{:.2f}')}/min)"),
            ("load average start / during the migrate (median, max) / end",
             f"{_f(doc['load']['start'], '{:.1f}')} / {_f((m.get('loadAverage') or {}).get('median'))}, "
             f"{_f((m.get('loadAverage') or {}).get('max'))} / {_f(doc['load']['end'], '{:.1f}')}")]
    text = "| figure | value |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    text += "\n\n| floor | measured | limit | met |\n| --- | --- | --- | --- |\n"
    text += "\n".join(f"| {f['floor']} | {_f(f['value'], '{:.2f}')} | {_f(f['limit'], '{:.1f}')} | "
                      f"{ {True: 'yes', False: '**no**', None: '–'}[f['met']] } |" for f in doc["floors"])
    return text
