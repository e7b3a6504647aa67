"""End to end through the real kubectl binary: `kubectl vm-storage migrate|check|cancel|rollback` with the MTC
engine against the real API server and the controller stand-ins (mig-controller, KubeVirt, CDI)."""
import json
import uuid

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.cluster.rbac import Grants
from tests.sim import factories as F
from tests.sim.common import set_faults, wait_for
from tests.sim.mtc import install_mtc

pytestmark = pytest.mark.cluster
MTC_NS = "openshift-migration"


@pytest.fixture
def env(cp, sims, namespace):
    kube = cp.admin
    install_mtc(kube)
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    return kube, namespace


def make_vms(kube, ns, names, running=True, disks=None):
    for n in names:
        F.apply(kube, ns, *F.make_vm_bundle(n, disks or [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                                           running=running))
    for n in names:
        claim = f"{n}-data"
        wait_for(lambda: (kube.get(R.PVC, claim, ns).get("status") or {}).get("phase") == "Bound", timeout=30)
        if running:
            wait_for(lambda: (kube.get_or_none(R.VMI, n, ns) or {}).get("status", {}).get("phase") == "Running",
                     timeout=30)


def vs(kubectl, *args, timeout=180):
    return kubectl("vm-storage", *args, timeout=timeout)


def claims(kube, ns, vm):
    v = kube.get(R.VM, vm, ns)
    return [(x.get("persistentVolumeClaim") or {}).get("claimName") or (x.get("dataVolume") or {}).get("name")
            for x in v["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in x or "dataVolume" in x]


def own_objects(kube, ns):
    sel = "app.kubernetes.io/managed-by=kubectl-vm-storage"
    plans = [p for p in kube.items(R.MIGPLAN, MTC_NS, label_selector=sel) if ns in p["spec"].get("namespaces", [])]
    migs = [m for m in kube.items(R.MIGMIGRATION, MTC_NS, label_selector=sel)
            if any(m["spec"]["migPlanRef"]["name"] == p["metadata"]["name"] for p in plans)]
    return plans, migs


def all_plans_for(kube, ns):
    return [p for p in kube.items(R.MIGPLAN, MTC_NS) if ns in (p["spec"].get("namespaces") or [])]


def test_offline_cutover_two_vms(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1", "vm2"], running=False)
    r = vs(kubectl, "migrate", "vm1", "vm2", "--to", "fast", "--mode", "offline", "-n", ns, "--yes", "--wait",
           "-o", "json")
    assert r.returncode == 0, r.stderr + r.stdout
    for vm in ("vm1", "vm2"):
        (c,) = claims(kube, ns, vm)
        assert c.startswith(f"{vm}-data-mig-"), c
        assert kube.get(R.PVC, c, ns)["spec"]["storageClassName"] == "fast"
        assert kube.get(R.PVC, f"{vm}-data", ns) is not None  # the source is never deleted
    plans, migs = own_objects(kube, ns)
    assert len(plans) == 1 and len(migs) == 1
    assert migs[0]["spec"] == {"migPlanRef": {"name": plans[0]["metadata"]["name"], "namespace": MTC_NS},
                               "stage": False, "migrateState": True, "quiescePods": True}
    assert plans[0]["spec"]["liveMigrate"] is False
    doc = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip().startswith("{\"") else None
    if doc:
        assert doc["migrations"][0]["result"] == "Succeeded"


def test_live_cutover(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=True)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--mode", "live", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    (c,) = claims(kube, ns, "vm1")
    assert c.startswith("vm1-data-mig-")
    plans, _ = own_objects(kube, ns)
    assert plans[0]["spec"]["liveMigrate"] is True
    assert kube.get(R.VMI, "vm1", ns)["status"]["phase"] == "Running"


def test_stage_then_cutover_and_rerun_reattaches(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--stage", "-n", ns, "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    assert claims(kube, ns, "vm1") == ["vm1-data"]  # a stage run does not swap
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    assert claims(kube, ns, "vm1")[0].startswith("vm1-data-mig-")
    plans, migs = own_objects(kube, ns)
    assert len(plans) == 1 and len(migs) == 2
    # the same command again attaches to the finished cutover: nothing new is created
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "re-attaching" in r.stderr
    assert len(own_objects(kube, ns)[1]) == 2


def test_rollback(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    assert vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait").returncode == 0
    assert claims(kube, ns, "vm1")[0] != "vm1-data"
    r = vs(kubectl, "rollback", ns)  # no --yes and no terminal: refused, nothing created
    assert r.returncode == errors.PREFLIGHT and "--yes" in r.stderr
    assert len(own_objects(kube, ns)[1]) == 1
    r = vs(kubectl, "rollback", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    assert claims(kube, ns, "vm1") == ["vm1-data"]
    migs = own_objects(kube, ns)[1]
    assert [m["spec"].get("rollback", False) for m in sorted(migs, key=lambda m: m["metadata"]["creationTimestamp"])] \
        == [False, True]


def test_cancel(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    set_faults(kube, ns, rsyncStep=1)  # slow copy so there is time to cancel
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--detach")
    assert r.returncode == 0, r.stderr
    plan = own_objects(kube, ns)[0][0]["metadata"]["name"]
    wait_for(lambda: own_objects(kube, ns)[1][0].get("status", {}).get("phase") not in (None, ""), timeout=30)
    # re-running the same command while it runs attaches to it (after Ctrl-C, a lost terminal...)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--detach")
    assert r.returncode == 0 and "re-attaching" in r.stderr, r.stderr
    assert len(own_objects(kube, ns)[1]) == 1
    r = vs(kubectl, "cancel", plan)
    assert r.returncode == 0, r.stderr
    mig = own_objects(kube, ns)[1][0]
    assert mig["spec"]["canceled"] is True
    r = vs(kubectl, "status", plan, "-n", ns, "-w", "-o", "json")
    assert r.returncode in (0, errors.CANCELED), r.stderr
    assert claims(kube, ns, "vm1") == ["vm1-data"]


def test_rsync_failure_exit_code(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    set_faults(kube, ns, rsyncFailAt=40, rsyncFailAttempts=99, backOffLimit=2)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == errors.MIGRATION_FAILED, r.stderr + r.stdout
    assert "vm1" in r.stderr and "failed" in r.stderr


def test_succeeded_with_warnings_is_not_success(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    set_faults(kube, ns, dvmWarnFailure=True)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == errors.MIGRATION_FAILED, r.stderr + r.stdout
    mig = own_objects(kube, ns)[1][0]
    assert any(c["type"] == "SucceededWithWarnings" for c in mig["status"]["conditions"])


def test_dry_run_client_creates_nothing(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1", "vm2"], running=True)
    before = kube.get(R.VM, "vm1", ns)["metadata"]["resourceVersion"]
    r = vs(kubectl, "migrate", "vm1", "vm2", "--to", "fast", "-n", ns, "--dry-run=client", "-o", "json")
    assert r.returncode == 0, r.stderr
    preview = json.loads(r.stdout)
    assert set(preview) == {"objects", "patches", "checks"}
    assert [o["kind"] for o in preview["objects"]] == ["MigPlan", "MigMigration"]
    vm_patches = [p for p in preview["patches"] if p["kind"] == "VirtualMachine"]
    assert sorted(p["name"] for p in vm_patches) == ["vm1", "vm2"]
    assert {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"} in vm_patches[0]["patch"]
    assert all({"name", "severity", "message"} <= set(c) for c in preview["checks"])
    assert all_plans_for(kube, ns) == []
    assert kube.get(R.VM, "vm1", ns)["metadata"]["resourceVersion"] == before
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--dry-run=client")
    assert r.returncode == 0 and "Would create" in r.stdout and "MigPlan" in r.stdout
    assert all_plans_for(kube, ns) == []


def test_dry_run_server_reaches_admission(env, kubectl, cp):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--dry-run=server", "--yes", "-v", "6")
    assert r.returncode == 0, r.stderr
    assert "dryRun=All" in r.stderr and "POST" in r.stderr
    assert all_plans_for(kube, ns) == []


def test_local_preview_makes_no_api_call(env, kubectl, tmp_path):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    docs = {"apiVersion": "v1", "kind": "List",
            "items": [kube.get(R.VM, "vm1", ns), kube.get(R.PVC, "vm1-data", ns)]
            + kube.items(R.STORAGECLASS) + kube.items(R.MIGCLUSTER, MTC_NS)}
    f = tmp_path / "objs.json"
    f.write_text(json.dumps(docs))
    r = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "-n", ns, "--local", "-f", str(f),
                "--dry-run=client", "-o", "yaml", "-v", "6", "--server", "https://127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert "GET" not in r.stderr and "POST" not in r.stderr
    assert "kind: MigPlan" in r.stdout and "vm1-data-mig-" in r.stdout


def test_foreign_migplan_refused(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    kube.create(R.MIGPLAN, {"apiVersion": R.MIGPLAN.api_version, "kind": "MigPlan",
                            "metadata": {"name": f"someone-else-{ns}"[:60], "namespace": MTC_NS},
                            "spec": {"namespaces": [ns], "srcMigClusterRef": {"name": "host", "namespace": MTC_NS},
                                     "destMigClusterRef": {"name": "host", "namespace": MTC_NS}}}, MTC_NS)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == errors.PREFLIGHT, r.stderr
    assert "someone-else" in r.stderr and "PlanConflict" in r.stderr  # C10: the real rule is HasConflict
    assert own_objects(kube, ns) == ([], [])


@pytest.mark.parametrize("args,code,text", [
    (["--to", "nosuch"], errors.BAD_INPUT, "StorageClass nosuch not found"),
    (["--to", "standard"], errors.BAD_INPUT, "already on StorageClass standard"),
    (["--to", "fast", "--mode", "live"], errors.PREFLIGHT, "not running"),
])
def test_refusals_create_nothing(env, kubectl, args, code, text):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = vs(kubectl, "migrate", "vm1", *args, "-n", ns, "--yes")
    assert r.returncode == code, r.stderr
    assert text in r.stderr and "Traceback" not in r.stderr
    assert all_plans_for(kube, ns) == []


def test_quiesce_hazard_needs_yes(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=True)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--mode", "offline", "-n", ns)
    assert r.returncode == errors.PREFLIGHT and "--yes" in r.stderr and "VirtualMachine/vm1" in r.stderr
    assert all_plans_for(kube, ns) == []


def test_quiesce_lists_the_workloads_mig_controller_scales_down(env, kubectl):
    # mig-controller migmigration/quiesce.go: with one MigPlan for the namespace every workload is quiesced;
    # once a second plan lists it (checkMultiplePlans: here a closed plan of an earlier run), only workloads
    # whose pod template mounts a moved claim (getSelectedPVCs)
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    tmpl = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "x"}],
                     "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "unrelated"}}]}}
    kube.create(R.DEPLOYMENT, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                        "template": tmpl}}, ns)

    def quiesce():
        r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--dry-run=client", "-o", "json")
        assert r.returncode == 0, r.stderr
        return [c["message"] for c in json.loads(r.stdout)["checks"] if c["name"] == "quiesce"]

    assert any("Deployment/web (2 replicas)" in m for m in quiesce())
    kube.create(R.MIGPLAN, {"apiVersion": "migration.openshift.io/v1alpha1", "kind": "MigPlan",
                            "metadata": {"name": f"earlier-{ns}"[:60],
                                         "labels": {"app.kubernetes.io/managed-by": "kubectl-vm-storage"},
                                         "annotations": {"vm-storage.kubevirt-tools.io/superseded-by": "next"}},
                            "spec": {"namespaces": [ns], "closed": True}}, MTC_NS)
    try:
        assert not any("Deployment/web" in m for m in quiesce())
    finally:
        kube.delete(R.MIGPLAN, f"earlier-{ns}"[:60], MTC_NS)


def test_check_exit_codes(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=True)
    r = vs(kubectl, "check", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rbac" in r.stdout and "mtc-host-cluster" in r.stdout
    r = vs(kubectl, "check", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--hook", "nosuch:preBackup")
    assert r.returncode == errors.PREFLIGHT and "MigHook nosuch not found" in r.stdout


def test_live_capability_fallback(env, kubectl):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=True)
    F.install_kubevirt(kube, version="v1.4.0", feature_gates=())  # gates missing: no storage live migration
    try:
        r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--mode", "live", "-n", ns, "--yes")
        assert r.returncode == errors.PREFLIGHT, r.stderr
        assert "--mode offline" in r.stderr and "feature gates VolumesUpdateStrategy" in r.stderr and "missing" in r.stderr
        assert all_plans_for(kube, ns) == []
        r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--dry-run=client", "-o", "json")
        assert r.returncode == 0, r.stderr
        preview = json.loads(r.stdout)
        assert preview["objects"][0]["spec"]["liveMigrate"] is False
        assert any(c["severity"] == "warning" and "falling back to offline" in c["message"] for c in preview["checks"])
        assert any(c["name"] == "quiesce" and "VirtualMachine/vm1" in c["message"] for c in preview["checks"])
    finally:
        F.install_kubevirt(kube)


def test_no_rights_is_forbidden_and_creates_nothing(env, kubectl, cp):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", kubeconfig=cp.nobody_kubeconfig)
    assert r.returncode == errors.FORBIDDEN, r.stderr
    assert "forbidden" in r.stderr.lower() and "Traceback" not in r.stderr
    assert all_plans_for(kube, ns) == []


def _grant_read_only(kube, tag):
    """A user of its own (``reader-<tag>``: tests run in parallel) may read everything the plugin reads, cluster
    wide, but write nothing; returns (user, revoke)."""
    rules = [{"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances", "kubevirts"],
              "verbs": ["get", "list"]},
             {"apiGroups": [""], "resources": ["persistentvolumeclaims", "pods", "namespaces", "nodes", "configmaps"],
              "verbs": ["get", "list"]},
             {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"], "verbs": ["get", "list"]},
             {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
             {"apiGroups": ["apps", "batch"], "resources": ["*"], "verbs": ["get", "list"]},
             {"apiGroups": ["migration.openshift.io"], "resources": ["*"], "verbs": ["get", "list"]}]
    user = f"reader-{tag}"
    return user, Grants(kube).rules(user, user, rules).revoke


def test_missing_write_permissions_reported_before_any_write(env, kubectl, cp):
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    user, revoke = _grant_read_only(kube, uuid.uuid4().hex[:6])
    try:
        reader = cp.user_kubeconfig(user)
        r = kubectl("vm-storage", "check", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", kubeconfig=reader)
        assert r.returncode == errors.PREFLIGHT, r.stdout + r.stderr
        assert "forbidden: create migplans.migration.openshift.io" in r.stdout
        assert "forbidden: create migmigrations.migration.openshift.io" in r.stdout
        r = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--engine", "mtc",
                    kubeconfig=reader)
        assert r.returncode == errors.PREFLIGHT, r.stderr
        assert "forbidden: create migplans" in r.stderr
        assert all_plans_for(kube, ns) == []
    finally:
        revoke()


def test_two_stage_runs_and_a_cutover_are_three_migrations_oldest_first(env, kubectl):
    """Issue 14: every MigMigration of a plan is its own migration in status, with its own result."""
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    for _ in range(2):
        r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--stage", "-n", ns, "--wait")
        assert r.returncode == 0, r.stderr + r.stdout
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    r = vs(kubectl, "status", "-n", ns, "-o", "json")
    assert r.returncode == 0, r.stderr
    runs = [m for m in json.loads(r.stdout)["migrations"] if m["engine"] == "mtc"]
    assert [(m["type"], m["result"]) for m in runs] == [("stage", "Succeeded"), ("stage", "Succeeded"),
                                                        ("cutover", "Succeeded")], runs
    assert len({m["plan"] for m in runs}) == 1 and runs[0]["started"] <= runs[1]["started"] <= runs[2]["started"]
