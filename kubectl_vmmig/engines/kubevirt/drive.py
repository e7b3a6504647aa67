"""The kubevirt engine's one waiting loop (shell): one record (``migrate -n``, ``resume``) or a fleet's, one per
namespace (``migrate -A``), advanced together pass after pass until every record ended (``--wait``), or -
detached - until nothing more can be done without waiting (at most ``detach_wait`` seconds, 10 by default).

What the loop decides, once for both: when a record is written back (saves.Saves), the deadline (``--timeout``),
the detached end, riding out a lost API server, what an interrupt says, and that a VM whose volume swap was
refused (PatchRefused: the VM changed under us) is recorded as failed while the other VMs go on, the refusal
being the command's error at the end.
"""
import os
import time
from typing import Callable, List, Optional

from ... import errors
from ...watchcache import TRANSIENT  # 429/5xx: an API server restarting answers these for a while
from . import build as B


def run_pass(drivers, fleet_reads, parallel: Optional[int], max_per_node: Optional[int], save):
    """One pass: each running record advances, then ``save(driver)`` (written back when saves.Saves says so).
    ``fleet_reads``: a fleet's shared reads (reads.FleetReads): its one window admits across every record (never
    more than ``--parallel`` copies in flight across all namespaces, ``--max-per-node`` live moves leaving a node);
    None: one record reading its own namespace, its own window (steps.Driver._admit).
    Returns the PatchRefused a VM met (recorded as its failure; the other VMs and records went on), or None."""
    from .guarded_patch import PatchRefused
    from .schedule import admit, fleet_queue

    admitted = None
    if fleet_reads is not None:
        fleet_reads.new_pass()
        if parallel is not None or max_per_node is not None:
            admitted = set(admit(fleet_queue([d.rec for d in drivers]), parallel, max_per_node))
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
            # `cancel` wrote this record (steps.Driver._still_ours, engine._save): it is cancel's now, this run
            # never writes it again; the other records go on
            d.canceled = True
            d.rec["result"] = "Canceled"
    return refused


def drive(shell, entries, wait: bool, fleet_reads=None, after_pass: Optional[Callable[[], None]] = None,
          pause: Optional[Callable[[float], None]] = None, dry_run_server: bool = False) -> List[dict]:
    """``entries``: [(record, its ConfigMap)] (engine.open_record). Advances them until they ended (``wait``) or,
    detached, until no step is left for the plugin; returns the records. ``after_pass()`` after each pass (the
    caller's live view); ``pause(seconds)`` between passes (default sleep; a watched store's ``wait`` returns as
    soon as something changed). A lost API server (or 5xx while it restarts) is ridden out for
    KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT seconds (120), as the live view does: a pass is idempotent (each step
    finds what an interrupted one did), so the next pass simply goes on. A server dry run writes no record."""
    from .saves import Saves
    from .steps import Driver

    kube, options, echo = shell.kube, shell.options, shell.echo
    recs = [rec for rec, _ in entries]
    cms = {rec["namespace"]: cm for rec, cm in entries}
    opts = dict(options, detach=not wait, dry_run_server=dry_run_server)
    drivers = [Driver(kube, rec, opts, echo, reads=fleet_reads.view(rec["namespace"]) if fleet_reads else None)
               for rec in recs]
    for d in drivers:
        if not dry_run_server and bool(d.rec.get("detached")) == wait:
            d.rec["detached"] = not wait  # status: "waiting for the plugin" only while no plugin follows it
            cms[d.ns] = shell._save(d.rec, cms[d.ns])
        d.record_version = _version(cms[d.ns])
    started = time.monotonic()
    deadline = started + float(options["timeout"]) if options.get("timeout") else None
    detach_end = started + float(options.get("detach_wait") or 10)
    saves = {rec["namespace"]: Saves(rec, float(options.get("save_every") or 30)) for rec in recs}

    def save(d, final=False):
        if not dry_run_server and not getattr(d, "canceled", False) and saves[d.ns].due(d.rec, final):
            cms[d.ns] = shell._save(d.rec, cms[d.ns])
            saves[d.ns].saved(d.rec)
            d.record_version = _version(cms[d.ns])

    pause = pause or time.sleep
    reconnect = float(os.environ.get("KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT") or 120.0)
    down_since, backoff, refused = None, 1.0, None
    try:
        while True:
            try:
                refused = run_pass(drivers, fleet_reads, opts.get("parallel"), opts.get("max_per_node"), save) \
                    or refused
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
            if after_pass is not None and not dry_run_server:
                after_pass()
            if all(r["result"] != "Running" for r in recs):
                break
            if not wait and (time.monotonic() > detach_end or not any(B.plugin_steps_left(r) for r in recs)):
                break
            if deadline and time.monotonic() > deadline:
                echo(_timed_out(recs))
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
    if not wait and not dry_run_server:
        for rec in recs:
            if rec["result"] == "Running":
                for line in B.detached_summary(rec):
                    echo(line)
    if refused is not None:
        raise refused
    return recs


def _timed_out(recs: List[dict]) -> str:
    if len(recs) == 1:
        return ("timed out waiting; the migration goes on - follow it with "
                f"'kubectl vm-storage status {recs[0]['name']} -n {recs[0]['namespace']} -w'")
    return "timed out waiting; the migrations go on - follow them with 'kubectl vm-storage status -A -w'"


def _version(cm):
    return ((cm or {}).get("metadata") or {}).get("resourceVersion")
