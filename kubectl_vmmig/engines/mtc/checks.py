"""The MTC engine's preflight: findings ``{name, severity: ok|warning|error, message}`` from the plan, the inventory and
cluster facts. Pure: the shell (``engine.py`` ``gather_facts``) reads the cluster, this judges.

``facts`` (every key optional; absent = not checked)::

    {"engine": "mtc"|"kubevirt",
     "mtc": {"installed", "namespace", "hostCluster", "hostReady", "hostMessage"},
     "kubevirt": {"installed", "cr": KubeVirt CR dict or None},
     "cdi": bool, "nodes": [Node] (None: not readable),
     "rbac": [{"verb", "resource", "group", "namespace", "allowed", "reason"}],
     "plans": {"own": name|None, "foreign": ["ns/name"], "running": "ns/name"|None},
     "hooks": {name: exists}, "workloads": ["Deployment/web (2 replicas)", ...]}
"""
from typing import List, Optional

from ...findings import ERROR, OK, WARNING, finding
from ...placement import live_node_findings
from ...kubevirt_capabilities import kubevirt_capabilities
from .build import SUPERSEDED_ANNOTATION

# Every API call of the MTC engine (migrate, check, status, cancel, rollback), as (verb, group, resource, scope):
# scope "namespace" = the VMs' namespace, "mtc" = MTC's namespace, "cluster" = cluster scope. deploy/rbac/ grants
# exactly these (tests/unit/test_rbac_manifests.py keeps the two in step).
MTC_READ_PERMISSIONS = (
    ("get", "kubevirt.io", "virtualmachines", "namespace"), ("list", "kubevirt.io", "virtualmachines", "namespace"),
    ("list", "kubevirt.io", "virtualmachineinstances", "namespace"), ("list", "", "persistentvolumeclaims", "namespace"),
    ("list", "cdi.kubevirt.io", "datavolumes", "namespace"), ("list", "", "pods", "namespace"),
    ("list", "", "configmaps", "namespace"),  # status also shows kubevirt-engine records
    ("list", "apps", "deployments", "namespace"), ("list", "apps", "statefulsets", "namespace"),
    ("list", "apps", "replicasets", "namespace"), ("list", "apps", "daemonsets", "namespace"),
    ("list", "batch", "jobs", "namespace"), ("list", "batch", "cronjobs", "namespace"),
    ("list", "apps.openshift.io", "deploymentconfigs", "namespace"),  # quiesced too, where OpenShift serves them
    ("list", "migration.openshift.io", "migclusters", "mtc"), ("get", "migration.openshift.io", "migplans", "mtc"),
    ("list", "migration.openshift.io", "migplans", "mtc"), ("get", "migration.openshift.io", "migmigrations", "mtc"),
    ("list", "migration.openshift.io", "migmigrations", "mtc"), ("get", "migration.openshift.io", "mighooks", "mtc"),
    ("list", "migration.openshift.io", "directvolumemigrations", "mtc"),
    ("list", "migration.openshift.io", "directvolumemigrationprogresses", "mtc"),
    ("list", "storage.k8s.io", "storageclasses", "cluster"), ("list", "", "nodes", "cluster"),
    ("list", "kubevirt.io", "kubevirts", "cluster"),
    ("list", "", "persistentvolumes", "cluster"),  # hostPath PVs, which MTC can only skip
)
MTC_WRITE_PERMISSIONS = (
    ("create", "migration.openshift.io", "migplans", "mtc"), ("patch", "migration.openshift.io", "migplans", "mtc"),
    ("create", "migration.openshift.io", "migmigrations", "mtc"),
    ("patch", "migration.openshift.io", "migmigrations", "mtc"),  # cancel
    # only MTC's source-for label, off the disks to move (plans.labelled_for_other_plans, engine._unlabel)
    ("patch", "", "persistentvolumeclaims", "namespace"),
)


def required_permissions(engine: str, namespace: str, mtc_namespace: Optional[str] = None,
                         write: bool = True) -> List[dict]:
    """Every (verb, group, resource, namespace) the command will use, for SelfSubjectAccessReviews."""
    if engine == "mtc":
        table = MTC_READ_PERMISSIONS + (MTC_WRITE_PERMISSIONS if write else ())
    else:
        table = [t for t in MTC_READ_PERMISSIONS if t[3] != "mtc"]
    where = {"namespace": namespace, "mtc": mtc_namespace, "cluster": None}
    return [{"verb": v, "group": g, "resource": r, "namespace": where[scope], "subresource": None}
            for v, g, r, scope in table]


def _dedupe(findings):
    seen, out = set(), []
    for f in findings:
        k = (f["name"], f["severity"], f["message"])
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


def check_mtc(facts) -> List[dict]:
    mtc = facts.get("mtc")
    if mtc is None:
        return []
    if not mtc.get("installed"):
        return [finding("mtc-installed", ERROR, "MTC is not installed (the migration.openshift.io CRDs are not served); "
                        "install the Migration Toolkit for Containers, or use --engine kubevirt")]
    out = [finding("mtc-installed", OK, f"MTC CRDs served; MTC namespace {mtc.get('namespace')}")]
    if not mtc.get("hostCluster"):
        where = (f" (MigCluster {mtc['elsewhere']} is elsewhere, and mig-controller reconciles only "
                 f"{mtc.get('namespace')})") if mtc.get("elsewhere") else ""
        out.append(finding("mtc-host-cluster", ERROR, f"no host MigCluster (spec.isHostCluster: true) in "
                           f"{mtc.get('namespace')}{where}; create it there"))
    elif not mtc.get("hostReady"):
        out.append(finding("mtc-host-cluster", ERROR, f"MigCluster {mtc['hostCluster']} is not Ready"
                           + (f": {mtc['hostMessage']}" if mtc.get("hostMessage") else "")
                           + "; fix the MigCluster (see its status.conditions)"))
    else:
        out.append(finding("mtc-host-cluster", OK, f"MigCluster {mtc['hostCluster']} is Ready"))
    plans = facts.get("plans") or {}
    for foreign in plans.get("foreign") or []:
        # MigPlan.HasConflict (migplan_types.go): open plans sharing a MigCluster and a namespace (PlanConflict).
        out.append(finding("plan-conflict", ERROR,
                           f"MigPlan {foreign} (not created by kubectl vm-storage) is open and covers the namespace "
                           "on the same MigCluster, which MTC reports as PlanConflict; close it (spec.closed: true) "
                           "or take the namespace out of it first"))
    if plans.get("closed"):
        # handleClosed (migplan_controller.go): a closed plan is never reconciled again.
        out.append(finding("plan-closed", ERROR,
                           f"MigPlan {mtc.get('namespace')}/{plans['closed']} of this namespace was closed, and MTC "
                           "reconciles nothing of a closed plan; re-open it (spec.closed: false) or mark it "
                           f"superseded (annotation {SUPERSEDED_ANNOTATION}) so a new plan is created"))
    if plans.get("supersede"):
        out.append(finding("plan-new", WARNING,
                           f"PVC(s) {', '.join(plans.get('reborn') or [])} were created by MigPlan {plans['supersede']}, "
                           "whose PV discovery never lists them again: it will be closed (its migrations can no longer "
                           f"be rolled back) and MigPlan {plans.get('name')} created"))
    if plans.get("running"):
        out.append(finding("plan-conflict", ERROR, f"MigMigration {plans['running']} is still running for this "
                           "namespace; wait for it (kubectl vm-storage status -w) or cancel it"))
    if not (plans.get("foreign") or plans.get("running") or plans.get("closed")):
        out.append(finding("plan-conflict", OK, "no conflicting MigPlan" +
                           (f"; will adopt MigPlan {plans['own']}" if plans.get("own") else "")))
    for hook, exists in (facts.get("hooks") or {}).items():
        if not exists:
            out.append(finding("hooks", ERROR, f"MigHook {hook} not found in {mtc.get('namespace')}; create it first"))
    if facts.get("hooks"):
        out.append(finding("hooks", WARNING, "MTC runs hooks only in the Final itinerary; a storage conversion runs "
                           "the Stage itinerary, so these hooks are attached but will not run"))
    return out


def check_mtc_plan(plan, facts) -> List[dict]:
    """What MTC itself rejects or ignores for this plan."""
    out = []
    if plan.get("accessMode") in ("ReadWriteOncePod", "ReadOnlyMany"):
        # validation.go validAccessModes has no RWOP (PvInvalidAccessMode); a VM disk target is a DataVolume whose
        # access modes createBlankDataVolumeFromPVC (vm.go) filters to RWO/RWX, so ROX is silently dropped.
        out.append(finding("access-mode", ERROR, f"--access-mode {plan['accessMode']} is not supported by MTC "
                           "(it accepts ReadWriteOnce, ReadWriteMany or auto); choose one of those, or use "
                           "--engine kubevirt"))
    host = facts.get("hostPathDisks")
    if host:
        out.append(finding("host-path", ERROR, f"disk(s) {', '.join(host)} are on hostPath PersistentVolumes, which "
                           "MTC can only skip; leave these VMs out, or use --engine kubevirt"))
    elif host is None and "hostPathDisks" in facts:
        out.append(finding("host-path", WARNING, "cannot list PersistentVolumes to spot hostPath disks (MTC can only "
                           "skip those); the plugin re-checks MTC's selections before it starts the migration"))
    return out


def check_storage(plan, inventory) -> List[dict]:
    out = []
    classes = inventory.get("storageClasses") or {}
    target = plan["targetStorageClass"]
    if classes and target not in classes:
        out.append(finding("target-storageclass", ERROR, f"StorageClass {target} not found; "
                           f"choose one of: {', '.join(sorted(classes))}"))
    elif classes:
        out.append(finding("target-storageclass", OK, f"StorageClass {target} exists"))
    if classes and len(classes) < 2:
        out.append(finding("storageclasses", ERROR, "at least two StorageClasses are needed for a storage class conversion"))
    if not plan["moves"] and plan["vms"]:
        out.append(finding("nothing-to-move", ERROR, f"every disk of the chosen VMs is already on {target}; "
                           "nothing to migrate"))
    for vm_key in [f"{plan['namespace']}/{v}" for v in plan["vms"]]:
        facts = inventory["vms"].get(vm_key)
        for d in (facts or {}).get("disks", []):
            if not d["pvcExists"]:
                out.append(finding("pvc-bound", ERROR, f"VM {d['vm']} volume {d['volume']}: PVC {d['claim']} not found; "
                                   "wait for its DataVolume to finish, or fix the VM"))
            elif d["pvcPhase"] != "Bound":
                out.append(finding("pvc-bound", ERROR, f"VM {d['vm']} volume {d['volume']}: PVC {d['claim']} is "
                                   f"{d['pvcPhase'] or 'not Bound'}; only Bound PVCs can be migrated"))
    if plan["moves"] and not any(f["name"] == "pvc-bound" for f in out):
        out.append(finding("pvc-bound", OK, f"{len(plan['moves'])} disk(s) to move, all PVCs Bound"))
    return out


def check_live(plan, inventory, facts) -> List[dict]:
    """Per-VM live-migration preconditions, only when the plan live-migrates (kubevirt/kubevirt
    pkg/virt-controller/watch/volume-migration/volume-migration.go ValidateVolumes)."""
    if not plan["liveMigrate"]:
        return []
    out = []
    for vm_name in plan["vms"]:
        facts_vm = inventory["vms"].get(f"{plan['namespace']}/{vm_name}") or {}
        moving = {m["sourcePVC"] for m in plan["moves"] if m["vm"] == vm_name}
        if not facts_vm.get("running"):
            sev = ERROR if plan["requestedMode"] == "live" else OK
            msg = (f"VM {vm_name} is not running; --mode live needs a running VM: start it, or use --mode offline"
                   if sev == ERROR else f"VM {vm_name} is not running; its disks are copied offline")
            out.append(finding("vm-running", sev, msg))
            continue
        for d in facts_vm.get("disks", []):
            if d["claim"] not in moving:
                continue
            why = [w for w, flag in (("shareable", d["shareable"]), ("a LUN", d["lun"]), ("virtiofs", d["virtiofs"]))
                   if flag]
            if why:
                out.append(finding("live-volume-kind", ERROR,
                                   f"VM {vm_name} volume {d['volume']} is {' and '.join(why)} and cannot move live; "
                                   "stop the VM and use --mode offline"))
        if facts_vm.get("hostDisks"):
            out.append(finding("live-volume-kind", ERROR, f"VM {vm_name} has hostDisk volume(s) "
                               f"{', '.join(facts_vm['hostDisks'])}; a VM with a hostDisk cannot live-migrate: use --mode offline"))
        cond = (facts_vm.get("vmiConditions") or {}).get("StorageLiveMigratable")
        if cond and cond.get("status") == "False":
            out.append(finding("storage-live-migratable", ERROR, f"VM {vm_name}: StorageLiveMigratable is False "
                               f"({cond.get('reason')}: {cond.get('message')}); use --mode offline"))
        rr = (facts_vm.get("conditions") or {}).get("RestartRequired")
        if rr and rr.get("status") == "True":
            out.append(finding("restart-required", ERROR, f"VM {vm_name} has RestartRequired ({rr.get('message')}); "
                               "restart the VM first, KubeVirt skips volume updates while it is set"))
    for m in plan["moves"]:
        if m["mode"] != "live" or m["kind"] != "dataVolume":
            continue
        d = next((x for x in inventory["vms"][f"{m['namespace']}/{m['vm']}"]["disks"] if x["claim"] == m["sourcePVC"]), {})
        from ...inventory import parse_quantity

        req, cap = parse_quantity(d.get("requestedSize")), d.get("sizeBytes")
        if req and cap and req < cap:
            out.append(finding("target-size", ERROR, f"VM {m['vm']} volume {m['volume']}: MTC sizes the target from the "
                               f"DataVolume request ({d['requestedSize']}), smaller than the source capacity "
                               f"({d['size']}); a smaller destination fails live migration: use --mode offline"))
    live_vms = sorted({m["vm"] for m in plan["moves"] if m["mode"] == "live"})
    if facts.get("nodes") is not None and live_vms:  # None: the user may not list nodes
        out += live_node_findings(facts["nodes"], inventory, plan["namespace"], live_vms,
                                  (facts.get("kubevirt") or {}).get("cr"))
    return out


def check_kubevirt(plan, facts) -> List[dict]:
    kv = facts.get("kubevirt")
    if kv is None:
        return []
    if not kv.get("installed"):
        return [finding("kubevirt-installed", ERROR, "KubeVirt is not installed (kubevirt.io/v1 is not served); "
                        "install KubeVirt first")]
    caps = kubevirt_capabilities(kv.get("cr"))
    out = [finding("kubevirt-installed", OK, f"KubeVirt {caps.get('version') or '(version unknown)'}")]
    if plan["requestedMode"] != "offline":
        out.append(finding("kubevirt-live", OK if caps["liveMigration"] else WARNING,
                           "storage live migration enabled" if caps["liveMigration"]
                           else f"storage live migration not available: {caps['liveMigrationReason']}"))
    return out


def check_rbac(facts) -> List[dict]:
    rbac = facts.get("rbac")
    if rbac is None:
        return []
    denied = [r for r in rbac if not r.get("allowed")]
    if not denied:
        return [finding("rbac", OK, f"all {len(rbac)} permissions granted")]
    return [finding("rbac", ERROR, f"forbidden: {r['verb']} {r['resource']}"
                    + (f".{r['group']}" if r.get("group") else "")
                    + (f" in namespace {r['namespace']}" if r.get("namespace") else " (cluster scope)")
                    + "; ask an admin for this permission (see README, RBAC)") for r in denied]


def _pod_template(kind, obj) -> dict:
    spec = obj.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def quiesced_workload(kind, obj, selected, multiple_plans) -> Optional[str]:
    """``Kind/name (what changes)`` when MTC's cutover quiesces ``obj``, else None - mig-controller
    migmigration/quiesce.go quiesce<Kind>s: with one plan for the namespace every object (shouldQuiesce :=
    !multiplePlans), with several only those whose pod template mounts a selected claim (getSelectedPVCs);
    already quiesced-looking objects are left alone (replicas 0, Job parallelism 0, CronJob suspended), and a
    ReplicaSet with any ownerReference is skipped (its Deployment is quiesced)."""
    spec, md = obj.get("spec") or {}, obj.get("metadata") or {}
    if kind == "ReplicaSet" and md.get("ownerReferences"):
        return None
    claims = {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in _pod_template(kind, obj).get("volumes") or []}
    if multiple_plans and not claims & set(selected):
        return None
    name = f"{kind}/{md.get('name')}"
    if kind == "CronJob":
        return None if spec.get("suspend") is True else f"{name} (suspended)"
    if kind == "Job":
        return None if spec.get("parallelism") == 0 else f"{name} (parallelism 0)"
    if kind == "DaemonSet":
        return f"{name} (no node to run on)"  # quiesce.go quiesceDaemonSets: an impossible nodeSelector
    replicas = spec.get("replicas", 1)  # defaulted by the API server (DeploymentConfig: 0 stays 0)
    return None if replicas == 0 else f"{name} ({replicas} replicas)"


def quiesce_hazard(plan, inventory, workloads) -> Optional[dict]:
    """The cutover stops the namespace's workloads (quiesced_workload), and (offline) every running VM moved."""
    stopped = list(workloads or [])
    for vm_name in plan["vms"]:
        f = inventory["vms"].get(f"{plan['namespace']}/{vm_name}") or {}
        # A VM still starting (a VMI not yet Running, or a strategy that starts it) is quiesced too: ask for it
        # as for a running one (erring towards the question; MTC's quiesce halts the VM either way).
        starting = f.get("vmiPhase") not in (None, "", "Succeeded", "Failed") or \
            f.get("runStrategy") in ("Always", "RerunOnFailure")
        if (f.get("running") or starting) and not plan["liveMigrate"]:
            stopped.append(f"VirtualMachine/{vm_name} (stopped for the copy, restarted after)")
    if not stopped:
        return None
    return finding("quiesce", WARNING, f"the cutover quiesces namespace {plan['namespace']}: "
                   + ", ".join(stopped) + " will be stopped (scaled to 0) until the copy ends")


def run_preflight(plan, inventory, facts=None, kind="cutover") -> List[dict]:
    facts = facts or {}
    out = list(plan.get("findings") or [])
    out += check_rbac(facts) + check_mtc(facts) + check_mtc_plan(plan, facts) + check_kubevirt(plan, facts)
    out += check_storage(plan, inventory) + check_live(plan, inventory, facts)
    if kind == "cutover":
        hz = quiesce_hazard(plan, inventory, facts.get("workloads"))
        if hz:
            out.append(hz)
    if kind == "stage" and any(m["mode"] == "live" for m in plan["moves"]):
        out.append(finding("stage", WARNING, "a stage run skips the disks of running VMs (they move live at cutover)"))
    elif kind == "stage":
        running = sorted({m["vm"] for m in plan["moves"]
                          if (inventory["vms"].get(f"{m['namespace']}/{m['vm']}") or {}).get("running")})
        if running:
            out.append(finding("stage", WARNING, f"VM(s) {', '.join(running)} are running: a stage run copies their "
                               "disks while in use (crash-consistent); the cutover copies the rest with them stopped"))
    return _dedupe(out)
