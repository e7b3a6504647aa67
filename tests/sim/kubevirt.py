"""KubeVirt stand-in (virt-controller + virt-handler + the bits of scheduler/kubelet a VM needs).

Implements shared/reference/kubevirt/BEHAVIOR.md §1-§10 closely enough for the plugin: a VMI and a
virt-launcher pod per running VM, VM/VMI status and conditions, the volume-update (storage live
migration) flow with its checks, the workload-update VirtualMachineInstanceMigration and its phases,
cancel by revert and ManualRecoveryRequired. Split: kubevirt_model (pure rules), kubevirt_pods
(launcher pods), kubevirt_volumes (the VM volume-update handling), kubevirt_migration (VMIMs).

Start/stop: runStrategy as vm.go syncRunStrategy, plus the stateChangeRequests that the ``start``/``stop``
subresources add (tests/sim/virt_api.py serves them through the API server's aggregation layer).
"""
import json
from typing import Dict, List, Optional, Tuple

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import kubevirt_migration as MIG
from . import kubevirt_model as M
from . import kubevirt_pods as P
from . import kubevirt_runstrategy as RUN
from . import kubevirt_revision as REV
from . import kubevirt_scheduling as SCHED
from . import kubevirt_volumes as VOL
from .kubevirt_install import KV_NAMESPACE, install_kubevirt  # noqa: F401 (re-exported)
from .common import StandIn, delete_any, now, owner_ref

FALLBACK_NODE = "node01"
VM_OWN_CONDITIONS = ("Failure", "RestartRequired", "ManualRecoveryRequired")
START = ("Always", "RerunOnFailure", "Once")


def run_strategy(vm: dict) -> str:
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    return "Always" if spec.get("running") else "Halted"


class Ctx:
    """One pass's view of the cluster (listed once per step)."""

    def __init__(self, cfg: M.KvConfig, version: str):
        self.cfg, self.version = cfg, version
        self.kubevirt: dict = {}     # the KubeVirt CR (developerConfiguration.nodeSelectors place launcher pods)
        self.nodes: List[dict] = []  # every Node: kubevirt_scheduling filters them as kube-scheduler would
        self.vms: Dict[Tuple[str, str], dict] = {}
        self.vmis: Dict[Tuple[str, str], dict] = {}
        self.vmims: List[dict] = []
        self.pods: List[dict] = []
        self.pvcs: Dict[Tuple[str, str], dict] = {}
        self.dvs: Dict[Tuple[str, str], dict] = {}
        self.revisions: List[dict] = []  # apps/v1 ControllerRevisions revision-start-vm-* (vm.go createVMRevision)
        self.overhead = "0.055"  # KubeVirt's fallback when CDIConfig has none
        self.stalled: Dict[str, bool] = {}


class KubeVirtController(StandIn):
    name = "kubevirt"

    def __init__(self, kube, pace: float = 0.05, namespaces=None, running_passes: int = 3,
                 unschedulable_passes: int = 8, backoff_passes: int = 4):
        super().__init__(kube, pace, namespaces)
        self.running_passes = running_passes            # passes a VMIM spends in Running
        self.unschedulable_passes = unschedulable_passes  # stands for the 5 min unschedulable timeout
        self.backoff_passes = backoff_passes            # stands for the 20 s first back-off (doubles)
        self.passes: Dict[str, int] = {}                # VMIM uid -> passes spent in its current phase
        self.failures: Dict[str, int] = {}              # VMI uid -> consecutive failed migrations
        self.injected: Dict[str, int] = {}              # VMI uid -> injected liveMigrationFail count
        self.reported = set()                           # (uid, reason) events already emitted
        self.transient: Dict[str, int] = {}             # VM uid -> injected volumesUpdateError count

    # ---- one pass --------------------------------------------------------------------------------
    def step(self) -> None:
        kvs = self.kube.items(R.KUBEVIRT, all_namespaces=True)
        if not kvs:
            return  # KubeVirt not installed: nothing runs (install_kubevirt first)
        self.load_faults()
        ctx = self._snapshot(kvs[0])
        for (ns, _), vm in sorted(ctx.vms.items()):
            if not self._stalled(ctx, ns):
                self._sync_vm(ctx, vm)
        self._collect_garbage(ctx)
        MIG.workload_updater(self, ctx)
        MIG.migrations(self, ctx)

    def load_faults(self) -> None:
        """All sim-faults ConfigMaps in one LIST per pass (instead of one GET per namespace)."""
        cms = self._items(R.CONFIGMAP, field_selector="metadata.name=sim-faults")
        self._faults = {c["metadata"]["namespace"]: dict(c.get("data") or {}) for c in cms}

    def faults(self, namespace):
        cache = getattr(self, "_faults", None)
        return dict(cache.get(namespace) or {}) if cache is not None else super().faults(namespace)

    def _items(self, res, **kw):
        if self.namespaces is None:
            return [o for o in self.kube.items(res, all_namespaces=True, **kw)
                    if o["metadata"].get("namespace") not in self.excluded]
        return [o for ns in self.namespaces for o in self.kube.items(res, ns, **kw)]

    def _snapshot(self, kv) -> Ctx:
        ctx = Ctx(M.KvConfig(kv), (kv.get("status") or {}).get("observedKubeVirtVersion") or "v1.6.0")
        ctx.kubevirt, ctx.nodes = kv, self.kube.items(R.NODE)
        key = lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])  # noqa: E731
        ctx.vms = {key(o): o for o in self._items(R.VM)}
        ctx.vmis = {key(o): o for o in self._items(R.VMI)}
        ctx.vmims = self._items(R.VMIM)
        ctx.pods = self._items(R.POD, label_selector="kubevirt.io=virt-launcher")
        ctx.pvcs = {key(o): o for o in self._items(R.PVC)}
        ctx.dvs = {key(o): o for o in self._items(R.DATAVOLUME)}
        ctx.revisions = [o for o in self._items(REV.CONTROLLER_REVISION)
                         if o["metadata"]["name"].startswith(REV.PREFIX)]
        self._cdi_age = getattr(self, "_cdi_age", 0) + 1
        if self._cdi_age > 20 or not hasattr(self, "_cdi"):
            self._cdi, self._cdi_age = self.kube.get_or_none(R.CDICONFIG, "config") or {}, 0
        ctx.overhead = ((self._cdi.get("status") or {}).get("filesystemOverhead") or {}).get("global") or ctx.overhead
        return ctx

    def _stalled(self, ctx: Ctx, ns: str) -> bool:
        if ns not in ctx.stalled:
            ctx.stalled[ns] = self.stalled(ns)
        return ctx.stalled[ns]

    def place(self, ctx: Ctx, pod: dict, anti_nodes=()) -> Tuple[Optional[str], str]:
        """kube-scheduler for one launcher pod (kubevirt_scheduling.schedule): (node or None, FailedScheduling
        message). Simplification: a control plane without any Node object binds to node01, so a bare stand-in
        still runs VMs."""
        if not ctx.nodes:
            return (None, SCHED.fit_error(0, [])) if any(anti_nodes) else (FALLBACK_NODE, "")
        return SCHED.schedule(ctx.nodes, pod.get("spec") or {}, anti_nodes)

    # ---- VirtualMachine ------------------------------------------------------------------------------
    def _sync_vm(self, ctx: Ctx, vm: dict) -> None:
        """vm.go sync + updateStatus, in upstream order: start revision, DataVolumes, syncRunStrategy,
        syncRestartRequired, the live-update block (handleVolumeUpdateRequest) only with the LiveUpdate rollout
        and no RestartRequired, then syncVolumeMigration / syncConditions / processFailureCondition."""
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        st = M.deep(vm.get("status") or {})
        old = json.dumps(st, sort_keys=True)
        strategy = run_strategy(vm)
        dvs_ready = self._template_dvs(ctx, vm, strategy)
        vmi = ctx.vmis.get((ns, name))
        start_spec = REV.last_revision_spec(ctx.revisions, vm) if vmi is not None else None
        sync_error = None
        first = (st.get("stateChangeRequests") or [{}])[0]
        stop_request = vmi is not None and first.get("action") == "Stop" and first.get("uid") == vmi["metadata"]["uid"]
        if vmi is not None and (strategy == "Halted" or stop_request):
            # syncRunStrategy: Halted stops; Always/RerunOnFailure/Manual stop on hasStopRequestForVMI (the
            # ``stop``/``restart`` subresources), Always then starts a new VMI
            # A real VMI lingers through its graceful deletion (DeletionTimestamp set, not final), so this pass's
            # updateStatus still sees it: syncVolumeMigration leaves the VM alone and syncConditions mirrors the
            # VMI's conditions (vm.go updateStatus, syncConditions). A finished migration's VolumesChange is
            # gone from it then, so only a migration still pending at the stop raises ManualRecoveryRequired
            # once the VMI is gone. The stand-in's VMI vanishes at once: mirror its conditions first.
            _mirror_vmi_conditions(st, vmi)
            self.delete_vmi(ctx, vmi)
            M.drop_condition(st, "RestartRequired")  # stopVMI → cleanupRestartRequired
            vmi = None
        elif vmi is None:
            # A real VMI passes through a final phase (finalizer) before it is gone, and updateStatus →
            # syncVolumeMigration sets ManualRecoveryRequired then; the stand-in's VMIs vanish at once, so the
            # same rule is applied before the start decision.
            VOL.maybe_clear_recovery(ctx, vm, st)
            if M.cond_true({"status": st}, "VolumesChange"):
                VOL.set_recovery(ctx, st)
            if RUN.wants_start(st, strategy) and dvs_ready and not M.cond_true({"status": st}, "ManualRecoveryRequired"):
                vmi = self._create_vmi(ctx, vm)  # startVMI refuses while ManualRecoveryRequired=True
                if vmi is not None:
                    M.drop_condition(st, "RestartRequired")  # startVMI → cleanupRestartRequired
        else:
            vmi = self._advance_vmi(ctx, vmi)
            restart = VOL.sync_restart_required(ctx, start_spec, vm, st)
            if (vmi.get("status") or {}).get("phase") == "Running" and dvs_ready and ctx.cfg.live_update \
                    and not restart and not M.cond({"status": st}, "RestartRequired"):
                sync_error = VOL.handle_volume_update(self, ctx, vm, vmi, st)
                vmi = ctx.vmis.get((ns, name), vmi)
        RUN.trim_state_change_requests(st, vmi)
        VOL.maybe_clear_recovery(ctx, vm, st)  # syncVolumeMigration
        if (vmi is None or (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed")) \
                and M.cond_true({"status": st}, "VolumesChange"):
            VOL.set_recovery(ctx, st)  # the VMI went away while a volume migration was pending
        VOL.process_failure(st, sync_error)
        self._vm_status(ctx, vm, vmi, st, strategy, dvs_ready)
        if json.dumps(st, sort_keys=True) != old:
            try:
                self.kube.request("PUT", R.VM.path(ns, name, "status"), body=dict(vm, status=st))
            except (errors.Conflict, errors.NotFound):
                pass  # the VM changed meanwhile: the next pass redoes it

    def _template_dvs(self, ctx: Ctx, vm: dict, strategy: str) -> bool:
        """handleDataVolumes: create missing template DVs; ready iff all are Succeeded/WFFC/PendingPopulation."""
        ns, ready = vm["metadata"]["namespace"], True
        lazy = (vm["metadata"].get("annotations") or {}).get("kubevirt.io/immediate-data-volume-creation") == "false"
        for t in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            md = t.get("metadata") or {}
            dv = ctx.dvs.get((ns, md.get("name")))
            if dv is None:
                ready = False
                if lazy and strategy == "Halted":
                    continue
                body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                        "metadata": {"name": md["name"], "namespace": ns,
                                     "labels": {**(md.get("labels") or {}), "kubevirt.io/created-by": vm["metadata"]["uid"]},
                                     "annotations": {**(md.get("annotations") or {}),
                                                     "cdi.kubevirt.io/allowClaimAdoption": "true"},
                                     "ownerReferences": [owner_ref(vm, block=True)]},
                        "spec": M.deep(t.get("spec") or {})}
                try:
                    ctx.dvs[(ns, md["name"])] = self.kube.create(R.DATAVOLUME, body, ns)
                except errors.Conflict:
                    pass
            elif (dv.get("status") or {}).get("phase") not in ("Succeeded", "WaitForFirstConsumer", "PendingPopulation"):
                ready = False
        return ready

    def _vm_status(self, ctx, vm, vmi, st, strategy, dvs_ready) -> None:
        vst = (vmi or {}).get("status") or {}
        phase = vst.get("phase")
        running = phase == "Running"
        vmi_ready = running and any(c.get("type") == "Ready" and c.get("status") == "True"
                                    for c in vst.get("conditions") or [])
        st["created"] = vmi is not None
        st["ready"] = bool(vmi_ready)
        st["runStrategy"] = strategy
        ms = vst.get("migrationState") or {}
        if vmi is None:
            st["printableStatus"] = "Provisioning" if (strategy in START and not dvs_ready) else "Stopped"
        elif running and ms.get("startTimestamp") and not ms.get("endTimestamp"):
            st["printableStatus"] = "Migrating"
        elif running:
            st["printableStatus"] = "Running"
        else:
            st["printableStatus"] = "Starting"
        own = [c for c in st.get("conditions") or [] if c.get("type") in VM_OWN_CONDITIONS]
        if vmi is None:
            ready = {"type": "Ready", "status": "False", "reason": "VMINotExists", "message": "VMI does not exist",
                     "lastProbeTime": None, "lastTransitionTime": now()}
        else:
            ready = {"type": "Ready", "status": "True" if vmi_ready else "False", "lastProbeTime": None,
                     "lastTransitionTime": now()}
        # vm.go syncConditions returns early without a VMI: the conditions mirrored from the last VMI stay
        # (e.g. VolumesChange=True next to ManualRecoveryRequired) until syncVolumeMigration removes them
        mirrored = _mirrored(st if vmi is None else vst)
        new = {"conditions": []}
        prev = {c.get("type"): c for c in st.get("conditions") or []}
        for c in [ready] + mirrored + own:
            p = prev.get(c["type"])
            if p and p.get("status") == c.get("status") and "lastTransitionTime" in p and c["type"] == "Ready":
                c = dict(c, lastTransitionTime=p["lastTransitionTime"])
            new["conditions"].append(c)
        st["conditions"] = new["conditions"]
        gen = vm["metadata"].get("generation")
        if vmi is not None and gen:
            st["observedGeneration"] = st["desiredGeneration"] = gen
        if (vm.get("spec") or {}).get("updateVolumesStrategy") != "Migration":
            st.pop("volumeUpdateState", None)

    # ---- VirtualMachineInstance ------------------------------------------------------------------------
    def _create_vmi(self, ctx: Ctx, vm: dict) -> Optional[dict]:
        md = vm["metadata"]
        tmpl = (vm.get("spec") or {}).get("template") or {}
        vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"name": md["name"], "namespace": md["namespace"],
                            "labels": dict((tmpl.get("metadata") or {}).get("labels") or {}),
                            "annotations": {"kubevirt.io/latest-observed-api-version": "v1",
                                            "kubevirt.io/storage-observed-api-version": "v1",
                                            "kubevirt.io/vm-generation": str(md.get("generation", 1))},
                            "ownerReferences": [owner_ref(vm, block=True)]},
               "spec": M.deep(tmpl.get("spec") or {}),
               "status": {"phase": "Pending", "guestOSInfo": {},
                          "phaseTransitionTimestamps": [{"phase": "Pending", "phaseTransitionTimestamp": now()}]}}
        # vm.go startVMI: the VM spec being started is recorded (createVMRevision); RestartRequired compares with it
        vmi["status"]["virtualMachineRevisionName"] = REV.create_revision(self.kube, vm, ctx.revisions)
        ctx.revisions = [r for r in ctx.revisions if not r["metadata"]["name"].startswith(f"{REV.PREFIX}{md['uid']}-")]
        try:
            vmi = self.kube.create(R.VMI, vmi, md["namespace"])
        except errors.Conflict:
            return None
        pod = self._create_launcher(ctx, vmi)
        ctx.pods.append(pod)
        ctx.vmis[(md["namespace"], md["name"])] = vmi
        return vmi

    def _create_launcher(self, ctx: Ctx, vmi: dict) -> dict:
        """The VMI's virt-launcher pod (template.go renderLaunchManifest: its volumes and placement)."""
        return P.create_pod(self.kube, P.launcher_pod(vmi, ctx.version, vmi["spec"].get("volumes") or [],
                                                      kubevirt_cr=ctx.kubevirt))

    def _advance_vmi(self, ctx: Ctx, vmi: dict) -> dict:
        """Pending → Scheduled (pod bound) → Running (pod Running, virt-handler status); then refresh."""
        st = vmi.setdefault("status", {})
        phase = st.get("phase")
        pod = P.source_pod(ctx.pods, vmi)
        if phase in ("Pending", "Scheduling", "", None):
            if pod is None:
                pod = self._create_launcher(ctx, vmi)
                ctx.pods.append(pod)
            node, why = self.place(ctx, pod)
            if node is None:  # the pod stays Pending, the scheduler says why (retried each pass)
                if P.unschedulable_message(pod) != why:
                    P.set_pod_phase(self.kube, pod, "Pending", unschedulable=why)
                return vmi
            P.bind_pod(self.kube, pod, node)
            st.update(phase="Scheduled", nodeName=node, activePods={pod["metadata"]["uid"]: node})
            vmi["metadata"].setdefault("labels", {})["kubevirt.io/nodeName"] = node
        elif phase == "Scheduled":
            if pod is not None:
                P.set_pod_phase(self.kube, pod, "Running")
            st.update(phase="Running", migrationTransport="Unix", qosClass="Burstable",
                      launcherContainerImageVersion=f"quay.io/kubevirt/virt-launcher:{ctx.version}")
            M.put_condition(st, {"type": "Ready", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": now()})
            self.refresh_vmi_status(ctx, vmi)
        elif phase == "Running":
            before = json.dumps(st, sort_keys=True)
            self.refresh_vmi_status(ctx, vmi)
            if json.dumps(st, sort_keys=True) == before:
                return vmi
        else:
            return vmi
        if phase != st.get("phase"):
            st.setdefault("phaseTransitionTimestamps", []).append(
                {"phase": st["phase"], "phaseTransitionTimestamp": now()})
        return self.put_vmi(ctx, vmi)

    def refresh_vmi_status(self, ctx: Ctx, vmi: dict) -> None:
        """virt-handler/virt-controller: volumeStatus (source claims until a migration finalizes),
        LiveMigratable / StorageLiveMigratable, migrationMethod."""
        ns, spec, st = vmi["metadata"]["namespace"], vmi.get("spec") or {}, vmi.setdefault("status", {})
        migrated = {m.get("volumeName"): (m.get("sourcePVCInfo") or {}).get("claimName")
                    for m in st.get("migratedVolumes") or []}
        targets = M.disk_targets(spec)
        vs = []
        for v in sorted(M.volumes_of(spec), key=lambda v: v["name"]):
            e = {"name": v["name"]}
            # the CRD requires target; volumes with no disk device (virtiofs filesystems) report "" as virt-handler does
            e["target"] = targets.get(v["name"], "")
            claim = migrated.get(v["name"]) or M.claim_of(v)
            if claim and not v.get("memoryDump"):
                e["persistentVolumeClaimInfo"] = M.pvc_info(ctx.pvcs.get((ns, claim)), claim, ctx.overhead)
            if M.is_hotpluggable(v):
                e.update(phase="Ready", reason="VolumeReady",
                         message=f"Successfully attach hotplugged volume {v['name']} to VM",
                         hotplugVolume={"attachPodName": f"hp-volume-{vmi['metadata']['name']}"})
            vs.append(e)
        st["volumeStatus"] = vs
        conds, method = M.migratable_conditions(vmi, ctx.cfg.has_storage_live_migratable)
        for c in conds:
            M.put_condition(st, c, keep_time=False)
        if not ctx.cfg.has_storage_live_migratable:
            M.drop_condition(st, "StorageLiveMigratable")
        st["migrationMethod"] = method

    def put_vmi(self, ctx: Ctx, vmi: dict) -> dict:
        """VMI has no status subresource: PUT the whole object (spec + status)."""
        md = vmi["metadata"]
        try:
            out = self.kube.replace(R.VMI, vmi, md["namespace"])
        except (errors.Conflict, errors.NotFound):
            return ctx.vmis.get((md["namespace"], md["name"]), vmi)
        ctx.vmis[(md["namespace"], md["name"])] = out
        return out

    def delete_vmi(self, ctx: Ctx, vmi: dict) -> None:
        for pod in P.pods_of(ctx.pods, vmi):
            P.delete_pod(self.kube, pod)
        delete_any(self.kube, R.VMI, vmi["metadata"]["name"], vmi["metadata"]["namespace"])
        ctx.vmis.pop((vmi["metadata"]["namespace"], vmi["metadata"]["name"]), None)

    def event_once(self, obj: dict, reason: str, message: str, etype: str = "Normal") -> None:
        from .cdi import emit_event
        key = (obj["metadata"].get("uid"), reason)
        if key not in self.reported:
            self.reported.add(key)
            emit_event(self.kube, obj, reason, message, etype, "virt-controller")

    def _collect_garbage(self, ctx: Ctx) -> None:
        """The garbage collector's part: VMIs of deleted VMs, pods of deleted VMIs, template DVs of deleted VMs."""
        vm_uids = {vm["metadata"]["uid"] for vm in ctx.vms.values()}
        for vmi in list(ctx.vmis.values()):
            refs = [r for r in vmi["metadata"].get("ownerReferences") or [] if r.get("kind") == "VirtualMachine"]
            if refs and refs[0]["uid"] not in vm_uids and not self._stalled(ctx, vmi["metadata"]["namespace"]):
                self.delete_vmi(ctx, vmi)
        vmi_uids = {v["metadata"]["uid"] for v in ctx.vmis.values()}
        for pod in ctx.pods:
            if (pod["metadata"].get("labels") or {}).get(P.CREATED_BY) not in vmi_uids:
                P.delete_pod(self.kube, pod)
        for cr in ctx.revisions:
            refs = [r for r in cr["metadata"].get("ownerReferences") or [] if r.get("kind") == "VirtualMachine"]
            if refs and refs[0]["uid"] not in vm_uids:
                delete_any(self.kube, REV.CONTROLLER_REVISION, cr["metadata"]["name"], cr["metadata"]["namespace"])
        for (ns, name), dv in ctx.dvs.items():
            refs = [r for r in dv["metadata"].get("ownerReferences") or [] if r.get("kind") == "VirtualMachine"]
            if refs and refs[0]["uid"] not in vm_uids and not self.kube.get_or_none(R.VM, refs[0]["name"], ns):
                delete_any(self.kube, R.DATAVOLUME, name, ns)


def _mirrored(status: dict) -> list:
    """The conditions vm.go syncConditions copies from the VMI (all but Ready and the VM's own)."""
    return [M.deep(c) for c in status.get("conditions") or [] if c.get("type") not in ("Ready",) + VM_OWN_CONDITIONS]


def _mirror_vmi_conditions(st: dict, vmi: dict) -> None:
    """vm.go syncConditions for one VMI: its conditions replace the mirrored ones, the VM's own and Ready stay."""
    kept = [c for c in st.get("conditions") or [] if c.get("type") in ("Ready",) + VM_OWN_CONDITIONS]
    st["conditions"] = kept + _mirrored((vmi or {}).get("status") or {})
