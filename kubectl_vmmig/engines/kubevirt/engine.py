"""The kubevirt engine: KubeVirt's own volume migration (``spec.updateVolumesStrategy: Migration``) for running
VMs, CDI clones for stopped ones, without MTC. Engine surface as in docs/ARCHITECTURE.md.

Pure parts live in ``build`` (DVs, record, preview), ``checks`` (preflight) and
``track`` (success judgement); the state machine in ``steps``. This module is the I/O:
reading the VMs, the migration record ConfigMap, driving, status rows and cancel.

``options`` (dict, all optional): stop, keep_update_strategy, access_mode, volume_mode, wait (default True),
timeout (seconds, 0 = none), poll (seconds), max_failures (failed VMIMs before giving up following, 3),
cancel_timeout (seconds), echo (callable(str) for progress lines; the command's stderr). ``on_pass(migration)``
is called after each pass of ``apply``'s loop (the live view re-reads and redraws; see engines/base.progress_of).
"""
import time
from typing import Dict, List, Optional, Tuple

from ... import errors
from ... import resources as R
from ...patches import clear_strategy_patch, revert_patch, volume_claims
from . import build as B
from .checks import kubevirt_engine_findings
from .guarded_patch import PatchRefused, guarded_patch
from .steps import now
from .track import cancel_done, judge_live, vmims_of


# Every API call of this engine (migrate, check, status, cancel): (verb, Resource, subresource, namespaced).
# deploy/rbac/kubevirt-engine.yaml grants exactly these (tests/unit/test_rbac_manifests.py keeps them in step).
PERMISSIONS = (
    ("get", R.VM, None, True), ("list", R.VM, None, True), ("patch", R.VM, None, True),
    ("get", R.VMI, None, True), ("list", R.VMI, None, True), ("list", R.VMIM, None, True),
    ("get", R.DATAVOLUME, None, True), ("list", R.DATAVOLUME, None, True), ("create", R.DATAVOLUME, None, True),
    # No "create datavolumes/source": CDI's DataVolume webhook asks for it (or "create pods") only when the clone
    # source is in another namespace (authorize_utils.go CanUserClonePVC returns allowed at once when source
    # namespace == target namespace); the offline clones here are always of a PVC of the VM's own namespace.
    # runStrategy Manual VMs start only through the start subresource (vm.go syncRunStrategy, hasStartRequest)
    ("update", R.VM_SUBRESOURCES, "start", True),
    ("get", R.PVC, None, True), ("list", R.PVC, None, True), ("list", R.POD, None, True),
    ("get", R.CONFIGMAP, None, True), ("list", R.CONFIGMAP, None, True), ("create", R.CONFIGMAP, None, True),
    ("update", R.CONFIGMAP, None, True),
    ("list", R.STORAGECLASS, None, False), ("list", R.NODE, None, False), ("list", R.KUBEVIRT, None, False),
    ("list", R.CSIDRIVER, None, False),
)


def _silent(msg: str) -> None:
    """The default ``echo``: the commands always pass theirs (IOStreams.say); engines never print."""


class KubevirtEngine:
    name = "kubevirt"

    def __init__(self, kube, options=None):
        self.kube = kube
        self.options = dict(options or {})
        self.echo = self.options.get("echo") or _silent
        self.on_pass = lambda migration: None  # the caller's live view: re-read and redraw (base.progress_of)

    # ---- inputs --------------------------------------------------------------------------------
    # Destination names: build.destination_name(claim, target class) (the migrate command's default).

    def _read_vms(self, plan) -> Tuple[Dict[str, dict], Dict[str, dict]]:
        ns = plan["namespace"]
        names = sorted({m["vm"] for m in plan.get("moves") or []})
        vms = {n: self.kube.get(R.VM, n, ns) for n in names}
        vmis = {n: self.kube.get_or_none(R.VMI, n, ns) for n in names}
        return vms, {k: v for k, v in vmis.items() if v is not None}

    def _record_kw(self, vmis):
        o = self.options
        return {"vmis": vmis, "stop": bool(o.get("stop")), "access_mode": o.get("access_mode"),
                "volume_mode": o.get("volume_mode"), "keep_update_strategy": bool(o.get("keep_update_strategy"))}

    # ---- preview / checks ----------------------------------------------------------------------
    def preview(self, plan, vms=None, vmis=None, checks: Optional[List[dict]] = None) -> dict:
        """No writes. ``vms``/``vmis``: dicts by name or lists of objects (e.g. from -f files with --local);
        read from the cluster when not given."""
        if vms is None:
            vms, vmis = self._read_vms(plan)
        vms, vmis = _by_name(vms, plan["namespace"]), _by_name(vmis, plan["namespace"])
        rec = B.new_record(plan, vms, B.migration_name(plan), started="", **self._record_kw(vmis or {}))
        return B.preview_from_record(rec, checks)

    def checks(self, plan, inventory, objects=None) -> List[dict]:
        from .facts import cluster_facts

        return kubevirt_engine_findings(plan, inventory, cluster_facts(self.kube, plan, objects, self.options))

    # ---- record I/O ----------------------------------------------------------------------------
    def _load(self, name, ns):
        cm = self.kube.get_or_none(R.CONFIGMAP, B.record_name(name), ns)
        if cm is None:
            return None, None
        return cm, B.record_from_configmap(cm)

    def _save(self, rec, cm, dry=False):
        body = B.record_configmap(rec)
        if cm is None:
            return self.kube.create(R.CONFIGMAP, body, rec["namespace"], dry_run=dry)
        body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
        try:
            return self.kube.replace(R.CONFIGMAP, body, rec["namespace"], dry_run=dry)
        except errors.Conflict:
            fresh_cm, fresh = self._load(rec["name"], rec["namespace"])
            if fresh and fresh.get("phase") in ("Canceling", "Canceled"):
                raise errors.MigrationCanceled(f"migration {rec['name']} was canceled by another command")
            body["metadata"]["resourceVersion"] = fresh_cm["metadata"]["resourceVersion"]
            return self.kube.replace(R.CONFIGMAP, body, rec["namespace"], dry_run=dry)

    # ---- apply ---------------------------------------------------------------------------------
    def apply(self, plan, dry_run_server=False) -> dict:
        """Create the record and destination DVs, apply the patches; with options wait (default) drive the
        migration to its end. Re-running the same command re-attaches to the record and resumes."""
        rec, cm = self.open_record(plan, dry_run_server)
        wait = self.options.get("wait", True) and not dry_run_server
        self._drive(rec, cm, wait, dry_run_server)
        return self.ref(rec)

    def apply_fleet(self, plans, dry_run_server=False, show=None) -> List[dict]:
        """Every namespace's plan of a fleet under one window (fleet.py); a server dry run runs nothing, so
        each plan is simply sent as ``apply`` sends it."""
        if dry_run_server:
            return [self.apply(p, dry_run_server=True) for p in plans]
        from .fleet import apply_fleet

        return [self.ref(rec) for rec in apply_fleet(self, plans, show)]

    def ref(self, rec) -> dict:
        migration = rec["name"]
        return {"migration": migration, "plan": migration, "name": migration, "namespace": rec["namespace"],
                "engine": self.name, "result": rec["result"], "message": rec.get("message") or ""}

    def open_record(self, plan, dry_run_server=False, vms=None, vmis=None, records=None):
        """-> (record, its ConfigMap): the running record of this plan re-attached to, else a new one written
        (``vms``/``vmis`` by name, ``records`` the namespace's record ConfigMaps by name: already read, e.g. by a
        fleet's LISTs across all namespaces, else read here)."""
        ns, migration = plan["namespace"], B.migration_name(plan)
        if dry_run_server:
            cm, rec = None, None
        elif records is not None:
            cm = records.get(B.record_name(migration))
            rec = B.record_from_configmap(cm) if cm is not None else None
        else:
            cm, rec = self._load(migration, ns)
        if rec is not None and B.resume_given_up(rec):
            self.echo(f"migration {migration}: following again the VMs it had stopped following")
        if rec is None or rec.get("result") != "Running":
            if vms is None or any(m["vm"] not in vms for m in plan.get("moves") or []):
                vms, vmis = self._read_vms(plan)  # a VM gone since it was listed: its GET says so
            fresh = B.new_record(plan, vms, migration, started=now(), **self._record_kw(vmis or {}))
            if rec is not None:
                self._refuse_stale_clones(fresh)
            rec = fresh
            cm = self._save(rec, cm, dry=dry_run_server)
            if not dry_run_server:
                self.echo(f"migration {migration}: record configmap/{B.record_name(migration)} in {ns}")
        else:
            self.echo(f"migration {migration} is already running: re-attaching")
        return rec, cm

    def _drive(self, rec, cm, wait, dry_run_server=False):
        """Advance the record until it ends (wait), or - detached - until nothing more can be done without
        waiting: the one loop of this engine (drive.py), here for one record reading its own namespace."""
        from .drive import drive

        drive(self, [(rec, cm)], wait, after_pass=lambda: self.on_pass(rec["name"]), dry_run_server=dry_run_server)

    def resume(self, name, namespace) -> dict:
        """Finish what a detached (or interrupted) run left for the plugin, following to the end."""
        ns = namespace or self.kube.namespace
        recs = self._records(ns, name)
        if not recs:
            raise errors.NotFoundInput(f"no kubevirt-engine migration {name!r} in namespace {ns}",
                                       "list them with 'kubectl vm-storage status'")
        cm, rec = self._load(recs[-1]["name"], ns)
        B.resume_given_up(rec)
        if rec.get("result") != "Running":
            raise errors.BadInput(f"migration {rec['name']} is {rec.get('result')}; nothing to resume",
                                  f"see 'kubectl vm-storage status {rec['name']} -n {ns}'")
        self.echo(f"migration {rec['name']}: resuming")
        self._drive(rec, cm, wait=True)
        return self.ref(rec)

    def _refuse_stale_clones(self, rec):
        for vm_name, r in rec["vms"].items():
            if r["mode"] != "offline":
                continue
            for dv in r["dataVolumes"]:
                name = dv["metadata"]["name"]
                if self.kube.get_or_none(R.DATAVOLUME, name, rec["namespace"]) is not None:
                    raise errors.PreflightRefused(
                        f"DataVolume {name} holds a copy from an earlier run of migration {rec['name']} that may "
                        "be stale",
                        hint=f"delete it (kubectl delete dv -n {rec['namespace']} {name}) and re-run")

    # ---- read ----------------------------------------------------------------------------------
    def _records(self, namespace=None, name=None, all_namespaces=False) -> List[dict]:
        sel = f"{B.LABEL_ENGINE}={B.ENGINE}"
        cms = self.kube.items(R.CONFIGMAP, namespace, label_selector=sel, all_namespaces=all_namespaces)
        recs = [r for r in (B.record_from_configmap(c) for c in cms) if r]
        if name:
            recs = [r for r in recs if r["name"] == name or name in r.get("vms", {})]
        return sorted(recs, key=lambda r: (r.get("namespace"), r.get("started") or "", r["name"]))

    def read(self, namespace=None, name=None, all_namespaces=False) -> List[dict]:
        """Migration dicts (progress.py builds them from the records and the live objects)."""
        from .progress import collect

        out = collect(self.kube, namespace, all_namespaces)
        if name:
            names = {r["name"] for r in self._records(namespace, name, all_namespaces)}
            out = [m for m in out if m["plan"] in names]
        return out

    # ---- cancel --------------------------------------------------------------------------------
    def cancel(self, name, namespace) -> None:
        """Restore exactly the original claims (volume-migration.go VolumeMigrationCancel); for
        ManualRecoveryRequired (vm.go) keep the destinations when the copy had finished. Destination DVs stay."""
        ns = namespace or self.kube.namespace
        recs = self._records(ns, name)
        if not recs:
            raise errors.NotFoundInput(f"no kubevirt-engine migration {name!r} in namespace {ns}",
                                       "list them with 'kubectl vm-storage status'")
        rec = recs[-1]
        cm, rec = self._load(rec["name"], ns)
        if rec.get("result") == "Succeeded":
            raise errors.BadInput(f"migration {rec['name']} already succeeded; nothing to cancel",
                                  "to move back, migrate the VMs to their previous StorageClass")
        finished = self._finished_by_kubevirt(rec)
        open_vms = [v for v, r in rec["vms"].items() if r.get("phase") not in ("Canceled",) and v not in finished
                    and r.get("result") != "Succeeded"]
        if finished and not open_vms:
            # After success a revert is not a cancel but a new Migration update back to the sources
            # (volume-migration.go VolumeMigrationCancel applies only while IsVolumeMigrating).
            raise errors.BadInput(
                f"migration {rec['name']}: KubeVirt already finished copying {', '.join(sorted(finished))} (the VMI "
                "runs on the destination volumes); cancelling now would start a copy back, not a cancel",
                "to move back, migrate the VMs to their previous StorageClass")
        for vm_name in finished:
            r = rec["vms"][vm_name]
            r.update(phase="Completed", result="Succeeded", gaveUp=False,
                     message="KubeVirt had already finished the copy; kept on the destination volumes")
            self.echo(f"{vm_name}: {r['message']}")
        rec["phase"] = "Canceling"
        cm = self._save(rec, cm)
        deadline = time.monotonic() + float(self.options.get("cancel_timeout") or 120)
        for vm_name, r in rec["vms"].items():
            if r.get("phase") == "Canceled" or vm_name in finished:
                continue
            self._cancel_vm(rec, vm_name, r, deadline)
            cm = self._save(rec, cm)
        rec.update(phase="Canceled", result="Canceled", completed=now())
        dvs = " ".join(d["metadata"]["name"] for r in rec["vms"].values() for d in r.get("dataVolumes") or [])
        rec["message"] = (f"original volumes restored; the destination DataVolumes are kept - remove them with: "
                          f"kubectl delete dv -n {ns} {dvs} --ignore-not-found")
        self._save(rec, cm)
        self.echo(rec["message"])

    def _cancel_vm(self, rec, vm_name, r, deadline):
        ns = rec["namespace"]
        vm = self.kube.get_or_none(R.VM, vm_name, ns)
        if vm is None:
            r.update(phase="Canceled", result="Canceled", message="VM no longer exists", gaveUp=False)
            return
        conds = {c.get("type"): c for c in (vm.get("status") or {}).get("conditions") or []}
        if (conds.get("ManualRecoveryRequired") or {}).get("status") == "True":
            state = self._last_migration_state(rec, vm_name, r)
            if (state or {}).get("targetNodeDomainReadyTimestamp"):
                ops = clear_strategy_patch(vm)
                if ops:
                    guarded_patch(self.kube, vm_name, ns, ops, "accept destination (remove updateVolumesStrategy)")
                r.update(phase="Canceled", result="Canceled", gaveUp=False,
                         message="the copy had completed (targetNodeDomainReadyTimestamp "
                                 f"{state['targetNodeDomainReadyTimestamp']}): kept the destination volumes and "
                                 "removed spec.updateVolumesStrategy; start the VM")
                self.echo(f"{vm_name}: {r['message']}")
                return
        if r.get("patchedAt") or any(c in (r.get("targetClaims") or {}).values()
                                     for c in _claims(vm).values()):
            for _ in range(3):  # virt-controller may bump the VM between our read and patch
                ops = revert_patch(vm, r["mapping"], r.get("templateStorageClasses"))
                if not ops:
                    break
                try:
                    guarded_patch(self.kube, vm_name, ns, ops, "revert")
                    break
                except PatchRefused:
                    vm = self.kube.get(R.VM, vm_name, ns)
            self.echo(f"{vm_name}: original volumes restored ({', '.join(f'{v}={c}' for v, c in sorted(r['originalClaims'].items()))})")
            if r["mode"] == "live":
                self._wait_cancel(ns, vm_name, r, deadline)
                # the strategy stays on a running VM (its removal raises RestartRequired, vm.go
                # syncRestartRequired); on a stopped one dropping it is safe and clears ManualRecoveryRequired
                if self.kube.get_or_none(R.VMI, vm_name, ns) is None:
                    ops = clear_strategy_patch(self.kube.get(R.VM, vm_name, ns))
                    if ops:
                        guarded_patch(self.kube, vm_name, ns, ops, "clear updateVolumesStrategy (VM stopped)")
        if r.get("stoppedByPlugin") and r.get("startPatch"):
            vm = self.kube.get(R.VM, vm_name, ns)
            if (vm.get("spec") or {}).get("runStrategy") == "Halted" or (vm.get("spec") or {}).get("running") is False:
                guarded_patch(self.kube, vm_name, ns, r["startPatch"], "restart")
        r.update(phase="Canceled", result="Canceled", message="original volumes restored", gaveUp=False)

    def _wait_cancel(self, ns, vm_name, r, deadline):
        while True:
            vm = self.kube.get_or_none(R.VM, vm_name, ns)
            vmi = self.kube.get_or_none(R.VMI, vm_name, ns)
            if cancel_done(r, vm, vmi):
                return
            if time.monotonic() > deadline:
                raise errors.MigrationFailed(
                    f"VM {ns}/{vm_name}: the original volumes are restored in the VM spec but KubeVirt has not "
                    "confirmed the cancellation yet (VMI still shows the destination or VolumesChange=True)",
                    hint=f"check 'kubectl get vmi -n {ns} {vm_name} -o yaml' and re-run cancel")
            time.sleep(float(self.options.get("poll") or 1.0))

    def _judge(self, rec, vm_name, r) -> dict:
        ns = rec["namespace"]
        vmi = self.kube.get_or_none(R.VMI, vm_name, ns)
        vmims = vmims_of(self.kube.items(R.VMIM, ns), vm_name)
        return judge_live(r, self.kube.get_or_none(R.VM, vm_name, ns), vmi, vmims, rec["name"], vm_name)

    def _finished_by_kubevirt(self, rec) -> List[str]:
        """Live VMs of the record whose copy KubeVirt completed (judged from the cluster, not the record)."""
        return [v for v, r in rec["vms"].items()
                if r["mode"] == "live" and r.get("patchedAt") and r.get("result") != "Canceled"
                and self._judge(rec, v, r)["result"] == "Succeeded"]

    def _last_migration_state(self, rec, vm_name, r) -> Optional[dict]:
        """targetNodeDomainReadyTimestamp from the VMI, the VMIM (when final) or what the record last saw."""
        return self._judge(rec, vm_name, r)["migrationState"] or r.get("migrationState")


def _by_name(objs, namespace) -> Dict[str, dict]:
    if objs is None:
        return {}
    if isinstance(objs, dict):
        return objs
    return {o["metadata"]["name"]: o for o in objs
            if (o.get("metadata") or {}).get("namespace") in (None, "", namespace)}


def _claims(vm):
    return volume_claims(vm)
