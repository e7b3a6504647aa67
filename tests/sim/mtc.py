"""The mig-controller stand-in: ``MigController(kube, pace, namespaces)``.

One ``step()`` reconciles, in order: MigClusters, MigPlans, MigMigrations (one phase each), DVMs (one phase
or one progress increment each). Parts: mtc_plan (clusters/plans), mtc_migration (MigMigration),
mtc_dvm + mtc_dvm_copy (DVM/DVMP), mtc_workloads (quiesce, VM changes), mtc_progress (progress strings).
"""
from typing import List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import MTC_NAMESPACE, StandIn, fault_bool, faults
from .mtc_dvm import DvmReconciler
from .mtc_migration import MigrationReconciler, in_plan_namespaces
from .mtc_plan import install_mtc, reconcile_cluster, safe_reconcile_plan  # noqa: F401  (install_mtc re-export)


class MigController(StandIn):
    name = "mig-controller"

    def __init__(self, kube, pace: float = 0.05, namespaces: Optional[List[str]] = None, rsync_increment: int = 20):
        super().__init__(kube, pace, namespaces)
        self.migrations = MigrationReconciler(self.kube)  # the write-counting client (StandIn.run)
        self.dvms = DvmReconciler(self.kube, rsync_increment=rsync_increment)

    def _items(self, res):
        """Every watch of the real controllers is filtered to openshift-migration (migplan_controller.go
        add + migplan/predicate.go PlanPredicate, migmigration/predicate.go MigrationPredicate,
        directvolumemigration_controller.go MigrationNamespacePredicate, migcluster_controller.go): MTC
        objects anywhere else are never reconciled."""
        try:
            return self.kube.items(res, MTC_NAMESPACE)
        except errors.NotFound:
            return []

    def step(self) -> None:
        if not self.kube.get_or_none(R.NAMESPACE, MTC_NAMESPACE):
            return
        clusters = {}
        for mc in self._items(R.MIGCLUSTER):
            if self.namespaces is None:  # scoped instances leave shared objects to the global one
                reconcile_cluster(self.kube, mc)
            clusters[mc["metadata"]["name"]] = mc
        clusters = {mc["metadata"]["name"]: mc for mc in self._items(R.MIGCLUSTER)}
        storage_classes = self.kube.items(R.STORAGECLASS)
        plans = self._items(R.MIGPLAN)
        all_migrations = self._items(R.MIGMIGRATION)
        for plan in plans:
            if in_plan_namespaces(plan, self.namespaces) and not self._excluded(plan) and not self._stalled(plan):
                safe_reconcile_plan(self.kube, plan, plans, clusters, storage_classes, all_migrations)
        plans_by_name = {p["metadata"]["name"]: p for p in self._items(R.MIGPLAN)}
        migrations = self._items(R.MIGMIGRATION)
        migrations.sort(key=lambda m: (m["metadata"].get("creationTimestamp") or "", m["metadata"]["name"]))
        for mig in migrations:
            plan = plans_by_name.get(((mig.get("spec") or {}).get("migPlanRef") or {}).get("name"))
            if not in_plan_namespaces(plan, self.namespaces) and not (plan is None and self.namespaces is None):
                continue
            if self._excluded(plan):
                continue
            f = self._faults(plan)
            if fault_bool(f, "stall"):
                continue
            try:
                self.migrations.reconcile(mig, migrations, f)
            except errors.Conflict:
                pass
        for dvm in self._items(R.DVM):
            pvcs = dvm["spec"].get("persistentVolumeClaims") or []
            ns = pvcs[0]["namespace"] if pvcs else None
            if not self.in_scope(ns):
                continue
            f = faults(self.kube, ns)
            if fault_bool(f, "stall"):
                continue
            try:
                self.dvms.reconcile(dvm, f)
            except (errors.Conflict, errors.NotFound):
                pass

    def _faults(self, plan):
        if not plan:
            return {}
        out = {}
        for ns in [n.split(":")[0] for n in plan["spec"].get("namespaces") or []]:
            out.update(faults(self.kube, ns))
        return out

    def _excluded(self, plan) -> bool:
        """A plan covering a namespace kept for hand-stepped tests (common.MANUAL_LABEL)."""
        return bool(plan) and bool({n.split(":")[0] for n in plan["spec"].get("namespaces") or []} & self.excluded)

    def _stalled(self, plan):
        return fault_bool(self._faults(plan), "stall")
