"""What is printed around the live view (pure): the plan a user agrees to before anything stops, and the
summary plus the next step once every followed migration ended."""
from typing import Dict, List, Optional

from .. import progress as P
from .layout import GUTTER, Col, choose_columns, elapsed_seconds, totals
from .text import ASCII, Style, fit_line, shorten, size_text

def _move(key):
    return lambda mv, e, s: str(mv.get(key) or "-")


# What a run will make, most telling kept longest: the header names the target class, so the classes go first.
PLAN_COLUMNS = (Col("vm", "VM", None, _move("vm"), "mid", 8), Col("volume", "VOLUME", 4, _move("volume"), "mid", 8),
                Col("sourcePVC", "SOURCE PVC", 5, _move("sourcePVC"), "mid", 12),
                Col("targetPVC", "TARGET PVC", 3, _move("targetPVC"), "mid", 12),
                Col("sourceSC", "SOURCE SC", 7, _move("sourceSC"), "mid", 9),
                Col("targetSC", "TARGET SC", 8, _move("targetSC"), "mid", 9),
                Col("mode", "MODE", 2, _move("mode")), Col("size", "SIZE", 6, _move("size")))


def plan_table(plan: dict, width: Optional[int] = None, style: Style = ASCII) -> List[str]:
    """The moves a run will make, one row per disk, fitted to ``width`` (names shortened, then columns dropped)."""
    moves = plan.get("moves") or []
    cells = {c.key: [c.cell(mv, None, style) for mv in moves] for c in PLAN_COLUMNS}
    cols, widths = choose_columns(PLAN_COLUMNS, cells, width, bars=False)
    out = [GUTTER.join(c.head.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    for i in range(len(moves)):
        out.append(GUTTER.join(shorten(cells[c.key][i], w, style, c.shrink or "end").ljust(w)
                               for c, w in zip(cols, widths)).rstrip())
    return [fit_line(ln, width, style) for ln in out]


def confirmation(plan: dict, hazards: List[str], width: Optional[int] = None, style: Style = ASCII) -> List[str]:
    """Before anything that stops workloads or VMs: what moves, then what stops (hazards wrapped, never cut)."""
    import textwrap

    head = (f"Plan: {len(plan.get('moves') or [])} disk(s) of {len(plan.get('vms') or [])} VM(s) in namespace "
            f"{plan.get('namespace')}{style.arrow}StorageClass {plan.get('targetStorageClass')} ({plan.get('mode')})")
    lines = [fit_line(head, width, style), ""] + plan_table(plan, width, style) + [""]
    for h in hazards:
        text = f"hazard: {h}"
        lines += textwrap.wrap(text, width, subsequent_indent="        ", break_on_hyphens=False) \
            if width else [text]
    return lines


def stops_vms(plan: dict, inventory: dict, stop: bool) -> List[str]:
    """kubevirt engine, ``--stop``: the running VMs an offline copy stops (restarted afterwards)."""
    if not stop:
        return []
    ns = plan.get("namespace")
    vms = sorted({mv["vm"] for mv in plan.get("moves") or [] if mv.get("mode") == "offline"
                  and ((inventory.get("vms") or {}).get(f"{ns}/{mv['vm']}") or {}).get("running")})
    return [f"--stop stops the running VM(s) {', '.join(vms)} for the offline copy and restarts them after it"] \
        if vms else []


def _slowest(m, durations: Dict[tuple, float]):
    best = None
    for d in m.get("disks") or []:
        secs = P.go_duration_seconds(d.get("elapsed"))
        if secs is None:
            secs = durations.get((m.get("namespace"), m.get("plan"), d.get("vm"), d.get("volume")))
        if secs is not None and (best is None or secs > best[1]):
            best = (f"{d.get('vm') or '?'}/{d.get('volume') or d.get('sourcePVC')}", secs)
    return best


def delete_sources(m) -> Optional[str]:
    """The command that removes the kept sources, only once every destination is confirmed: the migration
    Succeeded and every disk Succeeded (copied and in use). The plugin itself never deletes a volume."""
    disks = [d for d in m.get("disks") or [] if d.get("phase") != "Skipped"]
    if m.get("result") != P.SUCCEEDED or not disks or any(d.get("phase") != "Succeeded" for d in disks):
        return None
    if m.get("type") == "stage":
        return None  # a stage copy is not in use yet: the sources are still the VMs' disks
    srcs = " ".join(sorted({d["sourcePVC"] for d in disks if d.get("sourcePVC")}))
    return f"kubectl delete dv,pvc -n {m.get('namespace')} {srcs} --ignore-not-found"


def summary(migrations, now: Optional[float] = None, durations: Optional[Dict[tuple, float]] = None,
            width: Optional[int] = None, style: Style = ASCII) -> List[str]:
    """Disks moved, bytes, wall time, slowest disk, then the next step, for each migration."""
    lines: List[str] = []
    for m in migrations:
        t = totals(m)
        secs = elapsed_seconds(m, now)
        word = {P.SUCCEEDED: "Succeeded", P.FAILED: "Failed", P.CANCELED: "Canceled"}.get(m.get("result"), "Running")
        if len(migrations) > 1:
            lines.append(f"{m.get('namespace')}/{m.get('plan')}:")
        moved = f"{word}: {t['done']} of {t['total']} disk(s) moved"
        if t["bytes"]:
            moved += f" ({size_text(t['moved'])})"
        if secs is not None:
            moved += f" in {P.go_duration(secs)}"
        lines.append(moved)
        slow = _slowest(m, durations or {})
        if slow and t["total"] > 1:
            lines.append(f"Slowest disk: {slow[0]} ({P.go_duration(slow[1])})")
        lines += next_step(m)
    out = []
    for ln in lines:
        out += command_lines(ln[2:], width) if ln.startswith("  kubectl ") else [fit_line(ln, width, style)]
    return out


def command_lines(cmd: str, width: Optional[int], indent: str = "  ") -> List[str]:
    """A command to copy, never cut: split at spaces with shell line continuations to fit ``width``."""
    if width is None or len(indent + cmd) <= width:
        return [indent + cmd]
    lines, cur = [], indent
    for word in cmd.split(" "):
        if cur.strip() and len(cur) + 1 + len(word) + 2 > width:
            lines.append(cur + " \\")
            cur = indent + "  " + word
        else:
            cur = cur + (" " if cur.strip() else "") + word
    return lines + [cur]


def next_step(m) -> List[str]:
    ns, plan = m.get("namespace"), m.get("plan")
    vms = " ".join(sorted({d.get("vm") for d in m.get("disks") or [] if d.get("vm")}))
    result = m.get("result")
    if result == P.SUCCEEDED:
        cmd = delete_sources(m)
        if m.get("type") == "stage":
            return ["Next: run the cutover (the same migrate command without --stage)."]
        out = ["Next: verify the VM(s) and their data:", f"  kubectl get vm,vmi -n {ns} {vms}"]
        if cmd:
            out += ["Then remove the kept source volumes (the plugin never deletes them):", "  " + cmd]
        return out
    if result == P.FAILED:
        return [f"Next: see why with 'kubectl vm-storage status {plan} -n {ns} -o wide'; the source volumes are "
                "untouched, keep them until the VMs run from their destinations."]
    if result == P.CANCELED:
        return ["Next: the source volumes are in use again; the destination volumes are kept."]
    return [f"Follow it with 'kubectl vm-storage status {plan} -n {ns} -w'."]
