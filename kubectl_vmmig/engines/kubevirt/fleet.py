"""The kubevirt engine over a fleet (``migrate -A``), shell: one Driver per namespace's record, ONE window
(the loop itself, the same as for one record: drive.py).

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
from typing import Callable, List, Optional

from ... import resources as R
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
    from .drive import drive
    from .reads import FleetReads
    from .steps import now

    # Each kind LISTed once, then kept current by its WATCH (watchcache.py, client-go's reflector): a pass costs
    # no request at all, whatever the length of the run; only the writes do.
    source = CachedReads(shell.kube)
    reads = FleetReads(shell.kube, [p["namespace"] for p in plans], source=source)
    try:
        entries = [shell.open_record(p, vms=reads.kind(R.VM, p["namespace"]),
                                     vmis=reads.kind(R.VMI, p["namespace"]), records=reads.records(p["namespace"]))
                   for p in plans]
        recs = [rec for rec, _ in entries]
        seen = None if show is None else (lambda: show(migrations_seen(recs, reads, now())))
        return drive(shell, entries, bool(shell.options.get("wait", True)), fleet_reads=reads, after_pass=seen,
                     pause=source.wait)
    finally:
        source.close()
        import gc

        # as status -w (commands/status.py): the stores hold every object read; left out of the collection at exit
        gc.freeze()
