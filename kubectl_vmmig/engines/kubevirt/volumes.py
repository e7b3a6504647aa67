"""When a destination DataVolume may be used, and what to say while waiting (pure).

CDI (kubevirt/containerized-data-importer):
* ``pkg/controller/datavolume/controller-base.go`` ``updateStatusPVCPending``/``shouldBeMarkedPendingPopulation``:
  ``PendingPopulation`` = a populator PVC on a WaitForFirstConsumer class with no node selected yet;
  ``WaitForFirstConsumer`` = the same for the legacy (non-populator) flow. In both nothing is copied yet.
* ``shouldUseCDIPopulator``/``storageClassCSIDriverExists``: populators only for classes whose provisioner is a
  CSIDriver (unless the DV says ``cdi.kubevirt.io/storage.usePopulator``). The legacy flow imports as soon as the
  PVC is bound (``import-controller.go``, ``util.go shouldHandlePvc``) - for a live move the binder is KubeVirt's
  migration target pod, so CDI would write a blank image over the copy (kubevirt/kubevirt#13696).
* DV ``status.conditions`` (Bound/Running/Ready with reason and message) and ``status.restartCount`` say why a
  DV waits (``CloneSourceInUse``, ``ErrClaimNotValid``, ...); CDI never turns those into ``Failed``.

Offline (clone) destinations count only when ``Succeeded``. Live (blank) destinations count when ``Succeeded``,
or ``PendingPopulation`` on the populator path (PVC ``spec.dataSourceRef`` set): KubeVirt's target pod is their
first consumer (``vm.go handleDataVolumes``; ``volume-migration.go`` refuses non-populator unpopulated DVs).
"""
from typing import Optional, Tuple

from ...labels import CDI_IMMEDIATE_BINDING as IMMEDIATE_BINDING  # noqa: F401 (builders import it from here)

WFFC = "WaitForFirstConsumer"


def dv_wait_text(name: str, dv: Optional[dict]) -> str:
    """``<name> <phase> <progress> (<condition reasons>, N restarts)`` for a DataVolume still being prepared."""
    if dv is None:
        return f"{name} not created yet"
    st = dv.get("status") or {}
    parts = [name, st.get("phase") or "Pending"]
    if st.get("progress") and st.get("progress") != "N/A":
        parts.append(st["progress"])
    why = []
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Ready", "Running"):
            continue
        if c.get("reason") or c.get("message"):
            text = c.get("reason") or ""
            if c.get("message") and c.get("message") != text:
                text = f"{text}: {c['message']}" if text else c["message"]
            why.append(f"{c.get('type')} {text}")
    restarts = int(st.get("restartCount") or 0)
    if restarts:
        why.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    return " ".join(parts) + (f" ({'; '.join(why)})" if why else "")


def destination_state(dv: Optional[dict], pvc: Optional[dict], live: bool) -> Tuple[str, str]:
    """-> (state, why): state ``ready`` | ``waiting`` | ``failed`` | ``refused`` for one destination DV."""
    name = ((dv or {}).get("metadata") or {}).get("name") or ""
    phase = ((dv or {}).get("status") or {}).get("phase") or ""
    if dv is None:
        return "waiting", dv_wait_text(name, dv)
    if phase == "Succeeded":
        return "ready", ""
    if phase == "Failed":
        return "failed", f"destination DataVolume {name} Failed: {dv_wait_text(name, dv)}"
    if live and phase == "PendingPopulation" and ((pvc or {}).get("spec") or {}).get("dataSourceRef"):
        return "ready", ""
    if live and phase == WFFC:
        return "refused", (f"destination DataVolume {name} waits for its first consumer on CDI's legacy "
                           "(non-populator) path - its StorageClass is WaitForFirstConsumer and not a CSI driver: "
                           "CDI would write a blank image over the copied disk once KubeVirt's target pod binds it "
                           "(kubevirt/kubevirt#13696); use a CSI StorageClass, or --mode offline --stop")
    return "waiting", dv_wait_text(name, dv)


def legacy_wffc_class(storage_class: Optional[dict], csi_drivers) -> Optional[bool]:
    """True when CDI takes the legacy WaitForFirstConsumer path on this class (WFFC and no CSIDriver for its
    provisioner); None when the CSIDrivers could not be read."""
    if not storage_class or storage_class.get("volumeBindingMode") != WFFC:
        return False
    if csi_drivers is None:
        return None
    return storage_class.get("provisioner") not in set(csi_drivers)
