"""mig-controller stand-in: MigMigration itineraries, pipeline and conditions (BEHAVIOR.md §1, §5.3;
API.md §2). One call of ``reconcile_migration`` runs the current phase and moves to the next one."""
from typing import Dict, List, Optional

from kubectl_vmmig import resources as R

from .common import (MTC_NAMESPACE, fault_int, get_condition, labels, now, remove_condition, set_condition)
from .mtc_dvm import build_dvm
from .mtc_dvm_copy import _op  # noqa: F401  (re-exported for tests)
from .mtc_plan import (LBL_MIGRATED_BY_PLAN, LBL_SOURCE_FOR, STORAGE_CONVERSION, plan_ready, plan_type,
                       split_pvc_name)
from .mtc_workloads import (delete_migrated, migrated_deleted, quiesce, quiesced, swap_pvc_references,
                            handle_source_labels, unquiesce)
from .common import delete_any

from .mtc_itineraries import (DESCRIPTIONS, DV, ITINERARIES, LIVE, SWAP, N, Q)  # noqa: F401

MSG_FAILED = "The migration has failed.  See: Errors."


def copy_pvs(plan: dict) -> List[dict]:
    return [pv for pv in (plan.get("spec") or {}).get("persistentVolumes") or []
            if (pv.get("selection") or {}).get("action") == "copy"
            and (pv.get("selection") or {}).get("copyMethod") in ("filesystem", "block")]


def dvm_pvcs(plan: dict) -> List[dict]:
    out = []
    for pv in copy_pvs(plan):
        sel, pvc = pv["selection"], pv.get("pvc") or {}
        src, dst = split_pvc_name(pvc.get("name", ""))
        entry = {"name": src, "namespace": pvc.get("namespace"), "targetStorageClass": sel.get("storageClass"),
                 "targetAccessModes": [sel["accessMode"]] if sel.get("accessMode") else list(pvc.get("accessModes") or []),
                 "targetNamespace": pvc.get("namespace"), "targetName": dst}
        if pvc.get("volumeMode"):
            entry["targetVolumeMode"] = pvc["volumeMode"]
        if sel.get("verify"):
            entry["verify"] = True
        out.append(entry)
    return out


class MigrationReconciler:
    def __init__(self, kube):
        self.kube = kube

    # ---- lookups --------------------------------------------------------------------------------
    def plan_of(self, mig) -> Optional[dict]:
        ref = (mig.get("spec") or {}).get("migPlanRef") or {}
        if not ref.get("name"):
            return None
        return self.kube.get_or_none(R.MIGPLAN, ref["name"], ref.get("namespace") or MTC_NAMESPACE)

    def dvm_of(self, mig) -> Optional[dict]:
        items = self.kube.items(R.DVM, MTC_NAMESPACE,
                                label_selector=f"migration-direct-volume={mig['metadata']['uid']}")
        items.sort(key=lambda d: d["metadata"].get("creationTimestamp") or "")
        return items[-1] if items else None

    def _flags(self, mig, plan) -> Dict[str, bool]:
        spec = mig.get("spec") or {}
        sc = plan_type(plan) == STORAGE_CONVERSION
        return {N: False, Q: bool(spec.get("quiescePods")), DV: bool(copy_pvs(plan)),
                SWAP: sc and bool(spec.get("quiescePods")), LIVE: bool(plan["spec"].get("liveMigrate")), None: True}

    # ---- validation -----------------------------------------------------------------------------
    def blockers(self, mig, plan, migrations) -> List[tuple]:
        """Critical conditions of migmigration/validation.go (validatePlan, validateMigrationType) and
        migmigration_controller.go postpone, texts verbatim (", subject: <ns>/<name>" = path.Join of the
        migPlanRef). While any holds, Reconcile does not call migrate(): no phase runs, and a
        ``spec.canceled`` is not acted on either (migmigration_controller.go Reconcile)."""
        spec = mig.get("spec") or {}
        ref = spec.get("migPlanRef") or {}
        subject = "/".join(x for x in (ref.get("namespace"), ref.get("name")) if x)
        out = []
        if plan is None:
            if not ref.get("name"):
                out.append(("InvalidPlanRef", "NotSet", "The `migPlanRef` must reference a valid `migplan`."))
            else:
                out.append(("InvalidPlanRef", "NotFound",
                            f"The `migPlanRef` must reference a valid `migplan`, subject: {subject}."))
            return out
        if not plan_ready(plan):
            out.append(("PlanNotReady", None,
                        f"The referenced `migPlanRef` does not have a `Ready` condition, subject: {subject}."))
        if plan["spec"].get("closed"):
            out.append(("PlanClosed", None, f"The associated migration plan is closed, subject: {subject}."))
        if sum(bool(spec.get(k)) for k in ("stage", "migrateState", "rollback")) > 1:
            out.append(("InvalidSpec", "NotSupported",
                        "Only one of the stage/migrateState/rollback options can be set at a time"))
        elif not (spec.get("migrateState") or spec.get("rollback")):
            if any(":" in (pv.get("pvc") or {}).get("name", "") and len(set(split_pvc_name(pv["pvc"]["name"]))) == 2
                   for pv in plan["spec"].get("persistentVolumes") or []):
                out.append(("InvalidSpec", "NotSupported",
                            "One or more source PVCs are mapped to different destination PVCs. Stage/Final "
                            "migrations are not possible. Please remove PVC mappings."))
        if not out and not (mig.get("status") or {}).get("itinerary"):
            # postpone: pending = the plan's MigMigrations not Completed, stage ones first, each group by
            # creation time (migplan_types.go ListMigrations); not first → "Postponed <position*10> seconds".
            mine = [m for m in migrations
                    if ((m.get("spec") or {}).get("migPlanRef") or {}).get("name") == plan["metadata"]["name"]
                    and (m.get("status") or {}).get("phase") != "Completed"]
            mine.sort(key=lambda m: (not (m.get("spec") or {}).get("stage"),
                                     m["metadata"].get("creationTimestamp") or "", m["metadata"]["name"]))
            uids = [m["metadata"]["uid"] for m in mine]
            if uids and uids[0] != mig["metadata"]["uid"] and mig["metadata"]["uid"] in uids:
                out.append(("Postponed", None, f"Postponed {uids.index(mig['metadata']['uid']) * 10} seconds "
                                               "to ensure migrations run serially and in order."))
        return out

    # ---- the task -------------------------------------------------------------------------------
    def reconcile(self, mig: dict, migrations: List[dict], faults: Dict[str, str]) -> None:
        st = dict(mig.get("status") or {})
        st["conditions"] = list(st.get("conditions") or [])
        if st.get("phase") == "Completed":
            return
        plan = self.plan_of(mig)
        obj = {"status": st}
        blockers = self.blockers(mig, plan, migrations)
        for t in ("InvalidSpec", "InvalidPlanRef", "PlanClosed", "PlanNotReady", "Postponed"):
            remove_condition(obj, t)
        if blockers:
            for ctype, reason, msg in blockers:
                set_condition(obj, ctype, "True", reason, "Critical", msg)
            remove_condition(obj, "Ready")
            return self._write(mig, st)
        set_condition(obj, "Ready", "True", None, "Required", "The migration is ready.")
        spec = mig.get("spec") or {}
        if st.get("errors") or get_condition(obj, "Failed"):
            itin = "Failed"
        elif spec.get("canceled") or get_condition(obj, "Canceling") or get_condition(obj, "Canceled"):
            itin = "Cancel"
        elif spec.get("rollback"):
            itin = "Rollback"
        else:
            itin = "Stage"
        flags = self._flags(mig, plan)
        if st.get("itinerary") != itin:
            if itin == "Cancel":
                set_condition(obj, "Canceling", "True", "Cancel", "Advisory", "The migration is being canceled.")
            st["itinerary"] = itin
            first = ITINERARIES[itin][0][0]
            if not st.get("pipeline"):
                st["pipeline"] = self._init_pipeline(ITINERARIES[itin], flags)
            st["startTimestamp"] = st.get("startTimestamp") or now()
            self._goto(st, first, flags)
            return self._write(mig, st)
        phase = st.get("phase", "")
        handler = getattr(self, "_p_" + (phase or "Created"), None)
        advance = handler(mig, plan, st, faults, flags) if handler else True
        if advance and st.get("itinerary") == itin:
            self._goto(st, self._next(itin, phase, flags), flags)
        self._write(mig, st)

    def _next(self, itin, phase, flags) -> str:
        phases = ITINERARIES[itin]
        names = [p[0] for p in phases]
        i = names.index(phase) if phase in names else -1
        for name, _, flag in phases[i + 1:]:
            if flags.get(flag, True):
                return name
        return "Completed"

    def _init_pipeline(self, phases, flags) -> List[dict]:
        steps = []
        for _, step, flag in phases:
            if step and flags.get(flag, True) and step not in [s["name"] for s in steps]:
                steps.append({"name": step, "message": "Not started"})
        return steps

    def _goto(self, st, phase, flags, description=None):
        st["phase"] = phase
        phases = ITINERARIES[st["itinerary"]]
        names = [p[0] for p in phases]
        obj = {"status": st}
        step = dict((p[0], p[1]) for p in phases).get(phase)
        pipeline = st.get("pipeline") or []
        if phase == "Completed":
            remove_condition(obj, "Running")
            remove_condition(obj, "Ready")
            for s in pipeline:
                if s.get("started") and not s.get("completed"):
                    s["completed"] = now()
                    s.pop("phase", None)
                    if not s.get("failed"):
                        s["message"] = "Canceled" if st["itinerary"] == "Cancel" else "Completed"
            self._final_conditions(st)
            return
        set_condition(obj, "Running", "True", phase, "Advisory", f"Step: {names.index(phase) + 1}/{len(names)}")
        if not step:
            return
        idx = next((i for i, s in enumerate(pipeline) if s["name"] == step), None)
        if idx is None:
            return
        for s in pipeline[:idx]:
            if s.get("started") and not s.get("completed"):
                s["completed"] = now()
                s["message"] = "Completed"
                s.pop("phase", None)
            elif not s.get("started"):
                s["skipped"] = True
        cur = pipeline[idx]
        cur["started"] = cur.get("started") or now()
        cur["phase"] = phase
        cur["message"] = description or DESCRIPTIONS.get(phase, "")

    def _final_conditions(self, st):
        """migmigration/migrate.go at Completed: no Failed and no Warn condition → Succeeded, no Failed
        but a Warn → SucceededWithWarnings. Canceled is not looked at: a canceled migration (Cancel
        itinerary, which ends at Completed) carries Canceled AND Succeeded."""
        obj = {"status": st}
        if get_condition(obj, "Failed"):
            return
        if any(c.get("category") == "Warn" for c in st["conditions"]):
            set_condition(obj, "SucceededWithWarnings", "True", "Completed", "Advisory",
                          "The migration has completed with warnings, please look at `Warn` conditions.",
                          durable=True)
        else:
            set_condition(obj, "Succeeded", "True", "Completed", "Advisory",
                          "The migration has completed successfully.", durable=True)

    def fail(self, st, reasons: List[str]):
        obj = {"status": st}
        phase = st.get("phase") or "Created"
        set_condition(obj, "Failed", "True", phase, "Advisory", MSG_FAILED, durable=True)
        errs = list(st.get("errors") or [])
        for r in reasons:
            if r not in errs:
                errs.append(r)
        st["errors"] = errs
        for s in st.get("pipeline") or []:
            if s.get("started") and not s.get("completed"):
                s.update(failed=True, message="Failed", completed=now())
                s.pop("phase", None)
        st["itinerary"] = "Failed"
        self._goto(st, "MigrationFailed", {})

    def _write(self, mig, st):
        for k in ("errors", "pipeline"):
            st.setdefault(k, None)
        st.setdefault("observedDigest", "sim")
        self.kube.patch(R.MIGMIGRATION, mig["metadata"]["name"], {"status": st}, MTC_NAMESPACE)

    # ---- phases (return True to advance) --------------------------------------------------------
    def _ns_list(self, plan) -> List[str]:
        return [n.split(":")[0] for n in plan["spec"].get("namespaces") or []]

    def _whole_namespace(self, plan, ns) -> bool:
        n = 0
        for p in self.kube.items(R.MIGPLAN, MTC_NAMESPACE):
            if ns in [x.split(":")[0] for x in (p.get("spec") or {}).get("namespaces") or []]:
                n += 1
        return n <= 1

    def _p_Created(self, mig, plan, st, faults, flags):
        return True

    def _p_StartRefresh(self, mig, plan, st, faults, flags):
        self.kube.patch(R.MIGPLAN, plan["metadata"]["name"], {"spec": {"refresh": True}}, MTC_NAMESPACE)
        return True

    def _p_WaitForRefresh(self, mig, plan, st, faults, flags):
        return not plan["spec"].get("refresh")

    def _sources(self, plan):
        return [split_pvc_name(pv["pvc"]["name"])[0] for pv in copy_pvs(plan)]

    def _targets(self, plan):
        return [split_pvc_name(pv["pvc"]["name"])[1] for pv in copy_pvs(plan)]

    def _p_QuiesceSourceApplications(self, mig, plan, st, faults, flags):
        for ns in self._ns_list(plan):
            quiesce(self.kube, ns, self._sources(plan), flags[LIVE], self._whole_namespace(plan, ns))
        return True

    def _p_EnsureSrcQuiesced(self, mig, plan, st, faults, flags):
        return all(quiesced(self.kube, ns, self._sources(plan), flags[LIVE]) for ns in self._ns_list(plan))

    def _p_QuiesceDestinationApplications(self, mig, plan, st, faults, flags):
        for ns in self._ns_list(plan):
            quiesce(self.kube, ns, self._targets(plan), flags[LIVE], self._whole_namespace(plan, ns))
        return True

    def _p_EnsureDestQuiesced(self, mig, plan, st, faults, flags):
        return all(quiesced(self.kube, ns, self._targets(plan), flags[LIVE]) for ns in self._ns_list(plan))

    def _create_dvm(self, mig, plan, mtype, faults):
        if not self.dvm_of(mig):
            self.kube.create(R.DVM, build_dvm(mig, plan, dvm_pvcs(plan), mtype, fault_int(faults, "backOffLimit")),
                             MTC_NAMESPACE)
        return True

    def _p_CreateDirectVolumeMigrationStage(self, mig, plan, st, faults, flags):
        return self._create_dvm(mig, plan, "CutOver" if flags[Q] else "Stage", faults)

    def _p_CreateDirectVolumeMigrationRollback(self, mig, plan, st, faults, flags):
        return self._create_dvm(mig, plan, "Rollback", faults)

    def _p_WaitForDirectVolumeMigrationToComplete(self, mig, plan, st, faults, flags):
        """migmigration/task.go waitForDVMToComplete + dvm.go hasDirectVolumeMigrationCompleted.
        Completed = phase Completed + Succeeded (VolumeMigration/Rollback itinerary), or phase
        MigrationFailed/Completed + Failed. A Critical DVM failure contributes dvm.status.errors as the
        reasons, a Warn one "direct volume migration failed. <counts>". Reasons → DirectVolumeMigrationFailed
        (Warn) and, if Critical, the MigMigration fails with "DVM failed: <reasons joined by ', '>". A
        Critical failure WITHOUT errors (rsync retries exhausted, see mtc_dvm_copy.advance_copies) has no
        reasons: the migration goes on to SwapPVCReferences and ends Succeeded."""
        from .mtc_progress import dvm_progress
        dvm = self.dvm_of(mig)
        if not dvm:
            return True
        dst = dvm.get("status") or {}
        step_name = "RollbackLiveMigration" if st["itinerary"] == "Rollback" else "DirectVolume"
        lines, counts = dvm_progress(self.kube, dvm)
        failed = get_condition(dvm, "Failed")
        succeeded = dst.get("phase") == "Completed" and get_condition(dvm, "Succeeded") is not None and \
            dst.get("itinerary") in ("VolumeMigration", "VolumeMigrationRollback")
        completed = succeeded or (dst.get("phase") in ("MigrationFailed", "Completed") and failed is not None)
        reasons: List[str] = []
        if completed and failed:
            reasons = list(dst.get("errors") or []) if failed.get("category") == "Critical" else \
                [f"direct volume migration failed. {counts}"]
        for s in st.get("pipeline") or []:
            if s["name"] == step_name:
                s["message"] = dst.get("phaseDescription", "")
                s["progress"] = sorted(lines if completed else [counts] + lines)
        obj = {"status": st}
        if not completed:
            warns = [c.get("message", "") for c in dst.get("conditions") or [] if c.get("category") == "Warn"]
            if warns:
                set_condition(obj, "DirectVolumeMigrationBlocked", "True", "NotReady", "Warn", ", ".join(warns))
            else:
                remove_condition(obj, "DirectVolumeMigrationBlocked")
            return False
        remove_condition(obj, "DirectVolumeMigrationBlocked")  # not re-staged once completed
        if reasons:
            set_condition(obj, "DirectVolumeMigrationFailed", "True", None, "Warn",
                          f"DirectVolumeMigration (dvm): {MTC_NAMESPACE}/{dvm['metadata']['name']} failed. "
                          f"See in dvm status.Errors", durable=True)
            if failed.get("category") == "Critical":
                self.fail(st, ["DVM failed: " + ", ".join(reasons)])
                return False
        return True

    _p_WaitForDirectVolumeMigrationToRollbackComplete = _p_WaitForDirectVolumeMigrationToComplete

    def _p_SwapPVCReferences(self, mig, plan, st, faults, flags):
        pairs = [split_pvc_name(pv["pvc"]["name"]) for pv in copy_pvs(plan)]
        rollback = st["itinerary"] == "Rollback"
        mapping = {d: s for s, d in pairs} if rollback else {s: d for s, d in pairs}
        reasons = []
        for ns in self._ns_list(plan):
            reasons += swap_pvc_references(self.kube, ns, mapping)
        if reasons:
            self.fail(st, reasons)
            return False
        if not rollback:  # handleSourceLabels over getPVCNameMapping's values: a skipped PV maps to itself
            values = [split_pvc_name(pv["pvc"]["name"])[0 if (pv.get("selection") or {}).get("action") == "skip" else 1]
                      for pv in (plan.get("spec") or {}).get("persistentVolumes") or []]
            for ns in self._ns_list(plan):
                handle_source_labels(self.kube, ns, values, plan["metadata"]["uid"], LBL_SOURCE_FOR)
        return True

    def _p_DeleteMigrated(self, mig, plan, st, faults, flags):
        for ns in self._ns_list(plan):
            delete_migrated(self.kube, ns, plan["metadata"]["uid"], LBL_MIGRATED_BY_PLAN, flags[LIVE])
        return True

    def _p_EnsureMigratedDeleted(self, mig, plan, st, faults, flags):
        return all(migrated_deleted(self.kube, ns, plan["metadata"]["uid"], LBL_MIGRATED_BY_PLAN)
                   for ns in self._ns_list(plan))

    def _p_UnQuiesceSrcApplications(self, mig, plan, st, faults, flags):
        for ns in self._ns_list(plan):
            unquiesce(self.kube, ns)
        return True

    def _p_DeleteDirectVolumeMigrationResources(self, mig, plan, st, faults, flags):
        for dvm in self.kube.items(R.DVM, MTC_NAMESPACE,
                                   label_selector=f"migration-direct-volume={mig['metadata']['uid']}"):
            if not dvm["metadata"].get("deletionTimestamp"):
                delete_any(self.kube, R.DVM, dvm["metadata"]["name"], MTC_NAMESPACE)
        return True

    def _p_Canceled(self, mig, plan, st, faults, flags):
        obj = {"status": st}
        remove_condition(obj, "Canceling")
        set_condition(obj, "Canceled", "True", "Cancel", "Advisory", "The migration has been canceled.",
                      durable=True)
        return True


def in_plan_namespaces(plan: Optional[dict], namespaces) -> bool:
    if namespaces is None:
        return True
    if not plan:
        return False
    return bool({n.split(":")[0] for n in plan["spec"].get("namespaces") or []} & set(namespaces))


__all__ = ["MigrationReconciler", "in_plan_namespaces", "labels"]
