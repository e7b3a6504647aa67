"""The benchmark: ``python -m bench.run [--sizes 1,100,1000] [--runs 5] [--out bench/results/latest.json]``.

Starts the real control plane (tests/cluster/controlplane.py), fills one namespace per N with N VMs and their
disks, and measures the plugin's commands through the real ``kubectl`` next to ``kubectl get`` reading the
same objects: wall time (median), peak RSS (os.wait4) and HTTP requests (each tool's own -v 6 log).
See bench/README.md.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench import measure, report  # noqa: E402
from bench import objects as O  # noqa: E402

SELECTOR = f"{O.APP_LABEL[0]}={O.APP_LABEL[1]}"
HELP_PROBE = ("import sys\nsys.argv = ['kubectl-vm_storage', '--help']\nfrom kubectl_vmmig.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'kubernetes', 'urllib3', 'yaml', 'tabulate'})\n"
              "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n")


def plugin_cases(ns):
    """name -> plugin argv after ``kubectl`` (without -v), the comparison kubectl argvs, and the scenario
    ("vms": VMs only; "mtc": with the MTC objects of a migration in progress)."""
    get_vms = [["get", "vm,vmi,pvc,dv", "-n", ns, "-o", "json"]]
    return {
        "version": (["vm-storage", "version"], [["version"]], "vms"),
        "migrate --dry-run=client": (["vm-storage", "migrate", "-n", ns, "-l", SELECTOR, "--to", O.TARGET_SC,
                                      "--dry-run=client", "-o", "json"], get_vms, "vms"),
        "check": (["vm-storage", "check", "-n", ns, "-l", SELECTOR, "--to", O.TARGET_SC], get_vms, "vms"),
        "status -o json": (["vm-storage", "status", "-n", ns, "-o", "json"],
                           [["get", "migplan,migmigration,dvm,dvmp", "-n", O.MTC_NS, "-o", "json"],
                            ["get", "vm,pvc", "-n", ns, "-o", "json"]], "mtc"),
    }


COMMAND_MODULES = {"version": "version", "migrate --dry-run=client": "migrate", "check": "check",
                   "status -o json": "status"}


def available(name):
    return importlib.util.find_spec(f"kubectl_vmmig.commands.{COMMAND_MODULES[name]}") is not None


class Bench:
    def __init__(self, args, cp, workdir):
        self.args = args
        self.cp = cp
        self.plugin = os.path.join(os.path.dirname(sys.executable), "kubectl-vm_storage")
        self.kubectl, self.env = measure.kubectl_env(cp.admin_kubeconfig)
        self.cache_dir = os.path.join(workdir, "kubectl-cache")  # kubectl's discovery cache, warmed by run 0

    def kubectl_argv(self, args, plugin):
        if plugin:
            return [self.kubectl, *args, "-v", "6"]
        return [self.kubectl, *args, "-v=6", f"--cache-dir={self.cache_dir}"]

    def case(self, name, n, plugin_args, kubectl_args):
        """Plugin and kubectl runs interleaved (plugin, kubectl, plugin, ...) after one untimed warm-up of
        each, so a load change on the machine hits both sides of the ratio alike."""
        p_argvs = [self.kubectl_argv(plugin_args, True)]
        k_argvs = [self.kubectl_argv(a, False) for a in kubectl_args]
        for argv in p_argvs + k_argvs:
            measure.run(argv, env=self.env, timeout=600)
        p_runs, k_runs = [], []
        for _ in range(self.args.runs):
            p_runs.append([measure.run(argv, env=self.env, timeout=600) for argv in p_argvs])
            k_runs.append([measure.run(argv, env=self.env, timeout=600) for argv in k_argvs])
        p, k = report.aggregate(p_runs), report.aggregate(k_runs)
        # The same command run as the plugin executable alone: its own peak RSS without kubectl's dispatcher.
        alone = measure.run([self.plugin, *plugin_args[1:], "-v", "6"], env=self.env, timeout=600)
        c = report.case_figures(name, n, p, k, alone["maxrssKB"])
        print(f"    {name:<26} plugin {p['medianSeconds']:.3f}s {p['requests']:>3} req exit {p['exit']} | "
              f"kubectl get {k['medianSeconds']:.3f}s {k['requests']:>3} req"
              + (f" | ratio {c['timeRatio']:.2f}" if c["timeRatio"] else ""), flush=True)
        if p["exit"] != 0 and p["stderrTail"]:
            print("      " + p["stderrTail"].replace("\n", "\n      "), flush=True)
        return c

    def watch(self, n, seconds):
        ns = O.namespace_for(n)
        res = measure.run(self.kubectl_argv(["vm-storage", "status", "-n", ns, "-w"], True), env=self.env,
                          timeout=seconds, kill_after=20)
        summary = measure.summarize_requests(res["requests"])
        # The rate is over the window up to the SIGINT; the time the plugin then takes to exit is reported apart.
        window = min(res["seconds"], seconds)
        per_min = len(res["requests"]) * 60.0 / window if window else None
        # A poll cycle starts with the MigPlan LIST (engines/mtc/progress.py fetch_objects): one when status -w watches.
        polls = sum(1 for r in res["requests"]
                    if r["url"].split("?")[0].endswith("/migplans") and not measure.is_watch(r["url"]))
        cost = measure.watch_cost(res["requests"])
        steady_per_min = cost["steady"] * 60.0 / window if window else None
        out = {"n": n, "seconds": window, "exitSecondsAfterSigint": max(0.0, res["seconds"] - seconds),
               "requests": len(res["requests"]), "watchRequests": summary["watch"],
               "requestsPerMinute": per_min, "polls": polls,
               "requestsPerPoll": round(len(res["requests"]) / polls, 1) if polls else None,
               "startupRequests": cost["startup"], "steadyRequests": cost["steady"],
               "steadyRequestsPerMinute": steady_per_min, "kindsWatched": cost["kindsWatched"],
               "rewatchPerMinute": cost["rewatchPerMinute"],
               "exit": res["exit"], "timedOut": res["timedOut"],
               "maxrssMB": round(res["maxrssKB"] / 1024.0, 1), "requestSummary": summary,
               "stderrTail": res["stderrTail"], "stdoutBytes": res["stdoutBytes"]}
        print(f"    status -w for {window:.1f}s: {out['requests']} requests ({summary['watch']} watches)"
              f" = {per_min:.1f}/min; start-up {cost['startup']} (a LIST and a WATCH per kind), then "
              f"{cost['steady']} = {steady_per_min:.1f}/min; re-watches at the servers' timeouts "
              f"{cost['rewatchPerMinute']:.2f}/min; exit {res['exit']} {out['exitSecondsAfterSigint']:.1f}s after SIGINT",
              flush=True)
        return out

    def request_pass(self, sizes, only):
        out = []
        for n in sizes:
            for name, (pargs, _kargs, scen) in plugin_cases(O.namespace_for(n)).items():
                if scen == "vms" and available(name) and (not only or name in only):
                    res = measure.run(self.kubectl_argv(pargs, True), env=self.env, timeout=600)
                    out.append({"name": name, "n": n, "plugin": report.aggregate([[res]])})
        return out

    def help_probe(self):
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", HELP_PROBE], env=self.env, capture_output=True, text=True)
        probe_s = time.monotonic() - t0
        heavy = next((ln[6:] for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")), "?")
        runs = [[measure.run([self.kubectl, "vm-storage", "--help"], env=self.env)] for _ in range(self.args.runs)]
        agg = report.aggregate(runs)
        out = {"medianSeconds": agg["medianSeconds"], "medianMaxrssMB": agg["medianMaxrssMB"],
               "heavyModulesImported": [m for m in heavy.split(",") if m], "probeSeconds": probe_s}
        print(f"    --help: {out['medianSeconds']:.3f}s, heavy modules imported: {out['heavyModulesImported'] or 'none'}",
              flush=True)
        return out


def versions(kubectl, env):
    def cmd(argv):
        try:
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return ""
    return {"git": cmd(["git", "-C", REPO, "describe", "--always", "--dirty"]),
            "kubectl": cmd([kubectl, "version", "--client", "-o", "json"]),
            "plugin": cmd([kubectl, "vm-storage", "version", "--client"]) or cmd([kubectl, "vm-storage", "--version"])}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,100,1000", help="comma-separated N (VMs per namespace)")
    ap.add_argument("--runs", type=int, default=5, help="measured runs per command (median reported)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "latest.json"))
    ap.add_argument("--watch-seconds", type=float, default=25.0, help="status -w window at the largest N")
    ap.add_argument("--workers", type=int, default=8, help="threads creating objects")
    ap.add_argument("--only", default="", help="comma-separated command names to measure (default: all)")
    args = ap.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions
    from tests.cluster.controlplane import ControlPlane, bin_dir
    from bench.fill import Filler

    workdir = tempfile.mkdtemp(prefix="vmstorage-bench-")
    started = time.monotonic()
    print(f"control plane in {workdir} ...", flush=True)
    cp = ControlPlane(workdir, bins=bin_dir()).start().install()
    try:
        bench = Bench(args, cp, workdir)
        filler = Filler(lambda: Kube.connect(ConnectionOptions(kubeconfig=cp.admin_kubeconfig)), args.workers)
        filler.install_basics()
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        doc = {"meta": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                    "python": platform.python_version(),
                                    "loadAverageAtStart": os.getloadavg()},
                        "server": cp.admin().server_version().get("gitVersion"), "sizes": sizes, "runs": args.runs,
                        "versions": versions(bench.kubectl, bench.env), "fillSeconds": {}},
               "cases": [], "skipped": [], "watch": None}
        doc["help"] = bench.help_probe()
        for n in sizes:
            print(f"N={n} (load average {os.getloadavg()[0]:.1f})", flush=True)
            fill = {"vms": filler.fill_vms(n)}
            cases = plugin_cases(O.namespace_for(n))
            for scenario in ("vms", "mtc"):
                if scenario == "mtc":
                    fill["mtc"] = filler.fill_mtc(n)
                for name, (pargs, kargs, scen) in cases.items():
                    if scen != scenario or (only and name not in only):
                        continue
                    if not available(name):
                        if n == sizes[0]:
                            doc["skipped"].append(name)
                            print(f"    {name}: not implemented yet (no kubectl_vmmig/commands/"
                                  f"{COMMAND_MODULES[name]}.py)", flush=True)
                        continue
                    doc["cases"].append(bench.case(name, n, pargs, kargs))
            if n == sizes[-1] and available("status -o json") and args.watch_seconds > 0:
                doc["watch"] = bench.watch(n, args.watch_seconds)
            filler.clear_mtc(n)
            doc["meta"]["fillSeconds"][str(n)] = fill
        # The plugin is edited while this runs (editable install): count requests once more, every N back to
        # back with the same code, so a growth in requests means N and not a new commit.
        doc["requestPass"] = bench.request_pass(sizes, only)
        doc["requestGrowth"] = report.request_growth(doc["requestPass"] + [
            c for c in doc["cases"] if c["name"] not in {p["name"] for p in doc["requestPass"]}])
        doc["meta"]["totalSeconds"] = time.monotonic() - started
        doc["meta"]["loadAverageAtEnd"] = os.getloadavg()
    finally:
        cp.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = report.table(doc["cases"], doc["watch"])
    print("\n" + text + "\n")
    for name, g in doc["requestGrowth"].items():
        if g["grows"]:
            print(f"requests grow with N for {name}: {g['requestsByN']}; growing: {g['growingTemplates']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=False)
    print(f"figures written to {args.out} (total {doc['meta']['totalSeconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
