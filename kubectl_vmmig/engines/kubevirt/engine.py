"""The kubevirt engine: KubeVirt's own volume migration (``spec.updateVolumesStrategy: Migration``) for running
VMs, CDI clones for stopped ones, without MTC. Engine surface as in docs/ARCHITECTURE.md.

Pure parts live in ``build`` (DVs, record, preview), ``checks`` (preflight) and
``track`` (success judgement); the state machine in ``steps``. This module is the I/O:
reading the VMs, the migration record ConfigMap, driving, status rows and cancel.

``options`` (dict, all optional): stop, keep_update_strategy, access_mode, volume_mode, wait (default True),
timeout (seconds, 0 = none), poll (seconds), max_failures (failed VMIMs before giving up following, 3),
cancel_timeout (seconds), echo (callable(str) for progress lines; the command's stderr).
"""
import time
from typing import Dict, List, Optional, Tuple

from ... import errors
from ... import resources as R
from ...patches import clear_strategy_patch, revert_patch
from . import build as B
from .checks import kubevirt_engine_findings
from .steps import TERMINAL, Driver, PatchRefused, guarded_patch, now
from .track import cancel_done, judge_live, vmim_selector


# Every API call of this engine (migrate, check, status, cancel): (verb, Resource, subresource, namespaced).
# deploy/rbac/kubevirt-engine.yaml grants exactly these (tests/unit/test_rbac_manifests.py keeps them in step).
PERMISSIONS = (
    ("get", R.VM, None, True), ("list", R.VM, None, True), ("patch", R.VM, None, True),
    ("get", R.VMI, None, True), ("list", R.VMI, None, True), ("list", R.VMIM, None, True),
    ("get", R.DATAVOLUME, None, True), ("list", R.DATAVOLUME, None, True), ("create", R.DATAVOLUME, None, True),
    ("get", R.PVC, None, True), ("list", R.PVC, None, True), ("list", R.POD, None, True),
    ("get", R.CONFIGMAP, None, True), ("list", R.CONFIGMAP, None, True), ("create", R.CONFIGMAP, None, True),
    ("update", R.CONFIGMAP, None, True),
    ("list", R.STORAGECLASS, None, False), ("list", R.NODE, None, False), ("list", R.KUBEVIRT, None, False),
)


def _silent(msg: str) -> None:
    """The default ``echo``: the commands always pass theirs (IOStreams.say); engines never print."""


class KubevirtEngine:
    name = "kubevirt"

    def __init__(self, kube, options=None):
        self.kube = kube
        self.options = dict(options or {})
        self.echo = self.options.get("echo") or _silent

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

    def checks(self, plan, inventory) -> List[dict]:
        return kubevirt_engine_findings(plan, inventory, self.cluster_facts(plan))

    def cluster_facts(self, plan) -> dict:
        ns = plan["namespace"]
        k = self.kube

        def soft(fn, default):
            try:
                return fn()
            except (errors.NotFound, errors.Forbidden):
                return default

        kvs = soft(lambda: k.items(R.KUBEVIRT, all_namespaces=True), [])
        cdi = soft(lambda: k.has_api("cdi.kubevirt.io", "v1beta1"), False)
        existing = {}
        for res in (R.PVC, R.DATAVOLUME) if cdi else (R.PVC,):
            for o in soft(lambda: k.items(res, ns), []):
                md = o.get("metadata") or {}
                existing.setdefault(md.get("name"), {"kind": res.kind, "labels": md.get("labels") or {}})
        rbac = []
        for verb, res, sub, scoped in PERMISSIONS:
            allowed, reason = k.can_i(verb, res.plural, res.group, ns if scoped else None, sub)
            rbac.append({"verb": verb, "resource": res.plural, "group": res.group, "subresource": sub,
                         "allowed": allowed, "reason": reason})
        return {"kubevirt": kvs[0] if kvs else None, "cdi": cdi,
                "nodes": soft(lambda: k.items(R.NODE), []),
                "storageClasses": {s["metadata"]["name"] for s in soft(lambda: k.items(R.STORAGECLASS), [])},
                "existing": existing, "vmims": soft(lambda: k.items(R.VMIM, ns), []), "rbac": rbac,
                "stop": bool(self.options.get("stop")), "migration": B.migration_name(plan)}

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
        ns, migration = plan["namespace"], B.migration_name(plan)
        cm, rec = (None, None) if dry_run_server else self._load(migration, ns)
        if rec is None or rec.get("result") != "Running":
            vms, vmis = self._read_vms(plan)
            fresh = B.new_record(plan, vms, migration, started=now(), **self._record_kw(vmis))
            if rec is not None:
                self._refuse_stale_clones(fresh)
            rec = fresh
            cm = self._save(rec, cm, dry=dry_run_server)
            if not dry_run_server:
                self.echo(f"migration {migration}: record configmap/{B.record_name(migration)} in {ns}")
        else:
            self.echo(f"migration {migration} is already running: re-attaching")
        opts = dict(self.options, dry_run_server=dry_run_server)
        driver = Driver(self.kube, rec, opts, self.echo)
        wait = self.options.get("wait", True) and not dry_run_server
        deadline = time.monotonic() + float(self.options.get("timeout") or 0) if self.options.get("timeout") else None
        try:
            while True:
                before = repr(rec)
                try:
                    driver.advance()
                finally:
                    if not dry_run_server and repr(rec) != before:
                        cm = self._save(rec, cm)
                if rec["result"] != "Running" or (not wait and _handed_off(rec)):
                    break
                if deadline and time.monotonic() > deadline:
                    self.echo(f"timed out waiting; the migration goes on - follow it with "
                              f"'kubectl vm-storage status {migration} -n {ns} -w'")
                    break
                time.sleep(float(self.options.get("poll") or 1.0))
        except KeyboardInterrupt:
            self.echo(f"stopped following; re-run the same command to resume migration {migration}")
            raise
        if not wait and rec["result"] == "Running" and not dry_run_server and not rec.get("keepUpdateStrategy"):
            vms = " ".join(v for v, r in rec["vms"].items() if r["mode"] == "live")
            if vms:
                self.echo("detached: KubeVirt finishes the copy; after it succeeds remove the migration strategy "
                          f"with: kubectl patch vm -n {ns} <vm> --type=json "
                          "-p '[{\"op\":\"remove\",\"path\":\"/spec/updateVolumesStrategy\"}]' "
                          f"(VMs: {vms}), or use --wait to have it done")
        return {"migration": migration, "plan": migration, "name": migration, "namespace": ns,
                "engine": self.name, "result": rec["result"], "message": rec.get("message") or ""}

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
        rec["phase"] = "Canceling"
        cm = self._save(rec, cm)
        deadline = time.monotonic() + float(self.options.get("cancel_timeout") or 120)
        for vm_name, r in rec["vms"].items():
            if r.get("phase") == "Canceled":
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
            r.update(phase="Canceled", result="Canceled", message="VM no longer exists")
            return
        conds = {c.get("type"): c for c in (vm.get("status") or {}).get("conditions") or []}
        if (conds.get("ManualRecoveryRequired") or {}).get("status") == "True":
            state = self._last_migration_state(rec, vm_name, r)
            if (state or {}).get("targetNodeDomainReadyTimestamp"):
                ops = clear_strategy_patch(vm)
                if ops:
                    guarded_patch(self.kube, vm_name, ns, ops, "accept destination (remove updateVolumesStrategy)")
                r.update(phase="Canceled", result="Canceled",
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
                vm = self.kube.get(R.VM, vm_name, ns)
                ops = clear_strategy_patch(vm)
                if ops and not rec.get("keepUpdateStrategy"):
                    guarded_patch(self.kube, vm_name, ns, ops, "clear updateVolumesStrategy")
        if r.get("stoppedByPlugin") and r.get("startPatch"):
            vm = self.kube.get(R.VM, vm_name, ns)
            if (vm.get("spec") or {}).get("runStrategy") == "Halted" or (vm.get("spec") or {}).get("running") is False:
                guarded_patch(self.kube, vm_name, ns, r["startPatch"], "restart")
        r.update(phase="Canceled", result="Canceled", message="original volumes restored")

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

    def _last_migration_state(self, rec, vm_name, r) -> Optional[dict]:
        """targetNodeDomainReadyTimestamp from the VMI, the VMIM (when final) or what the record last saw."""
        ns = rec["namespace"]
        vmi = self.kube.get_or_none(R.VMI, vm_name, ns)
        uid = (vmi or {}).get("metadata", {}).get("uid")
        vmims = self.kube.items(R.VMIM, ns, label_selector=vmim_selector(vm_name, uid))
        j = judge_live(r, self.kube.get_or_none(R.VM, vm_name, ns), vmi, vmims, rec["name"], vm_name)
        return j["migrationState"] or r.get("migrationState")


def _by_name(objs, namespace) -> Dict[str, dict]:
    if objs is None:
        return {}
    if isinstance(objs, dict):
        return objs
    return {o["metadata"]["name"]: o for o in objs
            if (o.get("metadata") or {}).get("namespace") in (None, "", namespace)}


def _handed_off(rec) -> bool:
    """Detached runs return once nothing needs the plugin until the end: live VMs patched (KubeVirt copies),
    offline VMs done (every offline step is driven by the plugin)."""
    return all(r.get("phase") in TERMINAL or (r["mode"] == "live" and r.get("phase") in ("Migrating", "CleaningUp"))
               for r in rec["vms"].values())


def _claims(vm):
    from ...patches import volume_claims

    return volume_claims(vm)
