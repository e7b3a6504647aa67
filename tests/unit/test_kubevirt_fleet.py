"""A fleet of namespaces driven under ONE window (engines/kubevirt/fleet.py, schedule.fleet_queue), in memory."""
import copy

import jsonpatch
import pytest

from kubectl_vmmig import errors
from kubectl_vmmig.engines.kubevirt import build as B
from kubectl_vmmig.engines.kubevirt.drive import run_pass
from kubectl_vmmig.engines.kubevirt.fleet import migrations_seen
from kubectl_vmmig.engines.kubevirt.reads import FleetReads
from kubectl_vmmig.engines.kubevirt.schedule import DONE, QUEUED, RUNNING, admit, fleet_queue
from kubectl_vmmig.engines.kubevirt.steps import Driver

SPACES = ("ns-a", "ns-b", "ns-c")


class NamespacedKube:
    """Objects by (kind, namespace, name); LISTs of one namespace or of all (``forbid_all``: a user whose rights
    are namespaced gets 403 for the cluster-wide LIST, as kube-apiserver's RBAC answers it). Records every call."""

    def __init__(self, *objs, forbid_all=False):
        self.objs = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): copy.deepcopy(o) for o in objs}
        self.calls, self.forbid_all = [], forbid_all

    def items(self, res, ns=None, all_namespaces=False, **kw):
        self.calls.append(("list", res.kind, None if all_namespaces else ns))
        if all_namespaces and self.forbid_all:
            raise errors.Forbidden(f"{res.plural} is forbidden at the cluster scope", status=403)
        return [copy.deepcopy(o) for (k, n, _), o in self.objs.items() if k == res.kind and (all_namespaces or n == ns)]

    def create(self, res, body, ns=None, dry_run=False):
        self.calls.append(("create", res.kind, ns))
        self.objs[(res.kind, ns, body["metadata"]["name"])] = copy.deepcopy(dict(body, kind=res.kind))
        return body

    def patch(self, res, name, ops, ns=None, patch_type="json", dry_run=False):
        self.calls.append(("patch", res.kind, ns, name))
        before = self.objs[(res.kind, ns, name)]
        after = jsonpatch.apply_patch(before, ops)
        after["metadata"]["generation"] = before["metadata"].get("generation", 0) + 1
        self.objs[(res.kind, ns, name)] = after
        return after


def a_vm(ns, i):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": f"vm{i}", "namespace": ns, "generation": 3, "uid": f"{ns}-uid{i}"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": f"p{i}"}}]}}}}


def plan_of(ns, n):
    return {"namespace": ns, "vms": [f"vm{i}" for i in range(n)], "targetStorageClass": "fast",
            "moves": [{"vm": f"vm{i}", "namespace": ns, "volume": "data", "kind": "pvc", "sourcePVC": f"p{i}",
                       "targetPVC": f"p{i}-fast", "sourceSC": "standard", "targetSC": "fast", "mode": "offline",
                       "size": "1Gi", "sizeBytes": 2 ** 30, "accessModes": ["ReadWriteOnce"],
                       "volumeMode": "Filesystem", "targetBindingMode": "Immediate", "dataVolumeTemplateIndex": None}
                      for i in range(n)]}


def a_fleet(n=4, **kw):
    kube = NamespacedKube(*[a_vm(ns, i) for ns in SPACES for i in range(n)], **kw)
    recs = [B.new_record(plan_of(ns, n), {f"vm{i}": a_vm(ns, i) for i in range(n)}, f"m-{ns}", "t")
            for ns in SPACES]
    reads = FleetReads(kube, SPACES)
    drivers = [Driver(kube, rec, {"parallel": 3}, lambda line: None, reads=reads.view(rec["namespace"]))
               for rec in recs]
    return kube, recs, reads, drivers


def in_flight(recs):
    return sorted((rec["namespace"], v) for rec in recs for v, r in rec["vms"].items()
                  if r["phase"] not in ("Queued", "Pending", "Completed"))


def copy_one(kube):
    """CDI finishes the oldest destination still copying (one copy ends)."""
    for (kind, _, _), o in kube.objs.items():
        if kind == "DataVolume" and (o.get("status") or {}).get("phase") != "Succeeded":
            o["status"] = {"phase": "Succeeded", "progress": "100.0%"}
            return


def test_the_fleet_queue_takes_each_namespace_in_turn():
    recs = [{"namespace": ns, "vms": {f"vm{i}": {"phase": "Pending", "mode": "offline"} for i in range(2)}}
            for ns in ("a", "b")]
    assert [k for k, _, _, _ in fleet_queue(recs)] == [("a", "vm0"), ("b", "vm0"), ("a", "vm1"), ("b", "vm1")]
    # one window: 3 slots over the fleet, not 3 per namespace
    assert admit(fleet_queue(recs), 3, None) == [("a", "vm0"), ("b", "vm0"), ("a", "vm1")]


def test_the_per_node_limit_counts_the_live_moves_of_every_namespace():
    recs = [{"namespace": "a", "vms": {"x": {"phase": "Migrating", "mode": "live", "sourceNode": "n1"},
                                       "y": {"phase": "Pending", "mode": "live", "sourceNode": "n1"}}},
            {"namespace": "b", "vms": {"x": {"phase": "Migrating", "mode": "live", "sourceNode": "n1"},
                                       "z": {"phase": "Pending", "mode": "live", "sourceNode": "n2"}}}]
    queue = fleet_queue(recs)
    assert [s for _, s, _, _ in queue] == [RUNNING, RUNNING, QUEUED, QUEUED]
    assert admit(queue, 10, 2) == [("b", "z")]  # n1 already has 2 outbound moves, one from each namespace
    assert DONE not in [s for _, s, _, _ in queue]


def test_one_window_over_the_fleet_and_the_namespaces_overlap():
    kube, recs, reads, drivers = a_fleet()
    saved = []
    run_pass(drivers, reads, 3, None, lambda d: saved.append(d.ns))
    # 3 copies across the fleet (one per namespace), not 3 per namespace
    assert in_flight(recs) == [("ns-a", "vm0"), ("ns-b", "vm0"), ("ns-c", "vm0")]
    assert sorted(set(saved)) == list(SPACES)
    peak, spans = 3, {}
    for step in range(60):
        copy_one(kube)
        run_pass(drivers, reads, 3, None, lambda d: None)
        now = in_flight(recs)
        peak = max(peak, len(now))
        for ns, _ in now:
            spans.setdefault(ns, [step, step])[1] = step
        if all(r["result"] != "Running" for r in recs):
            break
    assert all(r["result"] == "Succeeded" for r in recs) and peak <= 3
    # every namespace was in flight while another one was: not one after another
    (a0, a1), (b0, b1), (c0, c1) = (spans[ns] for ns in SPACES)
    assert max(a0, b0, c0) < min(a1, b1, c1)
    assert sum(1 for c in kube.calls if c[0] == "patch") == 12


def test_a_pass_lists_each_kind_once_across_the_namespaces():
    kube, recs, reads, drivers = a_fleet(n=6)
    run_pass(drivers, reads, 3, None, lambda d: None)
    copy_one(kube)
    kube.calls.clear()
    run_pass(drivers, reads, 3, None, lambda d: None)
    lists = [c for c in kube.calls if c[0] == "list"]
    assert sorted(lists) == sorted(set(lists)) and all(ns is None for _, _, ns in lists), lists


def test_namespaced_rights_list_per_namespace():
    kube, recs, reads, drivers = a_fleet(forbid_all=True)
    run_pass(drivers, reads, 3, None, lambda d: None)
    assert in_flight(recs) == [("ns-a", "vm0"), ("ns-b", "vm0"), ("ns-c", "vm0")]
    kube.calls.clear()
    run_pass(drivers, reads, 3, None, lambda d: None)
    lists = [c for c in kube.calls if c[0] == "list"]
    assert lists and all(ns in SPACES for _, _, ns in lists)  # no second refused cluster-wide LIST


def test_a_rerun_of_the_fleet_does_not_redo_finished_vms():
    kube, recs, reads, drivers = a_fleet(n=2)
    for _ in range(4):
        copy_one(kube)
        run_pass(drivers, reads, 3, None, lambda d: None)
    done = {(rec["namespace"], v) for rec in recs for v, r in rec["vms"].items() if r["phase"] == "Completed"}
    assert 0 < len(done) < 6
    # interrupted: the re-run loads every namespace's saved record and goes on
    again = [B.record_from_configmap(copy.deepcopy(B.record_configmap(rec))) for rec in recs]
    reads2 = FleetReads(kube, SPACES)
    drivers2 = [Driver(kube, rec, {"parallel": 3}, lambda line: None, reads=reads2.view(rec["namespace"]))
                for rec in again]
    patched_before = len([c for c in kube.calls if c[0] == "patch"])
    for _ in range(20):
        copy_one(kube)
        run_pass(drivers2, reads2, 3, None, lambda d: None)
    assert all(r["result"] == "Succeeded" for r in again)
    patched = [(c[2], c[3]) for c in kube.calls if c[0] == "patch"][patched_before:]
    assert sorted(patched) == sorted({(ns, f"vm{i}") for ns in SPACES for i in range(2)} - done)


def test_the_view_is_built_from_the_pass_reads_without_a_request():
    kube, recs, reads, drivers = a_fleet(n=2)
    run_pass(drivers, reads, 3, None, lambda d: None)
    kube.calls.clear()
    ms = migrations_seen(recs, reads, "2026-01-01T00:00:00Z")
    assert kube.calls == []
    assert [m["namespace"] for m in ms] == list(SPACES)
    phases = sorted(d["phase"] for m in ms for d in m["disks"])
    assert phases.count("Queued") == 3


def test_a_record_is_written_back_at_once_for_a_state_change_and_later_for_a_message():
    from kubectl_vmmig.engines.kubevirt.saves import Saves

    clock = [0.0]
    rec = {"name": "m", "namespace": "a", "result": "Running",
           "vms": {"vm0": {"phase": "WaitingForVolumes", "message": "waiting for p0-fast: 10%", "result": "Running"}}}
    saves = Saves(rec, every=10, clock=lambda: clock[0])
    assert not saves.due(rec)
    rec["vms"]["vm0"]["message"] = "waiting for p0-fast: 40%"
    assert not saves.due(rec)            # a progress message alone waits...
    clock[0] = 10.0
    assert saves.due(rec)                # ...at most ``every`` seconds
    saves.saved(rec)
    rec["vms"]["vm0"].update(phase="Completed", result="Succeeded")
    assert saves.due(rec)                # a state change is written at once
    saves.saved(rec)
    rec["vms"]["vm1"] = {"phase": "Queued", "message": "", "result": "Running"}
    saves.saved(rec)
    rec["vms"]["vm1"]["phase"] = "WaitingForVolumes"  # before the VM is touched: found again by a re-run
    assert not saves.due(rec)
    rec["vms"]["vm1"]["phase"] = "Patching"
    assert saves.due(rec)
    saves.saved(rec)
    rec["vms"]["vm0"]["message"] = "done"
    assert not saves.due(rec) and saves.due(rec, final=True)  # and whatever is left, at the end


def test_status_shows_a_vm_copying_even_before_its_record_says_it_left_the_queue():
    from kubectl_vmmig.engines.kubevirt import progress as KP

    kube, recs, reads, drivers = a_fleet(n=2)
    saved = [B.record_from_configmap(copy.deepcopy(B.record_configmap(r))) for r in recs]
    for r in saved:  # as written before the first pass: every VM still Queued
        for v in r["vms"].values():
            v["phase"] = "Queued"
    run_pass(drivers, reads, 3, None, lambda d: None)  # the run admits and creates destinations
    objs = [dict(B.record_configmap(r), kind="ConfigMap") for r in saved] + list(kube.objs.values())
    rows = {(m["namespace"], d["vm"]): d["phase"] for m in KP.from_objects(objs) for d in m["disks"]}
    assert rows[("ns-a", "vm0")] != "Queued" and rows[("ns-a", "vm1")] == "Queued"


def test_a_cancel_of_one_namespace_stops_it_before_a_vm_is_swapped_and_the_others_go_on():
    kube, recs, reads, drivers = a_fleet(n=2)
    for d in drivers:
        cm = dict(B.record_configmap(d.rec), kind="ConfigMap")
        cm["metadata"]["resourceVersion"] = "1"
        kube.objs[("ConfigMap", d.ns, cm["metadata"]["name"])] = cm
        d.record_version = "1"
    # `kubectl vm-storage cancel` of ns-b's migration writes Canceling into its record (a new resourceVersion)
    theirs = kube.objs[("ConfigMap", "ns-b", B.record_name(recs[1]["name"]))]
    theirs["data"] = B.record_configmap(dict(recs[1], phase="Canceling"))["data"]
    theirs["metadata"]["resourceVersion"] = "2"
    for _ in range(20):
        copy_one(kube)
        run_pass(drivers, reads, 3, None, lambda d: None)
        if all(r["result"] != "Running" for r in recs):
            break
    patched = {(c[2], c[3]) for c in kube.calls if c[0] == "patch"}
    assert not [p for p in patched if p[0] == "ns-b"]  # no VM of the canceled namespace was swapped
    assert patched == {(ns, f"vm{i}") for ns in ("ns-a", "ns-c") for i in range(2)}
    assert [r["result"] for r in recs] == ["Succeeded", "Canceled", "Succeeded"]


@pytest.mark.parametrize("shared", [True, False], ids=["fleet", "one-record"])
def test_a_lost_api_server_during_a_pass_is_ridden_out_and_the_fleet_goes_on(monkeypatch, shared):
    """The one loop (drive.py) rides out a lost API server for a fleet's records and for one record alike."""
    from kubectl_vmmig.engines.kubevirt import drive as DR

    kube, recs, _, _ = a_fleet(n=1)
    down = [2]  # the next two LISTs find the API server gone

    real = kube.items

    def items(res, ns=None, **kw):
        if down[0] > 0:
            down[0] -= 1
            raise errors.ConnectionFailed("cannot reach the API server")
        if res.kind == "DataVolume":
            for (kind, _, _), o in kube.objs.items():
                if kind == "DataVolume":
                    o["status"] = {"phase": "Succeeded", "progress": "100.0%"}
        return real(res, ns, **kw)

    kube.items = items
    said = []

    class Shell:
        options = {"parallel": 3, "poll": 0.01}

        def __init__(self):
            self.kube, self.echo = kube, said.append

        def _save(self, rec, cm, dry=False):
            return {"metadata": {"resourceVersion": "1"}}

    monkeypatch.setattr(DR.time, "sleep", lambda s: None)
    fleet_reads = FleetReads(kube, [r["namespace"] for r in recs]) if shared else None
    out = DR.drive(Shell(), [(r, None) for r in recs], True, fleet_reads=fleet_reads, pause=lambda s: None)
    assert [r["result"] for r in out] == ["Succeeded"] * 3
    assert said.count("reconnected") == 1 and any(s.startswith("reconnecting") for s in said)


class EditedUnderUs(NamespacedKube):
    """vm0 is edited by someone else just before each of our patches: the API server refuses the guarded patch
    (a failed ``test`` op is a 422) and the re-read shows the new generation (guarded_patch.PatchRefused)."""

    def patch(self, res, name, ops, ns=None, patch_type="json", dry_run=False):
        if res.kind == "VirtualMachine" and name == "vm0":
            self.objs[(res.kind, ns, name)]["metadata"]["generation"] += 1
            raise errors.Invalid("the server rejected our request: testing value /metadata/generation failed",
                                 status=422)
        return super().patch(res, name, ops, ns, patch_type, dry_run)

    def get_or_none(self, res, name, ns=None):
        return copy.deepcopy(self.objs.get((res.kind, ns, name)))

    def items(self, res, ns=None, all_namespaces=False, **kw):
        for (kind, _, _), o in self.objs.items():  # CDI copies at once
            if kind == "DataVolume":
                o["status"] = {"phase": "Succeeded", "progress": "100.0%"}
        return super().items(res, ns, all_namespaces, **kw)


@pytest.mark.parametrize("shared", [True, False], ids=["fleet", "one-record"])
def test_a_refused_volume_swap_fails_that_vm_the_others_go_on_then_the_run_says_so(shared):
    """One rule for one record and for a fleet (drive.run_pass): the VM edited under us is recorded as failed,
    nothing of it is overwritten, the record's other VM is still moved, and the refusal is the run's error."""
    from kubectl_vmmig.engines.kubevirt import drive as DR
    from kubectl_vmmig.engines.kubevirt.guarded_patch import PatchRefused

    kube = EditedUnderUs(a_vm("ns-a", 0), a_vm("ns-a", 1))
    rec = B.new_record(plan_of("ns-a", 2), {f"vm{i}": a_vm("ns-a", i) for i in range(2)}, "m-ns-a", "t")
    saved = []

    class Shell:
        options = {"poll": 0.01}

        def __init__(self):
            self.kube, self.echo = kube, lambda line: None

        def _save(self, rec, cm, dry=False):
            saved.append(copy.deepcopy(rec))
            return {"metadata": {"resourceVersion": str(len(saved))}}

    fleet_reads = FleetReads(kube, ["ns-a"]) if shared else None
    with pytest.raises(PatchRefused) as exc:
        DR.drive(Shell(), [(rec, None)], True, fleet_reads=fleet_reads, pause=lambda s: None)
    assert "VM ns-a/vm0 changed after it was read" in exc.value.message
    assert rec["vms"]["vm0"]["phase"] == "Failed" and rec["vms"]["vm1"]["phase"] == "Completed"
    assert rec["result"] == "Failed" and saved[-1]["vms"] == rec["vms"]  # written back as it ended
    claims = {n: kube.objs[("VirtualMachine", "ns-a", n)]["spec"]["template"]["spec"]["volumes"][0]
              ["persistentVolumeClaim"]["claimName"] for n in ("vm0", "vm1")}
    assert claims == {"vm0": "p0", "vm1": "p1-fast"}


def test_a_store_that_lags_behind_our_own_write_does_not_make_it_twice():
    """Reads from a WATCH-fed store may not show a DataVolume just created (nor a VM just patched): the API
    server's answer stands in until the store shows the object in a new version - no second POST."""
    kube, recs, reads, drivers = a_fleet(n=1)
    lagging = {"on": True}
    real = kube.items

    def items(res, ns=None, **kw):
        got = real(res, ns, **kw)
        if lagging["on"] and res.kind == "DataVolume":
            return []  # the store has not seen the create yet
        return got

    kube.items = items
    real_create = kube.create

    def create(res, body, ns=None, dry_run=False):
        made = real_create(res, body, ns, dry_run)
        made = copy.deepcopy(dict(made, kind=res.kind))
        made["metadata"] = dict(made["metadata"], namespace=ns, resourceVersion="7")
        kube.objs[(res.kind, ns, body["metadata"]["name"])]["metadata"]["resourceVersion"] = "7"
        return made

    kube.create = create
    for _ in range(3):
        run_pass(drivers, reads, 3, None, lambda d: None)
    assert [c for c in kube.calls if c[0] == "create"] == [("create", "DataVolume", ns) for ns in SPACES]
    assert all(r["vms"]["vm0"]["phase"] == "WaitingForVolumes" for r in recs)
    lagging["on"] = False  # the store catches up, CDI finishes: the run goes on from the store
    for (kind, _, _), o in kube.objs.items():
        if kind == "DataVolume":
            o["status"], o["metadata"]["resourceVersion"] = {"phase": "Succeeded", "progress": "100.0%"}, "9"
    for _ in range(3):
        run_pass(drivers, reads, 3, None, lambda d: None)
    assert [r["result"] for r in recs] == ["Succeeded"] * 3
