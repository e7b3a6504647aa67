"""Workload updater + migration controller + target virt-handler finalization (BEHAVIOR.md §5.4-§5.8).

VMIM phases advance one per pass: Pending → Scheduling → Scheduled → PreparingTarget → TargetReady →
Running (``running_passes`` passes) → Succeeded | Failed. Faults (ConfigMap ``sim-faults`` in the VM
namespace): ``liveMigrationFail`` ("true" = every attempt, N = the first N attempts),
``destinationSmaller`` (fail as QEMU does for a too-small destination; also happens for real size
mismatches), ``stall`` (nothing in that namespace moves).
"""
from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import kubevirt_model as M
from . import kubevirt_pods as P
from .common import delete_any, fault_bool, fault_int, now

MIGRATION_LABEL = "kubevirt.io/volume-update-migration"
WORKLOAD_ANNOTATION = "kubevirt.io/workloadUpdateMigration"
FINAL = ("Succeeded", "Failed")
KEEP_FINALIZED = 5  # defaultFinalizedMigrationGarbageCollectionBuffer
LIBVIRT_FAILURE = ("Live migration failed error encountered during MigrateToURI3 libvirt api call: "
                   "virError(Code=1, Domain=10, Message='internal error: qemu unexpectedly closed the monitor')")
SMALLER = ("Volume migration cannot be performed because the destination volume is smaller than the source "
           "volume: error encountered during MigrateToURI3 libvirt api call: virError(Code=1, Domain=10, "
           "Message='internal error: unable to execute QEMU command 'blockdev-add': The sum of offset (0) and "
           "size (0) has to be smaller or equal to the actual size of the containing file ({size})')")


def _in_flight(ctx, vmi):
    ns, name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
    return [m for m in ctx.vmims if m["metadata"]["namespace"] == ns and (m.get("spec") or {}).get("vmiName") == name
            and (m.get("status") or {}).get("phase") not in FINAL]


def workload_updater(ctl, ctx) -> None:
    """A running VMI with VolumesChange=True and migratedVolumes gets a VMIM (LiveMigrate) or is evicted
    (only Evict configured); nothing happens while KubeVirt is not settled."""
    if not ctx.cfg.settled:
        return
    for vmi in list(ctx.vmis.values()):
        ns = vmi["metadata"]["namespace"]
        st = vmi.get("status") or {}
        if st.get("phase") != "Running" or not M.cond_true(vmi, "VolumesChange") or not st.get("migratedVolumes"):
            continue
        if ctl._stalled(ctx, ns) or _in_flight(ctx, vmi):
            continue
        if "LiveMigrate" in ctx.cfg.methods:
            _create_vmim(ctl, ctx, vmi)
        elif "Evict" in ctx.cfg.methods:
            _evict(ctl, ctx, vmi)


def _evict(ctl, ctx, vmi) -> None:
    """workload-updater.go: Evict-only evicts the launcher pod through the Eviction API (EvictV1). virt-api's
    pod-eviction-admitter.go admitLauncherPod decides by the VMI's eviction strategy (vmi.spec.evictionStrategy,
    else the cluster's, migrations.VMIEvictionStrategy): LiveMigrate (migratable) and LiveMigrateIfPossible
    (migratable) mark the VMI (status.evacuationNodeName) and deny the eviction, and the evacuation controller
    (drain/evacuation/evacuation.go GenerateNewMigration) creates an unlabelled VMIM "kubevirt-evacuation-…"
    that carries the pending volume update like any other migration; LiveMigrate but not migratable is denied
    (nothing happens); no strategy / not migratable with IfPossible lets the eviction delete the pod: the VMI
    ends and the VM controller sets ManualRecoveryRequired."""
    st = vmi.get("status") or {}
    if st.get("evacuationNodeName"):
        return  # "Evacuation in progress"
    strategy = (vmi.get("spec") or {}).get("evictionStrategy") or ctx.cfg.eviction_strategy
    migratable = M.cond_true(vmi, "LiveMigratable")
    from .cdi import emit_event
    if strategy in ("LiveMigrate", "LiveMigrateIfPossible", "External") and (migratable or strategy == "External"):
        st["evacuationNodeName"] = st.get("nodeName")
        ctl.put_vmi(ctx, vmi)
        emit_event(ctl.kube, vmi, "SuccessfulEvict", "Initiated eviction of VMI as part of automated workload update: "
                   "<nil>", "Normal", "virt-controller")
        if strategy != "External":
            _create_evacuation(ctl, ctx, vmi)
    elif strategy == "LiveMigrate":
        ctl.event_once(vmi, "FailedEvict", "Error deleting VMI during automated workload update: admission webhook "
                       f"\"virt-launcher-eviction-interceptor.kubevirt.io\" denied the request: VMI {vmi['metadata']['name']} "
                       "is configured with an eviction strategy but is not live-migratable", "Warning")
    else:
        ctl.delete_vmi(ctx, vmi)  # the eviction deletes the pod; the VM controller then sets ManualRecoveryRequired


def _create_evacuation(ctl, ctx, vmi) -> None:
    """evacuation.go GenerateNewMigration: annotation kubevirt.io/evacuationMigration=<node>, no
    volume-update label (the migration-create mutator adds kubevirt.io/vmi-name), priority system-critical."""
    md = vmi["metadata"]
    body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"generateName": "kubevirt-evacuation-", "namespace": md["namespace"],
                         "annotations": {"kubevirt.io/evacuationMigration": vmi["status"].get("nodeName") or ""},
                         "labels": {"kubevirt.io/vmi-name": md["name"]}},
            "spec": {"vmiName": md["name"]}}
    if ctx.cfg.version >= (1, 7, 0):
        body["spec"]["priority"] = "system-critical"
    ctx.vmims.append(ctl.kube.create(R.VMIM, body, md["namespace"]))


def _create_vmim(ctl, ctx, vmi) -> None:
    md = vmi["metadata"]
    value = md["name"] if (len(md["name"]) <= 63 or ctx.cfg.version < (1, 7, 0)) else md["uid"]
    body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"generateName": "kubevirt-workload-update-", "namespace": md["namespace"],
                         "annotations": {WORKLOAD_ANNOTATION: ""},
                         "labels": {MIGRATION_LABEL: value, "kubevirt.io/vmi-name": md["name"]}},
            "spec": {"vmiName": md["name"]}}
    if ctx.cfg.version >= (1, 7, 0):
        body["spec"]["priority"] = "user-triggered"
    vmim = ctl.kube.create(R.VMIM, body, md["namespace"])
    ctx.vmims.append(vmim)
    from .cdi import emit_event
    emit_event(ctl.kube, vmi, "SuccessfulCreate",
               f"Created Migration {vmim['metadata']['name']} for automated workload update", "Normal",
               "virt-controller")


def migrations(ctl, ctx) -> None:
    for vmim in list(ctx.vmims):
        if (vmim.get("status") or {}).get("phase") in FINAL or ctl._stalled(ctx, vmim["metadata"]["namespace"]):
            continue
        _advance(ctl, ctx, vmim)
    _collect_finalized(ctl, ctx)


def _write(ctl, vmim, st, phase) -> None:
    if phase != st.get("phase"):
        st["phase"] = phase
        st.setdefault("phaseTransitionTimestamps", []).append({"phase": phase, "phaseTransitionTimestamp": now()})
    md = vmim["metadata"]
    try:
        out = ctl.kube.request("PUT", R.VMIM.path(md["namespace"], md["name"], "status"), body=dict(vmim, status=st))
        vmim.update(out)
    except (errors.Conflict, errors.NotFound):
        pass
    ctl.passes[md["uid"]] = 0


def _advance(ctl, ctx, vmim) -> None:
    md = vmim["metadata"]
    ns, uid = md["namespace"], md["uid"]
    st = M.deep(vmim.get("status") or {})
    phase = st.get("phase") or ""
    vmi = ctx.vmis.get((ns, (vmim.get("spec") or {}).get("vmiName")))
    ctl.passes[uid] = ctl.passes.get(uid, 0) + 1
    if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":
        for pod in [p for p in ctx.pods if (p["metadata"].get("labels") or {}).get(P.MIGRATION_JOB_UID) == uid]:
            P.delete_pod(ctl.kube, pod)
        return _write(ctl, vmim, st, "Failed")
    vst = vmi["status"]
    if phase == "":
        return _write(ctl, vmim, st, "Pending")
    if phase == "Pending":
        n = ctl.failures.get(vmi["metadata"]["uid"], 0)
        if n:
            wait = ctl.backoff_passes * 2 ** min(n - 1, 5)
            if ctl.passes[uid] <= wait:
                ctl.event_once(vmim, "MigrationBackoff",
                               f"backoff migrating vmi {ns}/{vmi['metadata']['name']}", "Normal")
                return
        pod = P.create_pod(ctl.kube, P.launcher_pod(vmi, ctx.version, vmi["spec"].get("volumes") or [], vmim,
                                                   kubevirt_cr=ctx.kubevirt))
        ctx.pods.append(pod)
        return _write(ctl, vmim, st, "Scheduling")
    target_pod = next((p for p in P.pods_of(ctx.pods, vmi)
                       if (p["metadata"].get("labels") or {}).get(P.MIGRATION_JOB_UID) == uid), None)
    source = P.source_pod(ctx.pods, vmi)
    ms = vst.setdefault("migrationState", {}) if phase != "Scheduling" else None
    if phase == "Scheduling":
        # kube-scheduler (kubevirt_scheduling): the target pod's node selector, tolerations and affinity, and never
        # the source pod's node (the migration's pod anti-affinity)
        node, msg = ctl.place(ctx, target_pod or {}, anti_nodes=[vst.get("nodeName")])
        # kube-scheduler's VolumeBinding plugin: a pod whose claim does not exist is unschedulable (v1.3-v1.8 accept
        # a persistentVolumeClaim destination without checking that it exists, volume-migration.go ValidateVolumes)
        missing = [v["persistentVolumeClaim"]["claimName"] for v in ((target_pod or {}).get("spec") or {}).get("volumes") or []
                   if v.get("persistentVolumeClaim") and (ns, v["persistentVolumeClaim"]["claimName"]) not in ctx.pvcs]
        if node is None or target_pod is None or missing:
            total = len(ctx.nodes)
            if missing:
                msg = (f'0/{total} nodes are available: persistentvolumeclaim "{missing[0]}" not found. preemption: '
                       f"0/{total} nodes are available: {total} Preemption is not helpful for scheduling.")
            if target_pod is not None and ctl.passes[uid] == 1:
                P.set_pod_phase(ctl.kube, target_pod, "Pending", unschedulable=msg)
                ctl.event_once(vmim, "MigrationTargetPodUnschedulable",
                               f"Migration target pod for VMI [{ns}/{vmi['metadata']['name']}] is currently "
                               f"unschedulable.", "Warning")
            if ctl.passes[uid] > ctl.unschedulable_passes:
                if target_pod is not None:
                    P.delete_pod(ctl.kube, target_pod)
                _failed(ctl, vmi, vmim)
                return _write(ctl, vmim, st, "Failed")
            return
        P.bind_pod(ctl.kube, target_pod, node)
        P.set_pod_phase(ctl.kube, target_pod, "Running")
        vst["migrationState"] = {"migrationUid": uid, "sourceNode": vst.get("nodeName"), "targetNode": node,
                                 "sourcePod": source["metadata"]["name"] if source else None,
                                 "targetPod": target_pod["metadata"]["name"]}
        vmi["metadata"].setdefault("labels", {})["kubevirt.io/migrationTargetNodeName"] = node
        vst.setdefault("activePods", {})[target_pod["metadata"]["uid"]] = node
        ctl.put_vmi(ctx, vmi)
        return _write(ctl, vmim, st, "Scheduled")
    if phase == "Scheduled":
        ms.update(targetNodeAddress=P.pod_ip(target_pod) if target_pod else "10.244.0.2",
                  targetDirectMigrationNodePorts={"38284": 49153, "41068": 49152})
        ctl.put_vmi(ctx, vmi)
        return _write(ctl, vmim, st, "PreparingTarget")
    if phase == "PreparingTarget":
        return _write(ctl, vmim, st, "TargetReady")
    if phase == "TargetReady":
        conf = ctx.cfg.migrations
        ms.update(startTimestamp=now(), mode="PreCopy", migrationConfiguration={
            "allowAutoConverge": bool(conf.get("allowAutoConverge", False)),
            "allowPostCopy": bool(conf.get("allowPostCopy", False)),
            "bandwidthPerMigration": str(conf.get("bandwidthPerMigration", "0")),
            "completionTimeoutPerGiB": conf.get("completionTimeoutPerGiB", 150),
            "progressTimeout": conf.get("progressTimeout", 150),
            "parallelMigrationsPerCluster": conf.get("parallelMigrationsPerCluster", 5),
            "parallelOutboundMigrationsPerNode": conf.get("parallelOutboundMigrationsPerNode", 2)})
        ctl.put_vmi(ctx, vmi)
        return _write(ctl, vmim, st, "Running")
    if phase == "Running":
        if ctl.passes[uid] < ctl.running_passes:
            return
        reason = _failure(ctl, ctx, vmi)
        if reason:
            _failed(ctl, vmi, vmim, reason)
            if target_pod is not None:
                P.set_pod_phase(ctl.kube, target_pod, "Failed")
            ctl.put_vmi(ctx, vmi)
            st["migrationState"] = M.deep(vmi["status"].get("migrationState") or {})
            return _write(ctl, vmim, st, "Failed")
        _succeeded(ctl, ctx, vmi, target_pod, source)
        st["migrationState"] = M.deep(vmi["status"]["migrationState"])
        return _write(ctl, vmim, st, "Succeeded")


def _failure(ctl, ctx, vmi):
    """The injected or real (size) failure of this attempt, or None."""
    ns, vuid = vmi["metadata"]["namespace"], vmi["metadata"]["uid"]
    f = ctl.faults(ns)
    if fault_bool(f, "liveMigrationFail"):
        return LIBVIRT_FAILURE
    count = fault_int(f, "liveMigrationFail")
    if count and ctl.injected.get(vuid, 0) < count:
        ctl.injected[vuid] = ctl.injected.get(vuid, 0) + 1
        return LIBVIRT_FAILURE
    overhead = float(ctx.overhead)
    for m in vmi["status"].get("migratedVolumes") or []:
        sizes = []
        for side in ("sourcePVCInfo", "destinationPVCInfo"):
            claim = (m.get(side) or {}).get("claimName")
            pvc = ctx.pvcs.get((ns, claim))  # the PVCs themselves: migratedVolumes holds claimName/volumeMode only
            cdi = bool(((pvc or {}).get("metadata") or {}).get("annotations", {}).get("cdi.kubevirt.io/createdForDataVolume"))
            try:
                sizes.append(M.guest_size(M.pvc_info(pvc, claim), overhead, cdi_image=cdi) if pvc else 0)
            except ValueError:
                sizes.append(0)  # disk.img cannot be created on the destination
        if sizes[1] < sizes[0] or fault_bool(f, "destinationSmaller"):
            return SMALLER.format(size=sizes[1])
    return None


def _failed(ctl, vmi, vmim, reason=None) -> None:
    vst = vmi["status"]
    ms = vst.get("migrationState") or {}
    if reason and ms.get("migrationUid") == vmim["metadata"]["uid"]:
        ms.update(completed=True, failed=True, failureReason=reason, endTimestamp=now())
    vmi["metadata"].get("labels", {}).pop("kubevirt.io/migrationTargetNodeName", None)
    node = vst.get("nodeName")
    vst["activePods"] = {k: v for k, v in (vst.get("activePods") or {}).items() if v == node}
    ctl.failures[vmi["metadata"]["uid"]] = ctl.failures.get(vmi["metadata"]["uid"], 0) + 1


def _succeeded(ctl, ctx, vmi, target_pod, source) -> None:
    """Target virt-handler finalization: VMI on the target node, migratedVolumes cleared, VolumesChange
    removed, volumeStatus now describing the destination claims."""
    vst = vmi["status"]
    ts = now()
    vst["migrationState"].update(completed=True, failed=False, endTimestamp=ts, targetNodeDomainDetected=True,
                                 targetNodeDomainReadyTimestamp=ts)
    node = vst["migrationState"]["targetNode"]
    labels = vmi["metadata"].setdefault("labels", {})
    labels.pop("kubevirt.io/migrationTargetNodeName", None)
    labels["kubevirt.io/nodeName"] = node
    vst["nodeName"] = node
    vst.pop("evacuationNodeName", None)  # evacuated: the VMI left the node it was marked on
    vst.pop("migratedVolumes", None)
    M.drop_condition(vst, "VolumesChange")
    if target_pod is not None:
        vst["activePods"] = {target_pod["metadata"]["uid"]: node}
    ctl.refresh_vmi_status(ctx, vmi)
    ctl.put_vmi(ctx, vmi)
    if source is not None:
        P.set_pod_phase(ctl.kube, source, "Succeeded")
    ctl.failures.pop(vmi["metadata"]["uid"], None)


def _collect_finalized(ctl, ctx) -> None:
    """migration.go garbageCollectFinalizedMigrations: only the 5 most recent finalized VMIMs per VMI are kept
    (labelled or not: every VMIM of the VMI counts); a collected failed one takes its defunct target pod along,
    a succeeded one its source pod."""
    by_vmi = {}
    for m in ctx.vmims:
        if (m.get("status") or {}).get("phase") in FINAL:
            by_vmi.setdefault((m["metadata"]["namespace"], m["spec"].get("vmiName")), []).append(m)
    for (ns, _), ms in by_vmi.items():
        ms.sort(key=lambda m: (m["metadata"].get("creationTimestamp") or "", int(m["metadata"].get("resourceVersion") or 0)))
        for m in ms[:-KEEP_FINALIZED]:
            state = (m.get("status") or {}).get("migrationState") or {}
            pod = state.get("targetPod") if state.get("failed") else state.get("sourcePod") if state.get("completed") else None
            if pod:
                P.delete_pod(ctl.kube, {"metadata": {"name": pod, "namespace": ns}})
            delete_any(ctl.kube, R.VMIM, m["metadata"]["name"], ns)
            ctx.vmims.remove(m)
