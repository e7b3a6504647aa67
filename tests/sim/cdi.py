"""CDI stand-in: DataVolumes (blank/import and pvc-clone), their PVCs and PVs, StorageProfiles, and the
binding of every PVC (there is no kube-controller-manager or CSI driver in the test cluster).

Real behaviour: shared/reference/kubevirt/API.md (e) and BEHAVIOR.md §3/§12. One ``step()`` advances
each DataVolume by one phase or one progress increment.
"""
import json
import math
import re
from typing import Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .cdi_install import AN, DEFAULT_OVERHEAD, DEFAULT_PROPERTY_SETS  # noqa: F401 (re-exported)
from .cdi_install import emit_event, install_cdi, sync_storage_profile  # noqa: F401 (re-exported)
from .common import StandIn, annotations, delete_any, get_condition, owner_ref, set_k8s_condition
from .kubevirt_model import format_quantity, parse_quantity

MI = 1 << 20
CSIDRIVER = R.Resource("storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced=False)
# PV annotation: the legacy (non-populator) import wrote its blank image onto a PVC that a live-migration target
# pod had bound and was copying into (AUDIT finding 5) — a test can detect the overwrite here.
OVERWRITE_ANNOTATION = "vmstorage-sim/blank-image-written-over-migration-target"


class CdiController(StandIn):
    """One ``step()``: profiles for new StorageClasses, one phase per DataVolume, PVC binding, GC."""

    name = "cdi"

    def __init__(self, kube, pace: float = 0.05, namespaces=None, import_steps: int = 4, clone_steps: int = 5):
        super().__init__(kube, pace, namespaces)
        self.import_steps = max(1, import_steps)
        self.clone_steps = max(1, clone_steps)
        self._in_use_reported = set()

    # ---- listing ---------------------------------------------------------------------------------
    def _items(self, res, **kw):
        if self.namespaces is None:
            return [o for o in self.kube.items(res, all_namespaces=True, **kw)
                    if o["metadata"].get("namespace") not in self.excluded]
        out = []
        for ns in self.namespaces:
            out += self.kube.items(res, ns, **kw)
        return out

    def faults(self, namespace):
        cache = getattr(self, "_faults", None)
        return dict(cache.get(namespace) or {}) if cache is not None else super().faults(namespace)

    def step(self) -> None:
        cms = self._items(R.CONFIGMAP, field_selector="metadata.name=sim-faults")
        self._faults = {c["metadata"]["namespace"]: dict(c.get("data") or {}) for c in cms}
        scs = {s["metadata"]["name"]: s for s in self.kube.items(R.STORAGECLASS)}
        profiles = {p["metadata"]["name"]: p for p in self.kube.items(R.STORAGEPROFILE)}
        for name, sc in scs.items():
            if name not in profiles:
                profiles[name] = sync_storage_profile(self.kube, sc, existing=None)
        self._csi_drivers = {d["metadata"]["name"] for d in self.kube.items(CSIDRIVER)}
        cfg = self.kube.get_or_none(R.CDICONFIG, "config") or {}
        overhead = float(((cfg.get("status") or {}).get("filesystemOverhead") or {}).get("global") or DEFAULT_OVERHEAD)
        dvs = self._items(R.DATAVOLUME)
        pvcs = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in self._items(R.PVC)}
        pods = self._items(R.POD)
        stalled = {}
        for dv in dvs:
            ns = dv["metadata"]["namespace"]
            if ns not in stalled:
                stalled[ns] = self.stalled(ns)
            if not stalled[ns]:
                self._sync_dv(dv, pvcs, pods, scs, profiles, overhead)
        for pvc in list(pvcs.values()):
            ns = pvc["metadata"]["namespace"]
            if ns not in stalled:
                stalled[ns] = self.stalled(ns)
            if not stalled[ns]:
                self._bind(pvc, pods, scs, {d["metadata"]["uid"]: d for d in dvs})
        self._collect_garbage(dvs, pvcs)

    # ---- DataVolumes -----------------------------------------------------------------------------
    def _sync_dv(self, dv, pvcs, pods, scs, profiles, overhead):
        ns, name = dv["metadata"]["namespace"], dv["metadata"]["name"]
        st = dict(dv.get("status") or {})
        old = json.dumps(st, sort_keys=True)
        src = (dv.get("spec") or {}).get("source") or {}
        clone = "pvc" in src or "snapshot" in src
        pvc = pvcs.get((ns, name))
        phase = st.get("phase") or ""
        st.setdefault("claimName", name)
        st.setdefault("restartCount", 0)
        st.setdefault("progress", "N/A")
        if phase == "Succeeded":
            return
        if pvc is not None and not _owned_by(pvc, dv):
            if annotations(dv).get(AN + "allowClaimAdoption") == "true" or \
                    annotations(pvc).get(AN + "storage.prePopulated") in (name, "true"):
                self._adopt(pvc, dv)
                self._set(st, "Succeeded", pvc, "100.0%")
            else:
                self._set(st, "Pending", pvc)
                set_k8s_condition({"status": st}, "Bound", "False", "ErrResourceExists",
                                  f"Resource \"{name}\" already exists and is not managed by DataVolume")
            return self._write(dv, st, old)
        if pvc is None:
            body, err = self._pvc_for(dv, scs, profiles, pvcs, overhead)
            if err:
                self._set(st, "Pending", None)
                set_k8s_condition({"status": st}, "Bound", "Unknown", "ErrClaimNotValid", err)
                if get_condition(dv, "Bound") is None or get_condition(dv, "Bound").get("reason") != "ErrClaimNotValid":
                    emit_event(self.kube, dv, "ErrClaimNotValid", err, "Warning", "datavolume-controller")
                return self._write(dv, st, old)
            pvc = self.kube.create(R.PVC, body, ns)
            pvcs[(ns, name)] = pvc
            self._set(st, "Pending", pvc)
            return self._write(dv, st, old)
        bound = (pvc.get("status") or {}).get("phase") == "Bound"
        if phase in ("", "Pending", "PendingPopulation", "WaitForFirstConsumer"):
            if not bound:
                populator = annotations(pvc).get(AN + "storage.usePopulator") == "true"
                sc = scs.get((pvc.get("spec") or {}).get("storageClassName") or "") or {}
                wffc = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
                self._set(st, ("PendingPopulation" if populator else "WaitForFirstConsumer") if wffc else "Pending", pvc)
            else:
                self._set(st, "CloneScheduled" if clone else "ImportScheduled", pvc)
            return self._write(dv, st, old)
        if phase == "ImportScheduled":
            self._set(st, "ImportInProgress", pvc, "0.00%")
        elif phase == "CloneScheduled":
            user = self._source_user(dv, pods)
            source = self._source_pvc(dv, pvcs)
            if source is None:
                set_k8s_condition({"status": st}, "Running", "False", "CloneWithoutSource",
                                  f"The source pvc {_src_ns(dv)}/{src.get('pvc', {}).get('name')} doesn't exist")
            elif user:
                msg = f"pod {ns}/{user} using PersistentVolumeClaim {src['pvc']['name']}"
                set_k8s_condition({"status": st}, "Running", "False", "CloneSourceInUse", msg)
                if dv["metadata"]["uid"] not in self._in_use_reported:
                    self._in_use_reported.add(dv["metadata"]["uid"])
                    emit_event(self.kube, dv, "CloneSourceInUse", msg, "Warning", "datavolume-controller")
            else:
                self._set(st, "CloneInProgress", pvc, "0.00%")
        elif phase in ("ImportInProgress", "CloneInProgress"):
            steps = self.clone_steps if clone else self.import_steps
            pct = float(str(st.get("progress") or "0").rstrip("%") or 0) + 100.0 / steps
            if pct >= 99.999:
                if not clone:
                    self._mark_overwrite(pvc, pods)
                self._set(st, "Succeeded", pvc, "100.0%")
            else:
                self._set(st, phase, pvc, f"{pct:.2f}%")
        return self._write(dv, st, old)

    def _mark_overwrite(self, pvc, pods) -> None:
        """The legacy import (no dataSourceRef: the importer pod writes straight into the DV's own PVC) runs as soon
        as the PVC is Bound (import-controller.go shouldReconcilePVC → util.go shouldHandlePvc/isBound). On a
        WaitForFirstConsumer class the binder can be KubeVirt's live-migration target pod: the blank image then
        lands on the volume the migration copies into (kubevirt/kubevirt#13696). Marked on the PV."""
        if (pvc.get("spec") or {}).get("dataSourceRef"):
            return  # populators write into a prime PVC and rebind the PV when done
        name, ns = pvc["metadata"]["name"], pvc["metadata"]["namespace"]
        for p in pods:
            if p["metadata"]["namespace"] != ns or "kubevirt.io/migrationJobUID" not in (p["metadata"].get("labels") or {}):
                continue
            if any((v.get("persistentVolumeClaim") or {}).get("claimName") == name for v in (p.get("spec") or {}).get("volumes") or []):
                pv = (pvc.get("spec") or {}).get("volumeName")
                if pv:
                    self.kube.patch(R.PV, pv, {"metadata": {"annotations": {OVERWRITE_ANNOTATION: p["metadata"]["name"]}}})
                return

    def _set(self, st, phase, pvc, progress=None):
        w = {"status": st}
        st["phase"] = phase
        if progress is not None:
            st["progress"] = progress
        name = st["claimName"]
        bound = pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"
        if pvc is None:
            set_k8s_condition(w, "Bound", "Unknown", "NotFound", "No PVC found")
        elif bound:
            set_k8s_condition(w, "Bound", "True", "Bound", f"PVC {name} Bound")
        else:
            set_k8s_condition(w, "Bound", "False", "Pending", f"PVC {name} Pending")
        done = phase == "Succeeded"
        running = phase in ("ImportInProgress", "CloneInProgress")
        set_k8s_condition(w, "Ready", "True" if done else "False")
        set_k8s_condition(w, "Running", "True" if running else "False",
                          "Completed" if done else ("Pod is running" if running else ""))
        for c in st["conditions"]:
            c.setdefault("lastHeartbeatTime", c.get("lastTransitionTime"))
        if pvc is not None and _owned_by_uid(pvc) and running != (annotations(pvc).get(AN + "storage.condition.running") == "true"):
            pod_phase = "Succeeded" if done else "Running" if running else "Pending"
            self.kube.patch(R.PVC, pvc["metadata"]["name"], {"metadata": {"annotations": {
                AN + "storage.pod.phase": pod_phase, AN + "storage.condition.running": str(running).lower()}}},
                pvc["metadata"]["namespace"])

    def _write(self, dv, st, old):
        if json.dumps(st, sort_keys=True) != old:
            body = dict(dv, status=st)
            try:
                self.kube.request("PUT", R.DATAVOLUME.path(dv["metadata"]["namespace"], dv["metadata"]["name"], "status"),
                                  body=body)
            except errors.Conflict:
                pass  # changed meanwhile: next pass

    def _adopt(self, pvc, dv):
        refs = list(pvc["metadata"].get("ownerReferences") or []) + [owner_ref(dv, block=True)]
        self.kube.patch(R.PVC, pvc["metadata"]["name"], {"metadata": {"ownerReferences": refs}},
                        pvc["metadata"]["namespace"])

    def _source_pvc(self, dv, pvcs):
        src = (dv["spec"].get("source") or {}).get("pvc") or {}
        return pvcs.get((_src_ns(dv), src.get("name")))

    def _source_user(self, dv, pods) -> Optional[str]:
        """A non-terminated pod mounting the clone source (host-assisted clones wait for it)."""
        src = (dv["spec"].get("source") or {}).get("pvc") or {}
        for p in pods:
            if p["metadata"]["namespace"] != _src_ns(dv) or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for v in (p.get("spec") or {}).get("volumes") or []:
                if (v.get("persistentVolumeClaim") or {}).get("claimName") == src.get("name"):
                    return p["metadata"]["name"]
        return None

    def _pvc_for(self, dv, scs, profiles, pvcs, overhead):
        """The PVC CDI creates for a DV: spec.storage gets StorageProfile defaults and FS overhead."""
        spec = dv.get("spec") or {}
        use_storage = "storage" in spec
        req = dict(spec.get("storage") if use_storage else spec.get("pvc") or {})
        sc_name = req.get("storageClassName") or _default_class(scs, virt=use_storage)
        prof = profiles.get(sc_name or "") or {}
        sets = (prof.get("status") or {}).get("claimPropertySets") or []
        modes, vmode = req.get("accessModes"), req.get("volumeMode")
        if use_storage and (not modes or vmode in (None, "FromStorageProfile")):
            match = [s for s in sets if not vmode or vmode == "FromStorageProfile" or s.get("volumeMode") == vmode]
            if not modes:
                if not match:
                    return None, (f"DataVolume.storage spec is missing accessMode and cannot get access mode "
                                  f"from StorageProfile {sc_name}")
                modes = match[0].get("accessModes")
            if vmode in (None, "FromStorageProfile"):
                vmode = (match[0].get("volumeMode") if match else None) or "Filesystem"
        vmode = vmode or "Filesystem"
        size = ((req.get("resources") or {}).get("requests") or {}).get("storage")
        src = spec.get("source") or {}
        if not size and "pvc" in src:
            s = self._source_pvc(dv, pvcs) or {}
            size = ((s.get("status") or {}).get("capacity") or {}).get("storage") or \
                (((s.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if not size:
            return None, "missing storage size"
        nbytes = parse_quantity(size)
        if use_storage and vmode == "Filesystem":
            nbytes = required_space(overhead, nbytes)
        md = dv["metadata"]
        an = {AN + "storage.contentType": spec.get("contentType") or "kubevirt",
              AN + "storage.pod.phase": "Pending", AN + "storage.condition.running": "false",
              AN + "storage.preallocation.requested": str(bool(spec.get("preallocation"))).lower(),
              AN + "createdForDataVolume": md["uid"]}
        # controller-base.go shouldUseCDIPopulator: the DV annotation decides if set; otherwise populators only
        # when the class's provisioner has a CSIDriver object (util.go storageClassCSIDriverExists)
        wanted = annotations(dv).get(AN + "storage.usePopulator")
        if wanted is not None:
            populator = wanted.lower() == "true"
        else:
            provisioner = (scs.get(sc_name or "") or {}).get("provisioner")
            populator = provisioner in getattr(self, "_csi_drivers", set())
        an[AN + "storage.usePopulator"] = str(populator).lower()
        if "pvc" in src:
            an[AN + "cloneType"] = "copy"
        else:
            an[AN + "storage.import.source"] = next(iter(src), "none") if "blank" not in src else "none"
        for k in (AN + "storage.bind.immediate.requested",):
            if k in annotations(dv):
                an[k] = annotations(dv)[k]
        pspec = {"accessModes": list(modes or ["ReadWriteOnce"]), "volumeMode": vmode,
                 "resources": {"requests": {"storage": format_quantity(nbytes) if use_storage else size}}}
        if sc_name:
            pspec["storageClassName"] = sc_name
        if populator:
            kind, prefix = ("VolumeCloneSource", "volume-clone-source") if "pvc" in src else \
                ("VolumeImportSource", "volume-import-source")
            pspec["dataSourceRef"] = {"apiGroup": "cdi.kubevirt.io", "kind": kind, "name": f"{prefix}-{md['uid']}"}
        # controller-base.go newPersistentVolumeClaim: labels are {app: containerized-data-importer}, the
        # fill-up alert suppression for Filesystem claims, then every label of the DataVolume copied over
        labels = {"app": "containerized-data-importer", "app.kubernetes.io/component": "storage",
                  "app.kubernetes.io/managed-by": "cdi-controller"}
        if vmode == "Filesystem":
            labels["alerts.k8s.io/KubePersistentVolumeFillingUp"] = "disabled"
        labels.update(md.get("labels") or {})
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "annotations": an,
                             "labels": labels,
                             "ownerReferences": [owner_ref(dv, block=True)]},
                "spec": pspec}
        return body, None

    # ---- binding (stands in for the PV controller + a CSI provisioner) --------------------------------
    def _bind(self, pvc, pods, scs, dvs_by_uid):
        md, spec = pvc["metadata"], pvc.get("spec") or {}
        if (pvc.get("status") or {}).get("phase") == "Bound" or md.get("deletionTimestamp"):
            return
        ns, name = md["namespace"], md["name"]
        sc = scs.get(spec.get("storageClassName") or "") or {}
        an = annotations(pvc)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and AN + "storage.bind.immediate.requested" not in an:
            node = self._consumer_node(ns, name, pods)
            if not node:
                return  # WFFC: stays Pending until a scheduled pod uses it
            self.kube.patch(R.PVC, name, {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": node}}}, ns)
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
        cap = format_quantity(-(-parse_quantity(size) // MI) * MI)
        pv_name = spec.get("volumeName") or f"pvc-{md['uid']}"
        provisioner = sc.get("provisioner") or "kubernetes.io/no-provisioner"
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner}},
              "spec": {"capacity": {"storage": cap}, "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                       "volumeMode": spec.get("volumeMode") or "Filesystem",
                       "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                                    "name": name, "uid": md["uid"]},
                       }}
        # A CSI provisioner makes a `csi` PV; only the legacy (non-CSI) hostpath-provisioner makes a
        # `hostPath` PV — which mig-controller can only skip (pvlist.go getSupportedActions).
        if provisioner == "kubevirt.io/hostpath-provisioner":
            pv["spec"]["hostPath"] = {"path": f"/var/lib/sim-volumes/{pv_name}"}
        else:
            # spec.csi.driver must be a DNS subdomain (the test classes' provisioner names need not be)
            driver = re.sub(r"[^a-z0-9.-]+", "-", provisioner.lower()).strip("-.")[:63].strip("-.") or "sim.csi"
            pv["spec"]["csi"] = {"driver": driver, "volumeHandle": pv_name}
        if spec.get("storageClassName"):
            pv["spec"]["storageClassName"] = spec["storageClassName"]
        try:
            self.kube.create(R.PV, pv)
        except errors.Conflict:
            pass
        self.kube.patch(R.PV, pv_name, {"status": {"phase": "Bound"}}, subresource="status")
        self.kube.patch(R.PVC, name, {"metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": provisioner}}, "spec": {"volumeName": pv_name}}, ns)
        pvc.update(self.kube.patch(R.PVC, name, {"status": {
            "phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": {"storage": cap}}}, ns,
            subresource="status"))

    @staticmethod
    def _consumer_node(ns, claim, pods) -> Optional[str]:
        for p in pods:
            if p["metadata"]["namespace"] != ns or not (p.get("spec") or {}).get("nodeName"):
                continue
            if any((v.get("persistentVolumeClaim") or {}).get("claimName") == claim for v in p["spec"].get("volumes") or []):
                return p["spec"]["nodeName"]
        return None

    def _collect_garbage(self, dvs, pvcs):
        """The garbage collector's part: a PVC whose owning DataVolume is gone is deleted."""
        live = {d["metadata"]["uid"] for d in dvs}
        for (ns, name), pvc in pvcs.items():
            refs = [r for r in pvc["metadata"].get("ownerReferences") or [] if r.get("kind") == "DataVolume"]
            if refs and not any(r["uid"] in live for r in refs) and self.in_scope(ns):
                if not self.kube.get_or_none(R.DATAVOLUME, refs[0]["name"], ns):
                    delete_any(self.kube, R.PVC, name, ns)


def required_space(overhead: float, requested: int) -> int:
    """pkg/util/util.go GetRequiredSpace: RoundUp(requested, 1MiB) × (1 + overhead), rounded up to a byte
    (the PVC asks for exactly that many bytes; the provisioner rounds its capacity up)."""
    aligned = -(-requested // MI) * MI
    return int(math.ceil(float(aligned) * (1 + overhead)))


def _owned_by(pvc, dv) -> bool:
    return any(r.get("uid") == dv["metadata"]["uid"] for r in pvc["metadata"].get("ownerReferences") or [])


def _owned_by_uid(pvc) -> bool:
    return any(r.get("kind") == "DataVolume" for r in pvc["metadata"].get("ownerReferences") or [])


def _src_ns(dv) -> str:
    src = ((dv.get("spec") or {}).get("source") or {}).get("pvc") or {}
    return src.get("namespace") or dv["metadata"]["namespace"]


def _default_class(scs: dict, virt: bool) -> Optional[str]:
    if virt:
        for n, sc in scs.items():
            if annotations(sc).get("storageclass.kubevirt.io/is-default-virt-class") == "true":
                return n
    for n, sc in scs.items():
        if annotations(sc).get("storageclass.kubernetes.io/is-default-class") == "true":
            return n
    return None
