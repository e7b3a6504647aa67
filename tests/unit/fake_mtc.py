"""A tiny in-memory API for the MTC engine's shell, with a MigPlan reconcile that follows the real mig-controller's
rules the engine depends on (migtools/mig-controller):
- ``handleClosed`` (migplan_controller.go): a closed plan gets ``Closed`` once and is never reconciled again;
- ``planSuspended``: suspended after a Succeeded non-stage non-rollback MigMigration, unless ``spec.refresh``;
- ``updatePvs`` (pvlist.go): returns at once while suspended; skips PVCs named ``-mig-<suffix>`` and those labelled
  ``migrated-by-migplan=<plan uid>``; ``getSupportedActions``: ``[skip]`` for a hostPath PV, and ``PV.Update``
  (migplan_types.go) forces a single supported action onto the selection;
- the reconcile sets ``spec.refresh = false`` and marks the plan reconciled (``observedDigest``).
"""
import copy
import hashlib
import json

import jsonpatch

from kubectl_vmmig import errors

MTC_NS = "openshift-migration"


def _key(res, ns, name):
    return (res.plural, ns or "", name)


class FakeMtc:
    def __init__(self, pvcs=(), pvs=(), migclusters=None, namespace="ns"):
        self.namespace = namespace
        self.objs = {}
        self.writes = []
        for p in pvcs:
            self.objs[("persistentvolumeclaims", p["metadata"]["namespace"], p["metadata"]["name"])] = p
        for p in pvs:
            self.objs[("persistentvolumes", "", p["metadata"]["name"])] = p
        for c in migclusters if migclusters is not None else [
                {"metadata": {"name": "host", "namespace": MTC_NS}, "spec": {"isHostCluster": True},
                 "status": {"conditions": [{"type": "Ready", "status": "True", "category": "Required"}]}}]:
            self.objs[("migclusters", c["metadata"]["namespace"], c["metadata"]["name"])] = c
        self.uid = 0

    # ---- the client surface the engine uses ------------------------------------------------------
    def has_api(self, group, version):
        return True

    def can_i(self, *a, **kw):
        return True, ""

    def items(self, res, namespace=None, all_namespaces=False, label_selector=None):
        self._reconcile_all()
        out = [copy.deepcopy(o) for (plural, ns, _), o in sorted(self.objs.items())
               if plural == res.plural and (all_namespaces or not res.namespaced or ns == (namespace or ""))]
        return out

    def get_or_none(self, res, name, namespace=None):
        self._reconcile_all()
        o = self.objs.get(_key(res, namespace if res.namespaced else None, name))
        return copy.deepcopy(o) if o is not None else None

    def get(self, res, name, namespace=None):
        o = self.get_or_none(res, name, namespace)
        if o is None:
            raise errors.NotFound(f"{res.plural} {name} not found", status=404)
        return o

    def create(self, res, body, namespace=None, dry_run=False):
        k = _key(res, namespace, body["metadata"]["name"])
        if k in self.objs:
            raise errors.Conflict("exists", status=409)
        if dry_run:
            return body
        obj = copy.deepcopy(body)
        self.uid += 1
        obj["metadata"].setdefault("uid", f"uid-{self.uid}")
        obj["metadata"].setdefault("creationTimestamp", f"2026-01-01T00:00:{self.uid:02d}Z")
        self.objs[k] = obj
        self.writes.append(("create", res.plural, body["metadata"]["name"]))
        return copy.deepcopy(obj)

    def patch(self, res, name, patch, namespace=None, patch_type="merge", **kw):
        k = _key(res, namespace, name)
        obj = self.objs[k]
        if patch_type == "json":
            obj = jsonpatch.apply_patch(obj, patch)
        else:
            obj = _merge(obj, patch)
        self.objs[k] = obj
        self.writes.append(("patch", res.plural, name, copy.deepcopy(patch)))
        return copy.deepcopy(obj)

    # ---- the controller ---------------------------------------------------------------------------
    def _reconcile_all(self):
        for (plural, ns, name), plan in list(self.objs.items()):
            if plural == "migplans":
                self._reconcile_plan(plan)

    def _reconcile_plan(self, plan):
        spec, st = plan.setdefault("spec", {}), plan.setdefault("status", {})
        conds = st.setdefault("conditions", [])
        if spec.get("closed"):
            if not any(c["type"] == "Closed" for c in conds):
                conds.append({"type": "Closed", "status": "True", "category": "Advisory"})
            return
        st.setdefault("suffix", "s" + plan["metadata"]["uid"][-3:].rjust(3, "0"))
        migs = sorted((o for (p, _, _), o in self.objs.items() if p == "migmigrations"
                       and o["spec"]["migPlanRef"]["name"] == plan["metadata"]["name"]),
                      key=lambda m: m["metadata"]["creationTimestamp"], reverse=True)
        suspended = False
        for m in migs:
            mc = {c["type"] for c in (m.get("status") or {}).get("conditions") or []}
            if "Succeeded" in mc and not m["spec"].get("rollback"):
                suspended = True
                break
        if spec.get("refresh"):
            suspended = False
        if not suspended:
            self._discover(plan)
        st["conditions"] = [c for c in conds if c["type"] not in ("Suspended",)]
        if suspended:
            st["conditions"].append({"type": "Suspended", "status": "True", "category": "Advisory"})
        for t in ("PvsDiscovered", "Ready"):
            if not any(c["type"] == t for c in st["conditions"]):
                st["conditions"].append({"type": t, "status": "True", "category": "Required"})
        spec["refresh"] = False
        st["observedDigest"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def _discover(self, plan):
        ns = plan["spec"]["namespaces"][0]
        old = {e["pvc"]["name"].split(":")[0]: e for e in plan["spec"].get("persistentVolumes") or []}
        out = []
        for (plural, pns, name), pvc in sorted(self.objs.items()):
            if plural != "persistentvolumeclaims" or pns != ns:
                continue
            if name.endswith("-mig-" + plan["status"]["suffix"]) or \
                    (pvc["metadata"].get("labels") or {}).get("migration.openshift.io/migrated-by-migplan") \
                    == plan["metadata"]["uid"]:
                continue
            pv = self.objs.get(("persistentvolumes", "", pvc["spec"]["volumeName"])) or {}
            actions = ["skip"] if (pv.get("spec") or {}).get("hostPath") is not None else ["skip", "copy"]
            entry = old.get(name) or {"name": pvc["spec"]["volumeName"], "supported": {"actions": actions},
                                      "selection": {"action": "copy"},
                                      "pvc": {"name": f"{name}:{name}-mig-{plan['status']['suffix']}", "namespace": ns}}
            entry["supported"] = {"actions": actions}
            if len(actions) == 1:
                entry["selection"]["action"] = actions[0]
            out.append(entry)
        plan["spec"]["persistentVolumes"] = sorted(out, key=lambda e: e["name"])


def _merge(obj, patch):
    if not isinstance(patch, dict):
        return patch
    out = dict(obj or {})
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v) if isinstance(v, dict) else v
    return out


def pvc(name, ns="ns", volume=None, labels=None):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"volumeName": volume or f"pv-{name}", "storageClassName": "standard"},
            "status": {"phase": "Bound"}}


def pv(name, host_path=False):
    spec = {"hostPath": {"path": "/data"}} if host_path else {"csi": {"driver": "x"}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def plan_for(*claims, ns="ns", to="fast", vm="vm1", mode="offline"):
    moves = [{"vm": vm, "namespace": ns, "volume": f"v{i}", "sourcePVC": c, "targetPVC": c + "-mig-xxxx",
              "sourceSC": "standard", "targetSC": to, "mode": mode, "volumeMode": "Filesystem",
              "targetAccessMode": None, "targetVolumeMode": "Filesystem", "kind": "pvc"}
             for i, c in enumerate(claims)]
    return {"namespace": ns, "vms": [vm], "targetStorageClass": to, "requestedMode": mode, "mode": mode,
            "liveMigrate": mode == "live", "accessMode": None, "volumeMode": None, "moves": moves, "skipped": [],
            "findings": []}


def succeed(kube, name):
    """Mark MigMigration ``name`` Succeeded (what the controller ends a successful run with)."""
    m = kube.objs[("migmigrations", MTC_NS, name)]
    m["status"] = {"phase": "Completed", "conditions": [{"type": "Succeeded", "status": "True",
                                                          "category": "Advisory"}]}
