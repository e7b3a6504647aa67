"""What the installed KubeVirt can do, from its KubeVirt CR. Pure; the one rule both engines (and the plan's
mode decision) use for "can this cluster migrate storage live".

Upstream (kubevirt/kubevirt):
* ``pkg/virt-config/virt-config.go`` ``IsVMRolloutStrategyLiveUpdate``: from v1.6 ``liveConfig == nil ||
  *liveConfig == LiveUpdate`` (an unset ``vmRolloutStrategy`` means LiveUpdate); v1.5 needs the explicit value;
  v1.3/v1.4 additionally need the ``VMLiveUpdateFeatures`` gate.
* v1.3/v1.4 ``pkg/virt-api/webhooks/validating-webhook/admitters/vms-admitter.go``: ``updateVolumesStrategy``
  is rejected without the ``VolumesUpdateStrategy`` and ``VolumeMigration`` gates (GA in v1.5,
  ``pkg/virt-config/featuregate/inactive.go``).
* v1.3 has no ``ManualRecoveryRequired`` and no start refusal (added in v1.4, ``vm.go syncVolumeMigration``):
  a VM that loses its VMI mid-copy restarts on the uncopied destination, so live is refused below v1.4.
* ``pkg/virt-controller/watch/workload-updater/workload-updater.go`` ``getUpdateData``: only
  ``workloadUpdateMethods`` containing LiveMigrate ever starts the migration.
MTC's own rule: migtools/mig-controller pkg/controller/migplan/validation.go isStorageLiveMigrationDisabled.
"""
import re
from typing import List, Optional, Tuple

LIVE_GATES = ("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures")
MIN_LIVE = (1, 4, 0)


def parse_version(text) -> Optional[Tuple[int, int, int]]:
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", str(text or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def kubevirt_version(kv: Optional[dict]) -> Optional[str]:
    st = (kv or {}).get("status") or {}
    return st.get("observedKubeVirtVersion") or st.get("operatorVersion") or st.get("targetKubeVirtVersion")


def effective_rollout_strategy(kv: Optional[dict]) -> Optional[str]:
    """``vmRolloutStrategy`` as KubeVirt reads it: unset = LiveUpdate from v1.6, Stage before."""
    conf = (((kv or {}).get("spec") or {}).get("configuration")) or {}
    if conf.get("vmRolloutStrategy"):
        return conf["vmRolloutStrategy"]
    ver = parse_version(kubevirt_version(kv))
    return "LiveUpdate" if ver is not None and ver >= (1, 6, 0) else "Stage"


def missing_gates(kv: Optional[dict]) -> List[str]:
    """Feature gates volume migration needs below v1.5 (none from v1.5 on, or when the version is unknown)."""
    ver = parse_version(kubevirt_version(kv))
    if ver is None or ver >= (1, 5, 0):
        return []
    dev = ((((kv or {}).get("spec") or {}).get("configuration")) or {}).get("developerConfiguration") or {}
    gates = set(dev.get("featureGates") or []) - set(dev.get("disabledFeatureGates") or [])
    return [g for g in LIVE_GATES if g not in gates]


def live_migration_blockers(kv: Optional[dict]) -> List[Tuple[str, str]]:
    """[(check name, why)] that make storage live migration impossible on this KubeVirt; [] = it can."""
    if not kv:
        return [("kubevirt", "KubeVirt is not installed (no KubeVirt CR found)")]
    raw = kubevirt_version(kv)
    ver = parse_version(raw)
    out = []
    if ver is None:
        out.append(("kubevirt-version", "the KubeVirt version is unknown (status.observedKubeVirtVersion is empty), "
                                        "and storage live migration needs v1.4.0 or later"))
    elif ver < MIN_LIVE:
        out.append(("kubevirt-version", f"KubeVirt {raw} is older than v1.4.0 (v1.3 cannot protect a VM whose "
                                        "volume migration is interrupted: it restarts on the uncopied destination)"))
    gates = missing_gates(kv)
    if gates:
        out.append(("feature-gates", f"feature gates {', '.join(gates)} missing from spec.configuration."
                                     f"developerConfiguration.featureGates (KubeVirt {raw} needs them)"))
    rollout = effective_rollout_strategy(kv)
    if rollout != "LiveUpdate":
        conf = ((kv.get("spec") or {}).get("configuration")) or {}
        shown = conf.get("vmRolloutStrategy") or "unset (Stage before v1.6)"
        out.append(("rollout-strategy", f"spec.configuration.vmRolloutStrategy is {shown}: KubeVirt then ignores "
                                        "volume updates (nothing happens, no condition is set)"))
    methods = list(((kv.get("spec") or {}).get("workloadUpdateStrategy") or {}).get("workloadUpdateMethods") or [])
    if "LiveMigrate" not in methods:
        out.append(("workload-update-methods",
                    f"spec.workloadUpdateStrategy.workloadUpdateMethods is {methods or 'empty'} without LiveMigrate"))
    return out


def kubevirt_capabilities(kv: Optional[dict]) -> dict:
    """``{"liveMigration", "liveMigrationReason", "version"}`` for the plan's mode decision (both engines)."""
    blockers = live_migration_blockers(kv)
    return {"liveMigration": not blockers, "liveMigrationReason": "; ".join(why for _, why in blockers),
            "version": kubevirt_version(kv)}
