"""The kubevirt engine as the commands see it (engines/base.py ``Engine``): glue over the shell
``engine.KubevirtEngine`` (API calls, the record, the driver), the pure ``build`` (DataVolumes, record, preview),
``checks`` (preflight), ``track`` (the live verdict ``judge_live``) and ``progress`` (status rows)."""
from typing import List, Optional

from ..base import KEEP_UPDATE_STRATEGY, LIVE, OFFLINE, STOP, Engine, Existing, Permission, StatusScope


class Kubevirt(Engine):
    name = "kubevirt"
    status_subject = "KubeVirt volume migrations"
    title = "kubevirt (KubeVirt volume migration)"
    supports = frozenset({LIVE, OFFLINE, STOP, KEEP_UPDATE_STRATEGY})

    def __init__(self, kube, options=None):
        super().__init__(kube, options)
        from .engine import KubevirtEngine

        self.shell = KubevirtEngine(kube, self.options)

    # ---- choosing ----------------------------------------------------------------------------------
    def declined(self, objects=None) -> Optional[str]:
        return None  # needs nothing beyond KubeVirt (and CDI for offline copies), which every command checks

    # ---- preflight ---------------------------------------------------------------------------------
    @classmethod
    def permissions(cls, write=True) -> List[Permission]:
        from .engine import PERMISSIONS

        return [Permission(verb, res.group, res.plural, "namespace" if scoped else "cluster", sub)
                for verb, res, sub, scoped in PERMISSIONS]

    def naming(self, namespace, target_storage_class):
        fn = getattr(self.shell, "naming", None)
        if callable(fn):
            return fn()
        from .build import destination_name

        return lambda d: destination_name(d["claim"], target_storage_class)

    def checks(self, plan, inventory, request, objects, write=True) -> List[dict]:
        if self.kube is not None:
            found = self.shell.checks(plan, inventory, objects)
        else:
            from .checks import kubevirt_engine_findings

            cluster = {"kubevirt": (objects.get("KubeVirt") or [None])[0], "stop": request.stop,
                       "storageClasses": [s["metadata"]["name"] for s in objects.get("StorageClass") or []],
                       "cdi": True}
            found = kubevirt_engine_findings(plan, inventory, cluster)
        return list(plan["findings"]) + list(found)

    def existing(self, request, namespace, vm_names) -> Optional[Existing]:
        """The disks already point at the target because KubeVirt finished a live migration whose command was
        interrupted: resume its still-Running record (cleanup, result) instead of refusing the re-run."""
        from ... import resources as R
        from . import build as B

        plan = {"namespace": namespace, "vms": list(vm_names), "targetStorageClass": request.target_storage_class,
                "moves": [], "skipped": [], "findings": [], "requestedMode": request.mode}
        cm = self.kube.get_or_none(R.CONFIGMAP, B.record_name(B.migration_name(plan)), namespace)
        rec = B.record_from_configmap(cm) if cm else None
        given_up = any(r.get("gaveUp") for r in (rec or {}).get("vms", {}).values())
        if not rec or (rec.get("result") != "Running" and not given_up):
            return None  # a give-up only stopped following: the re-run follows again (apply resume_given_up)
        return Existing(plan=plan)

    # ---- writing -----------------------------------------------------------------------------------
    def preview(self, plan, request, objects, checks) -> dict:
        preview = self.shell.preview(plan, objects.get("VirtualMachine"), objects.get("VirtualMachineInstance"))
        preview["checks"] = list(checks) + [c for c in preview.get("checks") or [] if c not in checks]
        return preview

    def apply(self, plan, request, events) -> dict:
        from ..base import progress_of

        self.shell.echo = events
        self.shell.on_pass = progress_of(events)
        return self.shell.apply(plan, dry_run_server=request.dry_run == "server")

    def apply_fleet(self, plans, request, events) -> List[dict]:
        """Every namespace's plan under one window (engines/base.py ``apply_fleet``, engines/kubevirt/fleet.py)."""
        self.shell.echo = events
        return self.shell.apply_fleet(plans, dry_run_server=request.dry_run == "server",
                                      show=getattr(events, "show", None))

    def resume(self, name, namespace, events) -> dict:
        """Finish the steps a detached or interrupted run left for the plugin (``kubectl vm-storage resume``)."""
        self.shell.echo = events
        return self.shell.resume(name, namespace)

    # ---- reading -----------------------------------------------------------------------------------
    @classmethod
    def fetch_objects(cls, kube, scope: StatusScope) -> List[dict]:
        from . import progress

        # VMs listed here (not only by status for the rows' names): a VM volume update with no record of the
        # plugin is found from the VM itself (observed.py)
        return progress.fetch_objects(kube, scope.namespace, scope.all_namespaces, vms=None)

    @classmethod
    def migrations(cls, objects, namespace, now=None) -> List[dict]:
        from . import progress

        seen, first = set(), []
        for o in objects:  # an object read twice (ours, then status's VM list): the first, freshest read
            key = (o.get("kind"), (o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name"))
            if key not in seen:
                seen.add(key)
                first.append(o)
        return progress.from_objects(first, namespace=namespace, now=now)

    def read(self, namespace=None, name=None, all_namespaces=False) -> List[dict]:
        return self.shell.read(namespace=namespace, name=name, all_namespaces=all_namespaces)

    @classmethod
    def completion_objects(cls, kube) -> List[dict]:
        from ... import labels
        from ... import resources as R

        return kube.items(R.DATAVOLUME, kube.namespace, label_selector=labels.MIGRATION)

    # ---- after the fact ----------------------------------------------------------------------------
    def owns(self, name, namespace) -> bool:
        from ... import resources as R
        from .build import record_name

        return self.kube.get_or_none(R.CONFIGMAP, record_name(name), namespace) is not None

    def cancel(self, name, namespace) -> str:
        self.shell.cancel(name, namespace)
        return f"migration {name} cancel requested"
