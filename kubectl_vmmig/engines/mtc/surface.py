"""The MTC engine as the commands see it (engines/base.py ``Engine``): glue over the shell ``engine.MtcEngine``
(API calls), the pure ``build`` (objects, names), ``plans`` (the MigPlan's life cycle), ``checks`` (preflight),
``verdict`` (the one result rule) and ``progress`` (status rows)."""
import json
from typing import List, Optional

from ... import errors
from ..base import HOOKS, LIVE, OFFLINE, ROLLBACK, STAGE, VERIFY, Engine, Existing, Permission, StatusScope


class Mtc(Engine):
    name = "mtc"
    status_subject = "MTC migrations"
    title = "MTC (MigPlan/MigMigration)"
    supports = frozenset({LIVE, OFFLINE, STAGE, HOOKS, VERIFY, ROLLBACK})

    def __init__(self, kube, options=None):
        super().__init__(kube, options)
        from .engine import MtcEngine

        self.shell = MtcEngine(kube, self.options)

    # ---- choosing ----------------------------------------------------------------------------------
    def declined(self, objects=None) -> Optional[str]:
        if self.kube is None:
            return None if (objects or {}).get("MigCluster") else "the -f files hold no MigCluster"
        if self.shell.usable():
            return None
        return "MTC's CRDs are not served or its host MigCluster is not Ready"

    @classmethod
    def parse_hooks(cls, specs):
        from .build import parse_hooks

        return parse_hooks(specs)

    # ---- preflight ---------------------------------------------------------------------------------
    @classmethod
    def permissions(cls, write=True) -> List[Permission]:
        from .checks import MTC_READ_PERMISSIONS, MTC_WRITE_PERMISSIONS

        table = MTC_READ_PERMISSIONS + (MTC_WRITE_PERMISSIONS if write else ())
        return [Permission(v, g, r, scope) for v, g, r, scope in table]

    def naming(self, namespace, target_storage_class):
        # The suffix of the plan the run adopts; ``checks`` corrects the names when the run needs a new plan.
        return self.shell.naming(namespace if self.kube is not None else None)

    def checks(self, plan, inventory, request, objects, write=True) -> List[dict]:
        from . import build as B
        from .checks import run_preflight

        if self.kube is None:
            facts = {"engine": "mtc"}
        else:
            pvcs = objects.get("PersistentVolumeClaim") or []
            choice = self.shell.plan_choice(plan["namespace"], [m["sourcePVC"] for m in plan["moves"]], pvcs)
            if choice["current"] is None:  # a new plan: MTC picks its suffix when it first reconciles it
                for m in plan["moves"]:
                    m["targetPVC"] = B.target_name(m["sourcePVC"], None)
            _apply_mtc_live_check(plan, self.shell.live_blockers())
            # write permissions are checked for previews and check too: they say what a real run would hit
            facts = self.shell.gather_facts(plan, request.kind, write=write, hooks=request.hooks, pvcs=pvcs)
        return run_preflight(plan, inventory, facts, request.kind)

    def existing(self, request, namespace, vm_names) -> Optional[Existing]:
        """The plugin's MTC migration that already moved these VMs to the target (a re-run attaches to it)."""
        from . import build as B

        eng = self.shell
        try:
            if not eng.locate()["installed"]:
                return None
            own, _ = eng.existing_plans(namespace)
            migs = [m for m in eng.migrations_of(own["metadata"]["name"]) if B.run_state(m) != "Canceled"] \
                if own else []
        except errors.ApiError:
            return None
        wanted = set(vm_names)
        for m in sorted(migs, key=lambda m: m["metadata"].get("creationTimestamp") or "", reverse=True):
            try:
                req = json.loads(((m["metadata"].get("annotations") or {}).get(B.REQUEST_ANNOTATION)) or "{}")
            except ValueError:
                continue
            if req.get("type") == request.kind and req.get("targetStorageClass") == request.target_storage_class \
                    and wanted <= set(req.get("vms") or ()):
                ref = {"plan": own["metadata"]["name"], "migration": m["metadata"]["name"],
                       "mtcNamespace": eng.mtc_namespace, "namespace": namespace, "created": False}
                return Existing(ref=ref, message=f"already migrated: re-attaching to MigMigration "
                                                 f"{ref['mtcNamespace']}/{ref['migration']}")
        return None

    # ---- writing -----------------------------------------------------------------------------------
    def preview(self, plan, request, objects, checks) -> dict:
        return self.shell.preview(plan, objects.get("VirtualMachine") or [], objects.get("PersistentVolumeClaim")
                                  or [], request.kind, request.hooks, request.verify, checks=checks)

    def apply(self, plan, request, events) -> dict:
        return self.shell.apply(plan, kind=request.kind, hooks=request.hooks, verify=request.verify,
                                dry_run_server=request.dry_run == "server",
                                on_event=events if request.show_events else None)

    # ---- reading -----------------------------------------------------------------------------------
    @classmethod
    def fetch_objects(cls, kube, scope: StatusScope) -> List[dict]:
        from . import progress

        return progress.fetch_objects(kube, scope.namespace, scope.all_namespaces,
                                      scope.options.get("mtc_namespace"), vms=[])

    @classmethod
    def migrations(cls, objects, namespace, now=None) -> List[dict]:
        from . import progress

        return progress.from_objects(objects, namespace=namespace, now=now)

    def read(self, namespace=None, name=None, all_namespaces=False) -> List[dict]:
        return self.shell.read(namespace=namespace, name=name, all_namespaces=all_namespaces)

    @classmethod
    def completion_objects(cls, kube) -> List[dict]:
        from ... import resources as R

        return kube.items(R.MIGPLAN, kube.namespace)

    # ---- after the fact ----------------------------------------------------------------------------
    def owns(self, name, namespace) -> bool:
        try:
            if not self.shell.locate()["installed"]:
                return False
            self.shell.find_plan(name)
            return True
        except (errors.NotFoundInput, errors.ApiError):
            return False

    def _require_installed(self, what):
        if not self.shell.locate()["installed"]:
            raise errors.PreflightRefused("MTC is not installed" + (f"; {what} is an MTC feature" if what else ""),
                                          "use --engine kubevirt for direct migrations" if not what
                                          else "for --engine kubevirt migrations use 'cancel'")

    def cancel(self, name, namespace) -> str:
        self._require_installed(None)
        mig, warning = self.shell.cancel(name)
        if warning:
            (self.options.get("echo") or (lambda message: None))(f"warning: {warning}")
        return (f"migmigration.migration.openshift.io/{mig} cancel requested "
                f"(follow with: kubectl vm-storage status {name} -w)")

    def rollback_target(self, name) -> dict:
        """What ``rollback NAME`` would roll back: {"plan", "namespace", "question"}; refuses when it cannot."""
        self._require_installed("rollback")
        eng = self.shell
        plan_obj = eng.find_plan(name)
        pname = plan_obj["metadata"]["name"]
        allowed, _ = self.kube.can_i("create", "migmigrations", "migration.openshift.io", eng.mtc_namespace)
        if not allowed:
            raise errors.Forbidden(f"forbidden: create migmigrations.migration.openshift.io in {eng.mtc_namespace}",
                                   status=403, hint="ask a cluster admin for this permission (see README, RBAC)")
        namespaces = (plan_obj.get("spec") or {}).get("namespaces") or [None]
        return {"plan": pname, "namespace": str(namespaces[0]).split(":")[0],
                "question": f"Roll back MigPlan {eng.mtc_namespace}/{pname}? VMs return to their source volumes and "
                            "MTC deletes the migrated volumes"}

    def rollback(self, name, dry_run_server=False) -> dict:
        mig, created = self.shell.rollback(name, dry_run_server=dry_run_server)
        return {"migration": mig, "created": created, "object": f"migmigration.migration.openshift.io/{mig}"}


def _apply_mtc_live_check(plan: dict, why: List[str]) -> None:
    """MTC's own KubeVirt check (``plans.mtc_live_blockers``) disagrees with the plugin's: settle the mode now, so
    preview, findings and the quiesce confirmation (which lists the VMs an offline copy stops) say what will happen."""
    if not why or not plan.get("liveMigrate"):
        return
    text = "; ".join(why)
    if plan.get("requestedMode") == "live":
        plan["findings"].append({"name": "live-migration", "severity": "error",
                                 "message": f"--mode live refused: {text}; fix KubeVirt's configuration, or use "
                                            "--mode offline (VMs are stopped during the copy)"})
        return
    plan["liveMigrate"], plan["mode"] = False, "offline"
    for m in plan["moves"]:
        m["mode"] = "offline"
    plan["findings"].append({"name": "live-migration", "severity": "warning",
                             "message": f"falling back to offline: {text}; running VMs will be stopped during the copy"})
