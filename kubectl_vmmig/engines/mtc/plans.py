"""The MigPlan's life cycle, pure: which plan a run uses, conflicts, what MTC reset, what MTC's own KubeVirt check
says, and which MigMigration a re-run attaches to. Each rule cites the mig-controller code it follows
(migtools/mig-controller)."""
import re
from typing import List, Optional

from .build import (GENERATION_LABEL, MIGPLAN_LABEL, REQUEST_HASH_LABEL, SOURCE_FOR_LABEL, SUPERSEDED_ANNOTATION,
                    is_own, plan_name, run_state, source_name)


def generation(migplan: dict) -> int:
    try:
        return int(((migplan.get("metadata") or {}).get("labels") or {}).get(GENERATION_LABEL) or 1)
    except ValueError:
        return 1


def is_closed(migplan: dict) -> bool:
    return bool((migplan.get("spec") or {}).get("closed"))


def is_superseded(migplan: dict) -> bool:
    return bool(((migplan.get("metadata") or {}).get("annotations") or {}).get(SUPERSEDED_ANNOTATION))


def created_by_plan(migplan: dict, pvc: dict) -> bool:
    """Whether MTC's discovery for ``migplan`` skips ``pvc`` because that plan created it: ``updatePvs`` in
    pkg/controller/migplan/pvlist.go skips ``-mig-<plan suffix>`` names and, for a storage-conversion plan, PVCs
    labelled ``migrated-by-migplan=<plan UID>``. Such a disk can only move again under a new plan."""
    md = pvc.get("metadata") or {}
    suffix = (migplan.get("status") or {}).get("suffix")
    uid = (migplan.get("metadata") or {}).get("uid")
    if suffix and str(md.get("name") or "").endswith("-mig-" + suffix):
        return True
    return bool(uid) and (md.get("labels") or {}).get(MIGPLAN_LABEL) == uid


def choose_plan(own_plans: List[dict], namespace: str, claims=(), pvcs=()) -> dict:
    """Which MigPlan a run uses (pure). ``own_plans``: the plugin's plans covering ``namespace``.

    The newest open plan is adopted (refreshed first: after a successful migration MTC suspends it, see
    engine.py). A new plan (next generation) is needed when none is open, or when a disk to move was created by
    the current plan — MTC never re-discovers those (``created_by_plan``); the current plan is then closed first,
    because an open plan covering the same namespace is a PlanConflict. A closed plan the plugin did not close
    itself is refused (MTC reconciles nothing of a closed plan: ``handleClosed``, migplan_controller.go).

    Returns {"current": plan|None, "name", "generation", "supersede": plan|None, "reborn": [claims], "closed": plan|None}.
    """
    plans = sorted(own_plans, key=generation)
    top = plans[-1] if plans else None
    out = {"current": None, "name": plan_name(namespace), "generation": 1, "supersede": None, "reborn": [],
           "closed": None}
    if top is None:
        return out
    if is_closed(top):
        out.update(name=plan_name(namespace, generation(top) + 1), generation=generation(top) + 1)
        if not is_superseded(top):
            out["closed"] = top
        return out
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pvcs}
    reborn = sorted(c for c in claims if c in by_name and created_by_plan(top, by_name[c]))
    if reborn:
        out.update(name=plan_name(namespace, generation(top) + 1), generation=generation(top) + 1, supersede=top,
                   reborn=reborn)
        return out
    out.update(current=top, name=top["metadata"]["name"], generation=generation(top))
    return out



def labelled_for_other_plans(claims, pvcs, plan_uid: Optional[str]) -> List[dict]:
    """The claims to move that the discovery of the plan with ``plan_uid`` (None: a plan not created yet) would skip
    because MTC labelled them for another plan: after each cutover ``handleSourceLabels``
    (migmigration/storage.go) sets ``source-for-directvolumemigration=<plan UID>`` on EVERY PVC of the namespace
    but the run's targets and skipped PVs - so an earlier run's target too - and a storage-conversion plan's
    ``getClaims`` (migplan/pvlist.go) skips a PVC ``migrationSourceOtherPlan``. A disk the VM uses now is nobody's
    migrated source: the plugin removes the label from it before the plan's discovery runs.
    Returns [{"pvc", "value"}] in claim order."""
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pvcs}
    out = []
    for c in claims:
        value = (((by_name.get(c) or {}).get("metadata") or {}).get("labels") or {}).get(SOURCE_FOR_LABEL)
        if value and value != plan_uid:
            out.append({"pvc": c, "value": value})
    return out


def unlabel_ops(value: str) -> List[dict]:
    """JSON patch removing MTC's source-for label from a PVC, guarded by the value read (a ``test`` op)."""
    path = "/metadata/labels/" + SOURCE_FOR_LABEL.replace("~", "~0").replace("/", "~1")
    return [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]


# spec.refresh lifts a Suspended plan for one reconcile (planSuspended, migplan_controller.go).
REFRESH_OPS = [{"op": "add", "path": "/spec/refresh", "value": True}]


def close_ops(new_name: str) -> List[dict]:
    """Closing our previous plan for ``new_name`` (as JSON patch ops, for previews)."""
    key = SUPERSEDED_ANNOTATION.replace("~", "~0").replace("/", "~1")
    return [{"op": "add", "path": "/spec/closed", "value": True},
            {"op": "add", "path": f"/metadata/annotations/{key}", "value": new_name}]


def _ref(r) -> tuple:
    r = r or {}
    return (r.get("namespace") or "", r.get("name") or "")


def conflicts(foreign: dict, host_ref: dict, namespace: str) -> bool:
    """Whether a plan the plugin did not create blocks ours: ``MigPlan.HasConflict`` (migplan_types.go) needs a
    MigCluster in common and a ``spec.namespaces`` entry in common - compared as strings, so a foreign ``ns:other``
    (a namespace mapping) is no conflict with our plain ``ns`` - and only open plans are compared (``ListPlans`` in
    pkg/controller/migplan/model.go lists ``ClosedIndexField: "false"``)."""
    spec = foreign.get("spec") or {}
    if spec.get("closed") or namespace not in (spec.get("namespaces") or []):
        return False
    refs = {_ref(spec.get("srcMigClusterRef")), _ref(spec.get("destMigClusterRef"))}
    return not host_ref or _ref(host_ref) in refs


def reset_selections(persistent_volumes: List[dict], plan: dict) -> List[str]:
    """After MTC reconciled our selection: the moves whose entry is not ``copy`` to the requested class any more.
    ``PV.Update`` (migplan_types.go) forces the single supported action on every discovery — ``[skip]`` for a
    hostPath PV (``getSupportedActions``, pvlist.go) — so a ``copy`` written for it is silently reverted."""
    by_source = {source_name(e): e for e in persistent_volumes or []}
    out = []
    for m in plan["moves"]:
        entry = by_source.get(m["sourcePVC"])
        sel = (entry or {}).get("selection") or {}
        actions = ((entry or {}).get("supported") or {}).get("actions")
        if entry is None:
            out.append(f"{m['sourcePVC']} (not discovered)")
        elif sel.get("action") != "copy" or (actions is not None and "copy" not in actions):
            out.append(f"{m['sourcePVC']} (selection {sel.get('action') or 'none'}; "
                       f"MTC supports only {', '.join(actions or ['?'])} for its PV)")
        elif sel.get("storageClass") and sel["storageClass"] != m["targetSC"]:
            out.append(f"{m['sourcePVC']} (storage class reset to {sel['storageClass']})")
    return out


def host_path_disks(plan: dict, pvcs: List[dict], pvs: List[dict]) -> List[str]:
    """Moves whose PV has ``spec.hostPath``: MTC supports only ``skip`` for them (``getSupportedActions``, pvlist.go)."""
    claim_pv = {(p.get("metadata") or {}).get("name"): (p.get("spec") or {}).get("volumeName") for p in pvcs}
    host = {(p.get("metadata") or {}).get("name") for p in pvs if (p.get("spec") or {}).get("hostPath") is not None}
    return [f"{m['vm']}/{m['volume']} (PVC {m['sourcePVC']})" for m in plan["moves"]
            if claim_pv.get(m["sourcePVC"]) in host]


_SEMVER = re.compile(r"^\d+$")


def mtc_live_blockers(kubevirts: Optional[List[dict]]) -> List[str]:
    """What MTC's own check would set on the plan with ``liveMigrate: true`` — ``validateKubeVirtInstalled`` in
    pkg/controller/migplan/validation.go: exactly one KubeVirt CR; ``status.operatorVersion`` with >= 3
    dot-separated tokens and >= 1.3; ``vmRolloutStrategy: LiveUpdate``; ``developerConfiguration`` present (even
    on >= 1.5) and, before 1.5, the VolumesUpdateStrategy, VolumeMigration and VMLiveUpdateFeatures gates. None of
    these stop MTC: with them the plugin itself must switch to offline, which stops running VMs."""
    if kubevirts is None:
        return []
    if len(kubevirts) != 1:
        return [f"KubeVirtNotInstalledSourceCluster: MTC needs exactly one KubeVirt CR, found {len(kubevirts)}"]
    kv = kubevirts[0]
    version = str(((kv.get("status") or {}).get("operatorVersion")) or "")
    tokens = version.split(".")
    head = tokens[0][1:] if tokens and tokens[0].startswith("v") else (tokens[0] if tokens else "")
    if len(tokens) < 3 or not _SEMVER.match(head) or not _SEMVER.match(tokens[1]):
        return [f"KubeVirtVersionNotSupported: MTC cannot read KubeVirt's status.operatorVersion {version!r}"]
    major, minor = int(head), int(tokens[1])
    if major < 1 or (major == 1 and minor < 3):
        return [f"KubeVirtVersionNotSupported: KubeVirt {version} is older than 1.3"]
    conf = (kv.get("spec") or {}).get("configuration") or {}
    dev = conf.get("developerConfiguration")
    gates = set((dev or {}).get("featureGates") or [])
    old = major == 1 and minor < 5
    if conf.get("vmRolloutStrategy") != "LiveUpdate" or dev is None or \
            (old and not {"VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures"} <= gates):
        return ["KubeVirtStorageLiveMigrationNotEnabled: MTC requires spec.configuration.vmRolloutStrategy "
                "LiveUpdate and a developerConfiguration" + (" with the VolumesUpdateStrategy, VolumeMigration and "
                                                              "VMLiveUpdateFeatures gates" if old else "")]
    return []


def reattachable(migs: List[dict], req_hash: str, kind: str) -> Optional[dict]:
    """The plugin's MigMigration a re-run of the same request attaches to: a running one, or (cutover) a
    succeeded one. A failed or canceled MigMigration is never resumed — mig-controller returns at once for a
    MigMigration in phase Completed (``Reconcile``, migmigration_controller.go) — so a re-run after a failure
    creates a new one."""
    same = [m for m in migs if is_own(m)
            and ((m.get("metadata") or {}).get("labels") or {}).get(REQUEST_HASH_LABEL) == req_hash]
    keep = ("Running",) if kind == "stage" else ("Running", "Succeeded")
    same = [m for m in same if run_state(m) in keep]
    same.sort(key=lambda m: (m.get("metadata") or {}).get("creationTimestamp") or "")
    return same[-1] if same else None


def blocker_conditions(mig: dict) -> List[dict]:
    """Critical/Error conditions: while any holds, ``migrate()`` — where ``canceled()`` picks the Cancel itinerary
    (migmigration/task.go) — is not called (``HasBlockerCondition`` guard in migmigration_controller.go)."""
    return [c for c in ((mig.get("status") or {}).get("conditions") or [])
            if c.get("status", "True") == "True" and c.get("category") in ("Critical", "Error")]
