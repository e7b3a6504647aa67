"""engines/mtc/checks.py (the MTC preflight): findings from plan + inventory + cluster facts."""
import pytest

from kubectl_vmmig.engines.mtc import checks as P
from kubectl_vmmig.findings import blocking
from kubectl_vmmig.kubevirt_capabilities import kubevirt_capabilities
from kubectl_vmmig.inventory import build_inventory
from kubectl_vmmig.plan import build_plan

from tests.unit.vmshapes import pvc, sc, vm, vmi

KV_OK = {"status": {"observedKubeVirtVersion": "v1.5.2"},
         "spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate", "developerConfiguration": {"featureGates": []}},
                  "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}}}


def _setup(vms, vmis=(), pvcs=(), mode="auto", caps=None, to="fast", keys=None):
    inv = build_inventory(vms, vmis, pvcs, [], [sc("standard", True), sc("fast")])
    keys = keys or [f"ns1/{v['metadata']['name']}" for v in vms]
    plan = build_plan(inv, keys, to, mode, caps or {"liveMigration": True}, naming=lambda d: d["claim"] + "-new1")
    return plan, inv


def names(findings, severity):
    return sorted({f["name"] for f in findings if f["severity"] == severity})


def test_kubevirt_capabilities():
    assert kubevirt_capabilities(KV_OK)["liveMigration"] is True
    old = {"status": {"observedKubeVirtVersion": "v1.4.0"}, "spec": KV_OK["spec"]}
    caps = kubevirt_capabilities(old)
    assert caps["liveMigration"] is False and "VolumeMigration" in caps["liveMigrationReason"]
    assert "v1.4.0" in kubevirt_capabilities({"status": {"observedKubeVirtVersion": "v1.2.0"}})["liveMigrationReason"]
    assert kubevirt_capabilities(None)["liveMigration"] is False


def _kv(version, rollout=None, gates=()):
    conf = {"developerConfiguration": {"featureGates": list(gates)}}
    if rollout:
        conf["vmRolloutStrategy"] = rollout
    return {"status": {"observedKubeVirtVersion": version},
            "spec": {"configuration": conf, "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}}}


GATES = ("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures")


@pytest.mark.parametrize("kv,live", [
    (_kv("v1.6.0"), True),                        # finding 3: unset = LiveUpdate from v1.6 (virt-config.go)
    (_kv("v1.9.0"), True),
    (_kv("v1.7.0", "Stage"), False),
    (_kv("v1.5.3"), False),                       # v1.5 needs the explicit value
    (_kv("v1.5.3", "LiveUpdate"), True),
    (_kv("v1.4.2", "LiveUpdate", GATES), True),
    (_kv("v1.4.2", "LiveUpdate", GATES[:2]), False),
    (_kv("v1.3.1", "LiveUpdate", GATES), False),  # finding 12: no ManualRecoveryRequired before v1.4
    (_kv(""), False),                             # unknown version is said to be unknown (16)
])
def test_one_live_capability_rule_for_both_engines(kv, live):
    from kubectl_vmmig.engines.kubevirt.checks import kubevirt_findings

    caps = kubevirt_capabilities(kv)
    assert caps["liveMigration"] is live, caps
    errors_ = [f for f in kubevirt_findings(kv, live=True) if f["severity"] == "error"]
    assert bool(errors_) is not live, errors_
    if not kv["status"]["observedKubeVirtVersion"]:
        assert "unknown" in caps["liveMigrationReason"] and "older" not in caps["liveMigrationReason"]


def _nodes(n):
    """n nodes KubeVirt can schedule a launcher pod on (placement.schedulable)."""
    return [{"metadata": {"name": f"n{i}", "labels": {"kubevirt.io/schedulable": "true"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}} for i in range(n)]


def test_clean_offline_plan_has_no_errors():
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")], run_strategy="Halted")], pvcs=[pvc("pa")], mode="offline")
    f = P.run_preflight(plan, inv, {"nodes": _nodes(2)})
    assert blocking(f) == []
    assert "pvc-bound" in names(f, "ok") and "target-storageclass" in names(f, "ok")


def test_live_refusals_shareable_lun_virtiofs_hostdisk_not_running():
    v = vm("a", pvcs=[("s", "ps"), ("l", "pl"), ("f", "pf")],
           disks_override={"s": {"name": "s", "disk": {}, "shareable": True}, "l": {"name": "l", "lun": {}}},
           extra_volumes=[{"name": "h", "hostDisk": {"path": "/x"}}])
    v["spec"]["template"]["spec"]["domain"]["devices"]["filesystems"] = [{"name": "f", "virtiofs": {}}]
    plan, inv = _setup([v, vm("b", pvcs=[("d", "pb")], run_strategy="Halted")], [vmi("a")],
                       [pvc("ps"), pvc("pl"), pvc("pf"), pvc("pb")], mode="live")
    f = P.run_preflight(plan, inv, {"nodes": _nodes(1)})
    msgs = " | ".join(x["message"] for x in blocking(f))
    for word in ("shareable", "LUN", "virtiofs", "hostDisk", "VM b is not running", "at least two"):
        assert word in msgs, word


def test_auto_mode_stopped_vm_is_fine_and_storage_live_migratable_false_blocks():
    i = vmi("a", conditions=[{"type": "StorageLiveMigratable", "status": "False", "reason": "InterfaceNotLiveMigratable",
                              "message": "bridge"}])
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")]), vm("b", pvcs=[("d", "pb")], run_strategy="Halted")], [i],
                       [pvc("pa"), pvc("pb")])
    f = P.run_preflight(plan, inv, {"nodes": _nodes(3)})
    assert names(f, "error") == ["storage-live-migratable"]


def test_target_smaller_than_source_for_live_dv():
    v = vm("a", dvs=[("r", "a-root")], templates=[("a-root", "standard", "10Gi")])
    plan, inv = _setup([v], [vmi("a")], [pvc("a-root", size="10Gi", capacity="11Gi")])
    f = P.run_preflight(plan, inv, {})
    assert "target-size" in names(f, "error")


def test_pvc_missing_or_pending():
    plan, inv = _setup([vm("a", pvcs=[("d", "pa"), ("e", "nope")], run_strategy="Halted")],
                       pvcs=[pvc("pa", phase="Pending")], mode="offline")
    msgs = [x["message"] for x in blocking(P.run_preflight(plan, inv))]
    assert any("nope not found" in m for m in msgs) and any("Pending" in m for m in msgs)


def test_mtc_facts_and_conflicts_and_rbac():
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")], run_strategy="Halted")], pvcs=[pvc("pa")], mode="offline")
    facts = {"mtc": {"installed": True, "namespace": "openshift-migration", "hostCluster": "host", "hostReady": False,
                     "hostMessage": "TestConnectFailed"},
             "plans": {"own": None, "foreign": ["openshift-migration/theirs"], "running": None},
             "rbac": [{"verb": "create", "resource": "migplans", "group": "migration.openshift.io",
                       "namespace": "openshift-migration", "allowed": False}],
             "hooks": {"h": False}}
    f = P.run_preflight(plan, inv, facts)
    assert names(f, "error") == ["hooks", "mtc-host-cluster", "plan-conflict", "rbac"]
    msg = " ".join(x["message"] for x in f)
    assert "theirs" in msg and "create migplans.migration.openshift.io" in msg and "TestConnectFailed" in msg
    f = P.run_preflight(plan, inv, {"mtc": {"installed": False}})
    assert names(f, "error") == ["mtc-installed"]


def test_quiesce_hazard_lists_workloads_and_offline_running_vms():
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")])], [vmi("a")], [pvc("pa")], mode="offline")
    f = P.run_preflight(plan, inv, {"workloads": ["Deployment/web (2 replicas)"]})
    (hz,) = [x for x in f if x["name"] == "quiesce"]
    assert "Deployment/web" in hz["message"] and "VirtualMachine/a" in hz["message"] and hz["severity"] == "warning"
    assert not [x for x in P.run_preflight(plan, inv, {}, kind="stage") if x["name"] == "quiesce"]
    live_plan, inv = _setup([vm("a", pvcs=[("d", "pa")])], [vmi("a")], [pvc("pa")], mode="live")
    assert not [x for x in P.run_preflight(live_plan, inv, {"workloads": []}) if x["name"] == "quiesce"]


def test_required_permissions_cover_writes():
    perms = P.required_permissions("mtc", "ns1", "openshift-migration")
    got = {(p["verb"], p["resource"]) for p in perms}
    assert ("create", "migplans") in got and ("patch", "migplans") in got and ("create", "migmigrations") in got
    assert ("list", "virtualmachines") in got
    assert not {("create", "migplans")} & {(p["verb"], p["resource"]) for p in
                                           P.required_permissions("mtc", "ns1", "m", write=False)}


def test_stage_warnings():
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")])], [vmi("a")], [pvc("pa")], mode="offline")
    f = P.run_preflight(plan, inv, {}, kind="stage")
    assert [x["name"] for x in f if x["severity"] == "warning"] == ["stage"]
    assert "crash-consistent" in [x for x in f if x["name"] == "stage"][0]["message"]
    plan, inv = _setup([vm("a", pvcs=[("d", "pa")])], [vmi("a")], [pvc("pa")], mode="auto")
    f = P.run_preflight(plan, inv, {"nodes": _nodes(2)}, kind="stage")
    assert "skips the disks of running VMs" in [x for x in f if x["name"] == "stage"][0]["message"]


def test_quiesce_lists_what_mig_controller_scales_down():
    # mig-controller migmigration/quiesce.go: one plan for the namespace -> every workload; owned ReplicaSets,
    # 0 replicas, parallelism 0 and suspended CronJobs are left alone
    from kubectl_vmmig.engines.mtc.checks import quiesced_workload as q

    def w(name, spec=None, owners=None):
        md = {"name": name}
        if owners:
            md["ownerReferences"] = owners
        return {"metadata": md, "spec": spec or {}}

    assert q("Deployment", w("web", {"replicas": 2}), set(), False) == "Deployment/web (2 replicas)"
    assert q("DeploymentConfig", w("old", {"replicas": 1}), set(), False) == "DeploymentConfig/old (1 replicas)"
    assert q("Deployment", w("idle", {"replicas": 0}), set(), False) is None
    assert q("ReplicaSet", w("web-1", {"replicas": 2}, [{"kind": "Deployment", "name": "web"}]), set(), False) is None
    assert q("Job", w("j", {"parallelism": 0}), set(), False) is None
    assert q("Job", w("j", {}), set(), False) == "Job/j (parallelism 0)"
    assert q("CronJob", w("c", {"suspend": True}), set(), False) is None
    assert q("DaemonSet", w("d"), set(), False) == "DaemonSet/d (no node to run on)"


def test_with_several_plans_only_workloads_on_a_moved_claim_are_quiesced():
    # quiesce.go checkMultiplePlans + getSelectedPVCs: shouldQuiesce only for a pod template mounting a copied PVC
    from kubectl_vmmig.engines.mtc.checks import quiesced_workload as q
    from kubectl_vmmig.engines.mtc.facts import several_plans

    uses = {"replicas": 1, "template": {"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "db"}}]}}}
    other = {"replicas": 1, "template": {"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "x"}}]}}}
    cron = {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [{"persistentVolumeClaim": {"claimName": "db"}}]}}}}}
    assert q("StatefulSet", {"metadata": {"name": "s"}, "spec": uses}, {"db"}, True) == "StatefulSet/s (1 replicas)"
    assert q("StatefulSet", {"metadata": {"name": "t"}, "spec": other}, {"db"}, True) is None
    assert q("CronJob", {"metadata": {"name": "c"}, "spec": cron}, {"db"}, True) == "CronJob/c (suspended)"
    plans = [{"spec": {"namespaces": ["ns1"]}}, {"spec": {"namespaces": ["ns2"]}}]
    assert several_plans(plans, "ns1", creating=False) is False
    assert several_plans(plans, "ns1", creating=True) is True       # the closed plan + the one this run creates
    assert several_plans(plans + [{"spec": {"namespaces": ["ns1"]}}], "ns1", creating=False) is True
