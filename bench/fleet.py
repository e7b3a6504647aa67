"""The fleet benchmark (issue 16): ``python -m bench.fleet [--vms 1000] [--namespaces 10] [--parallel 20]``.

Starts the real control plane (tests/cluster/controlplane.py) and the KubeVirt + CDI stand-ins (tests/sim), fills
``--vms`` stopped VMs (one 1Gi PVC disk each, tests/sim/factories.py) over ``--namespaces`` namespaces, runs

    kubectl vm-storage migrate -A -l fleet=bench --to fast --engine kubevirt --parallel P --wait --yes -v 6

through the real kubectl, then ``kubectl vm-storage status -w -A -v 6`` over the idle fleet, and measures makespan
vs the ideal of the stand-ins' copy-time model (bench/fleet_model.py), requests (reads, writes by kind, per VM),
the plugin's CPU seconds and peak RSS (os.wait4), and the idle watch's requests/minute. See bench/README.md.
Not part of ``make test``.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench import fleet_model as FM  # noqa: E402
from bench import measure  # noqa: E402

LABEL = ("fleet", "bench")
TARGET = "fast"
DISKS_PER_VM = 1


def log(msg):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", flush=True)


# ---- stand-ins with a clock: the bench reads their passes, it does not change their rules -------------------
class Clock:
    """Pass start times per stand-in and, for CDI, when each destination DataVolume was first seen and when it
    was written Succeeded (monotonic), from inside the stand-ins' own loop: no extra API request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.passes = {}      # name -> [start, ...]
        self.seen = {}        # (ns, dv) -> first pass start that listed it
        self.done = {}        # (ns, dv) -> time the Succeeded status was written
        self.peak = 0

    def pass_started(self, name):
        t = time.monotonic()
        with self.lock:
            self.passes.setdefault(name, []).append(t)
        return t

    def in_flight(self):
        with self.lock:
            return sum(1 for k in self.seen if k not in self.done)


def clocked(cls, clock):
    class Clocked(cls):
        def step(self):
            self._pass_t = clock.pass_started(self.name)
            super().step()
            if self.name == "cdi":
                with clock.lock:
                    clock.peak = max(clock.peak, sum(1 for k in clock.seen if k not in clock.done))

        def _sync_dv(self, dv, *a, **kw):  # CDI only
            key = (dv["metadata"]["namespace"], dv["metadata"]["name"])
            with clock.lock:
                clock.seen.setdefault(key, self._pass_t)
            return super()._sync_dv(dv, *a, **kw)

        def _write(self, dv, st, old):  # CDI only
            out = super()._write(dv, st, old)
            if st.get("phase") == "Succeeded" and json.loads(old).get("phase") != "Succeeded":
                with clock.lock:
                    clock.done.setdefault((dv["metadata"]["namespace"], dv["metadata"]["name"]), time.monotonic())
            return out
    Clocked.__name__ = f"Clocked{cls.__name__}"
    return Clocked


def start_standins(kube_factory, pace, clock):
    from tests.sim.cdi import CdiController
    from tests.sim.kubevirt import KubeVirtController
    ctls = [clocked(CdiController, clock)(kube_factory(), pace=pace),
            clocked(KubeVirtController, clock)(kube_factory(), pace=pace)]
    for c in ctls:
        c.start()
    return ctls


# ---- fill --------------------------------------------------------------------------------------------------
def namespaces_for(m):
    return [f"fleet-{i:02d}" for i in range(m)]


def is_running(i, running_every):
    """VM i of the fleet runs (a live move) when ``running_every`` is N > 0 and i is a multiple of N."""
    return bool(running_every) and i % running_every == 0


def fill(kube_factory, admin, vms, spaces, workers, running_every=0):
    from kubectl_vmmig import resources as R
    from tests.sim import factories as F
    from tests.sim.common import ensure_namespace

    for ns in spaces:
        ensure_namespace(admin, ns)
    local = threading.local()

    def one(i):
        k = getattr(local, "k", None) or kube_factory()
        local.k = k
        ns = spaces[i % len(spaces)]
        F.apply(k, ns, *F.make_vm_bundle(f"vm-{i:04d}", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                                         running=is_running(i, running_every), labels={LABEL[0]: LABEL[1]}))
    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(vms)))
    log(f"created {vms} VMs + PVCs in {time.monotonic() - t0:.1f}s; waiting for the CDI stand-in to bind them")
    while True:
        pvcs = [p for p in admin.items(R.PVC, None, all_namespaces=True) if p["metadata"]["namespace"] in spaces]
        bound = sum(1 for p in pvcs if (p.get("status") or {}).get("phase") == "Bound")
        want = sum(1 for i in range(vms) if is_running(i, running_every))
        up = sum(1 for v in admin.items(R.VMI, None, all_namespaces=True) if v["metadata"]["namespace"] in spaces
                 and (v.get("status") or {}).get("phase") == "Running") if want else 0
        if bound >= vms and up >= want:
            return time.monotonic() - t0
        time.sleep(2)


# ---- the measured commands ----------------------------------------------------------------------------------
class Runner:
    def __init__(self, cp, workdir):
        self.kubectl, self.env = measure.kubectl_env(cp.admin_kubeconfig, repo=REPO)

    def run(self, args, timeout=None, kill_after=20):
        """measure.run with the whole stderr kept (the -v 6 log is parsed here with its timestamps)."""
        return measure.run([self.kubectl, *args], env=self.env, timeout=timeout, kill_after=kill_after,
                           keep_stderr=True)


def progress(clock, total, stop, loads, every=10.0):
    """Samples the machine's load average every ``every`` s into ``loads``; logs the copies every third sample."""
    while not stop.wait(every):
        loads.append(os.getloadavg()[0])
        if len(loads) % 3 == 0:
            with clock.lock:
                done = len(clock.done)
            log(f"  copies done {done}/{total}, in flight {clock.in_flight()}")


def migrate(runner, clock, args, spaces, kube):
    from kubectl_vmmig import resources as R
    cmd = ["vm-storage", "migrate", "-A", "-l", f"{LABEL[0]}={LABEL[1]}", "--to", TARGET, "--engine", "kubevirt",
           "--parallel", str(args.parallel), "--wait", "--yes", "-v", "6"]
    log("running kubectl " + " ".join(cmd))
    stop = threading.Event()
    loads = []
    th = threading.Thread(target=progress, args=(clock, args.vms, stop, loads), daemon=True)
    th.start()
    t0 = time.monotonic()
    res = runner.run(cmd, timeout=args.timeout)
    t1 = t0 + res["seconds"]
    stop.set()
    log(f"migrate exit {res['exit']} after {res['seconds']:.1f}s")
    if res["exit"] != 0:
        log("stderr tail:\n" + res["stderrTail"])
    reqs = FM.parse_timed_requests(res["stderr"])
    # the outcome, from the cluster: every VM's disk on the destination claim, the records, DVs, VMIMs
    vms = [v for v in kube.items(R.VM, None, all_namespaces=True) if v["metadata"]["namespace"] in spaces]
    moved = sum(1 for v in vms if any((x.get("persistentVolumeClaim") or {}).get("claimName", "").endswith(f"-{TARGET}")
                                      for x in v["spec"]["template"]["spec"]["volumes"]))
    from kubectl_vmmig.engines.kubevirt import build as B
    cms = kube.items(R.CONFIGMAP, None, all_namespaces=True, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage")
    records = [r for r in (B.record_from_configmap(c) for c in cms) if r and r.get("namespace") in spaces]
    dvs = [d for d in kube.items(R.DATAVOLUME, None, all_namespaces=True) if d["metadata"]["namespace"] in spaces]
    vmims = [m for m in kube.items(R.VMIM, None, all_namespaces=True) if m["metadata"]["namespace"] in spaces]
    per_vm = FM.vm_durations(records, dvs, vmims)
    with clock.lock:
        mine = [k for k in clock.done if k in clock.seen and k[0] in spaces]
        cdi_copy = [clock.done[k] - clock.seen[k] for k in mine]
        cdi_starts = sorted(clock.passes.get("cdi", []))
        cdi_copy_passes = [FM.passes_between(cdi_starts, clock.seen[k], clock.done[k]) for k in mine]
        cdi_periods = FM.pass_periods(clock.passes.get("cdi", []), t0, t1)
        kv_periods = FM.pass_periods(clock.passes.get("kubevirt", []), t0, t1)
        peak = clock.peak
    cdi_period = FM.stats(cdi_periods)["mean"] if cdi_periods else None
    kv_period = FM.stats(kv_periods)["mean"] if kv_periods else None
    steps = {"clone_steps": args.clone_steps, "import_steps": args.import_steps, "running_passes": args.running_passes}
    model = [FM.vm_model_seconds(v["mode"] or "offline", cdi_period or 0, kv_period or 0, steps) for v in per_vm]
    ideal = FM.ideal_makespan(model, args.parallel) if cdi_period else None
    counts = FM.request_counts(reqs, len(per_vm) or args.vms)
    return {"argv": cmd, "exit": res["exit"], "seconds": round(res["seconds"], 2),
            "cpuSeconds": round(res["cpuSeconds"], 2), "maxrssMB": round(res["maxrssKB"] / 1024.0, 1),
            "phases": FM.phases_of_run(reqs), "moved": moved, "vmsInRecords": len(per_vm), "records": len(records),
            "requests": counts, "requestTemplates": measure.summarize_requests(reqs)["byTemplate"],
            "cdiPeriod": cdi_period, "kvPeriod": kv_period, "cdiPeriodStats": FM.stats(cdi_periods),
            "kvPeriodStats": FM.stats(kv_periods), "modelPasses": {
                "clone": FM.clone_passes(args.clone_steps), "import": FM.import_passes(args.import_steps),
                "live": FM.live_passes(args.running_passes)},
            "modelVMSeconds": FM.stats(model), "idealSeconds": round(ideal, 1) if ideal else None,
            "makespanRatio": round(res["seconds"] / ideal, 2) if ideal else None,
            "cdiCopySeconds": FM.stats(cdi_copy), "cdiCopyPasses": FM.stats(cdi_copy_passes), "vmCopySeconds": FM.stats(v["copySeconds"] for v in per_vm),
            "vmSlotSeconds": FM.stats(v["slotSeconds"] for v in per_vm), "peakInFlight": peak,
            "loadAverage": FM.stats(loads), "perVM": per_vm, "stderrTail": res["stderrTail"]}


IDLE_NS = "fleet-idle"


def hold_one_migration(runner, admin):
    """``status -w`` ends by itself once every migration ended; to watch an idle fleet it needs one migration that
    stays in progress while nothing changes: one more VM in a namespace the stand-ins leave alone (the ``stall``
    fault, tests/sim/README.md), moved with --detach (its clone never starts)."""
    from kubectl_vmmig import resources as R
    from tests.sim import factories as F
    from tests.sim.common import ensure_namespace, set_faults

    ensure_namespace(admin, IDLE_NS)
    F.apply(admin, IDLE_NS, *F.make_vm_bundle("vm-idle", [F.pvc_disk("data", size="1Gi")], running=False,
                                              labels={LABEL[0]: "idle"}))
    deadline = time.monotonic() + 300
    while (admin.get(R.PVC, "vm-idle-data", IDLE_NS).get("status") or {}).get("phase") != "Bound":
        if time.monotonic() > deadline:
            raise RuntimeError("the idle VM's PVC was never bound")
        time.sleep(1)
    set_faults(admin, IDLE_NS, stall=True)
    res = runner.run(["vm-storage", "migrate", "vm-idle", "-n", IDLE_NS, "--to", TARGET, "--engine", "kubevirt",
                      "--detach", "--yes"], timeout=300)
    if res["exit"] != 0:
        raise RuntimeError("the held migration did not start: " + res["stderrTail"])
    log("one migration held in progress (namespace fleet-idle, stand-ins stalled there)")


def watch(runner, seconds, warmup):
    cmd = ["vm-storage", "status", "-w", "-A", "-v", "6"]
    log(f"running kubectl {' '.join(cmd)} for {seconds:.0f}s (SIGINT to stop)")
    res = runner.run(cmd, timeout=seconds)
    reqs = FM.parse_timed_requests(res["stderr"])
    times = [r["t"] for r in reqs]
    first = next((t for t in times if t is not None), None)
    # the steady state: after the first request + warm-up, up to the SIGINT
    ended_early = res["seconds"] < seconds - 1.0  # -w ends by itself when every migration ended
    steady = FM.steady_rate(times, first + warmup, first + seconds - 1.0) \
        if first is not None and not ended_early else None
    window = min(res["seconds"], seconds)
    out = {"argv": cmd, "seconds": round(window, 1), "warmupSeconds": warmup, "requests": len(reqs),
           "watchRequests": sum(1 for r in reqs if measure.is_watch(r["url"])),
           "perMinute": round(len(reqs) * 60.0 / window, 2) if window else None,
           "steadyPerMinute": None if steady is None else round(steady, 2),
           "endedByItself": ended_early, "exit": res["exit"], "exitSecondsAfterSigint": round(max(0.0, res["seconds"] - seconds), 1),
           "requestsByKind": FM.request_counts(reqs, 1)["readsByKind"],
           # startup / steady split and the long-run re-watch rate (60 / timeoutSeconds per watched kind)
           "watchCost": measure.watch_cost(reqs), "urls": [f"{r['method']} {r['url']}" for r in reqs][:200],
           "maxrssMB": round(res["maxrssKB"] / 1024.0, 1), "cpuSeconds": round(res["cpuSeconds"], 2),
           "stderrTail": res["stderrTail"]}
    log(f"status -w: {out['requests']} requests in {window:.0f}s, steady {out['steadyPerMinute']}/min, "
        f"exit {res['exit']}")
    return out


def idle_rate(w):
    """The idle watch's requests/minute for the floor: the steady window's rate plus the long-run re-watches (a
    70 s window sees none of the watches the server ends after their 5-10 min timeoutSeconds)."""
    if not w or w.get("steadyPerMinute") is None:
        return None
    return round(w["steadyPerMinute"] + ((w.get("watchCost") or {}).get("rewatchPerMinute") or 0.0), 2)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n")[0])
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=20, help="migrate --parallel (the slots of the ideal)")
    ap.add_argument("--pace", type=float, default=0.05,
                    help="stand-ins' pace, seconds between passes (0.05: the fastest the test suite uses)")
    ap.add_argument("--clone-steps", type=int, default=5, help="CDI stand-in clone increments (its default 5)")
    ap.add_argument("--import-steps", type=int, default=4, help="CDI stand-in import increments (its default 4)")
    ap.add_argument("--running-passes", type=int, default=3, help="KubeVirt stand-in Running passes (default 3)")
    ap.add_argument("--running-every", type=int, default=0,
                    help="every Nth VM runs (a live move; 0: all stopped, offline). The KubeVirt stand-in does not "
                         "hold migrations beyond parallelMigrationsPerCluster as KubeVirt does, so with running VMs "
                         "--parallel may not exceed the KubeVirt CR's 5")
    ap.add_argument("--watch-seconds", type=float, default=70.0, help="idle status -w window (SIGINT at its end)")
    ap.add_argument("--watch-warmup", type=float, default=10.0, help="seconds of the window not counted as steady")
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="SIGINT the migrate after this many seconds")
    ap.add_argument("--workers", type=int, default=6, help="threads creating the fleet")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "fleet-latest.json"))
    args = ap.parse_args(argv)
    if args.running_every and args.parallel > 5:
        # kubevirt pkg/virt-controller/watch/migration/migration.go handleTargetPodCreation holds a migration while
        # ParallelMigrationsPerCluster (5 here, tests/sim/kubevirt_install.py) run; tests/sim/kubevirt_migration.py
        # _advance does not: refuse a measurement KubeVirt would not allow
        ap.error("--running-every needs --parallel <= 5 (the KubeVirt CR's parallelMigrationsPerCluster)")
    from kubectl_vmmig import resources as R
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions
    from tests.cluster.controlplane import ControlPlane, bin_dir
    from tests.sim import factories as F

    workdir = tempfile.mkdtemp(prefix="vmstorage-fleet-")
    load_start = os.getloadavg()
    log(f"control plane in {workdir}")
    cp = ControlPlane(workdir, bins=bin_dir()).start().install()
    ctls = []
    try:
        def connect():
            return Kube.connect(ConnectionOptions(kubeconfig=cp.admin_kubeconfig))
        admin = connect()
        F.install_kubevirt(admin)
        F.install_cdi(admin)
        for node in admin.items(R.NODE):  # as tests/e2e/test_kubevirt_engine.py kv: no node lifecycle controller
            if node["spec"].get("taints"):
                admin.patch(R.NODE, node["metadata"]["name"], {"spec": {"taints": None}})
        clock = Clock()
        ctls = start_standins(connect, args.pace, clock)
        spaces = namespaces_for(args.namespaces)
        fill_s = fill(connect, admin, args.vms, spaces, args.workers, args.running_every)
        log(f"fleet ready: {args.vms} VMs in {len(spaces)} namespaces ({fill_s:.0f}s)")
        runner = Runner(cp, workdir)
        load_before = os.getloadavg()
        mig = migrate(runner, clock, args, spaces, admin)
        w = None
        if args.watch_seconds > 0:
            hold_one_migration(runner, admin)
            w = watch(runner, args.watch_seconds, args.watch_warmup)
        dead = [f"{c.name}: {c.died}" for c in ctls if c.died]
        doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "git": subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
                                     text=True).stdout.strip(),
               "server": admin.server_version().get("gitVersion"),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
               "load": {"start": load_start[0], "beforeMigrate": load_before[0], "end": os.getloadavg()[0],
                        "endTriple": os.getloadavg()},
               "vms": args.vms, "namespaces": args.namespaces, "parallel": args.parallel, "pace": args.pace,
               "disksPerVM": DISKS_PER_VM, "runningEvery": args.running_every, "fillSeconds": round(fill_s, 1), "standinErrors":
                   [f"{c.name}: {e}" for c in ctls for e in c.errors][-20:], "standinsDead": dead,
               "migrate": mig, "watch": w}
        # writes per disk at the floor, as README.md "Requests" counts them for the kubevirt engine: one
        # DataVolume create per disk, and per VM one guarded swap patch and one write of the record
        doc["floors"] = FM.floors(mig["requests"]["perVM"], FM.kubevirt_writes_per_disk(DISKS_PER_VM), DISKS_PER_VM,
                                  mig["seconds"], mig["idealSeconds"], idle_rate(w))
    finally:
        for c in ctls:
            c.stop()
        cp.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print("\n" + FM.table(doc) + "\n")
    print(f"figures written to {args.out}")
    return 0 if mig["exit"] == 0 and mig["moved"] == args.vms else 1


if __name__ == "__main__":
    sys.exit(main())
