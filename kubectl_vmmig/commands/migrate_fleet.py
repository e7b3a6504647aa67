"""``migrate -A -l SELECTOR`` / ``migrate -A --all``: VMs of every namespace, per namespace the engine's unit
(the kubevirt engine's per-namespace record of per-VM moves, MTC's plan per namespace, migration-controller's
ONE MultiNamespace plan for the whole fleet: an engine offering ``apply_fleet``).

Same order as one namespace, for the whole fleet: every namespace is read, planned and judged before the first
write, so one refusal anywhere leaves nothing behind; one confirmation for the fleet; then each namespace is
started (and, with --wait, followed) in turn.
"""
import dataclasses

from .. import errors
from .. import resources as R


def fleet_namespaces(kube, selector) -> list:
    """The namespaces holding a VM the selector chooses: one LIST across all namespaces."""
    if not kube.has_api("kubevirt.io", "v1"):
        raise errors.PreflightRefused("KubeVirt is not installed (kubevirt.io/v1 VirtualMachines are not served)",
                                      "install KubeVirt first, or check the kubeconfig context")
    vms = kube.items(R.VM, None, label_selector=selector, all_namespaces=True)
    spaces = sorted({(v.get("metadata") or {}).get("namespace") or "" for v in vms} - {""})
    if not spaces:
        how = f"matching -l {selector}" if selector else "at all"
        raise errors.NotFoundInput(f"no VirtualMachine {how} in any namespace",
                                   f"check -l (kubectl get vm -A{' -l ' + selector if selector else ''})")
    return spaces


def run(opts, conn) -> None:
    from ..kube import Kube
    from .migrate_run import after_apply, confirm_hazard, hazards, judge, prepare, start

    say = opts.streams.say
    kube = Kube.connect(conn)
    preps, skipped = [], []
    for ns in fleet_namespaces(kube, opts.selector):
        one = dataclasses.replace(opts, namespace=ns, all_namespaces=False, vms=())
        try:
            preps.append((one, prepare(one, conn, write=True, kube=kube)))
        except (errors.BadInput, errors.NotFoundInput) as exc:  # e.g. already on --to: the rest still moves
            skipped.append((ns, exc))
    for ns, exc in skipped:
        say(f"namespace {ns}: skipped - {exc.message}")
    if not preps:
        raise skipped[0][1]
    say(f"fleet: {sum(len((p.plan or {}).get('vms') or []) for _, p in preps)} VM(s) in {len(preps)} namespace(s)")
    fresh = [(one, p) for one, p in preps if p.existing is None or p.existing.ref is None]
    # an engine whose unit is the fleet (migration-controller: one MultiNamespace plan) is called ONCE with every
    # namespace's prepared plan and returns {namespace: ref}; each namespace is then followed as usual
    fleet_engine = fresh[0][1].engine if fresh and hasattr(fresh[0][1].engine, "apply_fleet") and len(
        {p.engine.name for _, p in fresh}) == 1 else None
    if fleet_engine is not None and opts.dry_run == "client":
        return _preview_fleet(fleet_engine, fresh, opts)
    done = [(one, p) for one, p in fresh if judge(p, one)]  # every refusal raises here, before any write
    if len(done) == len(fresh) and opts.dry_run == "client":
        return None
    found = [h for one, p in fresh for h in hazards(p, one)]
    if fresh:
        confirm_hazard(fresh[0][1], opts, found=found, plans=[p.plan for _, p in fresh])
    if fleet_engine is not None:
        return _apply_fleet(fleet_engine, preps, fresh, opts)
    failures = []
    for one, p in preps:
        try:
            if p.existing is not None and p.existing.ref is not None:
                say(p.existing.message)
                after_apply(p, p.existing.ref, one)
            else:
                start(p, one)
        except (errors.MigrationFailed, errors.MigrationCanceled) as exc:  # the other namespaces still move
            say(f"namespace {p.namespace}: {exc.message}")
            failures.append(exc)
    if failures:
        raise failures[0]
    return None


def _apply_fleet(engine, preps, fresh, opts) -> None:
    """ONE ``apply_fleet`` call with every namespace's plan (engines/base.py: refs in the plans' order, each with
    its verdict once every namespace ended under --wait); namespaces already done are only re-attached to.
    (Minimal: the fleet branch adds the live view.)"""
    from .migrate_run import after_apply

    say = opts.streams.say
    refs = engine.apply_fleet([p.plan for _, p in fresh], fresh[0][0].request(), say)
    failures = []
    for one, p in preps:
        if p.existing is not None and p.existing.ref is not None:
            say(p.existing.message)
            try:
                after_apply(p, p.existing.ref, one)
            except (errors.MigrationFailed, errors.MigrationCanceled) as exc:
                failures.append(exc)
    for (one, p), ref in zip(fresh, refs):
        if not opts.wait or opts.dry_run == "server":
            after_apply(p, ref, one)  # --detach / server dry run: what started, how to follow it
            continue
        hint = f"kubectl vm-storage status {ref['migration']} -n {ref['namespace']}"
        if ref.get("result") == "Canceled":
            failures.append(errors.MigrationCanceled(f"migration {ref['migration']} was canceled", None))
        elif ref.get("result") != "Succeeded":
            failures.append(errors.MigrationFailed(
                f"migration {ref['migration']} in namespace {ref['namespace']} {str(ref.get('result')).lower()}"
                + (f": {ref['message']}" if ref.get("message") else ""), f"details: {hint}"))
    for exc in failures[1:]:
        say(exc.message)
    if failures:
        raise failures[0]


def _preview_fleet(engine, fresh, opts) -> None:
    """The client dry run of a fleet unit: ONE preview of what apply_fleet writes; exits as its preflight would."""
    from .migrate_run import print_preview, refused

    plans = [p.plan for _, p in fresh]
    preview = engine.preview_fleet(plans, {p.namespace: p.objs for _, p in fresh},
                                   [f for _, p in fresh for f in p.findings])
    print_preview(preview, opts.output, summary_plan(plans), opts.streams.out)
    refusal = refused(preview["checks"])
    if refusal is not None:
        raise refusal
    return None


def summary_plan(plans: list) -> dict:
    """One plan-shaped summary of the fleet for the preview's table (its moves and skips, every namespace)."""
    modes = sorted({p.get("mode") or "" for p in plans} - {""})
    return {"namespace": f"{', '.join(sorted(p['namespace'] for p in plans))} (one fleet)",
            "targetStorageClass": plans[0]["targetStorageClass"], "mode": "+".join(modes) or "auto",
            "vms": [f"{p['namespace']}/{v}" for p in plans for v in p.get("vms") or []],
            "moves": [dict(m, vm=f"{p['namespace']}/{m['vm']}") for p in plans for m in p.get("moves") or []],
            "skipped": [dict(x, vm=f"{p['namespace']}/{x.get('vm')}") for p in plans for x in p.get("skipped") or []]}
