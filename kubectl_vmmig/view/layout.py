"""The live view's layout (pure): Migration dicts + terminal width/height + clock -> list of lines.

One block per migration: a header (plan, engine, type, step, result, elapsed), an overall line (disks
done/total, a bar, bytes when the sizes are known, overall ETA), the per-disk table, then warnings,
errors and failed disks. ``width=None`` (not a terminal) lays out at natural width with no bar, as
``kubectl get`` does into a pipe. With a width nothing is ever wider: flexible columns are shortened
with an ellipsis first, then columns are dropped by priority (``drop``: the highest goes first); VM,
PHASE and PROGRESS always stay. The default table is narrow (kubectl convention); ``wide`` has every
column. With a height the frame keeps one line free for the cursor and says how many lines it hid.
"""
import datetime
from typing import Callable, List, Optional

from .. import progress as P
from .text import ASCII, Style, bar, fit_line, one_line, percent_text, shorten, size_text

GUTTER = "  "
BAR_WIDTH = 10          # per-disk bar in the PROGRESS column (the column may shrink it)
OVERALL_BAR_WIDTH = 24


class Col:
    """A table column: ``cell(disk, eta_seconds, style) -> text``; ``drop`` None = never dropped;
    ``shrink`` 'mid'|'end' = may be shortened down to ``min`` characters."""

    def __init__(self, key, head, drop, cell, shrink=None, min=0, phase_color=False, fit=None):
        self.key, self.head, self.drop, self.cell = key, head, drop, cell
        self.shrink, self.min, self.phase_color = shrink, max(min, len(head)), phase_color
        self.fit = fit or (lambda d, text, w, style: shorten(text, w, style, shrink or "end"))


def _eta_text(seconds):
    return "-" if seconds is None else "~" + P.go_duration(seconds)


def _pair(a, b, style):
    return (a or "?") + style.arrow + (b or "?")


def _fit_pair(d, text, w, style):
    """Shorten source and target separately, so both names keep their distinguishing ends."""
    a, b = d.get("sourcePVC") or "?", d.get("targetPVC") or "?"
    room = w - len(style.arrow)
    if room < 2 * (len(style.ellipsis) + 2):
        return shorten(text, w, style, "mid")
    wa = min(len(a), max(room // 2, room - len(b)))
    return shorten(a, wa, style, "mid") + style.arrow + shorten(b, room - wa, style, "mid")


def _dash(v):
    return "-" if v in (None, "") else str(v)


_VM = Col("vm", "VM", None, lambda d, e, s: d.get("vm") or "-", "mid", 8)
_VOLUME = Col("volume", "VOLUME", 5, lambda d, e, s: d.get("volume") or "-", "mid", 8)
_MODE = Col("mode", "MODE", 6, lambda d, e, s: d.get("mode") or "-")
_PHASE = Col("phase", "PHASE", None, lambda d, e, s: d.get("phase") or "-", phase_color=True)
_PROGRESS = Col("progress", "PROGRESS", None, lambda d, e, s: percent_text(d.get("progressPercent")))
_ETA = Col("eta", "ETA", 4, lambda d, e, s: _eta_text(e))
_PVC = Col("pvc", "PVC", 8, lambda d, e, s: _pair(d.get("sourcePVC"), d.get("targetPVC"), s), "mid", 16,
           fit=_fit_pair)
MESSAGE_WIDTH = 60      # the narrow table cuts messages even at natural width (``-o wide`` shows them whole)
_MESSAGE = Col("message", "MESSAGE", 7, lambda d, e, s: shorten(d.get("message"), MESSAGE_WIDTH, s) or "-", "end", 16)
_WIDE_MESSAGE = Col("message", "MESSAGE", 7, lambda d, e, s: one_line(d.get("message")) or "-", "end", 16)

NARROW = (_VM, _VOLUME, _MODE, _PHASE, _PROGRESS, _ETA, _PVC, _MESSAGE)
WIDE = (_VM, _VOLUME,
        Col("source", "SOURCE PVC", 10, lambda d, e, s: d.get("sourcePVC") or "-", "mid", 12),
        Col("target", "TARGET PVC", 9, lambda d, e, s: d.get("targetPVC") or "-", "mid", 12),
        Col("sourcesc", "SOURCE SC", 12, lambda d, e, s: d.get("sourceStorageClass") or "?", "mid", 9),
        Col("targetsc", "TARGET SC", 11, lambda d, e, s: d.get("targetStorageClass") or "?", "mid", 9),
        _MODE, _PHASE, _PROGRESS, _ETA,
        Col("rate", "RATE", 14, lambda d, e, s: _dash(d.get("transferRate"))),
        Col("elapsed", "ELAPSED", 13, lambda d, e, s: _dash(d.get("elapsed"))),
        Col("attempt", "ATTEMPT", 15, lambda d, e, s: _dash(d.get("attempt"))),
        _WIDE_MESSAGE)


def disk_eta(d, eta=None, m=None):
    """Seconds left for one disk (None once it ended or when not estimable)."""
    if d.get("phase") in P.TERMINAL_DISK_PHASES:
        return None
    return eta(m, d) if eta else P.eta_from_elapsed(d)


# ---- the per-disk table ---------------------------------------------------------------------------------
def _widths(cols, cells, bars):
    out = []
    for c in cols:
        w = max([len(c.head)] + [len(t) for t in cells[c.key]])
        if c.key == "progress" and bars:
            w = max(w, BAR_WIDTH + 1 + max(len(t) for t in cells[c.key]))
        out.append(w)
    return out


def _progress_min(cells):
    return max(len("PROGRESS"), max(len(t) for t in cells["progress"]))


def choose_columns(cols, cells, width, bars):
    """(columns, widths) that fit ``width``: shrink flexible columns, then drop by priority."""
    cols = list(cols)
    while True:
        widths = _widths(cols, cells, bars)
        if width is None:
            return cols, widths
        excess = sum(widths) + len(GUTTER) * (len(cols) - 1) - width
        mins = [c.min if c.shrink else (_progress_min(cells) if c.key == "progress" else w)
                for c, w in zip(cols, widths)]
        if excess <= sum(w - lo for w, lo in zip(widths, mins)):
            while excess > 0:  # take one character at a time from the column with the most to spare
                i = max(range(len(cols)), key=lambda k: (widths[k] - mins[k], widths[k]))
                widths[i] -= 1
                excess -= 1
            return cols, widths
        droppable = [c for c in cols if c.drop is not None]
        if not droppable:
            return cols, mins  # the terminal is narrower than VM+PHASE+PROGRESS: lines are cut at the end
        cols.remove(max(droppable, key=lambda c: c.drop))


def _progress_cell(d, text, w, style, bars):
    """Exactly ``w`` visible cells: a bar coloured by phase then the percent, or the percent alone."""
    if not bars:
        return text.ljust(w)
    if w < len(text) + 4:
        return text.rjust(w)
    done = 100 if d.get("phase") == "Succeeded" else d.get("progressPercent")
    return style.paint(bar(done, w - len(text) - 1, style), d.get("phase")) + " " + text


def table(m, width=None, style=ASCII, wide=False, eta=None) -> List[str]:
    disks = m.get("disks") or []
    if not disks:
        return ["(no disks)"]
    ests = [disk_eta(d, eta, m) for d in disks]
    base = WIDE if wide else NARROW
    cells = {c.key: [c.cell(d, e, style) for d, e in zip(disks, ests)] for c in base}
    bars = width is not None
    if bars:  # one percent width for every row, so the bars line up
        pw = max(len(t) for t in cells["progress"])
        cells["progress"] = [t.rjust(pw) for t in cells["progress"]]
    cols, widths = choose_columns(base, cells, width, bars)
    lines = [GUTTER.join(shorten(c.head, w, style).ljust(w) for c, w in zip(cols, widths)).rstrip()]
    for i, d in enumerate(disks):
        parts = []
        for c, w in zip(cols, widths):
            text = cells[c.key][i]
            if c.key == "progress":
                parts.append(_progress_cell(d, text, w, style, bars))
                continue
            text = c.fit(d, text, w, style) if len(text) > w else text
            pad = text.ljust(w)
            parts.append(style.paint(text, d.get("phase")) + pad[len(text):] if c.phase_color else pad)
        lines.append(GUTTER.join(parts).rstrip())
    return [_cut(ln, width, style) for ln in lines]


def _cut(line, width, style):
    """Last resort when even the kept columns do not fit: cut the plain text (colour dropped)."""
    from .text import ESCAPES, visible

    if width is None or visible(line) <= width:
        return line
    return shorten(ESCAPES.sub("", line), width, style)


# ---- header and overall line ------------------------------------------------------------------------------
def elapsed_seconds(m, now: Optional[float]) -> Optional[float]:
    start = P.parse_time(m.get("started"))
    end = P.parse_time(m.get("completed"))
    if start is None:
        return None
    if end is None:
        if now is None:
            return None
        end = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return max(0.0, (end - start).total_seconds())


def _segments(segs, width, style, sep="   "):
    """segs: [(label, value, drop, shrink_min)] -> one line. While too wide: shorten a value that has a
    ``shrink_min`` if that suffices, else drop the highest ``drop``; with nothing left to drop, shorten
    every shrinkable value (names in the middle) as far as needed; never wider than ``width``."""
    live = list(segs)

    def joined(parts, s=sep):
        return s.join(f"{lab} {val}".strip() for lab, val, _, _ in parts)

    while width is not None and len(joined(live)) > width:
        over = len(joined(live)) - width
        flex = [i for i, s in enumerate(live) if s[3] is not None and s[2] is not None and len(s[1]) - over >= s[3]]
        if flex:
            lab, val, drop, lo = live[flex[0]]
            live[flex[0]] = (lab, shorten(val, len(val) - over, style), drop, lo)
            break
        droppable = [s for s in live if s[2] is not None]
        if not droppable:
            for i, (lab, val, drop, lo) in enumerate(live):
                over = len(joined(live, "  ")) - width
                if lo is not None and over > 0:
                    live[i] = (lab, shorten(val, max(lo, len(val) - over), style, "mid"), drop, lo)
            return fit_line(joined(live, "  "), width, style), live
        live.remove(max(droppable, key=lambda s: s[2]))
    return joined(live), live


def header(m, width=None, style=ASCII, now=None) -> str:
    where = f"{m.get('namespace')}/{m.get('plan')}" if m.get("namespace") else (m.get("plan") or "")
    step = one_line(m.get("_step") or m.get("phase") or "-")
    result = m.get("result") or "-"
    segs = [("PLAN", where, None, 16), ("ENGINE", m.get("engine") or "-", 5, None),
            ("TYPE", m.get("type") or "-", 4, None), ("STEP", step, 2, 12), ("RESULT", result, None, None)]
    if m.get("startedBy") not in (None, "plugin"):  # a migration the plugin found, not made (issue 14)
        segs.insert(2, ("STARTED-BY", m["startedBy"], 6, None))
    secs = elapsed_seconds(m, now)
    if secs is not None:
        segs.append(("ELAPSED", P.go_duration(secs), 3, None))
    text, _ = _segments(segs, width, style, "   " if width is None else "  ")  # tighter on a terminal
    token = f"RESULT {result}"
    return text.replace(token, "RESULT " + style.paint(result, result), 1) if style.color else text


def disk_fraction(d) -> float:
    if d.get("phase") == "Succeeded":
        return 1.0
    return float(d.get("progressPercent") or 0) / 100.0


def totals(m) -> dict:
    """Counts, the overall fraction (weighted by size when every size is known) and bytes."""
    disks = [d for d in m.get("disks") or [] if d.get("phase") != "Skipped"]
    sizes = [d.get("_sizeBytes") for d in disks]
    known = bool(disks) and all(isinstance(s, (int, float)) and s > 0 for s in sizes)
    if known:
        total = float(sum(sizes))
        moved = sum(s * disk_fraction(d) for s, d in zip(sizes, disks))
        fraction = moved / total
    else:
        total = moved = None
        fraction = sum(disk_fraction(d) for d in disks) / len(disks) if disks else 0.0
    phases = [d.get("phase") for d in m.get("disks") or []]
    return {"done": phases.count("Succeeded"), "total": len(disks), "failed": phases.count("Failed"),
            "skipped": phases.count("Skipped"), "fraction": fraction, "bytes": total, "moved": moved}


def overall(m, width=None, style=ASCII, eta=None) -> str:
    t = totals(m)
    pct = percent_text(round(t["fraction"] * 100, 1))
    running = [d for d in m.get("disks") or [] if d.get("phase") not in P.TERMINAL_DISK_PHASES]
    ests = [disk_eta(d, eta, m) for d in running]
    # Disks copy in parallel (one DVM for all of them; one volume migration per VM), so the whole ends
    # with the slowest; unknown while a disk that is not finished has no estimate yet.
    total_eta = max(ests) if ests and all(e is not None for e in ests) else None
    phase = "Failed" if t["failed"] else ("Succeeded" if t["done"] == t["total"] and t["total"] else "Running")
    segs = [("DISKS", f"{t['done']}/{t['total']} done", None, None)]
    for key, word in (("failed", "failed"), ("skipped", "skipped")):
        if t[key]:
            segs.append(("", f"{t[key]} {word}", None, None))
    if width is not None:
        segs.append(("", "\x00" + pct, None, None))  # the bar, sized below to the room left
    else:
        segs.append(("", pct, None, None))
    if t["bytes"]:
        segs.append(("", f"{size_text(t['moved'])} of {size_text(t['bytes'])}", 3, None))
    if running:
        segs.append(("ETA", _eta_text(total_eta), 2, None))
    if width is None:
        return _segments(segs, None, style)[0]
    text, _ = _segments(segs, width - 6, style)  # a 5-cell bar at the least
    room = width - len(text) + 1  # "\x00" is replaced by the bar and a space
    bw = min(OVERALL_BAR_WIDTH, room - 1)
    if bw < 5:
        return fit_line(text.replace("\x00", ""), width, style)
    return text.replace("\x00", style.paint(bar(t["fraction"] * 100, bw, style), phase) + " ")


# ---- one frame --------------------------------------------------------------------------------------------
def footer(m, stalls=(), width=None, style=ASCII) -> List[str]:
    """Warnings, errors and failed disks (named), one line each."""
    lines = [f"warning: {w}" for w in m.get("_warnings") or []] + [f"warning: {s}" for s in stalls]
    lines += [f"error: {e}" for e in m.get("_errors") or []]
    for d in P.failed_disks(m):
        pair = _pair(d["sourcePVC"], d["targetPVC"], style)
        lines.append(f"failed: disk {d['vm'] or '?'}/{d['volume'] or '?'} ({pair})"
                     + (f": {d['message']}" if d.get("message") else ""))
    if m.get("result") == P.RUNNING and m.get("_inspect") and P.failed_disks(m):
        lines.append(f"inspect: {m['_inspect']}")
    return [fit_line(one_line(ln), width, style) for ln in lines]


def fleet_counts(migrations) -> dict:
    """VMs of every migration shown: queued (held back by the window), running, done (every disk ended)."""
    out = {"queued": 0, "running": 0, "done": 0}
    for m in migrations:
        by_vm: dict = {}
        for d in m.get("disks") or []:
            by_vm.setdefault(d.get("vm") or d.get("sourcePVC"), []).append(d.get("phase"))
        for phases in by_vm.values():
            if all(p in P.TERMINAL_DISK_PHASES for p in phases):
                out["done"] += 1
            elif all(p == "Queued" for p in phases):
                out["queued"] += 1
            else:
                out["running"] += 1
    return out


def fleet_line(migrations, width=None, style=ASCII) -> str:
    """The line over a view of several namespaces: how many namespaces, VMs queued/running/done."""
    c = fleet_counts(migrations)
    spaces = len({m.get("namespace") for m in migrations})
    vms = sum(c.values())
    segs = [("FLEET", f"{spaces} namespace(s)", None, None), ("VMS", str(vms), 3, None),
            ("QUEUED", str(c["queued"]), None, None), ("RUNNING", str(c["running"]), None, None),
            ("DONE", str(c["done"]), None, None)]
    return _segments(segs, width, style, "   " if width is None else "  ")[0]


def is_fleet(migrations) -> bool:
    return len({m.get("namespace") for m in migrations}) > 1


def _busy(m) -> dict:
    """The migration with only the disks in flight (a fleet on a short terminal: queued and ended rows go)."""
    return dict(m, disks=[d for d in m.get("disks") or []
                          if d.get("phase") not in P.TERMINAL_DISK_PHASES and d.get("phase") != "Queued"])


def _blocks(migrations, width, style, wide, now, eta, stalls, rows=lambda m: m) -> List[str]:
    lines: List[str] = []
    for i, m in enumerate(migrations):
        if i:
            lines.append("")
        lines.append(header(m, width, style, now))
        lines.append(overall(m, width, style, eta))
        shown = rows(m)
        if shown.get("disks") or shown is m:
            lines += table(shown, width, style, wide, eta)
        lines += footer(m, stalls(m) if stalls else (), width, style)
    return lines


def frame(migrations, width=None, height=None, style: Style = ASCII, wide=False, now=None,
          eta: Optional[Callable] = None, stalls: Optional[Callable] = None, event: str = "") -> List[str]:
    """Every line of one redraw. ``eta(m, d)`` -> seconds|None; ``stalls(m)`` -> [warning]; ``event``: the
    engine's latest message (shown last). Migrations of several namespaces (a fleet, ``status -A``): the fleet
    line first, then each namespace's block; when that is taller than the terminal, each block keeps its header
    and overall line and only the disks in flight (the fleet line counts the others)."""
    fleet = is_fleet(migrations)
    lines = [fleet_line(migrations, width, style)] if fleet else []
    body = _blocks(migrations, width, style, wide, now, eta, stalls)
    if fleet and height is not None and len(lines) + len(body) > max(1, height - 1):
        body = _blocks(migrations, width, style, wide, now, eta, stalls, rows=_busy)
    lines += body
    if event:
        lines.append(fit_line("· " + one_line(event) if style.unicode else "- " + one_line(event), width, style))
    if height is not None and len(lines) > max(1, height - 1):
        keep = max(1, height - 2)
        hidden = len(lines) - keep
        lines = lines[:keep] + [fit_line(f"{style.ellipsis} {hidden} more line(s) below: a taller terminal shows "
                                         "them (or status -o wide without -w)", width, style)]
    return lines
