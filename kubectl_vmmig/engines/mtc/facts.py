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


def workloads(kube, ns):
    """What MTC's quiesce scales down in the namespace (quiesce.go), owner-controlled objects left out."""
    out = []
    for res in (R.DEPLOYMENT, R.STATEFULSET, R.REPLICASET, R.DAEMONSET, R.JOB, R.CRONJOB):
        try:
            items = kube.items(res, ns)
        except (errors.Forbidden, errors.NotFound):
            continue
        for w in items:
            md = w.get("metadata") or {}
            if any(o.get("controller") for o in md.get("ownerReferences") or []):
                continue  # ReplicaSets of Deployments, Jobs of CronJobs: the owner is listed
            replicas = (w.get("spec") or {}).get("replicas")
            if replicas == 0:
                continue
            extra = f" ({replicas} replicas)" if replicas is not None else ""
            out.append(f"{res.kind}/{md.get('name')}{extra}")
    return out


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
        facts["workloads"] = workloads(kube, ns)
    return facts
