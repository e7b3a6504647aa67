"""The migration-controller engine's fleet unit, pure: the MultiNamespace plan body, child names, the fleet verdict,
and the status documents of a fleet whose children upstream has not made yet (no cluster)."""
import json

from kubectl_vmmig.engines.migration_controller import build as B
from kubectl_vmmig.engines.migration_controller import fleet as F
from kubectl_vmmig.engines.migration_controller import progress as P
from kubectl_vmmig.progress import CANCELED, FAILED, RUNNING, SUCCEEDED
from tests.sim.migration_controller_plan import get_name


def ns_plan(ns, vm="vm1", vols=("root",), mode="offline"):
    moves = [{"vm": vm, "namespace": ns, "volume": v, "sourcePVC": f"{vm}-{v}", "targetPVC": f"{vm}-{v}-fast",
              "sourceSC": "standard", "targetSC": "fast", "mode": mode, "targetAccessMode": None,
              "targetVolumeMode": "Filesystem", "kind": "pvc", "dataVolumeTemplateIndex": None,
              "size": "1Gi", "sizeBytes": 1 << 30} for v in vols]
    return {"namespace": ns, "vms": [vm], "targetStorageClass": "fast", "requestedMode": "auto", "mode": mode,
            "moves": moves, "skipped": [], "findings": []}


def test_fleet_plan_one_entry_per_namespace_same_vm_lists_sources_kept_record_per_namespace():
    plans = [ns_plan("b", vols=("root", "data")), ns_plan("a")]
    name = F.fleet_name(plans)
    assert name == F.fleet_name(list(reversed(plans))) and name.startswith("fleet-to-fast-") and len(name) <= 63
    assert F.fleet_name([ns_plan("b", vols=("root",)), ns_plan("a")]) != name  # other disks: another fleet
    home = F.home_namespace(plans)
    mp = F.fleet_plan(plans, name, home)
    assert home == "a" and mp["metadata"]["namespace"] == "a" and mp["kind"] == \
        "MultiNamespaceVirtualMachineStorageMigrationPlan"
    assert mp["spec"]["retentionPolicy"] == "keepSource"
    assert [e["name"] for e in mp["spec"]["namespaces"]] == ["a", "b"]
    b = mp["spec"]["namespaces"][1]
    assert b["retentionPolicy"] == "keepSource"  # createNamespacePlan copies it into the child
    assert b["virtualMachines"] == B.storage_plan(plans[0], "x")["spec"]["virtualMachines"]
    assert F.read_fleet_record(mp) == {"a": B.record_of(plans[1]), "b": B.record_of(plans[0])}
    mig = F.fleet_migration(mp)
    assert mig["spec"] == {"multiNamespaceVirtualMachineStorageMigrationPlanRef": {"name": name}}
    assert mig["metadata"]["namespace"] == "a"
    marks = F.child_marks(name, "a", plans[0])
    assert marks["metadata"]["labels"][B.L.ENGINE] == B.ENGINE
    assert json.loads(marks["metadata"]["annotations"][B.RECORD]) == B.record_of(plans[0])
    assert marks["metadata"]["annotations"][B.L.FLEET] == f"a/{name}"


def test_child_name_is_upstreams_get_namespaced_plan_name():
    for base, ns in (("fleet-to-fast-abcde", "team-a"), ("f" * 245, "ns-long"), ("f" * 60, "n" * 250)):
        assert F.child_name(base, ns) == get_name(base, ns, 253)  # the stand-in's naming.GetName
        assert len(F.child_name(base, ns)) <= 253


def doc(ns, result, disks):
    return {"namespace": ns, "result": result,
            "disks": [{"vm": vm, "volume": vol, "phase": phase} for vm, vol, phase in disks]}


REC = {"a": {"vm1": {"mode": "offline", "volumes": {"root": ["s", "t", ""]}}},
       "b": {"vm1": {"mode": "live", "volumes": {"root": ["s", "t", ""], "data": ["s2", "t2", ""]}}}}


def test_fleet_verdict_succeeded_only_when_every_disk_of_every_namespace_is_done():
    a_ok = doc("a", SUCCEEDED, [("vm1", "root", "Succeeded")])
    b_ok = doc("b", SUCCEEDED, [("vm1", "root", "Succeeded"), ("vm1", "data", "Succeeded")])
    assert F.fleet_verdict(REC, [a_ok, b_ok]) == SUCCEEDED
    assert F.fleet_verdict(REC, [a_ok]) == RUNNING  # namespace b not seen: not done
    b_short = doc("b", SUCCEEDED, [("vm1", "root", "Succeeded")])  # a recorded disk has no Succeeded row
    assert F.fleet_verdict(REC, [a_ok, b_short]) == RUNNING
    assert F.fleet_verdict(REC, [a_ok, doc("b", FAILED, [("vm1", "root", "Failed")])]) == FAILED
    assert F.fleet_verdict(REC, [doc("a", CANCELED, []), doc("b", CANCELED, [])]) == CANCELED
    assert F.fleet_verdict(REC, [doc("a", CANCELED, []), b_ok]) == RUNNING
    assert F.fleet_verdict({}, []) == RUNNING


def test_status_of_a_fleet_whose_children_do_not_exist_yet_shows_every_namespace_not_started():
    plans = [ns_plan("a"), ns_plan("b", vols=("root", "data"))]
    name = F.fleet_name(plans)
    mp = dict(F.fleet_plan(plans, name, "a"))
    mp["metadata"] = dict(mp["metadata"], uid="u1", creationTimestamp="2026-12-01T10:00:00Z")
    docs = P.from_objects([mp])
    assert [(d["namespace"], d["plan"]) for d in docs] == [("a", F.child_name(name, "a")),
                                                             ("b", F.child_name(name, "b"))]
    assert all(d["result"] == RUNNING and d["phase"] == "Pending" for d in docs)
    assert [len(d["disks"]) for d in docs] == [1, 2] and all(x["phase"] == "NotStarted" for d in docs
                                                            for x in d["disks"])
    assert {d["_fleet"] for d in docs} == {f"a/{name}"} and {d["_fleetResult"] for d in docs} == {RUNNING}
    assert [d["namespace"] for d in P.from_objects([mp], namespace="b")] == ["b"]


def test_parent_of_reads_upstreams_annotations():
    child = {"metadata": {"annotations": {F.PARENT_MIG_NAME: "f", F.PARENT_MIG_NAMESPACE: "a"}}}
    assert F.parent_of(child) == ("a", "f")
    assert F.parent_of({"metadata": {}}) is None


def test_preview_lists_every_namespaces_destinations_then_the_one_fleet_plan_and_migration():
    plans = [ns_plan("b"), ns_plan("a", vols=("root", "data"))]
    vms = {ns: {"vm1": {"metadata": {"name": "vm1", "uid": f"u-{ns}"}, "spec": {"template": {"spec": {"volumes": [
        {"name": v, "persistentVolumeClaim": {"claimName": f"vm1-{v}"}} for v in ("root", "data")]}}}}}
        for ns in ("a", "b")}
    pv = F.preview(plans, vms, [{"name": "x", "severity": "ok", "message": "m"}])
    kinds = [(o["kind"], o["metadata"]["namespace"]) for o in pv["objects"]]
    assert kinds == [("DataVolume", "a"), ("DataVolume", "a"), ("DataVolume", "b"),
                     ("MultiNamespaceVirtualMachineStorageMigrationPlan", "a"),
                     ("MultiNamespaceVirtualMachineStorageMigration", "a")]
    assert pv["objects"][3] == F.fleet_plan(plans, F.fleet_name(plans), "a")
    assert [(x["namespace"], x["step"]) for x in pv["patches"]] == [("a", "by kubevirt-migration-controller"),
                                                                     ("b", "by kubevirt-migration-controller")]
    assert pv["checks"][0]["name"] == "x"


def test_status_fleet_name_selects_every_namespaces_migration_of_that_fleet():
    from kubectl_vmmig.progress import select

    plans = [ns_plan("a"), ns_plan("b")]
    name = F.fleet_name(plans)
    mp = dict(F.fleet_plan(plans, name, "a"))
    mp["metadata"] = dict(mp["metadata"], uid="u1", creationTimestamp="2026-12-01T10:00:00Z")
    docs = P.from_objects([mp])
    other = dict(docs[0], plan="vm1-to-fast-x", _fleet=None, namespace="c")
    assert [d["namespace"] for d in select(docs + [other], name)] == ["a", "b"]
    assert select(docs + [other], "vm1-to-fast-x") == [other]


def test_child_marks_label_value_fits_63_characters_for_long_namespaces():
    import re

    long_ns = "a-namespace-name-long-enough-for-the-limit-19121"
    marks = F.child_marks("fleet-to-fast-12345", "a", ns_plan(long_ns))
    value = marks["metadata"]["labels"][B.L.MIGRATION]
    assert len(F.child_name("fleet-to-fast-12345", long_ns)) > 63
    assert len(value) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", value)
    assert value != F.label_value(F.child_name("fleet-to-fast-12345", long_ns + "x"))
    assert F.label_value("short-name") == "short-name"


def test_a_child_upstream_made_but_not_yet_marked_is_one_row_with_the_fleets_record():
    plans = [ns_plan("a"), ns_plan("b")]
    name = F.fleet_name(plans)
    mp = dict(F.fleet_plan(plans, name, "a"))
    mp["metadata"] = dict(mp["metadata"], uid="u1", creationTimestamp="2026-12-01T10:00:00Z")
    raw = {"kind": "VirtualMachineStorageMigrationPlan", "metadata": {  # as createNamespacePlan makes it
        "name": F.child_name(name, "b"), "namespace": "b", "creationTimestamp": "2026-12-01T10:00:01Z",
        "labels": {"migration.kubevirt.io/multi-namespace-storage-mig-plan-uid": "u1"},
        "annotations": {F.PARENT_PLAN_NAME: name, F.PARENT_PLAN_NAMESPACE: "a"}},
        "spec": mp["spec"]["namespaces"][1], "status": {"suffix": "ab12"}}
    docs = P.from_objects([mp, raw])
    assert [(d["namespace"], d["startedBy"]) for d in docs] == [("a", "plugin"), ("b", "plugin")]
    assert [x["targetPVC"] for x in docs[1]["disks"]] == ["vm1-root-fast"]  # the record, not the (empty) status
