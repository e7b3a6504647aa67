"""The migration-controller engine as the commands see it (engines/base.py ``Engine``): kubevirt-migration-controller
(migrations.kubevirt.io/v1alpha1) moves the disks; this glue reads, writes and calls the pure ``build``, ``checks``
and ``progress`` (the one verdict).

apply: plan (one per namespace and run) → wait for the controller's judgement (its conditions are the last
preflight; a refused plan is deleted again, nothing else was made) → destination DataVolumes (see build.py why)
→ the VirtualMachineStorageMigration. cancel = delete the migration, as upstream defines it (storagemig/task.go
Canceling), after refusing the two cases in which the controller's revert does harm or hangs.
"""
import time
from typing import List, Optional

from ... import errors
from ... import resources as R
from ..base import LIVE, OFFLINE, Engine, Existing, Permission, StatusScope

# Every API call of this engine: (verb, Resource, scope). deploy/rbac/migration-controller-engine.yaml grants exactly
# these (tests/unit/test_rbac_manifests.py keeps them in step). delete: only the engine's own plan (refused by the
# controller) and migration (cancel) — never a volume.
PERMISSIONS = (
    ("get", R.VM, "namespace"), ("list", R.VM, "namespace"), ("get", R.VMI, "namespace"),
    ("list", R.VMI, "namespace"), ("list", R.VMIM, "namespace"),
    ("get", R.DATAVOLUME, "namespace"), ("list", R.DATAVOLUME, "namespace"), ("create", R.DATAVOLUME, "namespace"),
    # the offline clones are the plugin's own DataVolumes, of a PVC of the same namespace: CDI's webhook then
    # asks for nothing more (authorize_utils.go CanUserClonePVC: source namespace == target namespace -> allowed)
    ("get", R.PVC, "namespace"), ("list", R.PVC, "namespace"), ("list", R.POD, "namespace"),
    ("get", R.VMSM_PLAN, "namespace"), ("list", R.VMSM_PLAN, "namespace"), ("create", R.VMSM_PLAN, "namespace"),
    ("patch", R.VMSM_PLAN, "namespace"), ("delete", R.VMSM_PLAN, "namespace"),
    ("get", R.VMSM, "namespace"), ("list", R.VMSM, "namespace"), ("create", R.VMSM, "namespace"),
    ("delete", R.VMSM, "namespace"),
    # the fleet unit (migrate -A): one MultiNamespace plan + migration in the fleet's first namespace; delete: a
    # refused fleet plan (and its unowned children, above) and the fleet migration (cancel)
    ("get", R.MN_VMSM_PLAN, "namespace"), ("list", R.MN_VMSM_PLAN, "namespace"),
    ("create", R.MN_VMSM_PLAN, "namespace"), ("delete", R.MN_VMSM_PLAN, "namespace"),
    ("get", R.MN_VMSM, "namespace"), ("create", R.MN_VMSM, "namespace"), ("delete", R.MN_VMSM, "namespace"),
    ("list", R.STORAGECLASS, "cluster"), ("list", R.NODE, "cluster"), ("list", R.KUBEVIRT, "cluster"),
    ("list", R.MIGCONTROLLER, "cluster"),
)


class MigrationController(Engine):
    name = "migration-controller"
    status_subject = "migration-controller migrations"
    title = "kubevirt-migration-controller (VirtualMachineStorageMigrationPlan)"
    supports = frozenset({LIVE, OFFLINE})

    def __init__(self, kube, options=None):
        super().__init__(kube, options)
        self.events = self.options.get("echo") or (lambda line: None)

    # ---- choosing ----------------------------------------------------------------------------------
    def _soft(self, fn, default):
        try:
            return fn()
        except (errors.NotFound, errors.Forbidden):
            return default

    def declined(self, objects=None) -> Optional[str]:
        from .checks import controller_state

        if self.kube is None:
            return "-f files cannot show whether kubevirt-migration-controller runs"
        if not self.kube.has_api(R.MIGRATIONS, "v1alpha1"):
            return "the migrations.kubevirt.io API is not served"
        try:
            mcs = self.kube.items(R.MIGCONTROLLER, all_namespaces=True)
        except errors.NotFound:
            return "the MigController API is not served (kubevirt-migration-operator is not installed)"
        except errors.Forbidden:
            return "not allowed to list migcontrollers.migrations.kubevirt.io (see README, RBAC)"
        why = controller_state(mcs)
        if why is None:
            self.chosen_because = "its CRDs are served and its MigController is Deployed and Available"
        return why

    # ---- preflight ---------------------------------------------------------------------------------
    @classmethod
    def permissions(cls, write=True) -> List[Permission]:
        writes = ("create", "patch", "delete")
        return [Permission(p[0], p[1].group, p[1].plural, p[2], p[3] if len(p) > 3 else None) for p in PERMISSIONS
                if write or p[0] not in writes]

    def naming(self, namespace, target_storage_class):
        from ..kubevirt.build import destination_name

        return lambda d: destination_name(d["claim"], target_storage_class)

    def cluster_facts(self, plan, write=True) -> dict:
        from . import build as B

        k, ns = self.kube, plan["namespace"]
        served = k.has_api(R.MIGRATIONS, "v1alpha1")
        cdi = self._soft(lambda: k.has_api("cdi.kubevirt.io", "v1beta1"), False)
        existing = {}
        for res in (R.PVC, R.DATAVOLUME) if cdi else (R.PVC,):
            for o in self._soft(lambda: k.items(res, ns), []):
                existing.setdefault(o["metadata"]["name"], {"kind": res.kind, "labels": o["metadata"].get("labels")})
        rbac = []
        for p in self.permissions(write):
            allowed, reason = k.can_i(p.verb, p.resource, p.group, ns if p.scope == "namespace" else None,
                                      p.subresource)
            rbac.append({"verb": p.verb, "resource": p.resource, "group": p.group, "subresource": p.subresource,
                         "allowed": allowed, "reason": reason})
        kvs = self._soft(lambda: k.items(R.KUBEVIRT, all_namespaces=True), [])
        return {"kubevirt": kvs[0] if kvs else None, "served": served, "cdi": cdi,
                "migcontrollers": self._soft(lambda: k.items(R.MIGCONTROLLER, all_namespaces=True), []) if served
                else [], "nodes": self._soft(lambda: k.items(R.NODE), []),
                "storageClasses": self._soft(lambda: k.items(R.STORAGECLASS), []), "existing": existing,
                "vmims": self._soft(lambda: k.items(R.VMIM, ns), []), "rbac": rbac, "plan": B.plan_name(plan)}

    def checks(self, plan, inventory, request, objects, write=True) -> List[dict]:
        from .checks import engine_findings

        if self.kube is None:
            cluster = {"kubevirt": (objects.get("KubeVirt") or [None])[0], "served": True, "cdi": True,
                       "migcontrollers": [], "storageClasses": objects.get("StorageClass") or []}
        else:
            cluster = self.cluster_facts(plan, write)
        return list(plan["findings"]) + engine_findings(plan, inventory, cluster)

    def existing(self, request, namespace, vm_names) -> Optional[Existing]:
        """Every disk is on the target already: a plan of ours that moved exactly these VMs there."""
        from . import build as B

        plans = self._soft(lambda: self.kube.items(R.VMSM_PLAN, namespace,
                                                   label_selector=f"{B.L.ENGINE}={B.ENGINE}"), [])
        for p in sorted(plans, key=lambda o: o["metadata"].get("creationTimestamp") or "", reverse=True):
            rec = B.read_record(p)
            if (p["metadata"].get("labels") or {}).get(B.L.ENGINE) == B.ENGINE and sorted(rec) == sorted(vm_names):
                name = p["metadata"]["name"]
                return Existing(ref={"migration": name, "plan": name, "namespace": namespace, "engine": B.ENGINE},
                                message=f"the disks are on the target already: following migration {name}")
        return None

    # ---- writing -----------------------------------------------------------------------------------
    def _vms(self, plan, objects=None):
        if objects and objects.get("VirtualMachine"):
            return {v["metadata"]["name"]: v for v in objects["VirtualMachine"]}
        return {n: self.kube.get(R.VM, n, plan["namespace"]) for n in sorted({m["vm"] for m in plan["moves"]})}

    def preview(self, plan, request, objects, checks) -> dict:
        from . import build as B

        return B.preview(plan, self._vms(plan, objects), checks)

    def apply(self, plan, request, events) -> dict:
        from . import build as B
        from .checks import plan_findings, plan_reconciled

        k, ns, name = self.kube, plan["namespace"], B.plan_name(plan)
        ref = {"migration": name, "plan": name, "name": name, "namespace": ns, "engine": B.ENGINE, "result": "Running"}
        vms = self._vms(plan)
        sp, dvs = B.storage_plan(plan, name), B.destination_datavolumes(plan, name, vms)
        if request.dry_run == "server":
            for obj, res in [(d, R.DATAVOLUME) for d in dvs] + [(sp, R.VMSM_PLAN), (B.storage_migration(sp), R.VMSM)]:
                k.create(res, obj, ns, dry_run=True)
            return ref
        if k.get_or_none(R.VMSM, name, ns) is not None:
            events(f"migration {name} exists already: re-attaching")
            return ref
        current = k.get_or_none(R.VMSM_PLAN, name, ns) or k.create(R.VMSM_PLAN, sp, ns)
        events(f"plan virtualmachinestoragemigrationplan/{name} in {ns}: waiting for kubevirt-migration-controller")
        deadline = time.monotonic() + float(self.options.get("plan_timeout") or 60)
        while not plan_reconciled(current):
            if time.monotonic() > deadline:
                k.delete(R.VMSM_PLAN, name, ns)
                raise errors.PreflightRefused(
                    f"kubevirt-migration-controller did not judge plan {name} within "
                    f"{int(float(self.options.get('plan_timeout') or 60))}s; the plan was removed again",
                    "check that the controller runs (kubectl get migcontroller -A) and re-run")
            time.sleep(float(self.options.get("poll") or 0.5))
            current = k.get(R.VMSM_PLAN, name, ns)
        found = plan_findings(current, sorted(B.record_of(plan)))
        bad = [f for f in found if f["severity"] == "error"]
        if bad:
            k.delete(R.VMSM_PLAN, name, ns)
            raise errors.PreflightRefused(f"preflight refused by kubevirt-migration-controller: {bad[0]['message']}"
                                          + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                                          "nothing was changed (the plan was removed again); fix it and re-run",
                                          findings=found)
        for f in found:
            if f["severity"] == "warning":
                events(f"warning: {f['message']}")
        for dv in dvs:
            if k.get_or_none(R.DATAVOLUME, dv["metadata"]["name"], ns) is None:
                k.create(R.DATAVOLUME, dv, ns)
        k.create(R.VMSM, B.storage_migration(current), ns)
        events(f"migration virtualmachinestoragemigration/{name} created: kubevirt-migration-controller moves "
               f"{len(plan['moves'])} disk(s); the sources are kept (retentionPolicy keepSource)")
        return ref

    # ---- reading -----------------------------------------------------------------------------------
    @classmethod
    def fetch_objects(cls, kube, scope: StatusScope) -> List[dict]:
        from . import progress

        return progress.fetch_objects(kube, scope.namespace, scope.all_namespaces)

    @classmethod
    def migrations(cls, objects, namespace, now=None) -> List[dict]:
        from . import progress

        return progress.from_objects(objects, namespace=namespace, now=now)

    # ---- after the fact ----------------------------------------------------------------------------
    def owns(self, name, namespace) -> bool:
        from . import build as B
        from . import fleet as F

        p = self._soft(lambda: self.kube.get_or_none(R.VMSM_PLAN, name, namespace), None)
        if p is None:  # a fleet: the MultiNamespace plan in its first namespace
            return F.ours(self._soft(lambda: self.kube.get_or_none(R.MN_VMSM_PLAN, name, namespace), None))
        return bool(p) and (p["metadata"].get("labels") or {}).get(B.L.ENGINE) == B.ENGINE

    def preview_fleet(self, plans, objects_by_ns, checks) -> dict:
        from . import fleet as F

        return F.preview(plans, {p["namespace"]: self._vms(p, objects_by_ns.get(p["namespace"])) for p in plans},
                         checks)

    def apply_fleet(self, plans, request, events) -> list:
        """ONE MultiNamespace plan + migration for every namespace's prepared plan: a ref per plan, in order
        (engines/base.py ``apply_fleet``; with --wait once every namespace ended)."""
        from .fleet_run import apply_fleet

        return apply_fleet(self, plans, request, events)

    def cancel(self, name, namespace) -> str:
        """Delete the VirtualMachineStorageMigration (upstream's cancel), unless its revert would do harm; for a
        fleet, every namespace's (fleet_run.cancel_fleet)."""
        from . import build as B
        from . import fleet as F
        from .fleet_run import cancel_fleet

        k = self.kube
        plan = k.get_or_none(R.VMSM_PLAN, name, namespace)
        if plan is None and self.owns(name, namespace):
            return cancel_fleet(self, name, namespace)
        if plan is None or not self.owns(name, namespace):
            raise errors.NotFoundInput(f"no migration-controller migration {name} in namespace {namespace}",
                                       "list them with: kubectl vm-storage status -n NAMESPACE")
        mig = k.get_or_none(R.VMSM, name, namespace)
        if mig is None:
            raise errors.PreflightRefused(f"migration {name} has no VirtualMachineStorageMigration (never started, "
                                          "finished or canceled already)", "see kubectl vm-storage status")
        parent = F.parent_of(mig)
        if parent and k.get_or_none(R.MN_VMSM, parent[1], parent[0]) is not None:
            raise errors.PreflightRefused(
                f"migration {name} is namespace {namespace}'s part of fleet migration {parent[1]} (namespace "
                f"{parent[0]}): kubevirt-migration-controller would start it again after a cancel of this part only",
                f"nothing was changed; cancel the fleet: kubectl vm-storage cancel {parent[1]} -n {parent[0]}")
        if self.refuse_cancel(name, namespace):
            raise errors.PreflightRefused(f"migration {name} has finished: every disk is on the target",
                                          "to go back, migrate the VMs again to the source StorageClass")
        k.patch(R.VMSM_PLAN, name, {"metadata": {"annotations": {B.CANCELED: _now()}}}, namespace)
        k.delete(R.VMSM, name, namespace)
        return (f"migration {name} cancel requested: kubevirt-migration-controller reverts the VMs to their source "
                "volumes and deletes the destination DataVolumes")

    def refuse_cancel(self, name, namespace) -> bool:
        """Raise when the controller's revert of plan ``name`` would do harm or hang; True when it has finished
        (nothing to cancel)."""
        from . import build as B
        from .checks import lost_sources
        from .progress import SUCCEEDED

        k = self.kube
        now = self.read(namespace=namespace, name=name)
        if now and now[0]["result"] == SUCCEEDED:
            return True
        plan = k.get(R.VMSM_PLAN, name, namespace)
        rec = B.read_record(plan)
        lost = lost_sources(plan, rec)
        if lost:
            raise errors.PreflightRefused(
                f"kubevirt-migration-controller no longer records the source volumes of VM {', '.join(lost)} "
                f"(plan {name} status.sourcePVCs name the destinations): deleting the migration would 'revert' the "
                "VM to the destination claims and delete the destination DataVolumes it uses",
                "nothing was changed; let the migration finish, or revert the VM's claims by hand to the sources "
                f"in: kubectl get vmsmp {name} -n {namespace} -o jsonpath='{{.metadata.annotations}}'")
        templated = [vm for vm, r in rec.items() if r.get("mode") == "live" and self._renamed_templates(
            k.get_or_none(R.VM, vm, namespace), r)]
        if templated:
            raise errors.PreflightRefused(
                f"kubevirt-migration-controller cannot cancel the live move of VM {', '.join(templated)}: its revert "
                "keeps spec.dataVolumeTemplates named after the destination (storagemig/cancel.go), which KubeVirt's "
                "VM admission refuses, so the cancel would hang",
                "nothing was changed; let the migration finish and migrate back, or use --engine kubevirt next time")
        return False

    @staticmethod
    def _renamed_templates(vm, rec_vm) -> bool:
        targets = {pair[1] for pair in (rec_vm.get("volumes") or {}).values()}
        names = {(t.get("metadata") or {}).get("name") for t in ((vm or {}).get("spec") or {}).get(
            "dataVolumeTemplates") or []}
        return bool(targets & names)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
