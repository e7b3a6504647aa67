"""Preflight of the migration-controller engine (pure): what kubevirt-migration-controller would refuse, plus the
kubevirt engine's checks that still apply (imported from engines/kubevirt/checks.py, not copied).

``cluster`` (gathered by the surface)::

    {"kubevirt": KubeVirt CR | None, "migcontrollers": [MigController], "served": bool (migrations.kubevirt.io),
     "cdi": bool, "nodes": [Node], "storageClasses": [StorageClass], "existing": {claim: {"kind","labels"}},
     "vmims": [VMIM], "rbac": [{"verb","resource","group","subresource","allowed","reason"}], "plan": name}

After the plan exists, ``plan_findings`` turns the controller's own verdict (its conditions and lists) into
findings: the run goes on only when every planned VM is in ``status.readyMigrations``.
"""
from typing import Dict, List, Optional

from ...conditions import true_conditions
from ...findings import finding
from ...kubevirt_capabilities import parse_version
from ...placement import live_node_findings
from ..kubevirt import build as KB
from ..kubevirt import checks as KC

_f = finding
GATES = ("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures")


def controller_state(migcontrollers: List[dict]) -> Optional[str]:
    """None when the controller runs, else why not. kubevirt-migration-operator reports on its MigController CR
    (controller-lifecycle-operator-sdk pkg/sdk/reconciler/reconciler.go: phase Deployed + MarkCrHealthyMessage
    once the controller Deployment is ready; CheckDegraded sets Degraded=True when it stops being ready)."""
    if not migcontrollers:
        return "no MigController CR (kubevirt-migration-operator is not installed, or deploys no controller)"
    for mc in migcontrollers:
        st = mc.get("status") or {}
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        if st.get("phase") == "Deployed" and conds.get("Available") == "True" and conds.get("Degraded") != "True":
            return None
    mc = migcontrollers[0]
    st = mc.get("status") or {}
    return (f"MigController {mc['metadata'].get('namespace')}/{mc['metadata']['name']} is "
            f"{st.get('phase') or 'not Deployed'} and not Available (its controller Deployment is not ready)")


def controller_kubevirt_findings(kv: Optional[dict]) -> List[dict]:
    """The controller's own KubeVirt rule, which blocks the WHOLE plan (offline VMs too): storagemigplan/
    validation.go validateKubeVirtInstalled — operatorVersion >= 1.3, vmRolloutStrategy set to LiveUpdate
    explicitly (unset is refused although KubeVirt >= 1.6 treats it as LiveUpdate), developerConfiguration present,
    and below 1.5 the three feature gates."""
    if kv is None:
        return [_f("controller-kubevirt", "error", "KubeVirt is not installed: kubevirt-migration-controller "
                   "refuses the plan (KubeVirtNotInstalledSourceCluster)")]
    conf = (kv.get("spec") or {}).get("configuration") or {}
    ver = parse_version((kv.get("status") or {}).get("operatorVersion"))
    dev = conf.get("developerConfiguration")
    why = None
    if ver is None or ver < (1, 3, 0):
        why = (f"KubeVirt operatorVersion {(kv.get('status') or {}).get('operatorVersion') or 'unknown'} is older "
               "than v1.3.0 (KubeVirtVersionNotSupported)")
    elif conf.get("vmRolloutStrategy") != "LiveUpdate":
        why = ("spec.configuration.vmRolloutStrategy is not set to LiveUpdate explicitly "
               "(KubeVirtStorageLiveMigrationNotEnabled; the controller refuses an unset field); set it in the "
               "KubeVirt CR, or use --engine kubevirt")
    elif dev is None:
        why = "spec.configuration.developerConfiguration is missing (KubeVirtStorageLiveMigrationNotEnabled)"
    elif ver < (1, 5, 0) and not all(g in (dev.get("featureGates") or []) for g in GATES):
        why = f"feature gates {', '.join(GATES)} are required below KubeVirt v1.5"
    if why:
        return [_f("controller-kubevirt", "error", f"kubevirt-migration-controller would refuse every VM of the "
                   f"plan: {why}")]
    return [_f("controller-kubevirt", "ok", "KubeVirt configuration accepted by kubevirt-migration-controller")]


def offline_target_findings(plan: dict, storage_classes: List[dict]) -> List[dict]:
    """Offline clones onto a WaitForFirstConsumer class do not run until the VM starts; the controller calls them
    done anyway (storagemig/vm.go isOfflineMigrationCompleted), the plugin does not (only Succeeded counts)."""
    sc = next((s for s in storage_classes if s["metadata"]["name"] == plan["targetStorageClass"]), None)
    offline = [m for m in plan.get("moves") or [] if m["mode"] == "offline"]
    if sc and offline and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
        return [_f("first-consumer", "warning",
                   f"StorageClass {sc['metadata']['name']} binds on first consumer: the offline clones start only "
                   "when the VMs start; status stays Running (waiting for first consumer) until the copies are "
                   "Succeeded, although kubevirt-migration-controller reports Completed")]
    return []


def engine_findings(plan: dict, inventory: dict, cluster: dict) -> List[dict]:
    """All findings for running ``plan`` with kubevirt-migration-controller."""
    ns = plan.get("namespace")
    out = []
    if not cluster.get("served"):
        out.append(_f("migration-controller", "error", "the migrations.kubevirt.io API is not served: install "
                      "kubevirt-migration-operator (or use --engine kubevirt)"))
    else:
        why = controller_state(cluster.get("migcontrollers") or [])
        out.append(_f("migration-controller", "error" if why else "ok",
                      f"kubevirt-migration-controller is not running: {why}" if why else
                      "kubevirt-migration-controller is running (MigController Deployed and Available)"))
    kv = cluster.get("kubevirt")
    out += controller_kubevirt_findings(kv)
    groups = KB.moves_by_vm(plan)
    any_live = any(KB.vm_mode(ms) == "live" for ms in groups.values())
    out += [f for f in KC.kubevirt_findings(kv, any_live) if f["name"] != "kubevirt"]
    if any_live:
        live_vms = [v for v, ms in groups.items() if KB.vm_mode(ms) == "live"]
        out += live_node_findings(cluster.get("nodes") or [], inventory, ns, live_vms, kv)
    version = parse_version(((kv or {}).get("status") or {}).get("observedKubeVirtVersion"))
    for vm_name, moves in groups.items():
        facts = inventory["vms"].get(f"{ns}/{vm_name}")
        if facts is None:
            continue
        live = KB.vm_mode(moves) == "live"
        if not live and (facts.get("running") or facts.get("vmiPhase")):
            # the controller copies a VM live whenever its VMI exists (task.go handleBeginLiveMigrationPhase)
            out.append(_f("vm-running", "error", f"VM {vm_name} is running: kubevirt-migration-controller moves "
                          "running VMs live only; use --mode live (or auto), stop the VM first, or use "
                          "--engine kubevirt --mode offline --stop"))
            continue
        if plan.get("requestedMode") == "live" and not live:
            out.append(_f("vm-running", "error", f"VM {vm_name} is not running; --mode live needs a running VM: "
                          "start it, or use --mode offline"))
            continue
        out += KC.vm_findings(facts, moves, live, False, cluster.get("vmims") or [], version)
    out += KC.move_findings(plan.get("moves") or [], cluster.get("existing") or {}, cluster.get("plan") or "",
                            {s["metadata"]["name"] for s in cluster.get("storageClasses") or []},
                            bool(cluster.get("cdi")), plan["targetStorageClass"])
    out += offline_target_findings(plan, cluster.get("storageClasses") or [])
    if "rbac" in cluster:
        out += KC.rbac_findings(cluster["rbac"])
    return out


def plan_findings(vmsm_plan: dict, vms: List[str]) -> List[dict]:
    """The controller's verdict on our plan (storagemigplan/validation.go): Critical/Error conditions block, Warn
    ones warn, and a planned VM missing from ``readyMigrations`` blocks — the controller would skip it silently
    (its per-VM reason does not survive in the conditions, so the kubevirt checks above name it)."""
    out = []
    for c in true_conditions(vmsm_plan):
        if c.get("type") in ("Ready", "Progressing"):
            continue
        sev = {"Critical": "error", "Error": "error", "Warn": "warning"}.get(c.get("category"), "ok")
        reason = f" ({c['reason']})" if c.get("reason") else ""
        out.append(_f("plan-" + c["type"], sev, f"kubevirt-migration-controller: {c['type']}{reason}: "
                      f"{c.get('message') or ''}".rstrip(": ")))
    st = vmsm_plan.get("status") or {}
    ready = {v["name"] for v in st.get("readyMigrations") or []}
    invalid = {v["name"] for v in st.get("invalidMigrations") or []}
    for vm in vms:
        if vm not in ready:
            out.append(_f("plan-vm-ready", "error",
                          f"kubevirt-migration-controller lists VM {vm} as "
                          f"{'invalid' if vm in invalid else 'not ready'} in plan {vmsm_plan['metadata']['name']}; "
                          "it would not move it (see the findings above)"))
    if not out:
        out.append(_f("plan-ready", "ok", f"plan {vmsm_plan['metadata']['name']}: every VM is ready"))
    return out


def plan_reconciled(vmsm_plan: Optional[dict]) -> bool:
    """The controller has judged the plan at least once (suffix and a Ready condition written)."""
    st = (vmsm_plan or {}).get("status") or {}
    return bool(st.get("suffix")) and any(c.get("type") == "Ready" for c in st.get("conditions") or [])


def lost_sources(vmsm_plan: dict, record: Dict[str, dict]) -> List[str]:
    """VMs whose source PVCs the controller no longer knows (its record names something else than ours): deleting
    the migration would then 'revert' to the wrong claims and delete volumes the VM uses (cancel.go)."""
    st = vmsm_plan.get("status") or {}
    listed = {v["name"]: v for k in ("readyMigrations", "inProgressMigrations") for v in st.get(k) or []}
    out = []
    for vm, r in record.items():
        mine = {vol: pair[0] for vol, pair in (r.get("volumes") or {}).items()}
        theirs = {s.get("volumeName"): s.get("name") for s in (listed.get(vm) or {}).get("sourcePVCs") or []}
        if vm in listed and theirs != mine:  # VMs in no such list are not touched by a cancel
            out.append(vm)
    return out
