"""The MTC engine (shell): find MTC, gather preflight facts, preview, apply, wait, cancel, rollback.

Pure builders live in ``build.py`` (checks in ``checks.py``, rows in ``progress.py``); this module does the API calls, always in this order: read
everything, judge (preflight), and only then write. Every write is idempotent: objects have
deterministic names and the plugin's labels, so a re-run adopts what exists instead of creating twice.
"""
import time

from ... import errors, patches
from ... import resources as R
from ...inventory import schedulable
from . import build as B

POLL = 0.5


class MtcEngine:
    name = "mtc"

    def __init__(self, kube, options=None):
        self.kube = kube
        self.options = options or {}
        self._mtc = None

    # ---- discovery -------------------------------------------------------------------------------
    def installed(self) -> bool:
        return self.kube.has_api("migration.openshift.io", "v1alpha1")

    def locate(self) -> dict:
        """{"installed", "namespace", "hostCluster", "hostReady", "hostMessage"} — MTC's namespace is the one
        holding the host MigCluster (``--mtc-namespace`` wins), else openshift-migration."""
        if self._mtc is not None:
            return self._mtc
        wanted = self.options.get("mtc_namespace")
        info = {"installed": self.installed(), "namespace": wanted or B.DEFAULT_NAMESPACE,
                "hostCluster": None, "hostReady": False, "hostMessage": ""}
        if info["installed"]:
            try:
                clusters = self.kube.items(R.MIGCLUSTER, wanted) if wanted else \
                    self.kube.items(R.MIGCLUSTER, all_namespaces=True)
            except errors.Forbidden:
                clusters = self.kube.items(R.MIGCLUSTER, info["namespace"])
            hosts = [c for c in clusters if (c.get("spec") or {}).get("isHostCluster")]
            hosts.sort(key=lambda c: (c["metadata"]["name"] != "host",
                                      c["metadata"].get("namespace") != B.DEFAULT_NAMESPACE))
            if hosts:
                host = hosts[0]
                info["namespace"] = host["metadata"]["namespace"]
                info["hostCluster"] = host["metadata"]["name"]
                ready = B.condition(host, "Ready")
                info["hostReady"] = ready is not None
                crit = B.blockers(host)
                info["hostMessage"] = "; ".join(c.get("message", c.get("type")) for c in crit)
        self._mtc = info
        return info

    @property
    def mtc_namespace(self) -> str:
        return self.locate()["namespace"]

    def usable(self) -> bool:
        """For ``--engine auto``: MTC's CRDs are served and the host MigCluster is Ready."""
        try:
            info = self.locate()
        except errors.ApiError:
            return False
        return bool(info["installed"] and info["hostReady"])

    def existing_plans(self, namespace):
        """(own plan or None, [foreign plans]) covering ``namespace``."""
        if not self.locate()["installed"]:
            return None, []
        try:
            plans = self.kube.items(R.MIGPLAN, all_namespaces=True)
        except errors.Forbidden:
            plans = self.kube.items(R.MIGPLAN, self.mtc_namespace)
        own, foreign = None, []
        for p in plans:
            if not B.covers_namespace(p, namespace):
                continue
            if B.is_own(p) and p["metadata"]["name"] == B.plan_name(namespace) \
                    and p["metadata"]["namespace"] == self.mtc_namespace:
                own = p
            else:
                foreign.append(p)
        return own, foreign

    def migrations_of(self, plan_name):
        migs = self.kube.items(R.MIGMIGRATION, self.mtc_namespace)
        return [m for m in migs if ((m.get("spec") or {}).get("migPlanRef") or {}).get("name") == plan_name]

    def naming(self, own_plan=None):
        suffix = ((own_plan or {}).get("status") or {}).get("suffix")
        return lambda d: B.target_name(d["claim"], suffix)

    # ---- preflight facts -------------------------------------------------------------------------
    def gather_facts(self, plan, kind="cutover", write=True, hooks=()):
        from . import checks as P

        ns = plan["namespace"]
        mtc = self.locate()
        facts = {"engine": "mtc", "mtc": mtc}
        facts["rbac"] = [dict(p, allowed=a, reason=r) for p in P.required_permissions("mtc", ns, mtc["namespace"], write)
                         for a, r in [self.kube.can_i(p["verb"], p["resource"], p["group"], p["namespace"],
                                                      p.get("subresource"))]]
        kv_installed = self.kube.has_api("kubevirt.io", "v1")
        kv_cr = None
        if kv_installed:
            try:
                crs = self.kube.items(R.KUBEVIRT, all_namespaces=True)
                kv_cr = crs[0] if crs else None
            except errors.Forbidden:
                kv_cr = None
        facts["kubevirt"] = {"installed": kv_installed, "cr": kv_cr}
        try:
            nodes = self.kube.items(R.NODE)
            facts["schedulableNodes"] = sum(1 for n in nodes if schedulable(n))
        except errors.Forbidden:
            pass
        if mtc["installed"] and ns:
            own, foreign = self.existing_plans(ns)
            running = None
            if own is not None:
                for m in self.migrations_of(own["metadata"]["name"]):
                    if B.migration_result(m)[0] == "Running" and not self._same_request(m, plan, kind):
                        running = f"{m['metadata']['namespace']}/{m['metadata']['name']}"
            facts["plans"] = {"own": own["metadata"]["name"] if own else None,
                              "foreign": [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in foreign],
                              "running": running}
            if hooks:
                facts["hooks"] = {h: self.kube.get_or_none(R.MIGHOOK, h, mtc["namespace"]) is not None
                                  for h, _ in hooks}
        if kind == "cutover" and ns:
            facts["workloads"] = self._workloads(ns)
        return facts

    def _workloads(self, ns):
        out = []
        for res in (R.DEPLOYMENT, R.STATEFULSET, R.REPLICASET, R.DAEMONSET, R.JOB, R.CRONJOB):
            try:
                items = self.kube.items(res, ns)
            except (errors.Forbidden, errors.NotFound):
                continue
            for w in items:
                md = w.get("metadata") or {}
                if any(o.get("controller") for o in md.get("ownerReferences") or []):
                    continue  # ReplicaSets of Deployments, Jobs of CronJobs: the owner is listed
                replicas = (w.get("spec") or {}).get("replicas")
                if replicas == 0:
                    continue
                extra = f" ({replicas} replicas)" if replicas is not None else ""
                out.append(f"{res.kind}/{md.get('name')}{extra}")
        return out

    @staticmethod
    def _same_request(mig, plan, kind):
        req_hash = B.request_hash(B.request_of(plan, kind))
        return ((mig.get("metadata") or {}).get("labels") or {}).get(B.REQUEST_HASH_LABEL) == req_hash

    # ---- preview ---------------------------------------------------------------------------------
    def preview(self, plan, vms=(), pvcs=(), kind="cutover", hooks=(), verify=False, host_cluster=None,
                checks=()):
        """{"objects", "patches", "checks"} without writing. ``vms``/``pvcs``: the objects read (or from -f)."""
        mtc_ns = self.options.get("mtc_namespace") or (self._mtc or {}).get("namespace") or B.DEFAULT_NAMESPACE
        host = host_cluster or (self._mtc or {}).get("hostCluster") or "host"
        migplan = B.build_migplan(plan, mtc_ns, host, hooks)
        objects = [migplan, B.build_migmigration(plan, mtc_ns, kind)]
        predicted = B.predicted_persistent_volumes(list(pvcs), plan["namespace"])
        sel_ops, _ = B.selection_patch(predicted, plan, verify)
        out_patches = [{"apiVersion": B.GROUP_VERSION, "kind": "MigPlan", "namespace": mtc_ns,
                        "name": migplan["metadata"]["name"], "patch": sel_ops}]
        if kind == "cutover":
            by_name = {(v.get("metadata") or {}).get("name"): v for v in vms}
            from ...plan import moves_by_vm

            for vm_name, moves in moves_by_vm(plan).items():
                vm = by_name.get(vm_name)
                if vm is None:
                    continue
                live = all(m["mode"] == "live" for m in moves)
                ops = patches.volume_swap_patch(vm, {m["sourcePVC"]: m["targetPVC"] for m in moves}, live=live,
                                                target_storage_class=plan["targetStorageClass"] if live else None)
                out_patches.append({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                    "namespace": plan["namespace"], "name": vm_name, "patch": ops})
        return {"objects": objects, "patches": out_patches, "checks": list(checks)}

    # ---- apply -----------------------------------------------------------------------------------
    def apply(self, plan, kind="cutover", hooks=(), verify=False, dry_run_server=False, timeout=300.0,
              on_event=None):
        """Create/adopt the MigPlan, select PVs, wait for Ready, create/adopt the MigMigration.

        Returns {"plan", "migration", "namespace", "mtcNamespace", "created": bool, "liveMigrate"}."""
        say = on_event or (lambda msg: None)
        mtc = self.locate()
        mtc_ns, ns = mtc["namespace"], plan["namespace"]
        body = B.build_migplan(plan, mtc_ns, mtc["hostCluster"], hooks)
        pname = body["metadata"]["name"]
        if dry_run_server:
            self.kube.create(R.MIGPLAN, body, mtc_ns, dry_run=True)
            self.kube.create(R.MIGMIGRATION, B.build_migmigration(plan, mtc_ns, kind), mtc_ns, dry_run=True)
            return {"plan": pname, "migration": None, "namespace": ns, "mtcNamespace": mtc_ns, "created": False,
                    "liveMigrate": plan["liveMigrate"]}
        mig = self._reattach(pname, plan, kind)
        if mig is not None:
            say(f"re-attaching to MigMigration {mtc_ns}/{mig['metadata']['name']}")
            return {"plan": pname, "migration": mig["metadata"]["name"], "namespace": ns, "mtcNamespace": mtc_ns,
                    "created": False, "liveMigrate": plan["liveMigrate"]}
        own = self.kube.get_or_none(R.MIGPLAN, pname, mtc_ns)
        if own is None:
            say(f"creating MigPlan {mtc_ns}/{pname}")
            try:
                own = self.kube.create(R.MIGPLAN, body, mtc_ns)
            except errors.Conflict:
                own = self.kube.get(R.MIGPLAN, pname, mtc_ns)
        else:
            say(f"adopting MigPlan {mtc_ns}/{pname}")
            want = {"liveMigrate": body["spec"]["liveMigrate"], "hooks": body["spec"].get("hooks")}
            self.kube.patch(R.MIGPLAN, pname, {"spec": want,
                                               "metadata": {"annotations": body["metadata"]["annotations"]}}, mtc_ns)
        own = self.wait_plan(pname, lambda p: B.condition(p, "PvsDiscovered") is not None
                             and (p.get("status") or {}).get("suffix"), timeout, "discover the PVCs")
        self._check_live_conditions(own, plan, pname, mtc_ns)
        naming = self.naming(own)
        for m in plan["moves"]:
            m["targetPVC"] = naming({"claim": m["sourcePVC"]})
        own = self._select(pname, mtc_ns, plan, verify, timeout)
        say(f"MigPlan {mtc_ns}/{pname} is Ready")
        return self._create_migration(own, plan, kind, mtc_ns, say)

    def _check_live_conditions(self, own, plan, pname, mtc_ns):
        live_conds = B.live_blocking_conditions(own) if plan["liveMigrate"] else []
        if not live_conds:
            return
        text = "; ".join(f"{c['type']}: {c.get('message', '')}" for c in live_conds)
        if plan["requestedMode"] == "live":
            raise errors.PreflightRefused(f"MTC reports the cluster cannot live-migrate storage ({text})",
                                          "enable storage live migration in KubeVirt, or use --mode offline")
        # MTC only reports these (migplan/validation.go: "Virtual Machines will be stopped instead"): switch the
        # plan to offline ourselves.
        plan["liveMigrate"] = False
        plan["mode"] = "offline"
        for m in plan["moves"]:
            m["mode"] = "offline"
        self.kube.patch(R.MIGPLAN, pname, {"spec": {"liveMigrate": False}}, mtc_ns)
        warn = self.options.get("echo") or (lambda message: None)  # the command's stderr (IOStreams.say)
        warn(f"warning: falling back to offline: {text}")

    def _select(self, pname, mtc_ns, plan, verify, timeout):
        for attempt in range(5):
            cur = self.kube.get(R.MIGPLAN, pname, mtc_ns)
            ops, missing = B.selection_patch(cur["spec"].get("persistentVolumes") or [], plan, verify)
            if missing:
                raise errors.PreflightRefused(
                    f"MTC did not discover PVC(s) {', '.join(missing)} in namespace {plan['namespace']}",
                    "only Bound PVCs are migrated; check that they are Bound and retry")
            digest = (cur.get("status") or {}).get("observedDigest")
            if not B.changes(cur, ops):
                digest = None  # nothing to write (a re-run): the current status already judges this spec
                break
            try:
                self.kube.patch(R.MIGPLAN, pname, ops, mtc_ns, patch_type="json")
                break
            except (errors.Invalid, errors.Conflict):
                if attempt == 4:
                    raise
                time.sleep(POLL)  # the controller re-sorted the list meanwhile: re-read and retry

        def ready_after_patch(p):
            if digest and (p.get("status") or {}).get("observedDigest") == digest:
                return False  # not reconciled since our patch
            bad = B.blockers(p)
            if bad:
                raise errors.PreflightRefused(
                    f"MigPlan {mtc_ns}/{pname} is not Ready: " + "; ".join(
                        f"{c['type']}: {c.get('message', '')}" for c in bad),
                    "fix the problem named by the condition and re-run the same command")
            return B.plan_ready(p)

        return self.wait_plan(pname, ready_after_patch, timeout, "become Ready")

    def wait_plan(self, pname, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = self.kube.get(R.MIGPLAN, pname, self.mtc_namespace)
            crit = [c for c in B.blockers(last) if c.get("category") == "Critical"]
            if crit:
                raise errors.PreflightRefused(
                    f"MigPlan {self.mtc_namespace}/{pname}: " + "; ".join(
                        f"{c['type']}: {c.get('message', '')}" for c in crit),
                    "fix the problem named by the condition and re-run the same command")
            if predicate(last):
                return last
            if time.monotonic() > deadline:
                raise errors.MigrationFailed(f"MigPlan {self.mtc_namespace}/{pname} did not {what} within "
                                             f"{int(timeout)}s", "check that mig-controller is running")
            time.sleep(POLL)

    def _reattach(self, pname, plan, kind):
        """The plugin's MigMigration for this very request, if one exists (a re-run attaches to it)."""
        try:
            migs = self.migrations_of(pname)
        except errors.NotFound:
            return None
        same = [m for m in migs if B.is_own(m) and self._same_request(m, plan, kind)]
        if kind == "stage":  # stages are repeatable: only a running one is re-attached
            same = [m for m in same if B.migration_result(m)[0] == "Running"]
        same.sort(key=lambda m: m["metadata"].get("creationTimestamp") or "")
        return same[-1] if same else None

    def _create_migration(self, own, plan, kind, mtc_ns, say):
        pname = own["metadata"]["name"]
        for attempt in range(1, 100):
            body = B.build_migmigration(plan, mtc_ns, kind, attempt)
            try:
                self.kube.create(R.MIGMIGRATION, body, mtc_ns)
                say(f"created MigMigration {mtc_ns}/{body['metadata']['name']} ({kind})")
                return {"plan": pname, "migration": body["metadata"]["name"], "namespace": plan["namespace"],
                        "mtcNamespace": mtc_ns, "created": True, "liveMigrate": plan["liveMigrate"]}
            except errors.Conflict:
                continue  # an earlier finished stage run holds this name: take the next
        raise errors.MigrationFailed(f"too many {kind} migrations for MigPlan {pname}")

    # ---- follow / read / cancel / rollback -------------------------------------------------------
    def get_migration(self, name):
        return self.kube.get(R.MIGMIGRATION, name, self.mtc_namespace)

    def result(self, name):
        mig = self.get_migration(name)
        dvm = None
        uid = mig["metadata"].get("uid")
        if uid:
            dvms = self.kube.items(R.DVM, self.mtc_namespace, label_selector=f"migration-direct-volume={uid}")
            dvm = dvms[-1] if dvms else None
        return B.migration_result(mig, dvm) + (mig,)

    def read(self, namespace=None, name=None, all_namespaces=False):
        from . import progress as progress_mtc

        migs = progress_mtc.collect(self.kube, namespace, all_namespaces,
                                    mtc_namespace=self.options.get("mtc_namespace"))
        return [m for m in migs if name is None or m.get("plan") == name]

    def find_plan(self, name):
        """A MigPlan by name (in MTC's namespace), or by the namespace it covers."""
        p = self.kube.get_or_none(R.MIGPLAN, name, self.mtc_namespace)
        if p is None:
            p = self.kube.get_or_none(R.MIGPLAN, B.plan_name(name), self.mtc_namespace)
        if p is None:
            raise errors.NotFoundInput(f"MigPlan {name} not found in namespace {self.mtc_namespace}",
                                       "list plans with 'kubectl vm-storage status -A', or pass --mtc-namespace")
        return p

    def running_migration(self, plan_obj):
        migs = self.migrations_of(plan_obj["metadata"]["name"])
        running = [m for m in migs if B.migration_result(m)[0] == "Running"]
        running.sort(key=lambda m: m["metadata"].get("creationTimestamp") or "")
        return running[-1] if running else None

    def cancel(self, name, namespace=None):
        plan_obj = self.find_plan(name)
        mig = self.running_migration(plan_obj)
        if mig is None:
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} has no running migration to cancel",
                                  "see 'kubectl vm-storage status'")
        self.kube.patch(R.MIGMIGRATION, mig["metadata"]["name"], {"spec": {"canceled": True}}, self.mtc_namespace)
        return mig["metadata"]["name"]

    def rollback(self, name, dry_run_server=False):
        plan_obj = self.find_plan(name)
        if self.running_migration(plan_obj) is not None:
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} has a running migration",
                                  "wait for it to finish or cancel it before rolling back")
        if (plan_obj.get("spec") or {}).get("closed"):
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} is closed; MTC refuses rollback "
                                  "of a closed plan", "re-open it (spec.closed: false) first")
        forward = [m for m in self.migrations_of(plan_obj["metadata"]["name"])
                   if not (m.get("spec") or {}).get("rollback")]
        forward.sort(key=lambda m: m["metadata"].get("creationTimestamp") or "")
        if not forward:
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} has no migration to roll back",
                                  "run 'kubectl vm-storage migrate' first")
        body = B.build_rollback(plan_obj, after=forward[-1]["metadata"]["name"])
        existing = self.kube.get_or_none(R.MIGMIGRATION, body["metadata"]["name"], self.mtc_namespace)
        if existing is not None:
            return existing["metadata"]["name"], False
        self.kube.create(R.MIGMIGRATION, body, self.mtc_namespace, dry_run=dry_run_server)
        return body["metadata"]["name"], True
