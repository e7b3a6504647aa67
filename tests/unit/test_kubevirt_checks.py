"""Preflight findings of the kubevirt engine (pure)."""
import pytest

from kubectl_vmmig.engines.kubevirt.checks import (kubevirt_engine_findings, kubevirt_findings, parse_version,
                                                   rbac_findings, vm_findings)
from kubectl_vmmig.placement import node_findings, of_template


def kv(version="v1.6.2", methods=("LiveMigrate",), rollout=None, gates=(), phase="Deployed"):
    conf = {"developerConfiguration": {"featureGates": list(gates)}}
    if rollout:
        conf["vmRolloutStrategy"] = rollout
    return {"spec": {"configuration": conf, "workloadUpdateStrategy": {"workloadUpdateMethods": list(methods)}},
            "status": {"observedKubeVirtVersion": version, "phase": phase,
                       "observedDeploymentID": "a", "targetDeploymentID": "a"}}


def sev(findings, name):
    return [f["severity"] for f in findings if f["name"] == name]


def node(name, ready=True, unsched=False, taint=None, kubevirt=True):
    labels = {"kubevirt.io/schedulable": "true"} if kubevirt else {}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": unsched, "taints": [taint] if taint else []},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def disk(volume, claim, modes=("ReadWriteOnce",), **kw):
    d = {"volume": volume, "claim": claim, "accessModes": list(modes), "shareable": False, "lun": False,
         "virtiofs": False, "hotplug": False}
    d.update(kw)
    return d


def facts(disks, running=True, conditions=None, host_disks=()):
    return {"name": "vm1", "namespace": "ns", "running": running, "vmiPhase": "Running" if running else None,
            "conditions": conditions or {}, "vmiConditions": {}, "disks": disks, "hostDisks": list(host_disks)}


def mv(volume, claim, mode="live", size="10Gi"):
    return {"vm": "vm1", "namespace": "ns", "volume": volume, "sourcePVC": claim, "targetPVC": f"{claim}-fast",
            "targetSC": "fast", "mode": mode, "size": size, "sizeBytes": 10 if size else None}


def test_version_parsing():
    assert parse_version("v1.6.2") == (1, 6, 2)
    assert parse_version("1.5") == (1, 5, 0)
    assert parse_version("") is None


def test_good_kubevirt_is_all_ok():
    fs = kubevirt_findings(kv(), live=True)
    assert {f["severity"] for f in fs} == {"ok"}


def test_old_kubevirt_refuses_live_but_not_offline():
    fs = kubevirt_findings(kv("v1.2.0"), live=True)
    assert sev(fs, "kubevirt-version") == ["error"]
    assert "--mode offline" in fs[0]["message"]
    assert sev(kubevirt_findings(kv("v1.2.0"), live=False), "kubevirt-version") == ["ok"]


@pytest.mark.parametrize("gates,expect", [((), "error"),
                                          (("VolumesUpdateStrategy", "VolumeMigration", "VMLiveUpdateFeatures"), "ok")])
def test_gates_needed_before_1_5(gates, expect):
    fs = kubevirt_findings(kv("v1.4.1", rollout="LiveUpdate", gates=gates), live=True)
    assert sev(fs, "feature-gates") == [expect]
    assert sev(kubevirt_findings(kv("v1.5.0", rollout="LiveUpdate"), live=True), "feature-gates") == []


def test_rollout_strategy_default_depends_on_version():
    assert sev(kubevirt_findings(kv("v1.5.2"), live=True), "rollout-strategy") == ["error"]
    assert sev(kubevirt_findings(kv("v1.6.0"), live=True), "rollout-strategy") == ["ok"]
    assert sev(kubevirt_findings(kv("v1.7.0", rollout="Stage"), live=True), "rollout-strategy") == ["error"]


def test_workload_update_methods():
    fs = [f for f in kubevirt_findings(kv(methods=()), live=True) if f["name"] == "workload-update-methods"]
    assert fs[0]["severity"] == "error" and "add LiveMigrate" in fs[0]["message"]
    evict = [f for f in kubevirt_findings(kv(methods=("Evict",)), live=True) if f["name"] == "workload-update-methods"]
    assert evict[0]["severity"] == "error" and "shuts the VM down" in evict[0]["message"]


def test_no_kubevirt_and_upgrade_in_progress():
    assert kubevirt_findings(None, live=True)[0]["severity"] == "error"
    assert sev(kubevirt_findings(kv(phase="Deploying"), live=True), "kubevirt-deployed") == ["warning"]


def test_nodes():
    assert node_findings([node("a"), node("b")])[0]["severity"] == "ok"
    bad = node_findings([node("a"), node("b", unsched=True), node("c", ready=False),
                         node("d", taint={"key": "x", "effect": "NoSchedule"})])
    assert bad[0]["severity"] == "error" and "at least two" in bad[0]["message"]


def test_finding9_three_masters_and_one_worker_is_one_node_for_kubevirt():
    master = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    nodes = [node("m1", taint=master), node("m2", taint=master), node("m3", taint=master), node("w1"),
             node("w2", kubevirt=False)]
    out = node_findings(nodes)
    assert out[0]["severity"] == "error" and "1 schedulable node(s)" in out[0]["message"]
    assert "kubevirt.io/schedulable=true" in out[0]["message"]
    # a VM that tolerates the control-plane taint can use the masters
    tol = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
    assert node_findings(nodes, of_template({"tolerations": tol}))[0]["severity"] == "ok"


def test_the_vms_node_selector_counts_for_the_second_node():
    # template.go renderLaunchManifest: the target launcher pod carries the VM's nodeSelector, so two
    # KubeVirt nodes of which one has the label are one node for this VM
    nodes = [node("w1"), node("w2")]
    nodes[0]["metadata"]["labels"]["disktype"] = "ssd"
    place = of_template({"nodeSelector": {"disktype": "ssd"}})
    out = node_findings(nodes, place, "vm1")
    assert out[0]["severity"] == "error" and "1 schedulable node(s) for VM vm1 (w1" in out[0]["message"]
    assert "nodeSelector" in out[0]["message"]


def test_finding5_live_to_a_non_csi_wffc_class_is_refused_before_any_write():
    plan = {"namespace": "ns", "targetStorageClass": "local", "vms": ["vm1"], "moves": [mv("a", "pa")]}
    plan["moves"][0]["targetSC"] = "local"
    inv = {"vms": {"ns/vm1": facts([disk("a", "pa")])}}
    local = {"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path",
             "volumeBindingMode": "WaitForFirstConsumer"}
    csi = dict(local, provisioner="topolvm.io")
    base = {"kubevirt": kv(), "cdi": True, "nodes": [node("n1"), node("n2")], "storageClasses": {"local"},
            "migration": "vm1-to-local", "existing": {}}
    out = kubevirt_engine_findings(plan, inv, dict(base, storageClassObjects={"local": local},
                                                   csiDrivers=["topolvm.io"]))
    err = [f for f in out if f["name"] == "destination-binding"]
    assert err and err[0]["severity"] == "error" and "blank image" in err[0]["message"]
    assert "rancher.io/local-path" in err[0]["message"]
    out = kubevirt_engine_findings(plan, inv, dict(base, storageClassObjects={"local": csi}, csiDrivers=["topolvm.io"]))
    assert not [f for f in out if f["name"] == "destination-binding"]


def test_snapshot_in_progress_refused():
    f = dict(facts([disk("a", "pa")]), snapshotInProgress="snap1")
    out = vm_findings(f, [mv("a", "pa")], live=True, stop=False, vmims=[], version=(1, 6, 0))
    assert out[0]["severity"] == "error" and "snap1" in out[0]["message"]
    assert "refuses volume changes" in out[0]["message"]  # validateSnapshotStatus


def test_restore_in_progress_refused_for_what_it_does():
    """validateRestoreStatus refuses only run-strategy changes; the refusal's reason is the restore controller
    writing the VM's volumes (restore.go reconcileSpec), not an admission rule it does not have."""
    f = dict(facts([disk("a", "pa")]), restoreInProgress="restore1")
    out = vm_findings(f, [mv("a", "pa")], live=True, stop=False, vmims=[], version=(1, 6, 0))
    assert out[0]["name"] == "restore-in-progress" and out[0]["severity"] == "error"
    assert "restore1" in out[0]["message"] and "rewriting the VM's volumes" in out[0]["message"]
    assert "refuses volume changes" not in out[0]["message"]


def test_shareable_disk_refused_for_live_with_why_and_what_to_do():
    f = facts([disk("shared", "shared-pvc", shareable=True)])
    out = vm_findings(f, [mv("shared", "shared-pvc")], live=True, stop=False, vmims=[], version=(1, 6, 0))
    err = [x for x in out if x["severity"] == "error"]
    assert len(err) == 1 and err[0]["name"] == "volume-kind"
    assert "shareable" in err[0]["message"] and "cannot" in err[0]["message"]
    assert "--mode offline" in err[0]["message"]


@pytest.mark.parametrize("kw,text", [({"lun": True}, "LUN"), ({"virtiofs": True}, "virtiofs"),
                                      ({"hotplug": True}, "hotplugged")])
def test_other_unmovable_kinds(kw, text):
    out = vm_findings(facts([disk("v", "c", **kw)]), [mv("v", "c")], True, False, [], (1, 4, 0))
    assert any(x["severity"] == "error" and text in x["message"] for x in out)


def test_hotplug_ok_from_1_5_and_hostdisk_refused():
    out = vm_findings(facts([disk("v", "c", hotplug=True)]), [mv("v", "c")], True, False, [], (1, 5, 0))
    assert not [x for x in out if x["severity"] == "error"]
    out = vm_findings(facts([disk("v", "c")], host_disks=["hd"]), [mv("v", "c")], True, False, [], (1, 6, 0))
    assert any("hostDisk" in x["message"] for x in out if x["severity"] == "error")


def test_conditions_block_live():
    conds = {"RestartRequired": {"status": "True", "message": "a non-live-updatable field was changed"},
             "StorageLiveMigratable": {"status": "False", "message": "InterfaceNotLiveMigratable: bridge"}}
    out = vm_findings(facts([disk("v", "c")], conditions=conds), [mv("v", "c")], True, False, [], (1, 6, 0))
    assert sev(out, "restart-required") == ["error"] and sev(out, "storage-live-migratable") == ["error"]
    mrr = vm_findings(facts([disk("v", "c")], conditions={"ManualRecoveryRequired": {"status": "True"}}),
                      [mv("v", "c")], False, True, [], (1, 6, 0))
    assert sev(mrr, "manual-recovery") == ["error"]


def test_inflight_vmim_blocks():
    vmim = {"metadata": {"name": "m1"}, "spec": {"vmiName": "vm1"}, "status": {"phase": "Running"}}
    out = vm_findings(facts([disk("v", "c")]), [mv("v", "c")], True, False, [vmim], (1, 6, 0))
    assert sev(out, "migration-in-flight") == ["error"]


def test_rwo_disk_left_behind_blocks_live_but_rwx_and_backend_storage_do_not():
    disks = [disk("a", "pa"), disk("b", "pb"), disk("c", "pc", modes=("ReadWriteMany",)),
             disk("tpm", "persistent-state-for-vm1")]
    out = vm_findings(facts(disks), [mv("a", "pa")], True, False, [], (1, 6, 0))
    errs = [x for x in out if x["name"] == "rwo-together"]
    assert len(errs) == 1 and "pb" in errs[0]["message"]


def test_offline_running_vm_needs_stop():
    out = vm_findings(facts([disk("a", "pa")]), [mv("a", "pa", "offline")], False, False, [], (1, 6, 0))
    assert sev(out, "vm-stopped") == ["error"] and "--stop" in out[0]["message"]
    out = vm_findings(facts([disk("a", "pa")]), [mv("a", "pa", "offline")], False, True, [], (1, 6, 0))
    assert sev(out, "vm-stopped") == ["ok"]


def test_engine_findings_moves_names_size_cdi_sc_rbac():
    plan = {"namespace": "ns", "targetStorageClass": "fast", "vms": ["vm1"],
            "moves": [mv("a", "pa"), mv("b", "pb", size=None)]}
    inv = {"vms": {"ns/vm1": facts([disk("a", "pa"), disk("b", "pb")])}}
    cluster = {"kubevirt": kv(), "cdi": False, "nodes": [node("n1"), node("n2")],
               "storageClasses": {"standard"}, "migration": "vm1-to-fast",
               "existing": {"pa-fast": {"kind": "PersistentVolumeClaim", "labels": {}},
                            "pb-fast": {"kind": "DataVolume",
                                        "labels": {"vm-storage.kubevirt-tools.io/migration": "vm1-to-fast"}}},
               "rbac": [{"verb": "patch", "resource": "virtualmachines", "group": "kubevirt.io", "allowed": False,
                         "reason": ""}, {"verb": "get", "resource": "pods", "group": "", "allowed": True}]}
    out = kubevirt_engine_findings(plan, inv, cluster)
    errors = {f["name"] for f in out if f["severity"] == "error"}
    assert errors == {"cdi", "target-storage-class", "destination-size", "destination-name", "rbac"}
    names = [f for f in out if f["name"] == "destination-name"]
    assert len(names) == 1 and "pa-fast" in names[0]["message"]     # our own DV from a re-run is fine
    assert "patch virtualmachines.kubevirt.io" in [f for f in out if f["name"] == "rbac"][0]["message"]
    assert rbac_findings([{"verb": "get", "resource": "x", "allowed": True}])[0]["severity"] == "ok"
