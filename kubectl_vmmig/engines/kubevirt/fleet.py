"""The kubevirt engine over a fleet (``migrate -A``), shell: one Driver per namespace's record, ONE window.

Each namespace keeps its own migration record (so ``status``, ``cancel``, ``resume`` and a re-run of one namespace
work as for ``migrate -n``), but the records are driven together, pass after pass:

- one window for the whole fleet (schedule.fleet_queue + schedule.admit over ``(namespace, vm)`` keys): never
  more than ``--parallel`` copies in flight across all namespaces, at most ``--max-per-node`` live moves leaving
  one node (nodes are cluster-wide), the next VM of any namespace starts as soon as one ends;
- each pass reads each kind once across all namespaces (reads.FleetReads), from stores a WATCH per kind keeps
  current (watchcache.CachedReads): after the first LIST and WATCH of a kind, reading costs no request, whatever
  the number of namespaces, VMs or passes; a record is written back only when its state changed (saves.Saves);
- the live view is built from those same reads (progress.build, pure): following costs no request of its own.
"""
import os
import time
from typing import Callable, List, Optional

from ... import errors
from ... import resources as R
from ...watchcache import TRANSIENT  # 429/5xx: an API server restarting answers these for a while
from . import build as B


def migrations_seen(records: List[dict], reads, now: str) -> List[dict]:
    """The Migration dicts of the fleet's records from what this run last LISTed (no request)."""
    from .progress import build

    def objs(res):
        return [o for by_ns in (reads.last.get(res.kind) or {}).values() for o in by_ns.values()]

    names = {(r["namespace"], r["name"]) for r in records}
    out = build([B.record_configmap(r) for r in records], objs(R.VM), objs(R.VMI), objs(R.VMIM),
                objs(R.DATAVOLUME), objs(R.PVC), now=now)
    return [m for m in out if (m.get("namespace"), m.get("plan")) in names]


def apply_fleet(shell, plans: List[dict], show: Optional[Callable[[List[dict]], None]] = None) -> List[dict]:
    """Open (or re-attach to) every namespace's record - the records, and the VMs and VMIs new ones are built
    from, read with one LIST each for the whole fleet - then drive them together; returns the records."""
    from ...watchcache import CachedReads
    from .reads import FleetReads

    # Each kind LISTed once, then kept current by its WATCH (watchcache.py, client-go's reflector): a pass costs
    # no request at all, whatever the length of the run; only the writes do.
    source = CachedReads(shell.kube)
    reads = FleetReads(shell.kube, [p["namespace"] for p in plans], source=source)
    try:
        entries = [shell.open_record(p, vms=reads.kind(R.VM, p["namespace"]),
                                     vmis=reads.kind(R.VMI, p["namespace"]), records=reads.records(p["namespace"]))
                   for p in plans]
        return drive_fleet(shell, entries, bool(shell.options.get("wait", True)), show, reads, pause=source.wait)
    finally:
        source.close()
        import gc

        # as status -w (commands/status.py): the stores hold every object read; left out of the collection at exit
        gc.freeze()


def fleet_pass(drivers, reads, parallel: Optional[int], max_per_node: Optional[int], save):
    """One pass over the fleet: the one window admits across every record, then each running record advances
    (its VMs' reads answered from the pass's shared LISTs); ``save(driver)`` after each record's pass (the
    caller writes it back when saves.Saves says so).
    Returns the PatchRefused a VM met (recorded as its failure; the other VMs and namespaces went on), or None."""
    from .schedule import admit, fleet_queue
    from .guarded_patch import PatchRefused

    reads.new_pass()
    limited = parallel is not None or max_per_node is not None
    admitted = set(admit(fleet_queue([d.rec for d in drivers]), parallel, max_per_node)) if limited else None
    refused = None
    for d in drivers:
        if d.rec["result"] != "Running" or getattr(d, "canceled", False):
            continue
        try:
            try:
                d.advance(None if admitted is None else {vm for ns, vm in admitted if ns == d.ns})
            except PatchRefused as exc:
                refused = refused or exc
            finally:
                save(d)
        except errors.MigrationCanceled:
            # `cancel` wrote this namespace's record (steps.Driver._still_ours, engine._save): it is cancel's now,
            # this run never writes it again; the other namespaces go on
            d.canceled = True
            d.rec["result"] = "Canceled"
    return refused


def drive_fleet(shell, entries, wait: bool, show: Optional[Callable[[List[dict]], None]] = None,
                reads=None, pause: Optional[Callable[[float], None]] = None) -> List[dict]:
    """``entries``: [(record, its ConfigMap)] of every namespace (engine.open_record). Advances them all, under
    one window, until every record ended (``wait``) or - detached - until nothing more can be done without
    waiting (at most ``detach_wait`` seconds); returns the records. ``pause(seconds)`` between passes (default
    sleep; a watched store's ``wait`` returns as soon as something changed). A lost API server (or 5xx while it
    restarts) is ridden out for KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT seconds (120), as the live view does: a
    pass is idempotent (each step finds what an interrupted one did), so the next pass simply goes on."""
    from .reads import FleetReads
    from .saves import Saves
    from .steps import Driver, now

    kube, options, echo = shell.kube, shell.options, shell.echo
    recs = [rec for rec, _ in entries]
    cms = {rec["namespace"]: cm for rec, cm in entries}
    reads = reads or FleetReads(kube, cms)
    opts = dict(options, detach=not wait)
    drivers = [Driver(kube, rec, opts, echo, reads=reads.view(rec["namespace"])) for rec in recs]
    parallel, per_node = opts.get("parallel"), opts.get("max_per_node")
    for d in drivers:
        if bool(d.rec.get("detached")) == wait:
            d.rec["detached"] = not wait  # status: "waiting for the plugin" only while no plugin follows it
            cms[d.ns] = shell._save(d.rec, cms[d.ns])
        d.record_version = _version(cms[d.ns])
    started = time.monotonic()
    deadline = started + float(options["timeout"]) if options.get("timeout") else None
    detach_end = started + float(options.get("detach_wait") or 10)
    refused = None
    saves = {rec["namespace"]: Saves(rec, float(options.get("save_every") or 30)) for rec in recs}

    def save(d, final=False):
        if not getattr(d, "canceled", False) and saves[d.ns].due(d.rec, final):
            cms[d.ns] = shell._save(d.rec, cms[d.ns])
            saves[d.ns].saved(d.rec)
            d.record_version = _version(cms[d.ns])

    pause = pause or time.sleep
    reconnect = float(os.environ.get("KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT") or 120.0)
    down_since, backoff = None, 1.0
    try:
        while True:
            try:
                refused = fleet_pass(drivers, reads, parallel, per_node, save) or refused
            except errors.ApiError as exc:
                if not (isinstance(exc, errors.ConnectionFailed) or exc.status in TRANSIENT):
                    raise
                down_since = down_since or time.monotonic()
                if backoff == 1.0:
                    echo(f"reconnecting... ({exc.message})")
                if time.monotonic() - down_since >= reconnect:
                    raise
                time.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            if down_since is not None:
                echo("reconnected")
                down_since, backoff = None, 1.0
            if show is not None:
                show(migrations_seen(recs, reads, now()))
            if all(r["result"] != "Running" for r in recs):
                break
            if not wait and (time.monotonic() > detach_end or not any(B.plugin_steps_left(r) for r in recs)):
                break
            if deadline and time.monotonic() > deadline:
                echo("timed out waiting; the migrations go on - follow them with 'kubectl vm-storage status -A -w'")
                break
            pause(float(options.get("poll") or 1.0))
    except KeyboardInterrupt:
        for rec in recs:
            if rec["result"] == "Running":
                echo(f"stopped following; run 'kubectl vm-storage resume {rec['name']} -n {rec['namespace']}' "
                     "(or the same command) to resume it")
        raise
    finally:
        for d in drivers:
            save(d, final=True)
    if not wait:
        for rec in recs:
            if rec["result"] == "Running":
                for line in B.detached_summary(rec):
                    echo(line)
    if refused is not None:
        raise refused
    return recs


def _version(cm):
    return ((cm or {}).get("metadata") or {}).get("resourceVersion")
