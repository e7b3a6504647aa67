"""The MTC engine's reads for preflight (shell): everything ``checks.run_preflight`` judges, read before any write."""
from ... import errors
from ... import resources as R
from . import build as B
from . import plans as PL


def kubevirt_crs(kube):
    """All KubeVirt CRs (None when they cannot be listed: KubeVirt absent or forbidden)."""
    if not kube.has_api("kubevirt.io", "v1"):
        return None
    try:
        return kube.items(R.KUBEVIRT, all_namespaces=True)
    except (errors.Forbidden, errors.NotFound):
        return None


# migmigration/quiesce.go quiesceApplications, in its order; DeploymentConfigs only where OpenShift serves them
QUIESCED_KINDS = (R.CRONJOB, R.DEPLOYMENTCONFIG, R.DEPLOYMENT, R.STATEFULSET, R.REPLICASET, R.DAEMONSET, R.JOB)


def workloads(kube, ns, selected=(), multiple_plans=False):
    """What MTC's cutover scales down in the namespace (checks.quiesced_workload decides for each object)."""
    from .checks import quiesced_workload

    out = []
    for res in QUIESCED_KINDS:
        try:
            items = kube.items(res, ns)
        except (errors.Forbidden, errors.NotFound):
            continue
        out += [w for w in (quiesced_workload(res.kind, o, set(selected), multiple_plans) for o in items) if w]
    return out


def several_plans(plans, ns, creating) -> bool:
    """migmigration/quiesce.go checkMultiplePlans: more than one MigPlan (any state, closed ones included) lists
    the namespace in spec.namespaces - counting the plan this run is about to create."""
    n = sum(1 for p in plans if ns in ((p.get("spec") or {}).get("namespaces") or []))
    return n + (1 if creating else 0) > 1


def gather(engine, plan, kind="cutover", write=True, hooks=(), pvcs=None):
    """The ``facts`` dict of checks.py for ``plan``."""
    from . import checks as P

    kube, ns = engine.kube, plan["namespace"]
    mtc = engine.locate()
    facts = {"engine": "mtc", "mtc": mtc}
    facts["rbac"] = [dict(p, allowed=a, reason=r) for p in P.required_permissions("mtc", ns, mtc["namespace"], write)
                     for a, r in [kube.can_i(p["verb"], p["resource"], p["group"], p["namespace"],
                                             p.get("subresource"))]]
    crs = kubevirt_crs(kube)
    facts["kubevirt"] = {"installed": kube.has_api("kubevirt.io", "v1"), "cr": (crs or [None])[0]}
    try:
        facts["nodes"] = kube.items(R.NODE)
    except errors.Forbidden:
        pass
    if pvcs is None:
        pvcs = kube.items(R.PVC, ns) if ns else []
    try:  # one LIST: MTC supports only "skip" for a hostPath PV (getSupportedActions, pvlist.go)
        facts["hostPathDisks"] = PL.host_path_disks(plan, pvcs, kube.items(R.PV))
    except errors.Forbidden:
        facts["hostPathDisks"] = None
    if mtc["installed"] and ns:
        choice = engine.plan_choice(ns, [m["sourcePVC"] for m in plan["moves"]], pvcs)
        foreign = engine.foreign_plans(ns)
        running = None
        current = choice["current"] or choice["supersede"]
        if current is not None:
            for m in engine.migrations_of(current["metadata"]["name"]):
                if B.run_state(m) == "Running" and not engine.same_request(m, plan, kind):
                    running = f"{m['metadata']['namespace']}/{m['metadata']['name']}"
        facts["plans"] = {"own": choice["current"]["metadata"]["name"] if choice["current"] else None,
                          "foreign": [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in foreign],
                          "running": running, "name": choice["name"],
                          "closed": choice["closed"]["metadata"]["name"] if choice["closed"] else None,
                          "supersede": choice["supersede"]["metadata"]["name"] if choice["supersede"] else None,
                          "reborn": choice["reborn"]}
        if hooks:
            facts["hooks"] = {h: kube.get_or_none(R.MIGHOOK, h, mtc["namespace"]) is not None for h, _ in hooks}
    if kind == "cutover" and ns:
        several = bool(mtc["installed"]) and several_plans(engine._plans(), ns, creating=facts["plans"]["own"] is None)
        facts["workloads"] = workloads(kube, ns, [m["sourcePVC"] for m in plan["moves"]], several)
    return facts
