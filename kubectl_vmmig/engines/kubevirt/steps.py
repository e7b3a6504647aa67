"""The kubevirt engine's per-VM state machine (shell): one ``advance`` call moves each VM as far as it can
without waiting, so a run can stop at any point (``--detach``, Ctrl-C, crash) and a re-run resumes it
from the migration record.

Live:    Pending -> CreatingVolumes -> WaitingForVolumes -> Patching -> Migrating -> CleaningUp -> Completed
Offline: Pending -> [Stopping] -> CreatingVolumes -> WaitingForVolumes -> Patching -> [Starting] -> Completed
Offline, detached, VM stopped by its owner: Pending -> CreatingVolumes -> Patching -> Cloning -> Completed
(the VM points at the destinations at once: KubeVirt does not start a VM before its volumes are populated,
kubevirt vmi/lifecycle.go "Delaying pod creation while DataVolume populates" via areDataVolumesReady /
storage/types pvc.go VolumeReadyToAttachToNode, for dataVolume and persistentVolumeClaim volumes alike, and
vm.go handleDataVolumes for templates; so nothing is left for the plugin but to record the result).
Any step may end in Failed. Patches are precomputed in the record (so the one a run applies is exactly the
one ``--dry-run=client`` showed) and guarded by ``test`` ops: a concurrent edit is never overwritten.
"""
import datetime
from typing import Callable, List, Optional

from ... import errors
from ... import resources as R
from ...patches import volume_claims
from . import build as B
from .guarded_patch import PatchRefused, guarded_patch
from .track import judge_live, vmims_of
from .volumes import destination_state

TERMINAL = ("Completed", "Failed", "Canceled")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Driver:
    """Advances one migration record. ``save(record)`` persists it; ``echo(msg)`` tells the user."""

    def __init__(self, kube, record: dict, options: dict, echo: Callable[[str], None], reads=None):
        from .reads import NamespaceReads

        self.kube = kube
        self.rec = record
        self.ns = record["namespace"]
        self.opts = options
        self.echo = echo
        self.dry = bool(options.get("dry_run_server"))
        # this pass's LIST of each kind (reads.py): the namespace's own, or a fleet's shared across namespaces
        self.reads = reads or NamespaceReads(kube, self.ns)
        self._hold = False  # a write this pass whose effect the reads cannot show yet: the VM waits a pass
        # the record's resourceVersion as this run last wrote it (the loop sets it after each save): before it
        # stops or swaps a VM, the driver makes sure nobody else wrote the record since (_still_ours)
        self.record_version: Optional[str] = None

    # ---- reads: one LIST per kind per pass (reads.py) -------------------------------------------
    def _kind(self, res) -> dict:
        return self.reads.kind(res, self.ns)

    def _obj(self, res, name):
        return self._kind(res).get(name)

    def _must(self, res, name):
        obj = self._obj(res, name)
        if obj is None:
            raise errors.NotFound(f"{res.kind} {self.ns}/{name} not found", status=404)
        return obj

    def _vmims(self, vm_name):
        return vmims_of(list(self._kind(R.VMIM).values()), vm_name)

    def _still_ours(self):
        """Before a write that moves a VM (stop, volume swap): the record as this pass LISTed it must be the one
        this run last wrote. ``cancel`` writes Canceling into it first (engine.cancel), so a cancel from another
        terminal stops the run here, before the VM is touched - not only at the run's next record write."""
        if self.dry or self.record_version is None:
            return
        cm = self.reads.records(self.ns).get(B.record_name(self.rec["name"]))
        if cm is None or (cm.get("metadata") or {}).get("resourceVersion") == self.record_version:
            return
        theirs = B.record_from_configmap(cm) or {}
        if theirs.get("phase") in ("Canceling", "Canceled"):
            raise errors.MigrationCanceled(f"migration {self.rec['name']} was canceled by another command")

    def _wrote(self, *resources, made=None):
        """After a write: ``made`` (the API server's answer: the object as written) is what this run reads for it
        until the reads show it (reads.FleetReads); the VM written to waits for the next pass when they cannot
        re-read at once."""
        if not self.reads.wrote(*resources, made=made):
            self._hold = True

    # ---- helpers ---------------------------------------------------------------------------------
    def _vm_disks(self, vm_name: str) -> List[dict]:
        return [d for d in self.rec["disks"] if d["vm"] == vm_name]

    def _set(self, r: dict, vm_name: str, phase: str, message: str = "", result: Optional[str] = None):
        if r.get("phase") != phase or (message and r.get("message") != message):
            self.echo(f"{vm_name}: {phase}" + (f" - {message}" if message else ""))
        r["phase"], r["message"] = phase, message
        if result:
            r["result"] = result

    def _fail(self, r, vm_name, message):
        self._set(r, vm_name, "Failed", message, "Failed")

    # ---- one pass ----------------------------------------------------------------------------------
    def advance(self, admitted=None) -> dict:
        """One pass. ``admitted``: the VMs a fleet's one window lets start now (schedule.fleet_queue), else this
        record's own window decides."""
        self.reads.new_pass()
        self._admit(admitted)
        for vm_name, r in self.rec["vms"].items():
            if r.get("phase") in TERMINAL or r.get("phase") == "Queued":
                continue
            self._hold = False
            for _ in range(6):  # several cheap transitions per pass, stop when nothing moved
                if self._hold:
                    break
                before = r.get("phase")
                try:
                    self._advance_vm(vm_name, r)
                except PatchRefused as exc:
                    self._fail(r, vm_name, exc.line())   # recorded; drive.run_pass lets the others go on
                    self._summarize()
                    raise
                if r.get("phase") == before or r.get("phase") in TERMINAL:
                    break
        self._summarize()
        return self.rec

    def _admit(self, admitted=None):
        """--parallel/--max-per-node: the sliding window (schedule.admit) decides which not-yet-started VMs
        start now; the others wait as Queued. A server dry run sends every request at once (nothing runs)."""
        from .schedule import NOT_STARTED, admit, entry

        parallel, per_node = self.opts.get("parallel"), self.opts.get("max_per_node")
        if self.dry or (parallel is None and per_node is None):
            return
        vms = self.rec["vms"]
        start = set(admit([entry(v, r) for v, r in vms.items()], parallel, per_node)) if admitted is None \
            else set(admitted)
        for vm_name, r in vms.items():
            if r.get("phase") not in NOT_STARTED:
                continue
            if vm_name in start:
                if r.get("phase") == "Queued":
                    self._set(r, vm_name, "Pending")
            elif r.get("phase") != "Queued":  # quietly: a fleet queues hundreds at once
                limits = [f"--{k} {n}" for k, n in (("parallel", parallel), ("max-per-node", per_node)) if n]
                r["phase"], r["message"] = "Queued", f"waiting for a slot ({', '.join(limits)})"

    def _summarize(self):
        results = [r.get("result") for r in self.rec["vms"].values()]
        if any(x == "Running" for x in results):
            self.rec["result"] = "Running"
        elif any(x == "Failed" for x in results):
            self.rec["result"] = "Failed"
        else:
            self.rec["result"] = "Succeeded"
        phases = [r.get("phase") for r in self.rec["vms"].values()]
        self.rec["phase"] = phases[0] if len(set(phases)) == 1 else "Migrating" if "Migrating" in phases else \
            next((p for p in phases if p not in TERMINAL), "Completed")
        if self.rec["result"] != "Running" and not self.rec.get("completed"):
            self.rec["completed"] = now()
            msgs = [f"{v}: {r['message']}" for v, r in self.rec["vms"].items() if r.get("result") == "Failed"]
            self.rec["message"] = "; ".join(msgs)

    def _advance_vm(self, vm_name: str, r: dict):
        phase = r.get("phase") or "Pending"
        live = r["mode"] == "live"
        if phase == "Pending":
            self._must(R.VM, vm_name)  # raises NotFound when the VM is gone
            vmi = self._obj(R.VMI, vm_name)
            if not live and vmi is not None:
                if not r.get("stopPatch"):
                    self._fail(r, vm_name, "the VM is running and offline copy needs it stopped; re-run with --stop")
                    return
                self._set(r, vm_name, "Stopping", "stopping the VM for the offline copy")
                return
            self._set(r, vm_name, "CreatingVolumes")
        elif phase == "Stopping":
            self._stop(vm_name, r)
        elif phase == "CreatingVolumes":
            self._create_volumes(vm_name, r, live)
        elif phase == "WaitingForVolumes":
            self._wait_volumes(vm_name, r, live)
        elif phase == "Patching":
            self._patch(vm_name, r, live)
        elif phase == "Migrating":
            self._track(vm_name, r)
        elif phase == "CleaningUp":
            self._cleanup(vm_name, r)
        elif phase == "Cloning":
            self._cloning(vm_name, r)
        elif phase == "Starting":
            self._start(vm_name, r)

    def _stop(self, vm_name, r):
        vm = self._must(R.VM, vm_name)
        if not r.get("stoppedByPlugin"):
            self._still_ours()
            made = guarded_patch(self.kube, vm_name, self.ns, r["stopPatch"], "stop", self.dry)
            self._wrote(R.VM, R.VMI, made=made)
            r["stoppedByPlugin"] = True
            if self.dry:
                self._set(r, vm_name, "CreatingVolumes")
            return
        vmi = self._obj(R.VMI, vm_name)
        printable = (vm.get("status") or {}).get("printableStatus")
        if vmi is None and printable in (None, "Stopped"):
            self._set(r, vm_name, "CreatingVolumes", "VM stopped")

    def _create_volumes(self, vm_name, r, live):
        for body in r["dataVolumes"]:
            name = body["metadata"]["name"]
            existing = self._obj(R.DATAVOLUME, name)
            if existing is not None:
                mine = ((existing.get("metadata") or {}).get("labels") or {}).get(B.LABEL_MIGRATION) == self.rec["name"]
                if not mine:
                    self._fail(r, vm_name, f"DataVolume {name} exists and was not created by this migration; "
                                           "rename or remove it (the plugin never reuses someone else's volume)")
                    return
                continue
            try:
                made = self.kube.create(R.DATAVOLUME, body, self.ns, dry_run=self.dry)
                self._wrote(R.DATAVOLUME, R.PVC, made=made)
            except errors.Conflict:
                continue  # created concurrently by a re-run: checked on the next pass
        self._set(r, vm_name, "WaitingForVolumes", "waiting for destination DataVolumes to be usable")
        if self.dry or self._swap_early(r, live):
            self._set(r, vm_name, "Patching")

    def _wait_volumes(self, vm_name, r, live):
        waiting = []
        for body in r["dataVolumes"]:
            name = body["metadata"]["name"]
            dv = self._obj(R.DATAVOLUME, name)
            if dv is None:
                self._set(r, vm_name, "CreatingVolumes")
                return
            pvc = self._obj(R.PVC, name) if live else None
            state, why = destination_state(dv, pvc, live)
            if state in ("failed", "refused"):
                self._fail(r, vm_name, why + (f"; see kubectl describe dv -n {self.ns} {name}" if state == "failed"
                                              else "; nothing was changed on the VM"))
                return
            if state == "waiting":
                waiting.append(why)
        if waiting:
            self._set(r, vm_name, "WaitingForVolumes", "waiting for " + ", ".join(waiting))
            return
        self._set(r, vm_name, "Patching")

    def _patch(self, vm_name, r, live):
        vm = self._must(R.VM, vm_name)
        if all(volume_claims(vm).get(v) == c for v, c in r["targetClaims"].items()):
            r["patchedAt"] = r.get("patchedAt") or now()   # applied by a run that stopped before saving
        elif self.dry and r.get("stopPatch"):
            pass  # the swap is guarded on the stopped VM's generation, which a dry run never reaches
        else:
            if live:
                vmims = self._vmims(vm_name)
                r["knownVMIMs"] = [(m.get("metadata") or {}).get("uid") for m in vmims]
                vmi = self._obj(R.VMI, vm_name)
                state = ((vmi or {}).get("status") or {}).get("migrationState") or {}
                if state.get("migrationUid"):
                    r["knownVMIMs"].append(state["migrationUid"])  # a migration before ours, VMIM maybe gone
            self._still_ours()
            made = guarded_patch(self.kube, vm_name, self.ns, r["patch"], "volume swap", self.dry)
            self._wrote(R.VM, R.VMI, R.VMIM, made=made)
            r["patchedAt"] = now()
        if self.dry:
            self._set(r, vm_name, "Completed", "server dry run: every request was accepted", "Succeeded")
        elif live:
            self._set(r, vm_name, "Migrating", "volume update applied; KubeVirt copies the disks")
        elif r.get("swapEarly"):
            self._set(r, vm_name, "Cloning", "the VM points at its destinations; CDI clones, KubeVirt will not "
                                             "start the VM before they are populated")
        elif r.get("stoppedByPlugin"):
            self._set(r, vm_name, "Starting", "restarting the VM")
        else:
            self._set(r, vm_name, "Completed", "volumes copied and swapped (the VM stays stopped); "
                      + self.sources_hint(vm_name), "Succeeded")

    def _track(self, vm_name, r):
        vm = self._obj(R.VM, vm_name)
        vmi = self._obj(R.VMI, vm_name)
        vmims = self._vmims(vm_name)
        j = judge_live(r, vm, vmi, vmims, self.rec["name"], vm_name)
        r["vmim"], r["attempts"], r["failures"] = j["vmim"], j["attempts"], j["failures"]
        if j["migrationState"]:
            r["migrationState"] = j["migrationState"]
        max_failures = int(self.opts.get("max_failures") or 3)
        if j["result"] == "Succeeded":
            self._set(r, vm_name, "CleaningUp", "volumes migrated")
        elif j["result"] == "Failed":
            self._fail(r, vm_name, j["message"])
        # KubeVirt re-creates a VMIM after a back-off, so the latest one is often already Pending again when we
        # look: give up on the failure count unless an attempt is actually copying (Running) right now.
        # Giving up only ends *following*: KubeVirt keeps retrying (workload-updater.go doesRequireMigration),
        # so the record says gaveUp and status/re-runs judge the VM from the cluster again.
        elif j["failures"] - int(r.get("failuresBefore") or 0) >= max_failures \
                and j["phase"] not in ("Running", "Finalizing"):
            r["gaveUp"] = True
            self._fail(r, vm_name, f"{j['message']}; stopped following after {j['failures']} failed attempts - "
                                   "KubeVirt keeps retrying: 'kubectl vm-storage status "
                                   f"{self.rec['name']} -n {self.ns}' shows the outcome, 'kubectl vm-storage cancel "
                                   f"{self.rec['name']} -n {self.ns}' restores the original volumes")
        else:
            self._set(r, vm_name, "Migrating", j["message"])

    def _cleanup(self, vm_name, r):
        # spec.updateVolumesStrategy stays: on a running VM its removal makes KubeVirt raise RestartRequired
        # (vm.go syncRestartRequired compares with the VM revision of the VMI's start; validLiveUpdateVolumes
        # excuses changed claims only under Migration), which blocks every later live update. MTC and
        # kubevirt-migration-controller keep it too.
        self._set(r, vm_name, "Completed", "volumes migrated (spec.updateVolumesStrategy: Migration kept); "
                  + self.sources_hint(vm_name), "Succeeded")

    def _swap_early(self, r, live) -> bool:
        """Detached offline copy of a VM its owner stopped: swap now (see the module doc), so the copy needs no
        plugin. Never for --stop (the plugin must restart the VM) nor live moves (KubeVirt must copy)."""
        if live or not self.opts.get("detach") or r.get("stopPatch") or r.get("patchedAt"):
            return False
        r["swapEarly"] = True
        return True

    def _cloning(self, vm_name, r):
        waiting = []
        for body in r["dataVolumes"]:
            name = body["metadata"]["name"]
            state, why = destination_state(self._obj(R.DATAVOLUME, name), None, False)
            if state == "failed":
                self._fail(r, vm_name, f"{why}; the VM already points at it - run 'kubectl vm-storage cancel "
                                       f"{self.rec['name']} -n {self.ns}' to restore the original volumes")
                return
            if state != "ready":
                waiting.append(why)
        if waiting:
            self._set(r, vm_name, "Cloning", "CDI clones: " + ", ".join(waiting))
            return
        self._set(r, vm_name, "Completed", "volumes copied; the VM points at them (it stays stopped); "
                  + self.sources_hint(vm_name), "Succeeded")

    def _start(self, vm_name, r):
        vm = self._must(R.VM, vm_name)
        spec = vm.get("spec") or {}
        halted = spec.get("runStrategy") == "Halted" or ("running" in spec and spec.get("running") is False)
        if halted and r.get("startPatch"):
            made = guarded_patch(self.kube, vm_name, self.ns, r["startPatch"], "restart")
            self._wrote(R.VM, R.VMI, made=made)
        how = f"run strategy {r.get('originalRunStrategy')} restored"
        if r.get("originalRunStrategy") == "Manual":
            # vm.go syncRunStrategy, case RunStrategyManual: with no VMI it starts only on a start request
            # (hasStartRequest: the start subresource), restoring Manual alone leaves the VM stopped.
            if self._obj(R.VMI, vm_name) is None:
                try:
                    self.kube.subresource("PUT", R.VM, vm_name, "start", self.ns, body={})
                    self._wrote(R.VM, R.VMI)
                except errors.ApiError as exc:
                    self._fail(r, vm_name, f"volumes copied and swapped, run strategy Manual restored, but the VM "
                                           f"could not be started ({exc.line()}): start it with 'virtctl start "
                                           f"{vm_name} -n {self.ns}'")
                    return
            how += " and the VM started (start subresource)"
        self._set(r, vm_name, "Completed", f"volumes copied; {how}; " + self.sources_hint(vm_name), "Succeeded")

    def sources_hint(self, vm_name) -> str:
        """How to remove the sources - only once every destination DataVolume is Succeeded (a pending clone
        whose source is deleted never completes: CDI CloneWithoutSource)."""
        srcs = " ".join(d["sourcePVC"] for d in self._vm_disks(vm_name))
        pending = [d["targetPVC"] for d in self._vm_disks(vm_name)
                   if ((self._obj(R.DATAVOLUME, d["targetPVC"]) or {}).get("status") or {})
                   .get("phase") != "Succeeded"]
        if pending:
            return (f"the source volumes are kept; keep them until kubectl get dv -n {self.ns} "
                    f"{' '.join(pending)} shows Succeeded")
        return (f"the source volumes are kept; once the VM is verified remove them with: "
                f"kubectl delete dv,pvc -n {self.ns} {srcs} --ignore-not-found")
