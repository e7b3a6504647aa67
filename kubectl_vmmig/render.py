"""The only place that prints migration tables, JSON and YAML, and follows progress (``-w`` / ``--wait``).

- ``render(migrations, output)`` -> text for ``-o table|wide|json|yaml``; json/yaml print exactly the
  ``{"migrations": [...]}`` contract (render hints starting with ``_`` are dropped).
- ``follow(fetch, out, ...)`` redraws in place on a TTY and prints one line per change otherwise; it
  returns the final Migration list once every migration ended, so callers map the result to an exit
  code. Ctrl-C stops watching only (the migration goes on in the cluster). A dropped API server is
  retried ("reconnecting…" on stderr) for a bounded time.
Colour only on a TTY, never when NO_COLOR is set (https://no-color.org) or TERM=dumb.
"""
import json
import os
import sys
import time
from typing import Callable, List, Optional

from . import errors
from . import progress as P

OUTPUTS = ("table", "wide", "json", "yaml")
MESSAGE_WIDTH = 60
_COLORS = {"Succeeded": "32", "Failed": "31", "Canceled": "33", "Interrupted": "31", "Running": "36",
           "Pending": "2", "Skipped": "2", "NotStarted": "2"}


def use_color(stream) -> bool:
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _paint(text, phase, color):
    code = _COLORS.get(phase)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code and text else text


def _can_encode(text, stream=None) -> bool:
    try:
        text.encode(getattr(stream or sys.stdout, "encoding", None) or "utf-8")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _arrow():
    # A terminal in a non-UTF-8 locale would raise UnicodeEncodeError on the arrow.
    return " → " if _can_encode("→…") else " -> "


def _pct(d):
    p = d.get("progressPercent")
    return "-" if p is None else f"{p}%"


def _eta(seconds):
    return "" if seconds is None else "~" + P.go_duration(seconds)


def _cut(text, width):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + ("…" if _can_encode("…") else "~")


def header(m: dict) -> str:
    """One line: plan, type, current step, result (the table's title)."""
    where = f"{m.get('namespace')}/{m.get('plan')}" if m.get("namespace") else m.get("plan")
    step = m.get("_step") or m.get("phase") or ""
    parts = [f"PLAN {where}", f"ENGINE {m.get('engine')}", f"TYPE {m.get('type')}", f"STEP {step}",
             f"RESULT {m.get('result')}"]
    if m.get("started"):
        parts.append(f"STARTED {m['started']}")
    if m.get("completed"):
        parts.append(f"COMPLETED {m['completed']}")
    return "   ".join(parts)


def table(m: dict, wide=False, color=False, eta=None) -> str:
    """The per-disk table of one migration. ``eta(m, disk)`` -> seconds or None (estimates, shown '~')."""
    from tabulate import tabulate

    heads = ["VM", "VOLUME", "PVC", "STORAGECLASS", "MODE", "PHASE", "PROGRESS", "ETA", "RATE", "ELAPSED",
             "ATTEMPT", "MESSAGE"]
    if wide:
        heads[2:4] = ["SOURCE PVC", "TARGET PVC", "SOURCE SC", "TARGET SC"]
    rows, arrow = [], _arrow()
    for d in m.get("disks") or []:
        est = eta(m, d) if eta else P.eta_from_elapsed(d)
        if d.get("phase") in P.TERMINAL_DISK_PHASES:
            est = None
        pvcs = [d["sourcePVC"], d["targetPVC"]] if wide else [d["sourcePVC"] + arrow + d["targetPVC"]]
        scs = [d["sourceStorageClass"], d["targetStorageClass"]] if wide else \
            [(d["sourceStorageClass"] or "?") + arrow + (d["targetStorageClass"] or "?")]
        msg = d.get("message") or ""
        rows.append([d["vm"] or "-", d["volume"] or "-", *pvcs, *scs, d["mode"], _paint(d["phase"], d["phase"], color),
                     _pct(d), _eta(est) or "-", d.get("transferRate") or "-", d.get("elapsed") or "-",
                     "-" if d.get("attempt") is None else d["attempt"],
                     msg if wide else _cut(msg, MESSAGE_WIDTH)])
    if not rows:
        return "(no disks)"
    return tabulate(rows, headers=heads, tablefmt="plain", disable_numparse=True)


def footer(m: dict, stalls=()) -> List[str]:
    """Warnings, errors and failed disks (named), one line each."""
    lines = []
    for w in m.get("_warnings") or []:
        lines.append(f"warning: {w}")
    for s in stalls:
        lines.append(f"warning: {s}")
    for e in m.get("_errors") or []:
        lines.append(f"error: {e}")
    for d in P.failed_disks(m):
        lines.append(f"failed: disk {d['vm'] or '?'}/{d['volume'] or '?'} ({d['sourcePVC']}{_arrow()}{d['targetPVC']})"
                     + (f": {d['message']}" if d.get("message") else ""))
    if m.get("result") == P.RUNNING and m.get("_inspect") and any(d.get("phase") == "Failed" for d in m["disks"]):
        lines.append(f"inspect: {m['_inspect']}")
    return lines


def render(migrations: List[dict], output="table", color=False, tracker: Optional[P.Tracker] = None,
           now: Optional[float] = None) -> str:
    """Text for one snapshot (no trailing newline)."""
    if output == "json":
        return json.dumps(P.document(migrations), indent=2)
    if output == "yaml":
        import yaml

        return yaml.safe_dump(P.document(migrations), sort_keys=False, allow_unicode=True).rstrip("\n")
    if output not in OUTPUTS:
        raise errors.BadInput(f"unknown output format {output!r}", f"use one of {', '.join(OUTPUTS)}")
    blocks, folded = [], []
    for m in migrations:
        if folded and folded[0][0] != m.get("namespace"):
            blocks.append("\n".join(line for _, line in folded))  # earlier runs with no later one shown here
            folded = []
        if m.get("_superseded") and output == "table":  # an earlier run of a plan: one line above its latest run
            folded.append((m.get("namespace"), f"earlier: {m.get('namespace')}/{m.get('plan')} {m.get('type')} "
                          f"{m.get('_migration') or ''} "
                          f"{_paint(m.get('result'), m.get('result'), color)}"
                          + (f" {m['completed']}" if m.get("completed") else "")))
            continue
        eta = (lambda mm, dd: tracker.eta(mm, dd, now)) if tracker is not None else None
        stalls = tracker.stalls([m], now) if tracker is not None else []
        res = _paint(m.get("result"), m.get("result"), color)
        title = header(dict(m, result=res))
        blocks.append("\n".join([line for _, line in folded] + [title, table(m, wide=output == "wide", color=color,
                                                                                 eta=eta)] + footer(m, stalls)))
        folded = []
    if folded:
        blocks.append("\n".join(line for _, line in folded))
    return "\n\n".join(blocks)


def empty_message(namespace: Optional[str], all_namespaces=False, name=None) -> str:
    where = "any namespace" if all_namespaces or not namespace else f"namespace {namespace}"
    what = f"No migration of {name!r}" if name else "No migrations"
    return f"{what} found in {where}."


def show(migrations, output="table", out=None, err=None, namespace=None, all_namespaces=False, name=None):
    """Print one snapshot; for tables an empty result says so on stderr (like kubectl get)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not migrations and output in ("table", "wide"):
        err.write(empty_message(namespace, all_namespaces, name) + "\n")
        return
    out.write(render(migrations, output, color=use_color(out)) + "\n")
    out.flush()


TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


# ---- following --------------------------------------------------------------------------------------
def _state_lines(migrations) -> dict:
    """key -> one-line description of everything that may change; used to print only changes."""
    lines = {}
    for m in migrations:
        where = f"{m.get('namespace')}/{m.get('plan')}"
        lines[("m", where)] = (f"{where} {m.get('engine')} {m.get('type')}: {m.get('_step') or m.get('phase')} "
                               f"[{m.get('result')}]")
        for d in m.get("disks") or []:
            bits = [d["phase"], _pct(d)]
            for k in ("transferRate", "elapsed"):
                if d.get(k):
                    bits.append(d[k])
            if d.get("attempt") is not None:
                bits.append(f"attempt {d['attempt']}")
            if d.get("message"):
                bits.append(_cut(d["message"], 120))
            lines[("d", where, d["vm"], d["volume"], d["sourcePVC"])] = \
                f"{where} {d['vm'] or '-'}/{d['volume'] or d['sourcePVC']} ({d['mode']}): " + " ".join(bits)
    return lines


class _Screen:
    """Redraws a block of text in place on a terminal (cursor up + clear to end of screen)."""

    def __init__(self, out):
        self.out = out
        self.lines = 0

    def draw(self, text):
        if self.lines:
            self.out.write(f"\x1b[{self.lines}F\x1b[J")
        self.out.write(text + "\n")
        self.out.flush()
        self.lines = text.count("\n") + 1


def follow(fetch: Callable[[], List[dict]], out=None, output="table", interval=2.0, tty=None,
           stall_after=600.0, reconnect_timeout=None, err=None, wait: Optional[Callable[[float], None]] = None,
           clock=time.monotonic, sleep=time.sleep) -> List[dict]:
    """Follow ``fetch()`` until every migration ended; return the final Migration list.

    ``wait(interval)`` blocks until the next refresh (a watch-based waiter may return early on a
    change); default: sleep — constant-size polling. Returns [] when there is nothing to follow.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if reconnect_timeout is None:  # how long a lost API server is waited for (env: for tests and slow networks)
        reconnect_timeout = float(os.environ.get("KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT") or 120.0)
    tty = use_tty(out) if tty is None else tty
    color = use_color(out) and tty
    wait = wait or sleep
    tracker = P.Tracker(stall_after=stall_after)
    screen = _Screen(out) if tty and output in ("table", "wide") else None
    printed, warned, last_doc = {}, set(), None
    down_since, backoff = None, 1.0
    try:
        while True:
            try:
                ms = fetch()
            except errors.ApiError as exc:
                # Lost, or back but not ready yet: a restarting API server answers 503/500 ("storage is
                # (re)initializing") for a while. Anything else (403, 404, 422) is a real answer: stop.
                if not (isinstance(exc, errors.ConnectionFailed) or exc.status in TRANSIENT_STATUSES):
                    raise
                now = clock()
                if down_since is None:
                    down_since = now
                    err.write(f"reconnecting{'…' if _can_encode('…', err) else '...'} ({exc.message})\n")
                    err.flush()
                if now - down_since >= reconnect_timeout:
                    raise errors.ConnectionFailed(
                        f"lost the API server for {P.go_duration(now - down_since)}: {exc.message}",
                        hint="the migration goes on in the cluster; run 'status -w' again once it is reachable")
                sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            if down_since is not None:
                err.write("reconnected\n")
                down_since, backoff = None, 1.0
            now = clock()
            tracker.observe(ms, now)
            done = P.ended(ms) or not ms
            if output in ("json", "yaml"):
                doc = P.document(ms)
                if doc != last_doc:
                    text = json.dumps(doc) if output == "json" else render(ms, "yaml") + "\n---"
                    out.write(text + "\n")
                    out.flush()
                    last_doc = doc
            elif screen is not None:
                screen.draw(render(ms, output, color=color, tracker=tracker, now=now)
                            if ms else empty_message(None))
            else:
                state = _state_lines(ms)
                for key, line in state.items():
                    if printed.get(key) != line:
                        out.write(line + "\n")
                printed = state
                for s in tracker.stalls(ms, now):
                    if s.split(" for ")[0] not in warned:
                        warned.add(s.split(" for ")[0])
                        err.write(f"warning: {s}\n")
                if done and ms:
                    out.write("\n" + render(ms, output, color=False) + "\n")
                out.flush()
            if done:
                return ms
            wait(interval)
    except KeyboardInterrupt:
        raise errors.Interrupted("stopped watching; the migration goes on in the cluster",
                                 hint="follow it again with 'kubectl vm-storage status -w'") from None


def use_tty(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())
