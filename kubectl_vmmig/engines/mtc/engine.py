"""The MTC engine (shell): find MTC, gather preflight facts, preview, apply, wait, cancel, rollback.

Pure rules live in ``build.py`` (objects), ``plans.py`` (plan life cycle), ``checks.py``, ``verdict.py``, ``progress.py``;
this module does the API calls, always in this order: read everything, judge (preflight), and only then write.
Every write is idempotent: objects have deterministic names and the plugin's labels, so a re-run adopts what
exists instead of creating twice.
"""
import time

from ... import errors
from ... import resources as R
from . import build as B
from . import plans as PL

POLL = 0.5


class MtcEngine:
    name = "mtc"

    def __init__(self, kube, options=None):
        self.kube = kube
        self.options = options or {}
        self._mtc = None
        self._choice = None
        B.check_mtc_namespace(self.options.get("mtc_namespace"))

    # ---- discovery -------------------------------------------------------------------------------
    def installed(self) -> bool:
        return self.kube.has_api("migration.openshift.io", "v1alpha1")

    def locate(self) -> dict:
        """{"installed", "namespace", "hostCluster", "hostReady", "hostMessage", "elsewhere"}. MTC's namespace is
        ``openshift-migration`` (see ``build.check_mtc_namespace``): only a host MigCluster there counts;
        ``elsewhere`` names one found in another namespace, which mig-controller never reconciles."""
        if self._mtc is not None:
            return self._mtc
        mtc_ns = B.DEFAULT_NAMESPACE
        info = {"installed": self.installed(), "namespace": mtc_ns, "hostCluster": None, "hostReady": False,
                "hostMessage": "", "elsewhere": None}
        if info["installed"]:
            hosts = [c for c in self.kube.items(R.MIGCLUSTER, mtc_ns) if (c.get("spec") or {}).get("isHostCluster")]
            hosts.sort(key=lambda c: c["metadata"]["name"] != "host")
            if hosts:
                host = hosts[0]
                info["hostCluster"] = host["metadata"]["name"]
                info["hostReady"] = B.condition(host, "Ready") is not None
                info["hostMessage"] = "; ".join(c.get("message", c.get("type")) for c in B.blockers(host))
            else:
                try:
                    other = [c for c in self.kube.items(R.MIGCLUSTER, all_namespaces=True)
                             if (c.get("spec") or {}).get("isHostCluster")]
                except errors.Forbidden:
                    other = []
                if other:
                    info["elsewhere"] = f"{other[0]['metadata']['namespace']}/{other[0]['metadata']['name']}"
        self._mtc = info
        return info

    @property
    def mtc_namespace(self) -> str:
        return B.DEFAULT_NAMESPACE

    def usable(self) -> bool:
        """For ``--engine auto``: MTC's CRDs are served and the host MigCluster is Ready."""
        try:
            info = self.locate()
        except errors.ApiError:
            return False
        return bool(info["installed"] and info["hostReady"])

    def _plans(self):
        return self.kube.items(R.MIGPLAN, self.mtc_namespace)

    def own_plans(self, namespace):
        if not self.locate()["installed"]:
            return []
        return [p for p in self._plans() if B.is_own(p) and B.covers_namespace(p, namespace)]

    def existing_plans(self, namespace):
        """(current own plan or None, [conflicting foreign plans]) for ``namespace``."""
        if not self.locate()["installed"]:
            return None, []
        return self.plan_choice(namespace)["current"], self.foreign_plans(namespace)

    def foreign_plans(self, namespace):
        if not self.locate()["installed"]:
            return []
        host = {"name": self.locate()["hostCluster"], "namespace": self.mtc_namespace} \
            if self.locate()["hostCluster"] else None
        return [p for p in self._plans() if not B.is_own(p) and PL.conflicts(p, host, namespace)]

    def plan_choice(self, namespace, claims=None, pvcs=None) -> dict:
        """``plans.choose_plan`` for this namespace, remembered for the run (preflight, naming and apply agree)."""
        if self._choice is not None and claims is None:
            return self._choice
        if pvcs is None and claims:
            pvcs = self.kube.items(R.PVC, namespace)
        self._choice = PL.choose_plan(self.own_plans(namespace), namespace, claims or (), pvcs or ())
        return self._choice

    def migrations_of(self, plan_name):
        migs = self.kube.items(R.MIGMIGRATION, self.mtc_namespace)
        return [m for m in migs if ((m.get("spec") or {}).get("migPlanRef") or {}).get("name") == plan_name]

    def naming(self, namespace=None, claims=(), pvcs=()):
        """Target names: ``<base>-mig-<suffix>`` of the plan the run will use (placeholder for a new plan)."""
        suffix = None
        if namespace and self.kube is not None:
            cur = self.plan_choice(namespace, list(claims), list(pvcs))["current"]
            suffix = ((cur or {}).get("status") or {}).get("suffix")
        return lambda d: B.target_name(d["claim"], suffix)

    # ---- preflight facts -------------------------------------------------------------------------
    def gather_facts(self, plan, kind="cutover", write=True, hooks=(), pvcs=None):
        from .facts import gather

        return gather(self, plan, kind, write, hooks, pvcs)

    def live_blockers(self):
        """What MTC's own KubeVirt check would report for a live plan (``plans.mtc_live_blockers``)."""
        from .facts import kubevirt_crs

        return PL.mtc_live_blockers(kubevirt_crs(self.kube))

    def same_request(self, mig, plan, kind):
        req_hash = B.request_hash(B.request_of(plan, kind))
        return ((mig.get("metadata") or {}).get("labels") or {}).get(B.REQUEST_HASH_LABEL) == req_hash

    # ---- preview ---------------------------------------------------------------------------------
    def preview(self, plan, vms=(), pvcs=(), kind="cutover", hooks=(), verify=False, host_cluster=None,
                checks=()):
        """{"objects", "patches", "checks"} without writing. ``vms``/``pvcs``: the objects read (or from -f)."""
        from .preview import preview

        host = host_cluster or (self._mtc or {}).get("hostCluster") or "host"
        return preview(self._choice or {"generation": 1}, plan, vms, pvcs, kind, hooks, verify, host, checks)

    # ---- apply -----------------------------------------------------------------------------------
    def apply(self, plan, kind="cutover", hooks=(), verify=False, dry_run_server=False, timeout=300.0,
              on_event=None):
        """Create or adopt (refreshed) the MigPlan, select PVs, check what MTC kept, create the MigMigration.

        Returns {"plan", "migration", "namespace", "mtcNamespace", "created": bool, "liveMigrate"}."""
        say = on_event or (lambda msg: None)
        mtc = self.locate()
        mtc_ns, ns = mtc["namespace"], plan["namespace"]
        choice = self._choice or self.plan_choice(ns, [m["sourcePVC"] for m in plan["moves"]])
        body = B.build_migplan(plan, mtc_ns, mtc["hostCluster"], hooks, gen=choice["generation"])
        pname = body["metadata"]["name"]
        if dry_run_server:
            self.kube.create(R.MIGPLAN, body, mtc_ns, dry_run=True)
            self.kube.create(R.MIGMIGRATION, B.build_migmigration(plan, mtc_ns, kind, pname=pname), mtc_ns,
                             dry_run=True)
            return {"plan": pname, "migration": None, "namespace": ns, "mtcNamespace": mtc_ns, "created": False,
                    "liveMigrate": plan["liveMigrate"]}
        if choice["current"] is not None:
            mig = self._reattach(pname, plan, kind)
            if mig is not None:
                say(f"re-attaching to MigMigration {mtc_ns}/{mig['metadata']['name']}")
                return {"plan": pname, "migration": mig["metadata"]["name"], "namespace": ns, "mtcNamespace": mtc_ns,
                        "created": False, "liveMigrate": plan["liveMigrate"]}
        if choice["supersede"] is not None:
            self._close(choice["supersede"], pname, timeout, say)
        self._unlabel(plan, ((choice.get("current") or {}).get("metadata") or {}).get("uid"), say)
        own = self.kube.get_or_none(R.MIGPLAN, pname, mtc_ns)
        if own is None:
            say(f"creating MigPlan {mtc_ns}/{pname}")
            try:
                own = self.kube.create(R.MIGPLAN, body, mtc_ns)
            except errors.Conflict:
                own = self.kube.get(R.MIGPLAN, pname, mtc_ns)
            own = self.wait_plan(pname, lambda p: B.condition(p, "PvsDiscovered") is not None
                                 and (p.get("status") or {}).get("suffix"), timeout, "discover the PVCs")
        else:
            # After a successful migration MTC suspends the plan: PV discovery stops and selections are not
            # validated (planSuspended in migplan_controller.go; updatePvs in pvlist.go returns at once). Only
            # spec.refresh: true lifts that for one reconcile, which then sets it back to false — wait for that.
            say(f"adopting MigPlan {mtc_ns}/{pname} (refreshing its PV discovery)")
            want = {"liveMigrate": body["spec"]["liveMigrate"], "hooks": body["spec"].get("hooks"), "refresh": True}
            self.kube.patch(R.MIGPLAN, pname, {"spec": want,
                                               "metadata": {"annotations": body["metadata"]["annotations"]}}, mtc_ns)
            own = self.wait_plan(pname, lambda p: not (p.get("spec") or {}).get("refresh")
                                 and B.condition(p, "PvsDiscovered") is not None
                                 and (p.get("status") or {}).get("suffix"), timeout, "refresh its PV discovery")
        self._check_live_conditions(own, plan)
        naming = lambda src: B.target_name(src, (own.get("status") or {}).get("suffix"))  # noqa: E731
        for m in plan["moves"]:
            m["targetPVC"] = naming(m["sourcePVC"])
        own = self._select(pname, mtc_ns, plan, verify, timeout)
        say(f"MigPlan {mtc_ns}/{pname} is Ready")
        return self._create_migration(own, plan, kind, mtc_ns, say)

    def _close(self, old, new_name, timeout, say):
        """Close our previous plan so the new one is not a PlanConflict. Closing deletes only MTC's own helper
        objects labelled with the plan (``ensureClosed`` → ``MigCluster.DeleteResources``: Deployments, Services,
        Pods, Secrets, … with ``app.kubernetes.io/part-of=openshift-migration``), never a PVC."""
        name = old["metadata"]["name"]
        say(f"closing MigPlan {self.mtc_namespace}/{name}: MTC never re-discovers the disks it created")
        self.kube.patch(R.MIGPLAN, name, {"metadata": {"annotations": {B.SUPERSEDED_ANNOTATION: new_name}},
                                          "spec": {"closed": True}}, self.mtc_namespace)
        self.wait_plan(name, lambda p: B.condition(p, "Closed") is not None, timeout, "close", blockers=False)

    def _unlabel(self, plan, plan_uid, say):
        """Before the plan's discovery: the disks to move that another plan's cutover labelled as its migrated
        sources (plans.labelled_for_other_plans) lose that label, or the discovery would never list them."""
        ns, claims = plan["namespace"], [m["sourcePVC"] for m in plan["moves"]]
        # one LIST (the role has list, not get, on PVCs: checks.MTC_READ_PERMISSIONS)
        for item in PL.labelled_for_other_plans(claims, self.kube.items(R.PVC, ns), plan_uid):
            say(f"removing MTC's label {B.SOURCE_FOR_LABEL}={item['value']} from PVC {ns}/{item['pvc']}: "
                "another plan's cutover set it, and MTC's discovery skips a disk labelled for another plan")
            self.kube.patch(R.PVC, item["pvc"], PL.unlabel_ops(item["value"]), ns, patch_type="json")

    def _check_live_conditions(self, own, plan):
        live_conds = B.live_blocking_conditions(own) if plan["liveMigrate"] else []
        if not live_conds or not any(m["mode"] == "live" for m in plan["moves"]):
            return
        # Preflight already applied MTC's own KubeVirt check (live_capabilities); if the controller still
        # disagrees, refuse rather than stop running VMs nobody confirmed stopping.
        text = "; ".join(f"{c['type']}: {c.get('message', '')}" for c in live_conds)
        raise errors.PreflightRefused(f"MTC reports the cluster cannot live-migrate storage ({text})",
                                      "enable storage live migration in KubeVirt, or use --mode offline")

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
                digest = None  # nothing to write (a re-run): the refreshed status already judges this spec
                break
            # refresh again with the selection, so that this very reconcile re-runs discovery (where PV.Update
            # resets what MTC cannot do) and validatePvSelections, which a suspended plan would skip.
            ops = ops + [{"op": "add", "path": "/spec/refresh", "value": True}]
            try:
                self.kube.patch(R.MIGPLAN, pname, ops, mtc_ns, patch_type="json")
                break
            except (errors.Invalid, errors.Conflict):
                if attempt == 4:
                    raise
                time.sleep(POLL)  # the controller re-sorted the list meanwhile: re-read and retry

        def ready_after_patch(p):
            if digest and ((p.get("status") or {}).get("observedDigest") == digest or (p.get("spec") or {}).get("refresh")):
                return False  # not reconciled since our patch
            bad = B.blockers(p)
            if bad:
                raise errors.PreflightRefused(
                    f"MigPlan {mtc_ns}/{pname} is not Ready: " + "; ".join(
                        f"{c['type']}: {c.get('message', '')}" for c in bad),
                    "fix the problem named by the condition and re-run the same command")
            return B.plan_ready(p)

        ready = self.wait_plan(pname, ready_after_patch, timeout, "become Ready")
        reset = PL.reset_selections(ready["spec"].get("persistentVolumes") or [], plan)
        if reset:
            raise errors.PreflightRefused(
                f"MTC will not copy PVC(s) {', '.join(reset)} in namespace {plan['namespace']}; no migration was "
                "started", "leave these VMs out or use --engine kubevirt (MTC can only skip a hostPath PV)")
        return ready

    def wait_plan(self, pname, predicate, timeout, what, blockers=True):
        deadline = time.monotonic() + timeout
        while True:
            last = self.kube.get(R.MIGPLAN, pname, self.mtc_namespace)
            crit = [c for c in B.blockers(last) if c.get("category") == "Critical"] if blockers else []
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
        try:
            migs = self.migrations_of(pname)
        except errors.NotFound:
            return None
        return PL.reattachable(migs, B.request_hash(B.request_of(plan, kind)), kind)

    def _create_migration(self, own, plan, kind, mtc_ns, say):
        pname = own["metadata"]["name"]
        for attempt in range(1, 100):
            body = B.build_migmigration(plan, mtc_ns, kind, attempt, pname=pname)
            try:
                self.kube.create(R.MIGMIGRATION, body, mtc_ns)
                say(f"created MigMigration {mtc_ns}/{body['metadata']['name']} ({kind})")
                return {"plan": pname, "migration": body["metadata"]["name"], "namespace": plan["namespace"],
                        "mtcNamespace": mtc_ns, "created": True, "liveMigrate": plan["liveMigrate"]}
            except errors.Conflict:
                continue  # an earlier finished run holds this name: take the next
        raise errors.MigrationFailed(f"too many {kind} migrations for MigPlan {pname}")

    # ---- follow / read / cancel / rollback -------------------------------------------------------
    def get_migration(self, name):
        return self.kube.get(R.MIGMIGRATION, name, self.mtc_namespace)

    def result(self, name):
        """(result, message, MigMigration) by the one MTC verdict — the same Migration ``status`` shows."""
        mig = self.get_migration(name)
        plan_ref = ((mig.get("spec") or {}).get("migPlanRef") or {}).get("name")
        plan_obj = self.kube.get_or_none(R.MIGPLAN, plan_ref, self.mtc_namespace) or {"metadata": {"name": plan_ref}}
        ns = (((plan_obj.get("spec") or {}).get("namespaces") or [None])[0] or "").split(":")[0] or None
        for m in self.read(namespace=ns):
            if m.get("_migration") == name:
                return m["result"], m.get("_verdict") or "", mig
        return B.run_state(mig), "", mig

    def read(self, namespace=None, name=None, all_namespaces=False):
        from . import progress as progress_mtc

        migs = progress_mtc.collect(self.kube, namespace, all_namespaces)
        return [m for m in migs if name is None or m.get("plan") == name]

    def find_plan(self, name):
        """A MigPlan by name, or the plugin's current plan for the namespace ``name``."""
        p = self.kube.get_or_none(R.MIGPLAN, name, self.mtc_namespace)
        if p is None:
            own = sorted(self.own_plans(name), key=PL.generation)
            opened = [x for x in own if not PL.is_closed(x)]
            p = (opened or own or [None])[-1]
        if p is None:
            raise errors.NotFoundInput(f"MigPlan {name} not found in namespace {self.mtc_namespace}",
                                       "list plans with 'kubectl vm-storage status -A'")
        return p

    def running_migration(self, plan_obj):
        migs = self.migrations_of(plan_obj["metadata"]["name"])
        running = [m for m in migs if B.run_state(m) == "Running"]
        running.sort(key=lambda m: m["metadata"].get("creationTimestamp") or "")
        return running[-1] if running else None

    def cancel(self, name, namespace=None):
        """Request the cancel; returns (MigMigration name, warning or ""). While a blocker condition holds, MTC does
        not process the cancel (see ``plans.blocker_conditions``): say so instead of implying it is under way."""
        plan_obj = self.find_plan(name)
        mig = self.running_migration(plan_obj)
        if mig is None:
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} has no running migration to cancel",
                                  "see 'kubectl vm-storage status'")
        self.kube.patch(R.MIGMIGRATION, mig["metadata"]["name"], {"spec": {"canceled": True}}, self.mtc_namespace)
        held = PL.blocker_conditions(mig)
        warning = ""
        if held:
            warning = ("MTC will not process the cancel while " + "; ".join(
                f"{c.get('type')}: {c.get('message', '')}" for c in held) + " holds; it takes effect once that clears")
        return mig["metadata"]["name"], warning

    def rollback(self, name, dry_run_server=False):
        plan_obj = self.find_plan(name)
        if self.running_migration(plan_obj) is not None:
            raise errors.BadInput(f"MigPlan {plan_obj['metadata']['name']} has a running migration",
                                  "wait for it to finish or cancel it before rolling back")
        if PL.is_closed(plan_obj):
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
