"""What a provisioner + the PV controller would do for the stand-ins (the test API server has neither)."""
from typing import Dict, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import create_or_get, delete_any

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def bind_pvc(kube, pvc: dict, node: Optional[str] = None) -> dict:
    """Provision a PV for ``pvc`` and bind both (PV ``pvc-<uid>``, PVC status Bound). Idempotent.

    The test API server has no kube-controller-manager and no provisioner: this is their part.
    """
    md, spec = pvc["metadata"], pvc.get("spec") or {}
    ns = md["namespace"]
    if (pvc.get("status") or {}).get("phase") == "Bound" and spec.get("volumeName"):
        return pvc
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    pv_name = spec.get("volumeName") or f"pvc-{md['uid']}"
    pv = {"apiVersion": "v1", "kind": "PersistentVolume",
          "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "sim"}},
          "spec": {"capacity": {"storage": size}, "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                   "volumeMode": spec.get("volumeMode") or "Filesystem",
                   "storageClassName": spec.get("storageClassName") or "",
                   "persistentVolumeReclaimPolicy": "Delete",
                   "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                                "name": md["name"], "uid": md["uid"]},
                   "csi": {"driver": "sim.csi.example.com", "volumeHandle": pv_name}}}
    if node:
        pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    create_or_get(kube, R.PV, pv)
    kube.patch(R.PV, pv_name, {"status": {"phase": "Bound"}}, subresource="status")
    if not spec.get("volumeName"):
        kube.patch(R.PVC, md["name"], {"spec": {"volumeName": pv_name},
                                        "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}}},
                   ns)
    return kube.patch(R.PVC, md["name"], {"status": {
        "phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": {"storage": size}}}, ns,
        subresource="status")


def make_bound_pvc(kube, namespace: str, name: str, storage_class: str = "standard", size: str = "1Gi",
                   volume_mode: str = "Filesystem", access_modes=("ReadWriteOnce",),
                   labels_: Optional[Dict[str, str]] = None, owner: Optional[dict] = None) -> dict:
    """Test/sandbox helper: create a PVC and bind it at once."""
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels_ or {})},
            "spec": {"accessModes": list(access_modes), "volumeMode": volume_mode,
                     "storageClassName": storage_class, "resources": {"requests": {"storage": size}}}}
    if owner:
        body["metadata"]["ownerReferences"] = [owner]
    pvc = create_or_get(kube, R.PVC, body, namespace)
    return bind_pvc(kube, pvc)


def finish_pvc_deletion(kube, pvc: dict) -> None:
    """A deleted PVC keeps kubernetes.io/pvc-protection until kube-controller-manager removes it; there is
    none here, so drop the finalizer (no pod check) and delete the bound PV (reclaimPolicy Delete)."""
    md = pvc["metadata"]
    if md.get("finalizers"):
        try:
            kube.patch(R.PVC, md["name"], [{"op": "remove", "path": "/metadata/finalizers"}], md["namespace"],
                       patch_type="json")
        except errors.NotFound:
            pass
    pv_name = (pvc.get("spec") or {}).get("volumeName")
    if pv_name:
        pv = kube.get_or_none(R.PV, pv_name)
        if pv and (pv["metadata"].get("finalizers")):
            kube.patch(R.PV, pv_name, [{"op": "remove", "path": "/metadata/finalizers"}], patch_type="json")
        delete_any(kube, R.PV, pv_name)
