"""What the installed KubeVirt can do, from its KubeVirt CR. Pure; used by the plan for every engine."""
import re
from typing import Optional, Tuple

LIVE_GATES = ("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures")


def parse_version(text) -> Optional[Tuple[int, int, int]]:
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", str(text or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def kubevirt_version(kv: Optional[dict]) -> Optional[str]:
    st = (kv or {}).get("status") or {}
    return st.get("observedKubeVirtVersion") or st.get("operatorVersion") or st.get("targetKubeVirtVersion")


def kubevirt_capabilities(kv: Optional[dict]) -> dict:
    """Can this KubeVirt live-migrate storage? The one home of this rule (the plan asks it for every engine).

    Upstream: kubevirt/kubevirt pkg/virt-config/virt-config.go IsVMRolloutStrategyLiveUpdate,
    pkg/virt-config/featuregate/inactive.go (VolumesUpdateStrategy, VolumeMigration, VMLiveUpdateFeatures, GA
    since v1.5), pkg/virt-controller/watch/workload-updater/workload-updater.go (the LiveMigrate method);
    MTC's own rule: migtools/mig-controller pkg/controller/migplan/validation.go isStorageLiveMigrationDisabled."""
    if not kv:
        return {"liveMigration": False, "liveMigrationReason": "KubeVirt is not installed (no KubeVirt CR found)"}
    version = kubevirt_version(kv)
    parsed = parse_version(version)
    cfg = ((kv.get("spec") or {}).get("configuration")) or {}
    reasons = []
    if parsed is None or parsed < (1, 3, 0):
        reasons.append(f"KubeVirt {version or 'of unknown version'} is older than v1.3.0, "
                       "the first version with storage live migration")
    if cfg.get("vmRolloutStrategy") != "LiveUpdate":
        reasons.append("spec.configuration.vmRolloutStrategy is not LiveUpdate")
    gates = ((cfg.get("developerConfiguration") or {}).get("featureGates")) or []
    if parsed is not None and parsed < (1, 5, 0):
        missing = [g for g in LIVE_GATES if g not in gates]
        if missing:
            reasons.append("feature gates missing: " + ", ".join(missing))
    methods = (((kv.get("spec") or {}).get("workloadUpdateStrategy") or {}).get("workloadUpdateMethods")) or []
    if "LiveMigrate" not in methods:
        reasons.append("spec.workloadUpdateStrategy.workloadUpdateMethods does not contain LiveMigrate")
    return {"liveMigration": not reasons, "liveMigrationReason": "; ".join(reasons), "version": version}
