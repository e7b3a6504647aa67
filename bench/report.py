"""Pure: aggregating measured runs into figures, and the figures into a markdown table."""
from typing import Dict, List, Optional, Sequence

from .measure import grows_with_n, median, ratio, summarize_requests


def aggregate(runs: Sequence[Sequence[dict]]) -> dict:
    """``runs``: one entry per run, each the list of ``measure.run`` results of that run's steps (kubectl
    comparisons may take two invocations). Per run: seconds summed, peak RSS the max, requests summed.
    The request figures come from the last run (they are the same in every run of a deterministic command;
    ``requestsPerRun`` shows it)."""
    per_run = []
    for steps in runs:
        per_run.append({"seconds": sum(s["seconds"] for s in steps),
                        "maxrssKB": max(s["maxrssKB"] for s in steps),
                        "requests": sum(len(s["requests"]) for s in steps),
                        "exit": next((s["exit"] for s in steps if s["exit"] != 0), 0)})
    last = list(runs[-1]) if runs else []
    reqs = [r for s in last for r in s["requests"]]
    return {
        "medianSeconds": median([r["seconds"] for r in per_run]),
        "minSeconds": min((r["seconds"] for r in per_run), default=None),
        "medianMaxrssMB": _mb(median([r["maxrssKB"] for r in per_run])),
        "requests": len(reqs),
        "requestsPerRun": [r["requests"] for r in per_run],
        "exit": per_run[-1]["exit"] if per_run else None,
        "stderrTail": "\n".join(s.get("stderrTail", "") for s in last if s.get("stderrTail")),
        "stdoutBytes": sum(s.get("stdoutBytes", 0) for s in last),
        "argv": [s["argv"] for s in last],
        "requestSummary": summarize_requests(reqs),
        "runs": per_run,
    }


def _mb(kb: Optional[float]) -> Optional[float]:
    return None if kb is None else round(kb / 1024.0, 1)


def case_figures(name: str, n: int, plugin: dict, kubectl: Optional[dict], plugin_direct_rss_kb=None) -> dict:
    out = {"name": name, "n": n, "plugin": plugin, "kubectl": kubectl,
           "pluginOnlyMaxrssMB": _mb(plugin_direct_rss_kb)}
    out["timeRatio"] = ratio(plugin["medianSeconds"], kubectl["medianSeconds"]) if kubectl else None
    return out


def request_growth(cases: List[dict]) -> Dict[str, dict]:
    """Per command: requests at each N and whether they grow with N (with the templates that grew)."""
    by_name: Dict[str, Dict[int, dict]] = {}
    for c in cases:
        by_name.setdefault(c["name"], {})[c["n"]] = c["plugin"]
    out = {}
    for name, by_n in by_name.items():
        counts = {n: f["requests"] for n, f in by_n.items()}
        grew = grows_with_n(counts)
        entry = {"requestsByN": {str(n): counts[n] for n in sorted(counts)}, "grows": grew}
        if grew:
            lo, hi = by_n[min(by_n)], by_n[max(by_n)]
            lo_t, hi_t = lo["requestSummary"]["byTemplate"], hi["requestSummary"]["byTemplate"]
            entry["growingTemplates"] = {t: [lo_t.get(t, 0), k] for t, k in hi_t.items() if k > lo_t.get(t, 0)}
        out[name] = entry
    return out


def _fmt(v, spec="{:.2f}", none="–"):
    return none if v is None else spec.format(v)


def table(cases: List[dict], watch: Optional[dict] = None) -> str:
    """A markdown table: one row per (N, command), the plugin next to kubectl reading the same objects."""
    head = ["N", "command", "plugin s (median)", "kubectl get s", "ratio", "plugin MB (via kubectl / alone)",
            "kubectl get MB", "plugin requests", "kubectl get requests", "exit"]
    rows = [head, ["---"] * len(head)]
    for c in sorted(cases, key=lambda c: (c["n"], c["name"])):
        p, k = c["plugin"], c["kubectl"] or {}
        rows.append([str(c["n"]), c["name"], _fmt(p["medianSeconds"], "{:.3f}"), _fmt(k.get("medianSeconds"), "{:.3f}"),
                     _fmt(c.get("timeRatio"), "{:.2f}×"),
                     f"{_fmt(p['medianMaxrssMB'], '{:.0f}')} / {_fmt(c.get('pluginOnlyMaxrssMB'), '{:.0f}')}",
                     _fmt(k.get("medianMaxrssMB"), "{:.0f}"), str(p["requests"]),
                     _fmt(k.get("requests"), "{}"), str(p["exit"])])
    text = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    if watch:
        text += (f"\n\n`status -w` at N={watch['n']}: {watch['requests']} requests in {watch['seconds']:.1f} s "
                 f"({watch['watchRequests']} of them watches, {watch.get('polls')} polls) → "
                 f"{watch['requestsPerMinute']:.1f} requests/minute over the window")
        if watch.get("startupRequests") is not None:
            text += (f"; start-up {watch['startupRequests']} (a LIST and a WATCH of each of "
                     f"{watch['kindsWatched']} kinds), then **{watch['steadyRequestsPerMinute']:.1f} requests/minute "
                     f"idle** ({watch['steadyRequests']} requests), long-run {watch['rewatchPerMinute']:.2f}/minute "
                     f"(one re-watch per kind at each server-side watch timeout)")
    return text
