"""The kubevirt engine's preflight reads (shell): what checks.kubevirt_engine_findings judges, as a dict.

Cluster-scoped reads are shared by every namespace of one command (kube.shared); the namespace's PVCs,
DataVolumes and VMIMs come from what the command already LISTed when given (``objects`` by kind); permissions
from one SelfSubjectRulesReview per namespace (Kube.can_i).
"""
from ... import errors
from ... import resources as R
from ...kube import shared
from . import build as B
from .engine import PERMISSIONS


def cluster_facts(kube, plan, objects=None, options=None) -> dict:
    """``objects``: what the command already LISTed in the namespace (PVCs, DataVolumes, VMIMs by kind):
    not read again. Cluster-scoped reads are shared by every namespace of the command (kube.shared)."""
    ns = plan["namespace"]
    k = kube
    objects = objects or {}

    def soft(fn, default):
        try:
            return fn()
        except (errors.NotFound, errors.Forbidden):
            return default

    def listed(res):
        return objects[res.kind] if objects.get(res.kind) is not None else k.items(res, ns)

    kvs = soft(lambda: shared(k, "kubevirts", lambda: k.items(R.KUBEVIRT, all_namespaces=True)), [])
    cdi = soft(lambda: shared(k, "api cdi", lambda: k.has_api("cdi.kubevirt.io", "v1beta1")), False)
    existing = {}
    for res in (R.PVC, R.DATAVOLUME) if cdi else (R.PVC,):
        for o in soft(lambda: listed(res), []):
            md = o.get("metadata") or {}
            existing.setdefault(md.get("name"), {"kind": res.kind, "labels": md.get("labels") or {}})
    classes = soft(lambda: shared(k, "storageclasses", lambda: k.items(R.STORAGECLASS)), [])
    drivers = soft(lambda: [d["metadata"]["name"] for d in shared(k, "csidrivers", lambda: k.items(R.CSIDRIVER))],
                   None)
    nodes = soft(lambda: shared(k, "nodes", lambda: k.items(R.NODE)), [])
    # the permissions last: a cluster-scoped LIST just made answers its own (Kube.list), no review is asked for it
    rbac = []
    for verb, res, sub, scoped in PERMISSIONS:
        allowed, reason = k.can_i(verb, res.plural, res.group, ns if scoped else None, sub)
        rbac.append({"verb": verb, "resource": res.plural, "group": res.group, "subresource": sub,
                     "allowed": allowed, "reason": reason})
    return {"kubevirt": kvs[0] if kvs else None, "cdi": cdi,
            "nodes": nodes,
            "storageClasses": {s["metadata"]["name"] for s in classes},
            "storageClassObjects": {s["metadata"]["name"]: s for s in classes}, "csiDrivers": drivers,
            "existing": existing, "vmims": soft(lambda: listed(R.VMIM), []), "rbac": rbac,
            "stop": bool((options or {}).get("stop")), "migration": B.migration_name(plan)}
