"""Pure functions on KubeVirt/CDI dicts used by the KubeVirt and CDI stand-ins (no API calls).

Messages and reasons are copied from kubevirt/kubevirt (see shared/reference/kubevirt/API.md):
``pkg/virt-controller/watch/volume-migration/volume-migration.go`` (ValidateVolumes, GenerateMigratedVolumes,
ValidateVolumesUpdateMigration) and ``pkg/virt-handler/vm.go`` (checkVolumesForMigration,
evaluateCommonMigrationConstraints).
"""
import copy
import math
import re
from typing import Dict, List, Optional, Tuple

# ---- versions and KubeVirt configuration --------------------------------------------------------------
VOLUME_GATES = ("VolumesUpdateStrategy", "VolumeMigration")
LIVE_UPDATE_GATE = "VMLiveUpdateFeatures"


def parse_version(text: Optional[str]) -> Tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return (0, 0, 0)
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


class KvConfig:
    """What virt-controller reads from the KubeVirt CR."""

    def __init__(self, kv: dict):
        spec, status = kv.get("spec") or {}, kv.get("status") or {}
        conf = spec.get("configuration") or {}
        self.version = parse_version(status.get("observedKubeVirtVersion"))
        self.gates = set((conf.get("developerConfiguration") or {}).get("featureGates") or [])
        rollout = conf.get("vmRolloutStrategy")
        # nil means Stage up to v1.5 and LiveUpdate since v1.6 (API.md (d)).
        self.rollout = rollout or ("LiveUpdate" if self.version >= (1, 6, 0) else "Stage")
        self.methods = list((spec.get("workloadUpdateStrategy") or {}).get("workloadUpdateMethods") or [])
        self.settled = (status.get("phase") == "Deployed"
                        and status.get("observedDeploymentID") == status.get("targetDeploymentID"))
        self.migrations = conf.get("migrations") or {}
        self.eviction_strategy = conf.get("evictionStrategy")  # cluster-wide default (VMIEvictionStrategy)

    @property
    def volume_update_enabled(self) -> bool:
        if self.version < (1, 3, 0):
            return False
        return self.version >= (1, 5, 0) or all(g in self.gates for g in VOLUME_GATES)

    @property
    def live_update(self) -> bool:
        if self.rollout != "LiveUpdate":
            return False
        return self.version >= (1, 5, 0) or LIVE_UPDATE_GATE in self.gates

    @property
    def has_volume_update_state(self) -> bool:  # VM status.volumeUpdateState, ManualRecoveryRequired
        return self.version >= (1, 4, 0)

    @property
    def has_storage_live_migratable(self) -> bool:
        return self.version >= (1, 4, 0)


# ---- quantities ---------------------------------------------------------------------------------------
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "m": 0.001}


def parse_quantity(text) -> int:
    """Kubernetes quantity → bytes (int, rounded up)."""
    if text is None or text == "":
        return 0
    m = re.match(r"^\s*([0-9.]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*$", str(text))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"bad quantity {text!r}")
    return int(math.ceil(float(m.group(1)) * _SUFFIX[m.group(2)]))


def format_quantity(n: int) -> str:
    """Bytes → the shortest exact binary form ("2Gi", "1536Mi", "1073741825")."""
    for suf in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        if n and n % _SUFFIX[suf] == 0:
            return f"{n // _SUFFIX[suf]}{suf}"
    return str(n)


# ---- volumes and disks --------------------------------------------------------------------------------
def claim_of(volume: dict) -> str:
    """storagetypes.PVCNameFromVirtVolume: dataVolume.name, persistentVolumeClaim.claimName, memoryDump."""
    for key, field in (("dataVolume", "name"), ("persistentVolumeClaim", "claimName"), ("memoryDump", "claimName")):
        if volume.get(key):
            return volume[key].get(field) or ""
    return ""


def is_hotpluggable(volume: dict) -> bool:
    return bool((volume.get("dataVolume") or {}).get("hotpluggable")
                or (volume.get("persistentVolumeClaim") or {}).get("hotpluggable"))


def vmi_spec_of(vm: dict) -> dict:
    return ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}


def volumes_of(spec: dict) -> List[dict]:
    return list(spec.get("volumes") or [])


def devices_of(spec: dict) -> dict:
    return ((spec.get("domain") or {}).get("devices") or {})


def disks_by_name(spec: dict) -> Dict[str, dict]:
    return {d.get("name"): d for d in devices_of(spec).get("disks") or []}


def filesystem_names(spec: dict) -> set:
    return {f.get("name") for f in devices_of(spec).get("filesystems") or []}


def updated_volumes(vmi_spec: dict, vm_spec: dict) -> Dict[str, str]:
    """updatedVolumesMapping: volume name → new claim, for volumes present in both whose claim changed."""
    new = {v["name"]: claim_of(v) for v in volumes_of(vm_spec) if claim_of(v)}
    out = {}
    for v in volumes_of(vmi_spec):
        old = claim_of(v)
        if old and v["name"] in new and new[v["name"]] != old:
            out[v["name"]] = new[v["name"]]
    return out


def invalid_volumes_message(vmi_spec: dict, vm_spec: dict, dvs: Dict[str, dict], pvcs: Dict[str, dict],
                            allow_hotplug: bool, check_dvs: bool = True) -> Optional[str]:
    """ValidateVolumes → "invalid volumes to update with migration: ..." or None.

    ``dvs``/``pvcs`` map names to objects in the VM namespace (missing destinations are handled by the
    caller before this check)."""
    upd = updated_volumes(vmi_spec, vm_spec)
    disks, fss = disks_by_name(vmi_spec), filesystem_names(vmi_spec)
    bad = {"hotplugged": [], "filesystems": [], "shareable": [], "luns": [], "nocsi": []}
    for v in volumes_of(vm_spec):
        name = v["name"]
        if name not in upd:
            continue
        if not allow_hotplug and is_hotpluggable(v):
            bad["hotplugged"].append(name)
            continue
        if name in fss:
            bad["filesystems"].append(name)
            continue
        d = disks.get(name)
        if d is None:
            continue
        if d.get("shareable"):
            bad["shareable"].append(name)
            continue
        if d.get("lun") is not None:
            bad["luns"].append(name)
            continue
        if v.get("dataVolume") and check_dvs:  # noCSIDVs: v1.5+ (v1.3/v1.4 ValidateVolumes has no DV rule)
            dv = dvs.get(v["dataVolume"]["name"]) or {}
            if (dv.get("status") or {}).get("phase") == "Succeeded":
                continue
            pvc = pvcs.get(v["dataVolume"]["name"]) or {}
            if not (pvc.get("spec") or {}).get("dataSourceRef"):
                bad["nocsi"].append(name)
    if not any(bad.values()):
        return None
    labels = (("hotplugged", "hotplugged"), ("filesystems", "filesystems"), ("shareable", "shareable"),
              ("luns", "luns"), ("nocsi", "DV storage class isn't a CSI or not using volume populators"))
    msg = "invalid volumes to update with migration:"
    for key, label in labels:
        if bad[key]:
            msg += f" {label}: [{' '.join(bad[key])}]"  # Go's %v of a []string
    return msg


# ---- PVC facts ----------------------------------------------------------------------------------------
def access_modes(pvc: dict) -> List[str]:
    return list((pvc.get("spec") or {}).get("accessModes") or [])


def is_shared(modes: List[str]) -> bool:
    """storagetypes.HasSharedAccessMode: RWX counts as shared; everything else (RWO, RWOP, ROX) not."""
    return "ReadWriteMany" in (modes or [])


def pvc_info(pvc: Optional[dict], claim: str, overhead: Optional[str] = None) -> dict:
    """PersistentVolumeClaimInfo for migratedVolumes (overhead=None) or volumeStatus."""
    if not pvc:
        return {"claimName": claim}
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    info = {"claimName": claim, "accessModes": list(spec.get("accessModes") or []),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "requests": dict((spec.get("resources") or {}).get("requests") or {})}
    if status.get("capacity"):
        info["capacity"] = dict(status["capacity"])
    if overhead is not None and info["volumeMode"] == "Filesystem":
        info["filesystemOverhead"] = overhead
    return info


def migrated_info(pvc: Optional[dict], claim: str) -> dict:
    """volume-migration.go GenerateMigratedVolumes: a StorageMigratedVolumeInfo side holds only claimName and
    the PVC's spec.volumeMode (omitted when the PVC does not exist or sets none)."""
    info = {"claimName": claim}
    mode = ((pvc or {}).get("spec") or {}).get("volumeMode")
    if mode:
        info["volumeMode"] = mode
    return info


LESS_PVC_SPACE_TOLERATION = 10  # virt-config.go DefaultLessPVCSpaceToleration (percent)
MINIMUM_RESERVE_PVC_BYTES = 131072  # virt-config.go DefaultMinimumReservePVCBytes


def guest_size(info: dict, overhead: float, cdi_image: bool = False) -> int:
    """Size of the disk the guest sees. Block: the whole device. Filesystem: disk.img as pkg/host-disk/host-disk.go
    creates it — replaceForHostDisk: the request if smaller than the capacity, else the capacity, aligned down to
    1MiB (AlignImageSizeTo1MiB); handleRequestedSizeAndCreateSparseRaw/shrinkRequestedSize: if that exceeds the
    free space of the volume's filesystem (dirBytesAvailable minus MinimumReservePVCBytes) but is within the
    10% toleration, the free space; beyond it the image cannot be created (ValueError). The free space of a fresh
    filesystem is modelled as CDI does (pkg/util/util.go GetUsableSpace: capacity / (1 + overhead)).
    ``cdi_image``: the PVC belongs to a DataVolume, so CDI's importer already wrote disk.img (HostDisk type
    DiskOrCreate uses it as is); its size is the volume's usable space, pkg/util/util.go GetUsableSpace:
    RoundDown(ceil(capacity / (1 + overhead)), 1MiB)."""
    capacity = parse_quantity((info.get("capacity") or {}).get("storage"))
    requested = parse_quantity((info.get("requests") or {}).get("storage"))
    if info.get("volumeMode") == "Block":
        return capacity or requested
    if cdi_image:
        usable = int(math.ceil((capacity or requested) / (1 + overhead)))
        return usable - usable % (1 << 20)
    if requested and (not capacity or capacity > requested):
        size = requested - requested % (1 << 20)
    else:
        size = capacity - capacity % (1 << 20)
    available = int(math.ceil((capacity or requested) / (1 + overhead))) - MINIMUM_RESERVE_PVC_BYTES
    if size > available:
        if size * (100 - LESS_PVC_SPACE_TOLERATION) // 100 > available:
            raise ValueError(f"not enough space, demanded size {size} B is bigger than available space {available} B")
        size = available
    return size


# ---- migratability (virt-handler) ---------------------------------------------------------------------
def common_blockers(vmi: dict) -> List[Tuple[str, str]]:
    """evaluateCommonMigrationConstraints (the non-storage reasons), in the real order."""
    spec = vmi.get("spec") or {}
    dev = devices_of(spec)
    out = []
    pod_nets = {n.get("name") for n in spec.get("networks") or [] if "pod" in n}
    for iface in dev.get("interfaces") or []:
        if iface.get("name") in pod_nets and "bridge" in iface:
            out.append(("InterfaceNotLiveMigratable",
                        "cannot migrate VMI which does not use masquerade, bridge with "
                        "kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable "
                        "plugin to connect to the pod network"))
            break
    if dev.get("hostDevices") or dev.get("gpus"):
        out.append(("HostDeviceNotLiveMigratable", "VMI uses a PCI host devices"))
    if ((spec.get("domain") or {}).get("launchSecurity") or {}).get("sev") is not None:
        out.append(("SEVNotLiveMigratable", "VMI uses SEV"))
    if any((d.get("lun") or {}).get("reservation") for d in dev.get("disks") or []):
        out.append(("PersistentReservationNotLiveMigratable", "VMI uses SCSI persistent reservation"))
    return out


def volume_blocker(vmi: dict) -> Tuple[bool, Optional[str]]:
    """checkVolumesForMigration → (blockMigrate, error message or None)."""
    spec, status = vmi.get("spec") or {}, vmi.get("status") or {}
    vs = {s.get("name"): s for s in status.get("volumeStatus") or []}
    migrated = {m.get("volumeName") for m in status.get("migratedVolumes") or []}
    fss = filesystem_names(spec)
    cdroms = {d["name"] for d in devices_of(spec).get("disks") or []
              if d.get("cdrom") is not None and (d["cdrom"].get("readonly") is not False)}
    block = bool(migrated)
    for v in volumes_of(spec):
        name = v["name"]
        if v.get("persistentVolumeClaim") or v.get("dataVolume"):
            claim = claim_of(v)
            info = (vs.get(name) or {}).get("persistentVolumeClaimInfo")
            if info is None:
                return True, (f"cannot migrate VMI: Unable to determine if PVC {claim} is shared, live migration "
                              "requires that all PVCs must be shared (using ReadWriteMany access mode)")
            if not is_shared(info.get("accessModes")) and name not in migrated:
                return True, (f"cannot migrate VMI: PVC {claim} is not shared, live migration requires that all "
                              "PVCs must be shared (using ReadWriteMany access mode)")
        elif v.get("hostDisk") is not None:
            if not v["hostDisk"].get("shared"):
                return True, "cannot migrate VMI with non-shared HostDisk"
        else:
            if name in fss or name in cdroms:
                continue
            block = True  # containerDisk, cloud-init, emptyDisk...: copied by libvirt
    return block, None


def migratable_conditions(vmi: dict, with_storage: bool = True) -> Tuple[List[dict], str]:
    """(LiveMigratable [, StorageLiveMigratable] conditions, migrationMethod) as virt-handler computes them."""
    common = common_blockers(vmi)
    block, err = volume_blocker(vmi)
    if common:
        live = {"type": "LiveMigratable", "status": "False", "reason": common[0][0], "message": common[0][1]}
    elif err:
        live = {"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable", "message": err}
    else:
        live = {"type": "LiveMigratable", "status": "True"}
    conds = [live]
    if with_storage:
        if common:
            conds.append({"type": "StorageLiveMigratable", "status": "False", "reason": "NotMigratable",
                          "message": ", ".join(f"{r}: {m}" for r, m in common)})
        else:
            conds.append({"type": "StorageLiveMigratable", "status": "True"})
    for c in conds:
        c.setdefault("lastProbeTime", None)
        c.setdefault("lastTransitionTime", None)
    return conds, ("BlockMigration" if block else "LiveMigration")


def rwo_not_included(vmi: dict, migrated_names: set, backend_exempt: bool = True) -> Optional[str]:
    """ValidateVolumesUpdateMigration's RWO rule (RWOP/ROX count as RWO too); the backend-storage PVC
    (persistent-state-for-…) is exempt from v1.5 only."""
    for s in (vmi.get("status") or {}).get("volumeStatus") or []:
        info = s.get("persistentVolumeClaimInfo")
        if not info or (backend_exempt and s.get("name", "").startswith("persistent-state-for-")):
            continue
        if not is_shared(info.get("accessModes")) and s.get("name") not in migrated_names:
            return f"cannot migrate the VM. The volume {s.get('name')} is RWO and not included in the migration volumes"
    return None


def disk_targets(spec: dict) -> Dict[str, str]:
    """Device names libvirt would assign: vdX for virtio disks, sdX for sata/scsi disks and luns."""
    out, counters = {}, {"vd": 0, "sd": 0}
    for d in devices_of(spec).get("disks") or []:
        kind = d.get("disk") or d.get("lun") or d.get("cdrom") or {}
        bus = kind.get("bus") or ("scsi" if "lun" in d else "sata" if "cdrom" in d else "virtio")
        prefix = "vd" if bus == "virtio" else "sd"
        out[d["name"]] = prefix + chr(ord("a") + counters[prefix])
        counters[prefix] += 1
    return out


def deep(obj):
    return copy.deepcopy(obj)


def md5hex_int(text: str) -> int:
    import hashlib
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16)


def cond(obj: dict, ctype: str) -> Optional[dict]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def cond_true(obj: dict, ctype: str) -> bool:
    c = cond(obj, ctype)
    return bool(c) and c.get("status") == "True"


def put_condition(status: dict, new: dict, keep_time: bool = True) -> None:
    """Replace the condition of new["type"] in status.conditions; keep lastTransitionTime when the
    status did not change (Kubernetes semantics)."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == new["type"]:
            if keep_time and c.get("status") == new.get("status") and "lastTransitionTime" in c:
                new = dict(new, lastTransitionTime=c["lastTransitionTime"])
            conds[i] = new
            return
    conds.append(new)


def drop_condition(status: dict, ctype: str) -> bool:
    conds = status.get("conditions") or []
    kept = [c for c in conds if c.get("type") != ctype]
    if len(kept) != len(conds):
        status["conditions"] = kept
        return True
    return False
