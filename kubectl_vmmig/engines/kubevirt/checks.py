"""Preflight findings of the kubevirt engine (pure): plan + inventory + cluster facts -> findings.

``cluster`` (gathered by the engine's shell, or given by tests)::

    {"kubevirt": KubeVirt CR | None, "cdi": bool, "nodes": [Node], "storageClasses": {name},
     "existing": {claim name: {"kind": "PersistentVolumeClaim"|"DataVolume", "labels": {...}}},
     "vmims": [VMIM in the namespace], "rbac": [{"verb","resource","group","subresource","allowed","reason"}],
     "stop": bool (--stop given), "migration": name of this migration}

Each finding is ``{name, severity: ok|warning|error, message}``; a message says why and what to do.
"""
from typing import Dict, List, Optional

from ...findings import finding
from ...placement import live_node_findings
from ...kubevirt_capabilities import kubevirt_version, live_migration_blockers, parse_version
from .build import LABEL_MIGRATION
from .volumes import legacy_wffc_class

SHARED_MODES = {"ReadWriteMany", "ReadOnlyMany"}
BACKEND_STORAGE_PREFIX = "persistent-state-for-"
FINAL_VMIM = ("Succeeded", "Failed")


_f = finding


def _cond(conds: dict, ctype: str) -> dict:
    return (conds or {}).get(ctype) or {}


def kubevirt_findings(kv: Optional[dict], live: bool) -> List[dict]:
    """Version, gates, rollout strategy, workload update methods, deployment state (BEHAVIOR §1), judged by the
    one capability rule both engines use (kubevirt_capabilities.live_migration_blockers)."""
    if kv is None:
        return [_f("kubevirt", "error", "KubeVirt is not installed (no KubeVirt CR found); "
                   "install KubeVirt, or check that you may list kubevirts.kubevirt.io")]
    status = kv.get("status") or {}
    raw = kubevirt_version(kv)
    if not live:
        return [_f("kubevirt-version", "ok", f"KubeVirt {raw or '(version unknown)'} (offline copy via CDI clones)")]
    fixes = {"kubevirt-version": "upgrade KubeVirt to v1.4+ (v1.5+ preferred), or use --mode offline "
                                 "(VMs are stopped during the copy)",
             "feature-gates": "add them to the KubeVirt CR (or the HyperConverged CR on OpenShift)",
             "rollout-strategy": "set it to LiveUpdate",
             "workload-update-methods": "add LiveMigrate to the KubeVirt CR"}
    blockers = dict(live_migration_blockers(kv))
    methods = list(((kv.get("spec") or {}).get("workloadUpdateStrategy") or {}).get("workloadUpdateMethods") or [])
    if "workload-update-methods" in blockers:
        blockers["workload-update-methods"] += (
            ": with only Evict, KubeVirt shuts the VM down instead of migrating it (it then needs manual recovery)"
            if "Evict" in methods else ": nothing ever starts the migration, the VM waits forever with "
                                       "VolumesChange=True")
    ver = parse_version(raw)
    oks = {"kubevirt-version": f"KubeVirt {raw}" + ("" if ver is None or ver >= (1, 5, 0) else
                                                   ": volume migration works but v1.5+ is strongly preferred "
                                                   "(GA, hotplugged volumes, clearer errors)"),
           "feature-gates": "feature gates VolumesUpdateStrategy, VolumeMigration, VMLiveUpdateFeatures enabled",
           "rollout-strategy": "vmRolloutStrategy LiveUpdate"
                               + ("" if (((kv.get("spec") or {}).get("configuration")) or {}).get("vmRolloutStrategy")
                                  else " (unset: the default from v1.6)"),
           "workload-update-methods": "workloadUpdateMethods contains LiveMigrate"}
    out = []
    for name, ok_text in oks.items():
        if name in blockers:
            out.append(_f(name, "error", f"{blockers[name]}; {fixes[name]}"))
        elif name == "feature-gates" and (ver is None or ver >= (1, 5, 0)):
            continue  # GA from v1.5: nothing to report
        else:
            sev = "warning" if name == "kubevirt-version" and ver is not None and ver < (1, 5, 0) else "ok"
            out.append(_f(name, sev, ok_text))
    deployed = status.get("phase") == "Deployed" and (
        status.get("observedDeploymentID") == status.get("targetDeploymentID"))
    if not deployed:
        out.append(_f("kubevirt-deployed", "warning",
                      f"KubeVirt is {status.get('phase') or 'not Deployed'} (or being upgraded): volume "
                      "migrations do not start until it is Deployed again"))
    return out


def destination_class_findings(target_sc: str, cluster: dict) -> List[dict]:
    """Live destinations on a WaitForFirstConsumer class that is not a CSI driver take CDI's legacy path,
    where CDI writes a blank image over the copy once the migration target binds the PVC (volumes.py)."""
    sc = (cluster.get("storageClassObjects") or {}).get(target_sc)
    legacy = legacy_wffc_class(sc, cluster.get("csiDrivers"))
    if legacy:
        return [_f("destination-binding", "error",
                   f"StorageClass {target_sc} is WaitForFirstConsumer and its provisioner {sc.get('provisioner')} "
                   "is not a CSI driver, so CDI prepares destinations on its legacy path and would write a blank "
                   "image over the copied disk when KubeVirt's target pod binds it (kubevirt/kubevirt#13696); "
                   "use a CSI StorageClass, or --mode offline --stop")]
    if legacy is None:
        return [_f("destination-binding", "warning",
                   f"StorageClass {target_sc} is WaitForFirstConsumer and the CSIDrivers cannot be read: if its "
                   "provisioner is not a CSI driver the live move is refused when its destination shows "
                   "WaitForFirstConsumer")]
    return []


def _disk_kind_problems(disk: dict, version) -> List[str]:
    vol = f"volume {disk['volume']} (claim {disk['claim']})"
    out = []
    if disk.get("shareable"):
        out.append(f"{vol} is a shareable disk: other VMs may write it at the same time, so KubeVirt cannot "
                   "copy it consistently and refuses it (it would only be replaced at the next restart, "
                   "without copying data); stop every VM using it and migrate offline (--mode offline --stop)")
    if disk.get("lun"):
        out.append(f"{vol} is a LUN (SCSI passthrough): KubeVirt cannot migrate LUN disks live; "
                   "use --mode offline --stop")
    if disk.get("virtiofs"):
        out.append(f"{vol} is a virtiofs filesystem: KubeVirt cannot migrate filesystems live; "
                   "use --mode offline --stop")
    if disk.get("hotplug") and version is not None and version < (1, 5, 0):
        out.append(f"{vol} is hotplugged: KubeVirt before v1.5 refuses to migrate hotplugged volumes; "
                   "upgrade KubeVirt or use --mode offline --stop")
    return out


def vm_findings(facts: dict, moves: List[dict], live: bool, stop: bool, vmims: List[dict],
                version) -> List[dict]:
    """Per-VM checks (volume-migration.go ValidateVolumes) for the VM's moves; ``live`` = this VM moves live."""
    name = facts["name"]
    conds = facts.get("conditions") or {}
    out = []
    if _cond(conds, "ManualRecoveryRequired").get("status") == "True":
        out.append(_f("manual-recovery", "error",
                      f"VM {name} has ManualRecoveryRequired (an earlier volume migration was interrupted): "
                      "recover it first (kubectl vm-storage cancel, or restore its original volumes)"))
        return out
    # snapshot: KubeVirt's admission refuses volume changes until it completes (admitters/vm-storage-status.go
    # validateSnapshotStatus); restore: admission refuses only run-strategy changes (validateRestoreStatus), but
    # the restore controller is writing the VM's spec and volumes itself (snapshot/restore.go reconcileSpec), and
    # a volume swap racing it could leave either one's disks in the VM
    why = {"snapshot": "KubeVirt refuses volume changes until it completes (admitters/vm-storage-status.go)",
           "restore": "the restore is rewriting the VM's volumes (KubeVirt's snapshot/restore.go) and KubeVirt "
                      "refuses run-strategy changes until it completes"}
    for what in ("snapshot", "restore"):
        if facts.get(f"{what}InProgress"):
            out.append(_f(f"{what}-in-progress", "error",
                          f"VM {name} has a {what} in progress ({facts[what + 'InProgress']}): {why[what]}; "
                          "wait for it"))
            return out
    if not live:
        if facts.get("running") or facts.get("vmiPhase"):
            out.append(_f("vm-stopped", "ok" if stop else "error",
                          f"VM {name} is running; it will be stopped for the copy and restarted afterwards"
                          if stop else
                          f"VM {name} is running and is to be copied offline: the source disks must not be in "
                          "use during a CDI clone; add --stop (the plugin stops it and restarts it afterwards), "
                          "or stop it yourself"))
        else:
            out.append(_f("vm-stopped", "ok", f"VM {name} is stopped: offline copy"))
        return out
    rr = _cond(conds, "RestartRequired")
    if rr.get("status") == "True":
        out.append(_f("restart-required", "error",
                      f"VM {name} has RestartRequired ({rr.get('message') or 'a pending change'}): KubeVirt "
                      "skips every live update, including volume migration, while it is set; restart the VM "
                      "(or revert the pending change) first"))
    slm = _cond(conds, "StorageLiveMigratable") or _cond(facts.get("vmiConditions"), "StorageLiveMigratable")
    if slm.get("status") == "False":
        out.append(_f("storage-live-migratable", "error",
                      f"VM {name} cannot be live-migrated ({slm.get('message') or slm.get('reason')}); "
                      "use --mode offline --stop"))
    vc = _cond(conds, "VolumesChange") or _cond(facts.get("vmiConditions"), "VolumesChange")
    if vc.get("status") == "True":
        out.append(_f("volumes-change", "error",
                      f"VM {name} already has a volume update in progress (VolumesChange=True); wait for it "
                      "or cancel it first"))
    busy = [m["metadata"]["name"] for m in vmims
            if (m.get("spec") or {}).get("vmiName") == name
            and ((m.get("status") or {}).get("phase") not in FINAL_VMIM)]
    if busy:
        out.append(_f("migration-in-flight", "error",
                      f"VM {name} is being migrated already ({', '.join(busy)}); wait for it to finish"))
    for host in facts.get("hostDisks") or []:
        out.append(_f("volume-kind", "error",
                      f"VM {name} volume {host} is a hostDisk (node-local file): KubeVirt cannot live-migrate "
                      "a VM with a non-shared hostDisk; use --mode offline --stop"))
    moving = {m["volume"] for m in moves}
    for disk in facts.get("disks") or []:
        if disk["volume"] in moving:
            for problem in _disk_kind_problems(disk, version):
                out.append(_f("volume-kind", "error", f"VM {name}: {problem}"))
        elif (disk.get("claim") or "").startswith(BACKEND_STORAGE_PREFIX):
            continue
        elif not (set(disk.get("accessModes") or []) & SHARED_MODES):
            out.append(_f("rwo-together", "error",
                          f"VM {name}: volume {disk['volume']} (claim {disk['claim']}) is ReadWriteOnce and not "
                          "part of this migration; KubeVirt moves all RWO volumes of a VM in one update or none "
                          "(RestartRequired 'is RWO and not included'); migrate it too, or use --mode offline"))
    if not [f for f in out if f["severity"] == "error"]:
        out.append(_f("vm-live", "ok", f"VM {name} can move live ({len(moves)} volume(s))"))
    return out


def move_findings(moves: List[dict], existing: Dict[str, dict], migration: str,
                  storage_classes, cdi: bool, target_sc: str) -> List[dict]:
    out = []
    if not cdi:
        out.append(_f("cdi", "error", "CDI is not installed (no cdi.kubevirt.io DataVolume API): the engine "
                      "creates the destination volumes as DataVolumes; install CDI"))
    if target_sc not in storage_classes:
        out.append(_f("target-storage-class", "error",
                      f"StorageClass {target_sc} does not exist; pick one of: {', '.join(sorted(storage_classes))}"))
    else:
        out.append(_f("target-storage-class", "ok", f"StorageClass {target_sc} exists"))
    for m in moves:
        what = f"{m['vm']}/{m['volume']}"
        if not m.get("sizeBytes"):
            out.append(_f("destination-size", "error",
                          f"{what}: cannot read the size of PVC {m['sourcePVC']} (missing or not bound), so the "
                          "destination cannot be sized safely (a smaller destination makes the migration fail); "
                          "check the PVC"))
        else:
            out.append(_f("destination-size", "ok",
                          f"{what}: destination {m['targetPVC']} requests {m['size']} (the source capacity)"))
        taken = existing.get(m["targetPVC"])
        if taken and (taken.get("labels") or {}).get(LABEL_MIGRATION) != migration:
            out.append(_f("destination-name", "error",
                          f"{what}: a {taken.get('kind', 'claim')} named {m['targetPVC']} already exists and "
                          "was not created by this migration; rename or remove it (the plugin never reuses "
                          "someone else's volume)"))
    return out


def rbac_findings(rbac: List[dict]) -> List[dict]:
    denied = [r for r in rbac if not r.get("allowed")]
    if not denied:
        return [_f("rbac", "ok", f"allowed: all {len(rbac)} permissions the migration needs")]
    return [_f("rbac", "error",
               f"not allowed to {r['verb']} {r['resource'] + ('/' + r['subresource'] if r.get('subresource') else '')}"
               f"{'.' + r['group'] if r.get('group') else ''}" + (f" ({r['reason']})" if r.get("reason") else "")
               + "; ask a cluster admin for this permission (see README, RBAC)") for r in denied]


def kubevirt_engine_findings(plan: dict, inventory: dict, cluster: dict) -> List[dict]:
    """All findings for running ``plan`` with the kubevirt engine."""
    from .build import moves_by_vm, vm_mode

    ns = plan.get("namespace")
    kv = cluster.get("kubevirt")
    version = parse_version(kubevirt_version(kv))
    groups = moves_by_vm(plan)
    any_live = any(vm_mode(ms) == "live" for ms in groups.values())
    out = list(kubevirt_findings(kv, any_live))
    if any_live:
        live_vms = [v for v, ms in groups.items() if vm_mode(ms) == "live"]
        out += live_node_findings(cluster.get("nodes") or [], inventory, ns, live_vms, kv)
        out += destination_class_findings(plan["targetStorageClass"], cluster)
    for vm_name, moves in groups.items():
        facts = inventory["vms"].get(f"{ns}/{vm_name}")
        if facts is None:
            continue
        if plan.get("requestedMode") == "live" and vm_mode(moves) != "live":
            # never turn an explicit --mode live into an offline copy behind the user's back
            out.append(_f("vm-running", "error", f"VM {vm_name} is not running; --mode live needs a running VM: "
                          "start it, or use --mode offline"))
            continue
        out += vm_findings(facts, moves, vm_mode(moves) == "live", bool(cluster.get("stop")),
                           cluster.get("vmims") or [], version)
    out += move_findings(plan.get("moves") or [], cluster.get("existing") or {}, cluster.get("migration") or "",
                         set(cluster.get("storageClasses") or ()), bool(cluster.get("cdi")),
                         plan["targetStorageClass"])
    if "rbac" in cluster:
        out += rbac_findings(cluster["rbac"])
    return out
