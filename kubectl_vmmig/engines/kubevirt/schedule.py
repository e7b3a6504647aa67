"""Pure: the sliding window that throttles the kubevirt engine (``--parallel N``, ``--max-per-node M``).

A VM is *queued* until the window admits it, *running* from its first write until its record phase is final,
then *done*. The next queued VM starts as soon as one ends (not in waves waiting for the slowest), never more
than N run at once, and at most M live moves leave one source node at once: KubeVirt's own limits
(kubevirt pkg/virt-controller/watch/migration/migration.go handleTargetPodCreation: before creating a target pod it holds a migration
while the running ones reach ParallelMigrationsPerCluster, or while outboundMigrationsOnNode(vmi.Status.NodeName)
reaches ParallelOutboundMigrationsPerNode) - so the plugin never hands KubeVirt more than it would run, and the VMs it
holds back are visible as Queued instead of waiting invisibly in KubeVirt's queue.
"""
from typing import Dict, Hashable, Iterable, List, Optional, Tuple

QUEUED, RUNNING, DONE = "queued", "running", "done"
NOT_STARTED = ("Pending", "Queued")   # record phases before the VM's first write (steps.Driver)
FINAL = ("Completed", "Failed", "Canceled")


def state_of(phase: Optional[str]) -> str:
    if phase in FINAL:
        return DONE
    if phase in NOT_STARTED or not phase:
        return QUEUED
    return RUNNING


def admit(vms: Iterable[Tuple[Hashable, str, Optional[str], bool]], parallel: Optional[int],
          max_per_node: Optional[int]) -> List[Hashable]:
    """``vms``: (key, state, source node, live) in queue order -> the queued keys to start now (a key is a VM
    name for one namespace's record, ``(namespace, name)`` for a fleet: fleet_queue).
    ``None`` limits are unlimited. A queued VM whose node is full is passed over (one on another node may
    start), it keeps its place for the next call."""
    vms = list(vms)
    running = [v for v in vms if v[1] == RUNNING]
    slots = None if parallel is None else parallel - len(running)
    per_node: Dict[str, int] = {}
    for _, _, node, live in running:
        if live and node:
            per_node[node] = per_node.get(node, 0) + 1
    start = []
    for name, state, node, live in vms:
        if state != QUEUED:
            continue
        if slots is not None and slots <= 0:
            break
        if live and node and max_per_node is not None and per_node.get(node, 0) >= max_per_node:
            continue
        start.append(name)
        if slots is not None:
            slots -= 1
        if live and node:
            per_node[node] = per_node.get(node, 0) + 1
    return start


def entry(key: Hashable, rec_vm: dict) -> Tuple[Hashable, str, Optional[str], bool]:
    """One VM of a migration record as ``admit`` reads it."""
    return key, state_of(rec_vm.get("phase")), rec_vm.get("sourceNode"), rec_vm.get("mode") == "live"


def fleet_queue(records: Iterable[dict]) -> List[Tuple[Hashable, str, Optional[str], bool]]:
    """One queue over every namespace's record, keys ``(namespace, vm)``, taken in turn from each namespace
    (round robin, each record in its own order): one window for the whole fleet, where a namespace never
    waits for another to finish - nodes and KubeVirt's limits are cluster-wide, namespaces are not."""
    lanes = [[entry((rec["namespace"], name), r) for name, r in (rec.get("vms") or {}).items()] for rec in records]
    out = []
    for i in range(max([len(lane) for lane in lanes] + [0])):
        out += [lane[i] for lane in lanes if i < len(lane)]
    return out


def counts(phases: Iterable[Optional[str]]) -> Dict[str, int]:
    """{queued, running, done} of the record phases (the view's fleet line)."""
    out = {QUEUED: 0, RUNNING: 0, DONE: 0}
    for p in phases:
        out[state_of(p)] += 1
    return out
