"""The migration-controller engine's fleet unit against the cluster (the rules are in fleet.py): apply_fleet writes
ONE MultiNamespaceVirtualMachineStorageMigrationPlan for every namespace's prepared plan and, once the controller
judged every child plan, the destination DataVolumes and ONE MultiNamespaceVirtualMachineStorageMigration;
cancel_fleet stops all namespaces. Same order as the one-namespace ``MigrationController.apply``/``cancel``."""
import time
from typing import Dict, List

from ... import errors
from ... import resources as R


def _take_back(k, name: str, home: str, namespaces: List[str], quiet: bool = False) -> None:
    """Remove a refused fleet plan AND its children: upstream sets no ownerReference on them
    (multinamespacestoragemigplan/controller.go createNamespacePlan), so nothing would collect them. The fleet plan
    goes first (else its reconciler makes the children again). ``quiet``: best effort, after another error."""
    from .fleet import child_name

    for res, obj, ns in [(R.MN_VMSM_PLAN, name, home)] + [(R.VMSM_PLAN, child_name(name, n), n) for n in namespaces]:
        try:
            k.delete(res, obj, ns)
        except errors.NotFound:
            pass
        except errors.ApiError:
            if not quiet:
                raise


def apply_fleet(eng, plans: List[dict], request, events) -> List[dict]:
    """One reference per plan, in the plans' order (engines/base.py ``apply_fleet``): each names its namespace's
    child migration (what ``status`` shows) and the fleet. With ``request.wait`` it returns once every namespace
    ended, each reference's ``result`` (and ``message``) the engine's one verdict (``follow_fleet``)."""
    refs = _apply_fleet(eng, plans, request, events)
    ordered = [refs[p["namespace"]] for p in plans]
    if getattr(request, "wait", False) and request.dry_run != "server":
        follow_fleet(eng, ordered, events)
    return ordered


def _apply_fleet(eng, plans: List[dict], request, events) -> Dict[str, dict]:
    from . import build as B
    from . import fleet as F

    k = eng.kube
    name, home = F.fleet_name(plans), F.home_namespace(plans)
    spaces = sorted(p["namespace"] for p in plans)
    mp = F.fleet_plan(plans, name, home)
    refs = {ns: {"migration": F.child_name(name, ns), "plan": F.child_name(name, ns), "name": F.child_name(name, ns),
                 "namespace": ns, "engine": B.ENGINE, "result": "Running", "fleet": f"{home}/{name}"} for ns in spaces}
    # the destination DataVolumes carry the one-namespace plan's name: the preflight's destination-name check
    # (engines/kubevirt/checks.py move_findings) then accepts them again on a re-run
    dvs = {p["namespace"]: B.destination_datavolumes(p, B.plan_name(p), eng._vms(p)) for p in plans}
    if request.dry_run == "server":
        for ns, ds in dvs.items():
            for d in ds:
                k.create(R.DATAVOLUME, d, ns, dry_run=True)
        k.create(R.MN_VMSM_PLAN, mp, home, dry_run=True)
        k.create(R.MN_VMSM, F.fleet_migration(mp), home, dry_run=True)
        return refs
    if k.get_or_none(R.MN_VMSM, name, home) is not None:
        events(f"fleet migration {name} in {home} exists already: re-attaching")
        return refs
    current = k.get_or_none(R.MN_VMSM_PLAN, name, home) or k.create(R.MN_VMSM_PLAN, mp, home)
    events(f"plan multinamespacevirtualmachinestoragemigrationplan/{name} in {home} for {len(spaces)} namespace(s): "
           "waiting for kubevirt-migration-controller")
    try:  # until the migration exists nothing has moved: an API error or Ctrl-C takes the plans back, as a refusal
        _judged(eng, name, home, spaces, {p["namespace"]: p for p in plans}, current, events)
    except (errors.ApiError, errors.Interrupted, KeyboardInterrupt):
        _take_back(k, name, home, spaces, quiet=True)
        raise
    for ns in spaces:
        for dv in dvs[ns]:
            if k.get_or_none(R.DATAVOLUME, dv["metadata"]["name"], ns) is None:
                k.create(R.DATAVOLUME, dv, ns)
    k.create(R.MN_VMSM, F.fleet_migration(current), home)
    events(f"migration multinamespacevirtualmachinestoragemigration/{name} created in {home}: "
           f"kubevirt-migration-controller moves {sum(len(p['moves']) for p in plans)} disk(s) in "
           f"{len(spaces)} namespace(s); the sources are kept (retentionPolicy keepSource)")
    return refs


def _judged(eng, name, home, spaces, by_ns, current, events) -> Dict[str, dict]:
    """Mark each child plan as the engine's once upstream made it, wait until the controller judged every one,
    refuse (taking every plan back) when it refuses any; {namespace: child plan}."""
    from . import build as B
    from . import fleet as F
    from .checks import plan_findings, plan_reconciled

    k = eng.kube
    timeout = float(eng.options.get("plan_timeout") or 60)
    deadline, uid = time.monotonic() + timeout, current["metadata"]["uid"]
    while True:
        # the children themselves, not the parent's status.namespaces: upstream's watch does not wake the parent
        # for a child outside its namespace (fleet.py PARENT_PLAN_NAMESPACE), so that mirror may never update
        children = _children(k, name, spaces, uid)
        for ns, child in sorted(children.items()):
            if not F.ours(child):
                marks = F.child_marks(name, home, by_ns[ns])
                children[ns] = k.patch(R.VMSM_PLAN, child["metadata"]["name"], marks, ns)
        if len(children) == len(spaces) and all(plan_reconciled(children[ns]) for ns in spaces):
            break
        if time.monotonic() > deadline:
            _take_back(k, name, home, spaces)
            waiting = [ns for ns in spaces if not plan_reconciled(children.get(ns))]
            raise errors.PreflightRefused(
                f"kubevirt-migration-controller did not judge fleet plan {name} within {int(timeout)}s (namespace "
                f"{', '.join(waiting)}); the plans were removed again",
                "check that the controller runs (kubectl get migcontroller -A) and re-run")
        time.sleep(float(eng.options.get("poll") or 0.5))
    found = {ns: plan_findings(children[ns], sorted(B.record_of(by_ns[ns]))) for ns in spaces}
    bad = [(ns, f) for ns in spaces for f in found[ns] if f["severity"] == "error"]
    if bad:
        _take_back(k, name, home, spaces)
        raise errors.PreflightRefused(
            f"preflight refused by kubevirt-migration-controller in namespace {bad[0][0]}: {bad[0][1]['message']}"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            "nothing was changed in any namespace (the plans were removed again); fix it and re-run",
            findings=[f for ns in spaces for f in found[ns]])
    for ns in spaces:
        for f in found[ns]:
            if f["severity"] == "warning":
                events(f"warning: namespace {ns}: {f['message']}")
    return children


def _children(k, name: str, spaces: List[str], uid: str) -> Dict[str, dict]:
    """{namespace: child plan} that upstream made for the fleet plan ``uid``: one LIST by its UID label across the
    namespaces, or a GET per namespace when the user may not list across them."""
    from . import fleet as F

    want = {ns: F.child_name(name, ns) for ns in spaces}
    try:
        found = k.items(R.VMSM_PLAN, None, label_selector=f"{F.PARENT_PLAN_UID}={uid}", all_namespaces=True)
    except errors.Forbidden:
        found = [c for c in (k.get_or_none(R.VMSM_PLAN, want[ns], ns) for ns in spaces) if c is not None]
    return {c["metadata"]["namespace"]: c for c in found
            if want.get(c["metadata"]["namespace"]) == c["metadata"]["name"]}


def follow_fleet(eng, refs: List[dict], events) -> None:
    """Until every namespace's migration ended: one read of the fleet's migrations per pass (progress.from_objects,
    the per-namespace verdicts), handed to a live view as they are (``events.show``); then each ref's ``result``,
    ``message`` and the fleet's verdict (fleet.fleet_verdict, ``fleetResult``). Ctrl-C stops following only."""
    from ...progress import RUNNING, failed_disks

    fleet = refs[0]["fleet"] if refs else ""
    show = getattr(events, "show", None)
    poll = float(eng.options.get("poll") or 2.0)
    try:
        while True:
            docs = [m for m in eng.read(all_namespaces=True) if m.get("_fleet") == fleet]
            if callable(show):
                show(docs)
            by_ns = {m.get("namespace"): m for m in docs}
            if all((by_ns.get(r["namespace"]) or {}).get("result", RUNNING) != RUNNING for r in refs):
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        raise errors.Interrupted(f"stopped following fleet migration {fleet}; it goes on in the cluster",
                                 f"re-attach with: kubectl vm-storage status {fleet.split('/')[-1]} -A -w") from None
    for r in refs:
        m = by_ns[r["namespace"]]
        bad = [f"{d['vm']}/{d['volume']}: {d.get('message') or d['phase']}" for d in failed_disks(m)]
        r.update(result=m["result"], message="; ".join(bad), fleetResult=m.get("_fleetResult"))


def cancel_fleet(eng, name: str, home: str) -> str:
    """Every namespace's cancel is judged (MigrationController.refuse_cancel) before any write; then the
    MultiNamespace migration is deleted FIRST (while it exists, multinamespacestoragemig/controller.go Reconcile
    re-creates every deleted child migration: createNamespacedMigration), then each child migration, upstream's
    cancel (storagemig/task.go Canceling)."""
    from . import build as B
    from . import fleet as F

    k = eng.kube
    mp = k.get_or_none(R.MN_VMSM_PLAN, name, home)
    if mp is None or not F.ours(mp):
        raise errors.NotFoundInput(f"no migration-controller fleet migration {name} in namespace {home}",
                                   "list them with: kubectl vm-storage status -A")
    spaces = sorted(F.read_fleet_record(mp))
    children = {ns: F.child_name(name, ns) for ns in spaces}
    running = {ns: c for ns, c in children.items() if k.get_or_none(R.VMSM, c, ns) is not None}
    mig = k.get_or_none(R.MN_VMSM, name, home)
    if mig is None and not running:
        raise errors.PreflightRefused(f"fleet migration {name} has no MultiNamespaceVirtualMachineStorageMigration "
                                      "(never started, finished or canceled already)",
                                      "see kubectl vm-storage status -A")
    # raises for the first namespace whose cancel would do harm: nothing written yet; a finished one is left alone
    running = {ns: c for ns, c in running.items() if not eng.refuse_cancel(c, ns)}
    if not running:
        raise errors.PreflightRefused(f"fleet migration {name} has finished: every disk of every namespace is on "
                                      "the target", "to go back, migrate the VMs again to the source StorageClass")
    if mig is not None:
        k.delete(R.MN_VMSM, name, home)
    for ns, c in running.items():
        k.patch(R.VMSM_PLAN, c, {"metadata": {"annotations": {B.CANCELED: _now()}}}, ns)
        k.delete(R.VMSM, c, ns)
    return (f"fleet migration {name} cancel requested in {len(running)} namespace(s): kubevirt-migration-controller "
            "reverts the VMs to their source volumes and deletes the destination DataVolumes")


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
