"""``migrate -A -l SELECTOR`` / ``migrate -A --all``: VMs of every namespace, per namespace the engine's unit
(the kubevirt engine's per-namespace record of per-VM moves, MTC's plan per namespace).

Same order as one namespace, for the whole fleet: every namespace is read, planned and judged before the first
write, so one refusal anywhere leaves nothing behind; one confirmation for the fleet; then each namespace is
started: by the engine at once when it offers ``apply_fleet`` (engines/base.py: one window over the fleet, e.g.
the kubevirt engine), else namespace after namespace (each followed to its end with --wait).
"""
import dataclasses

from .. import errors
from .. import resources as R


def fleet_vms(kube, selector) -> dict:
    """namespace -> the VMs the selector chooses in it: one LIST across all namespaces."""
    from ..kube import remember

    try:
        vms = kube.items(R.VM, None, label_selector=selector, all_namespaces=True)
    except errors.NotFound:  # the CRD is not there: /apis/kubevirt.io/v1/virtualmachines is not served
        raise errors.PreflightRefused("KubeVirt is not installed (kubevirt.io/v1 VirtualMachines are not served)",
                                      "install KubeVirt first, or check the kubeconfig context") from None
    remember(kube, "api kubevirt", True)  # the LIST was answered: no discovery request for it (migrate_run)
    out = {}
    for v in vms:
        ns = (v.get("metadata") or {}).get("namespace")
        if ns:
            out.setdefault(ns, []).append(v)
    if not out:
        how = f"matching -l {selector}" if selector else "at all"
        raise errors.NotFoundInput(f"no VirtualMachine {how} in any namespace",
                                   f"check -l (kubectl get vm -A{' -l ' + selector if selector else ''})")
    return out


def fleet_objects(kube, vms_by_ns) -> dict:
    """namespace -> the objects by kind the plan and the checks read (migrate_run.read_cluster's kinds, plus the
    VMIMs), each kind LISTed once across all namespaces; per namespace when the user may not LIST across them."""
    from ..kube import remember
    from .migrate_run import LAUNCHER, storage_classes

    spaces = sorted(vms_by_ns)
    out = {ns: {"VirtualMachine": vms_by_ns[ns]} for ns in spaces}
    kinds = (("VirtualMachineInstance", R.VMI, None), ("PersistentVolumeClaim", R.PVC, None),
             ("DataVolume", R.DATAVOLUME, None), ("Pod", R.POD, LAUNCHER),
             ("VirtualMachineInstanceMigration", R.VMIM, None))
    for kind, res, selector in kinds:
        try:
            try:
                every = kube.items(res, None, label_selector=selector, all_namespaces=True)
                for ns in spaces:
                    out[ns][kind] = []
                for o in every:
                    ns = (o.get("metadata") or {}).get("namespace")
                    if ns in out:
                        out[ns][kind].append(o)
            except errors.Forbidden:
                for ns in spaces:
                    out[ns][kind] = kube.items(res, ns, label_selector=selector)
            if res is R.DATAVOLUME:
                remember(kube, "api cdi", True)  # served: the engines' checks ask no discovery for it
        except errors.NotFound:  # CDI not installed (DataVolumes): plain PVC disks still work with MTC
            for ns in spaces:
                out[ns][kind] = []
            if res is R.DATAVOLUME:
                remember(kube, "api cdi", False)
    for ns in spaces:
        out[ns]["StorageClass"] = storage_classes(kube)
    return out


def run(opts, conn) -> None:
    from ..kube import Kube
    from .migrate_run import after_apply, confirm_hazard, hazards, judge, prepare, start

    say = opts.streams.say
    kube = Kube.connect(conn)
    preps, skipped = [], []
    objects = fleet_objects(kube, fleet_vms(kube, opts.selector))
    for ns in sorted(objects):
        one = dataclasses.replace(opts, namespace=ns, all_namespaces=False, vms=())
        try:
            preps.append((one, prepare(one, conn, write=True, kube=kube, objs=objects[ns])))
        except (errors.BadInput, errors.NotFoundInput) as exc:  # e.g. already on --to: the rest still moves
            skipped.append((ns, exc))
    for ns, exc in skipped:
        say(f"namespace {ns}: skipped - {exc.message}")
    if not preps:
        raise skipped[0][1]
    say(f"fleet: {sum(len((p.plan or {}).get('vms') or []) for _, p in preps)} VM(s) in {len(preps)} namespace(s)")
    fresh = [(one, p) for one, p in preps if p.existing is None or p.existing.ref is None]
    fleet_engine = _fleet_engine(preps)
    if fleet_engine is not None and opts.dry_run == "client" and callable(getattr(fleet_engine, "preview_fleet",
                                                                                  None)):
        return _preview_fleet(fleet_engine, fresh, opts)  # its unit is ONE object set for the fleet
    done = [(one, p) for one, p in fresh if judge(p, one)]  # every refusal raises here, before any write
    if len(done) == len(fresh) and opts.dry_run == "client":
        return None
    found = [h for one, p in fresh for h in hazards(p, one)]
    if fresh:
        confirm_hazard(fresh[0][1], opts, found=found, plans=[p.plan for _, p in fresh])
    if _fleet_engine(preps) is not None:
        return _apply_fleet(preps, opts)
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


def _fleet_engine(preps):
    """The engine that takes the whole fleet in one ``apply_fleet`` call, else None (each namespace in turn)."""
    engines = [p.engine for _, p in preps if not (p.existing is not None and p.existing.ref is not None)]
    if not engines or len({type(e) for e in engines}) != 1:
        return None
    return engines[0] if callable(getattr(engines[0], "apply_fleet", None)) else None


def _apply_fleet(preps, opts) -> None:
    """One ``apply_fleet`` call with every namespace's plan (namespaces whose run is already over are only
    re-attached to). An engine that drives the fleet itself (``events.show`` fed, the references' results final)
    gets one live view of the whole fleet; a reference still Running is followed as after ``apply``."""
    from .migrate_run import _follower, after_apply

    say = opts.streams.say
    fleet = [(one, p) for one, p in preps if not (p.existing is not None and p.existing.ref is not None)]
    engine = _fleet_engine(preps)
    request = fleet[0][0].request()
    follower = _follower(fleet[0][1], opts)
    shown = False
    if follower is not None:
        from ..view.follow import ViewEvents

        follower.enrich = _sizes([p.plan for _, p in fleet], follower.enrich)
        events = ViewEvents(follower, lambda migration: [])
        with follower:
            refs = engine.apply_fleet([p.plan for _, p in fleet], request, events)
            if events.latest is not None:  # the engine drove the fleet and showed it: the view's end
                follower.step(events.latest)
                follower.finish()
                shown = True
    else:
        refs = engine.apply_fleet([p.plan for _, p in fleet], request, say)
    if isinstance(refs, dict):  # {namespace: reference}
        refs = [refs[p.namespace] for _, p in fleet]
    failures = []

    def follow(p, ref, one):
        try:
            after_apply(p, ref, one)
        except (errors.MigrationFailed, errors.MigrationCanceled) as exc:  # the other namespaces still move
            failures.append(exc)

    for one, p in preps:
        if p.existing is not None and p.existing.ref is not None:
            say(p.existing.message)
            follow(p, p.existing.ref, one)
    for (one, p), ref in zip(fleet, refs):
        if not shown or ref.get("result") in (None, "Running"):
            follow(p, ref, one)  # --detach / server dry run: what started; else followed to its end
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


def _sizes(plans, enrich):
    """The live view's byte counts: every namespace's disk sizes from its plan."""
    sizes = {(pl["namespace"], mv["vm"], mv["sourcePVC"]): mv.get("sizeBytes")
             for pl in plans for mv in pl.get("moves") or []}

    def more(ms):
        for m in ms:
            for d in m.get("disks") or []:
                size = sizes.get((m.get("namespace"), d.get("vm"), d.get("sourcePVC")))
                if size:
                    d.setdefault("_sizeBytes", size)
        return enrich(ms)
    return more


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
