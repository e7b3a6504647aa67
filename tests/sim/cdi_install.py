"""CDI "installed": CDIConfig and StorageProfiles (what cdi-operator and the StorageProfile controller write),
and core/v1 Events for the stand-ins."""
from typing import Dict, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .cdi_admission import install_clone_authorization
from .common import annotations, now, rand_string

AN = "cdi.kubevirt.io/"
DEFAULT_OVERHEAD = "0.06"  # CDI's default global filesystem overhead (CDIConfig status.filesystemOverhead)
DEFAULT_PROPERTY_SETS = [{"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}]


def emit_event(kube, obj: dict, reason: str, message: str, etype: str = "Normal", component: str = "") -> None:
    """Record a core/v1 Event on ``obj`` (what ``kubectl describe`` and ``kubectl get events`` show)."""
    md = obj["metadata"]
    ts = now()
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": {"name": f"{md['name']}.{rand_string(10)}", "namespace": md.get("namespace") or "default"},
          "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": md["name"],
                             "namespace": md.get("namespace"), "uid": md.get("uid")},
          "reason": reason, "message": message, "type": etype, "count": 1,
          "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": component}}
    try:
        kube.create(R.EVENT, ev, ev["metadata"]["namespace"])
    except errors.ApiError:
        pass  # events are best effort, as in client-go's recorder


def install_cdi(kube, overhead: str = DEFAULT_OVERHEAD, claim_property_sets: Optional[Dict[str, list]] = None) -> None:
    """Create CDIConfig ``config`` (status.filesystemOverhead) and one StorageProfile per StorageClass.
    ``claim_property_sets`` = {storageClass: [{accessModes, volumeMode}]} sets admin overrides in the
    profile spec; other classes get ``[{accessModes: [ReadWriteOnce], volumeMode: Filesystem}]``."""
    scs = kube.items(R.STORAGECLASS)
    cfg = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "CDIConfig", "metadata": {"name": "config"},
           "spec": {"featureGates": ["HonorWaitForFirstConsumer", "DataVolumeClaimAdoption"]}}
    status = {"filesystemOverhead": {"global": overhead,
                                     "storageClass": {sc["metadata"]["name"]: overhead for sc in scs}},
              "defaultPodResourceRequirements": {}, "importProxy": {}}
    default = [sc["metadata"]["name"] for sc in scs
               if annotations(sc).get("storageclass.kubernetes.io/is-default-class") == "true"]
    if default:
        status["scratchSpaceStorageClass"] = default[0]
    try:
        cur = kube.create(R.CDICONFIG, cfg)
    except errors.Conflict:
        cur = kube.get(R.CDICONFIG, "config")
    # CDIConfig has no status subresource: the status is written with the object.
    kube.patch(R.CDICONFIG, "config", {"status": status})
    for sc in scs:
        sync_storage_profile(kube, sc, (claim_property_sets or {}).get(sc["metadata"]["name"]))
    install_clone_authorization(kube)  # the DataVolume webhook's clone authorization (cdi_admission.py)


def sync_storage_profile(kube, sc: dict, override: Optional[list] = None, existing: Optional[dict] = None) -> dict:
    name = sc["metadata"]["name"]
    prof = existing or kube.get_or_none(R.STORAGEPROFILE, name)
    if prof is None:
        body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile",
                "metadata": {"name": name, "labels": {"app": "containerized-data-importer",
                                                      "cdi.kubevirt.io": ""}},
                "spec": {"claimPropertySets": override} if override else {}}
        try:
            prof = kube.create(R.STORAGEPROFILE, body)
        except errors.Conflict:
            prof = kube.get(R.STORAGEPROFILE, name)
    elif override:
        prof = kube.patch(R.STORAGEPROFILE, name, {"spec": {"claimPropertySets": override}})
    sets = (prof.get("spec") or {}).get("claimPropertySets") or DEFAULT_PROPERTY_SETS
    status = {"storageClass": name, "provisioner": sc.get("provisioner"), "claimPropertySets": sets,
              "cloneStrategy": (prof.get("spec") or {}).get("cloneStrategy")
              or annotations(sc).get(AN + "clone-strategy") or "copy"}
    if (prof.get("status") or {}) != status:
        prof = kube.patch(R.STORAGEPROFILE, name, {"status": status}, subresource="status")
    return prof


