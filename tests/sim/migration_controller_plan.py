"""kubevirt-migration-controller stand-in: the VirtualMachineStorageMigrationPlan reconciler (v0.2.x).

Every rule follows kubevirt/kubevirt-migration-controller internal/controller/storagemigplan/{controller,
validation}.go and pkg/component-helpers/{vm,storagemigplan}.go; each function names the upstream function.
Plans are dicts; ``reconcile(ctl, plan)`` reads the cluster through ``ctl.kube`` and writes status + annotations.
"""
import datetime
import re
from typing import List, Optional, Tuple

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import get_condition, rand_string, remove_condition, set_condition

REFRESH_START = "migration.kubevirt.io/refresh-start-time"   # controller.go RefreshStartTimeAnnotation
REFRESH_END = "migration.kubevirt.io/refresh-end-time"       # controller.go RefreshEndTimeAnnotation
NOT_POSSIBLE = "StorageMigrationNotPossible"
NOT_ALL_READY = "NotAllVirtualMachinesReady"
INVALID_PVCS = "InvalidPVCs"
FS_CONTENT = "FilesystemPVCsWithoutKubeVirtContentType"
# validation.go messages
KV_NOT_INSTALLED = ("KubeVirtNotInstalledSourceCluster", "KubeVirt is not installed on the source cluster")
KV_VERSION = ("KubeVirtVersionNotSupported",
              "KubeVirt version does not support storage live migration, Virtual Machines will be stopped instead")
KV_NOT_ENABLED = ("KubeVirtStorageLiveMigrationNotEnabled",
                  "KubeVirt storage live migration is not enabled, Virtual Machines will be stopped instead")
SOME_NOT_READY = "Some virtual machines are not ready for storage migration"
NONE_READY = "No virtual machines are ready for storage migration"
GATES = ("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures")
SUFFIX_RE = re.compile(r"(.*)-mig-([\d|a-zA-Z]{4})$")  # validation.go suffixMatcher
LISTS = ("readyMigrations", "invalidMigrations", "inProgressMigrations", "completedMigrations", "failedMigrations")
IN_PROGRESS_PHASES = ("WaitForLiveMigrationToComplete", "CleanupMigrationResources")


def rfc3339nano(t: Optional[datetime.datetime] = None) -> str:
    """Go time.Now().Format(time.RFC3339Nano) in UTC (trailing zeros of the fraction dropped)."""
    t = t or datetime.datetime.now(datetime.timezone.utc)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def parse_rfc3339(text: str) -> Optional[datetime.datetime]:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def fnv32a(text: str) -> str:
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def get_name(base: str, suffix: str, max_length: int = 63) -> str:
    """openshift/library-go pkg/build/naming GetName: ``base-suffix``, or a truncated base + fnv hash."""
    name = f"{base}-{suffix}"
    if len(name) <= max_length:
        return name
    base_length = max_length - 10 - len(suffix)
    if base_length < 0:
        prefix = base[:min(len(base), max(0, max_length - 9))]
        return f"{prefix}-{fnv32a(name)}"[:max_length]
    return f"{base[:base_length]}-{fnv32a(base)}-{suffix}"


def trim_suffix(pvc_name: str) -> str:
    """validation.go trimSuffix: drop an earlier ``-mig-xxxx`` (else ``-new``) so names do not pile up."""
    m = SUFFIX_RE.match(pvc_name)
    suffix = f"-mig-{m.group(2)}" if m else "-new"
    return pvc_name[:-len(suffix)] if pvc_name.endswith(suffix) else pvc_name


def target_pvc_name(name: Optional[str], source: str, suffix: Optional[str]) -> str:
    """validation.go targetPVCName."""
    if name:
        return name
    return get_name(trim_suffix(source), f"mig-{suffix}")


def parse_semver(version: str) -> Optional[Tuple[int, int, int]]:
    """validation.go parseKubeVirtOperatorSemver (v1.3.0-beta.0.202+f8ef → 1, 3, 0)."""
    tokens = (version or "").split(".")
    if len(tokens) < 3 or not tokens[0]:
        return None
    try:
        return int(tokens[0].lstrip("v") if tokens[0][0] == "v" else tokens[0]), int(tokens[1]), \
            int(tokens[2].split("-")[0])
    except ValueError:
        return None


def kubevirt_blocker(kubevirts: List[dict]) -> Optional[Tuple[str, str]]:
    """validation.go validateKubeVirtInstalled (+ isStorageLiveMigrationDisabled). Note the explicit
    ``vmRolloutStrategy: LiveUpdate`` rule: upstream refuses an unset field although KubeVirt >= 1.6 treats
    unset as LiveUpdate (pkg/virt-config/virt-config.go IsVMRolloutStrategyLiveUpdate)."""
    if len(kubevirts) != 1:
        return KV_NOT_INSTALLED
    kv = kubevirts[0]
    ver = parse_semver((kv.get("status") or {}).get("operatorVersion") or "")
    if ver is None or ver[0] < 1 or (ver[0] == 1 and ver[1] < 3):
        return KV_VERSION
    conf = (kv.get("spec") or {}).get("configuration") or {}
    dev = conf.get("developerConfiguration")
    gates_missing = False
    if dev is not None and not (ver[0] == 1 and ver[1] >= 5 or ver[0] > 1):
        gates_missing = not all(g in (dev.get("featureGates") or []) for g in GATES)
    if conf.get("vmRolloutStrategy") != "LiveUpdate" or dev is None or gates_missing:
        return KV_NOT_ENABLED
    return None


def vm_blocker(vm: Optional[dict], vmi: Optional[dict]) -> Tuple[str, str]:
    """pkg/component-helpers/vm.go ValidateStorageMigrationPossibleForVM -> (reason, message); ("", "") = ok.
    A VM without a Running VMI is fine (offline clone, v0.2.0+)."""
    if vm is None:
        return "NotFound", "virtual machine not found"
    if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":  # IsVMRunning: vmi.IsRunning()
        return "", ""
    st = vm.get("status") or {}
    if not st.get("ready"):
        return "NotReady", "virtual machine is not ready"
    for c in st.get("conditions") or []:
        if c.get("type") == "StorageLiveMigratable" and c.get("status") == "False":
            return c.get("reason", ""), c.get("message", "")
        if c.get("type") == "RestartRequired" and c.get("status") == "True":
            return c.get("reason", ""), c.get("message", "")
    return "", ""


def migration_status(migrations: List[dict], plan_name: str) -> str:
    """validation.go getMigrationStatus: the first migration of this plan (list order) in progress or done."""
    for m in migrations:
        if ((m.get("spec") or {}).get("virtualMachineStorageMigrationPlanRef") or {}).get("name") != plan_name:
            continue
        phase = (m.get("status") or {}).get("phase")
        if phase in IN_PROGRESS_PHASES:
            return "inProgress"
        if phase == "Completed":
            return "completed"
    return "notStarted"


def critical(plan: dict) -> bool:
    """conditions.go HasCriticalCondition."""
    return any(c.get("category") == "Critical" and c.get("status") == "True"
               for c in (plan.get("status") or {}).get("conditions") or [])


class PlanView:
    """What one plan reconcile reads (cached per call)."""

    def __init__(self, kube, ns: str):
        self.kube, self.ns = kube, ns
        self.migrations = kube.items(R.VMSM, ns)
        self.scs = kube.items(R.STORAGECLASS)

    def vm(self, name):
        return self.kube.get_or_none(R.VM, name, self.ns)

    def vmi(self, name):
        return self.kube.get_or_none(R.VMI, name, self.ns)

    def pvc(self, name, ns=None):
        return self.kube.get_or_none(R.PVC, name, ns or self.ns)

    def default_class(self) -> str:
        """validation.go getDefaultStorageClass: the default virt class first, then the Kubernetes default."""
        for ann in ("storageclass.kubevirt.io/is-default-virt-class", "storageclass.kubernetes.io/is-default-class"):
            for sc in self.scs:
                if (sc["metadata"].get("annotations") or {}).get(ann) == "true":
                    return sc["metadata"]["name"]
        return ""


def source_pvc_name(vm: dict, volume: str, status: str) -> str:
    """validation.go getSourcePVC + getSourcePVCNameFromVolumeUpdateState."""
    name = ""
    for v in ((((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []):
        if v.get("name") == volume:
            name = ((v.get("persistentVolumeClaim") or {}).get("claimName")
                    or (v.get("dataVolume") or {}).get("name") or "")
            break
    if name and status != "notStarted":
        state = (((vm.get("status") or {}).get("volumeUpdateState") or {}).get("volumeMigrationState") or {})
        for mv in state.get("migratedVolumes") or []:
            if (mv.get("destinationPVCInfo") or {}).get("claimName") == name:
                return (mv.get("sourcePVCInfo") or {}).get("claimName") or name
    return name


def status_vm(view: PlanView, plan_vm: dict, plan: dict, status: str) -> dict:
    """validation.go createStatusVM: source PVCs (embedded) and resolved destination names."""
    out = {"name": plan_vm["name"], "targetMigrationPVCs": [dict(t, destinationPVC=dict(t.get("destinationPVC") or {}))
                                                              for t in plan_vm.get("targetMigrationPVCs") or []]}
    vm = view.vm(plan_vm["name"])
    sources = []
    for t in out["targetMigrationPVCs"]:
        name = source_pvc_name(vm, t.get("volumeName"), status) if vm else ""
        pvc = view.pvc(name) if name else None
        if pvc is None:
            return {"name": plan_vm["name"], "targetMigrationPVCs": out["targetMigrationPVCs"]}  # no sourcePVCs
        sources.append({"volumeName": t["volumeName"], "name": pvc["metadata"]["name"],
                        "namespace": pvc["metadata"]["namespace"],
                        "sourcePVC": {k: pvc.get(k) for k in ("apiVersion", "kind", "metadata", "spec", "status")}})
        t["destinationPVC"]["name"] = target_pvc_name(t["destinationPVC"].get("name"), pvc["metadata"]["name"],
                                                      plan["status"].get("suffix"))
    out["sourcePVCs"] = sources
    return out


def validate_pvcs(view: PlanView, plan: dict, status: str) -> Tuple[str, str]:
    """validation.go validatePVCs: destination class exists (or a default one), destination != source."""
    st = plan["status"]
    ready, invalid, reason, message = [], [], "", ""
    names = {sc["metadata"]["name"] for sc in view.scs}
    for vm in st.get("readyMigrations") or []:
        issue = False
        for i, t in enumerate(vm["targetMigrationPVCs"]):
            dest = t["destinationPVC"]
            if dest.get("storageClassName"):
                if dest["storageClassName"] not in names:
                    reason, message, issue = "NotFound", f"storage class {dest['storageClassName']} not found", True
                    break
            else:
                default = view.default_class()
                if not default:
                    reason, message, issue = "NotFound", "no default storage class found", True
                    break
                dest["storageClassName"] = default
            if dest.get("name") and dest["name"] == vm["sourcePVCs"][i]["name"] and status == "notStarted":
                reason, issue = "Conflict", True
                message = (f"VM {vm['name']} has a destination PVC name for volume {t['volumeName']} that is the "
                           f"same as the source PVC name")
                break
        (invalid if issue else ready).append(vm)
    st["readyMigrations"], st["invalidMigrations"] = ready, invalid
    return reason, message


def filesystem_without_content_type(view: PlanView, plan: dict) -> List[str]:
    """validation.go getFilesystemPVCsWithoutKubeVirtContentType."""
    out = set()
    st = plan["status"]
    for key in ("readyMigrations", "inProgressMigrations", "completedMigrations"):
        for vm in st.get(key) or []:
            for s in vm.get("sourcePVCs") or []:
                pvc = view.pvc(s["name"], s.get("namespace"))
                if pvc is None or (pvc.get("spec") or {}).get("volumeMode") not in (None, "Filesystem"):
                    continue
                if (pvc["metadata"].get("annotations") or {}).get("cdi.kubevirt.io/storage.contentType") != "kubevirt":
                    out.add(f"{s.get('namespace')}/{s['name']}")
    return sorted(out)


def validate_vms(view: PlanView, plan: dict) -> None:
    """validation.go validateStorageMigrationPossible."""
    st = plan["status"]
    existing = {vm["name"]: vm for key in ("readyMigrations", "inProgressMigrations", "failedMigrations",
                                           "completedMigrations", "invalidMigrations") for vm in st.get(key) or []}
    for key in LISTS:
        st[key] = []
    status = migration_status(view.migrations, plan["metadata"]["name"])
    target = {"notStarted": "readyMigrations", "inProgress": "inProgressMigrations",
              "completed": "completedMigrations"}[status]
    for plan_vm in (plan.get("spec") or {}).get("virtualMachines") or []:
        reason, message = vm_blocker(view.vm(plan_vm["name"]), view.vmi(plan_vm["name"]))
        if reason or message:
            set_condition(plan, NOT_ALL_READY, "True", reason, "Warn", message)
            continue
        svm = status_vm(view, plan_vm, plan, status)
        if not svm.get("sourcePVCs"):
            continue  # "No source PVCs found for virtual machine": in no list at all
        if plan_vm["name"] in existing and existing[plan_vm["name"]].get("sourcePVCs"):
            svm["sourcePVCs"] = existing[plan_vm["name"]]["sourcePVCs"]  # keep the source PVCs recorded first
        st[target].append(svm)
    reason, message = validate_pvcs(view, plan, status)
    if message:
        set_condition(plan, INVALID_PVCS, "True", reason, "Critical", message)
        return
    remove_condition(plan, INVALID_PVCS)
    bad = filesystem_without_content_type(view, plan)
    if bad:
        msg = ("One or more PVCs have filesystem volume mode but do not have the annotation "
               "cdi.kubevirt.io/storage.contentType: kubevirt")
        msg = f"{msg}: {', '.join(bad)}" if len(bad) <= 5 else f"{msg} ({len(bad)} PVCs, e.g. {', '.join(bad[:5])})"
        set_condition(plan, FS_CONTENT, "True", "Advisory", "Warn", msg)
    else:
        remove_condition(plan, FS_CONTENT)
    n = {k: len(st[k]) for k in LISTS}
    if n["readyMigrations"]:
        remove_condition(plan, NOT_POSSIBLE)
    total = n["readyMigrations"] + n["inProgressMigrations"] + n["completedMigrations"] + n["failedMigrations"]
    if n["readyMigrations"] and total != len((plan.get("spec") or {}).get("virtualMachines") or []):
        set_condition(plan, NOT_ALL_READY, "True", "NotReady", "Warn", SOME_NOT_READY)
    else:
        remove_condition(plan, NOT_ALL_READY)
    if not n["readyMigrations"] and not n["inProgressMigrations"]:
        set_condition(plan, NOT_ALL_READY, "True", "NotReady", "Critical", NONE_READY)


def _sort_key(m):
    """controller.go compareStorageMigrations: Completed ones first, then by creation time."""
    return (0 if (m.get("status") or {}).get("phase") == "Completed" else 1, m["metadata"]["creationTimestamp"])


def process_migrations(view: PlanView, plan: dict) -> None:
    """controller.go processMigrations + updateReadyCompletedMigrations."""
    st = plan["status"]
    mine = sorted([m for m in view.migrations if ((m.get("spec") or {}).get("virtualMachineStorageMigrationPlanRef")
                                                  or {}).get("name") == plan["metadata"]["name"]], key=_sort_key)
    if not mine:
        set_condition(plan, "Progressing", "False", None, "Required", "no storage migrations found")
        return
    ready = get_condition(plan, "Ready")
    if ready and ready.get("status") == "True":
        set_condition(plan, "Progressing", "True", None, "Required", "in progress storage migrations found")
    else:
        set_condition(plan, "Progressing", "False", None, "Required", "plan is not ready")
    done = set((mine[-1].get("status") or {}).get("completedMigrations") or [])
    keep = []
    for vm in st.get("readyMigrations") or []:
        (st.setdefault("completedMigrations", []) if vm["name"] in done else keep).append(vm)
    st["readyMigrations"] = keep
    vms = (plan.get("spec") or {}).get("virtualMachines") or []
    if vms and len(st.get("completedMigrations") or []) == len(vms):
        set_condition(plan, "Progressing", "False", None, "Required", "all storage migrations completed")
        set_condition(plan, "Ready", "False", None, "Required", "all storage migrations completed")


def reconcile_status(view: PlanView, kubevirts: List[dict], plan: dict) -> None:
    """controller.go Reconcile, the status part (pure over what ``view`` read)."""
    st = plan.setdefault("status", {})
    vms = (plan.get("spec") or {}).get("virtualMachines") or []
    st["completedOutOf"] = f"{len(st.get('completedMigrations') or [])}/{len(vms)}"
    if not st.get("suffix"):
        st["suffix"] = rand_string(4)
    # validation.go validateLiveMigrationPossible
    remove_condition(plan, NOT_POSSIBLE)
    blocker = kubevirt_blocker(kubevirts)
    if blocker:
        set_condition(plan, NOT_POSSIBLE, "True", blocker[0], "Critical", blocker[1])
    else:
        validate_vms(view, plan)
    remove_condition(plan, "ReconcileFailed")
    if critical(plan):
        set_condition(plan, "Ready", "False", None, "Required", "plan has one or more critical conditions")
    elif st.get("readyMigrations"):
        set_condition(plan, "Ready", "True", None, "Required", "plan is ready")
    else:
        set_condition(plan, "Ready", "False", None, "Required", "no virtual machines are ready for storage migration")
    process_migrations(view, plan)


def needs_refresh_answer(plan: dict) -> bool:
    """controller.go shouldUpdateRefresh."""
    ann = plan["metadata"].get("annotations") or {}
    if REFRESH_START not in ann:
        return False
    if REFRESH_END in ann:
        start, end = parse_rfc3339(ann[REFRESH_START]), parse_rfc3339(ann[REFRESH_END])
        if start is None or end is None:
            return True
        if end > start:
            return False
    return True


def reconcile(ctl, plan: dict) -> None:
    """One pass of the plan reconciler: status (status subresource), then the refresh-end annotation."""
    import copy
    import json

    ns = plan["metadata"]["namespace"]
    view = PlanView(ctl.kube, ns)
    before = json.dumps(plan.get("status") or {}, sort_keys=True)
    new = copy.deepcopy(plan)
    reconcile_status(view, ctl.kube.items(R.KUBEVIRT, all_namespaces=True), new)
    if json.dumps(new["status"], sort_keys=True) != before:
        try:
            new = ctl.kube.request("PUT", R.VMSM_PLAN.path(ns, plan["metadata"]["name"], "status"), body=new)
        except (errors.Conflict, errors.NotFound):
            return
    if needs_refresh_answer(new):
        try:
            ctl.kube.patch(R.VMSM_PLAN, plan["metadata"]["name"],
                           {"metadata": {"annotations": {REFRESH_END: rfc3339nano()}}}, ns)
        except errors.NotFound:
            pass
