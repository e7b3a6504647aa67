"""The migration-controller engine end to end: the real kubectl running the plugin against the real API server, with
the kubevirt-migration-controller, KubeVirt and CDI stand-ins playing the controllers (tests/sim)."""
import functools
import json

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import migration_controller as MC
from tests.sim.common import set_faults
from tests.e2e.reliability_kit import wait_for as _wait_for

wait_for = functools.partial(_wait_for, timeout=90)  # longer: the migration controller steps before KubeVirt and CDI do

pytestmark = pytest.mark.cluster

ENGINE = ("--engine", "migration-controller")


@pytest.fixture(scope="module")
def controller(cp):
    """A Deployed MigController for this module only: other modules' ``--engine auto`` must not see it."""
    MC.install_migration_controller(cp.admin)
    yield
    MC.uninstall_migration_controller(cp.admin)


@pytest.fixture
def mc(cp, sims, controller):
    F.install_kubevirt(cp.admin)
    F.install_cdi(cp.admin)
    for node in cp.admin.items(R.NODE):  # no node lifecycle controller lifts the not-ready taint here
        if node["spec"].get("taints"):
            cp.admin.patch(R.NODE, node["metadata"]["name"], {"spec": {"taints": None}})
    return cp.admin



def vs(kubectl, *args, **kw):
    return kubectl("vm-storage", *args, **kw)


def claims(kube, ns, name):
    vm = kube.get(R.VM, name, ns)
    return {v["name"]: (v.get("dataVolume") or {}).get("name") or (v.get("persistentVolumeClaim") or {}).get(
        "claimName") for v in vm["spec"]["template"]["spec"]["volumes"]
        if v.get("dataVolume") or v.get("persistentVolumeClaim")}


def make_vm(kube, ns, name, disks, running=True):
    F.apply(kube, ns, *F.make_vm_bundle(name, disks, running=running))
    if running:
        wait_for(lambda: ((kube.get_or_none(R.VMI, name, ns) or {}).get("status") or {}).get("phase") == "Running",
                 what=f"VMI {name} Running")
    for d in disks:
        if d["kind"] == "dv":
            wait_for(lambda: ((kube.get_or_none(R.DATAVOLUME, f"{name}-{d['name']}", ns) or {}).get("status") or {})
                     .get("phase") == "Succeeded", what="source DV")


def status(kubectl, ns):
    r = vs(kubectl, "status", "-n", ns, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["migrations"]


def test_auto_picks_the_running_controller_and_check_says_why(mc, kubectl, namespace):
    make_vm(mc, namespace, "vm1", [F.pvc_disk("data")])
    r = vs(kubectl, "check", "vm1", "--to", "fast", "-n", namespace, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    first = json.loads(r.stdout)["checks"][0]
    assert first["name"] == "engine" and first["message"] == (
        "--engine auto picked migration-controller: its CRDs are served and its MigController is Deployed and Available")
    names = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert names["migration-controller"]["severity"] == "ok"
    dry = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--dry-run=client", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert [o["kind"] for o in preview["objects"]] == ["DataVolume", "VirtualMachineStorageMigrationPlan",
                                                       "VirtualMachineStorageMigration"]
    assert preview["objects"][1]["spec"]["retentionPolicy"] == "keepSource"
    assert {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"} in preview["patches"][0]["patch"]
    server = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--dry-run=server")
    assert server.returncode == 0, server.stderr
    assert mc.items(R.VMSM_PLAN, namespace) == [] and mc.items(R.DATAVOLUME, namespace) == []  # nothing persisted
    MC.install_migration_controller(mc, healthy=False)  # the operator reports its Deployment not ready
    try:
        r = vs(kubectl, "check", "vm1", "--to", "fast", "-n", namespace, "-o", "json")
        first = json.loads(r.stdout)["checks"][0]
        assert "migration-controller declined: MigController" in first["message"]
        assert not first["message"].startswith("--engine auto picked migration-controller")
    finally:
        MC.install_migration_controller(mc)


def test_live_two_disk_vm_succeeds_and_status_json_names_the_engine(mc, kubectl, namespace):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.dv_disk("rootdisk"), F.pvc_disk("data", size="2Gi"), F.cloudinit_disk()])
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert claims(mc, ns, "vm1") == {"rootdisk": "vm1-rootdisk-fast", "data": "vm1-data-fast"}
    vm = mc.get(R.VM, "vm1", ns)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"  # the controller never removes it (audit finding 1)
    assert mc.get(R.PVC, "vm1-data", ns) and mc.get(R.DATAVOLUME, "vm1-rootdisk", ns)  # keepSource
    plan = mc.get(R.VMSM_PLAN, json.loads(json.dumps(status(kubectl, ns)))[0]["plan"], ns)
    assert plan["spec"]["retentionPolicy"] == "keepSource"
    [m] = status(kubectl, ns)
    assert (m["engine"], m["result"]) == ("migration-controller", "Succeeded")
    assert sorted((d["volume"], d["targetPVC"], d["mode"], d["phase"]) for d in m["disks"]) == [
        ("data", "vm1-data-fast", "live", "Succeeded"), ("rootdisk", "vm1-rootdisk-fast", "live", "Succeeded")]
    # The verdict is KubeVirt's and CDI's (progress.verdict), so it may come while the controller still cleans up
    # (task.go CleanupMigrationResources); its own run then ends Completed.
    wait_for(lambda: mc.get(R.VMSM, m["plan"], ns)["status"]["phase"] == "Completed", what="VMSM Completed")


def test_offline_stopped_vm_is_cloned_and_repointed(mc, kubectl, namespace):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.dv_disk("rootdisk"), F.pvc_disk("data")], running=False)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert claims(mc, ns, "vm1") == {"rootdisk": "vm1-rootdisk-fast", "data": "vm1-data-fast"}
    for vol in ("rootdisk", "data"):
        dv = mc.get(R.DATAVOLUME, f"vm1-{vol}-fast", ns)
        assert dv["spec"]["source"] == {"pvc": {"namespace": ns, "name": f"vm1-{vol}"}}
        assert dv["status"]["phase"] == "Succeeded"
    vm = mc.get(R.VM, "vm1", ns)
    assert "updateVolumesStrategy" not in vm["spec"] and vm["spec"]["runStrategy"] == "Halted"
    [m] = status(kubectl, ns)
    assert m["result"] == "Succeeded" and {d["mode"] for d in m["disks"]} == {"offline"}


def test_a_failed_vmim_is_reported_failed_never_succeeded(mc, kubectl, namespace):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.pvc_disk("root"), F.pvc_disk("data")])
    set_faults(mc, ns, liveMigrationFail="true")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--wait", timeout=240)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Live migration failed" in r.stderr
    [m] = status(kubectl, ns)
    assert m["result"] == "Failed" and {d["phase"] for d in m["disks"]} == {"Failed"}
    # the controller itself never says so: it keeps waiting
    assert mc.get(R.VMSM, m["plan"], ns)["status"]["phase"] == "WaitForLiveMigrationToComplete"


def test_cancel_deletes_the_migration_and_the_vm_names_its_sources_again(mc, kubectl, namespace):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.pvc_disk("root"), F.pvc_disk("data")])
    set_faults(mc, ns, liveMigrationFail="true")  # it never finishes on its own
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--detach", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    name = wait_for(lambda: [m["plan"] for m in status(kubectl, ns)], what="a migration")[0]
    wait_for(lambda: ((mc.get_or_none(R.VMSM, name, ns) or {}).get("status") or {}).get("phase")
             == "WaitForLiveMigrationToComplete", what="controller running the migration")
    assert claims(mc, ns, "vm1") == {"root": "vm1-root-fast", "data": "vm1-data-fast"}
    r = vs(kubectl, "cancel", name, "-n", ns, *ENGINE)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: mc.get_or_none(R.VMSM, name, ns) is None, what="the migration gone (finalizer released)")
    assert claims(mc, ns, "vm1") == {"root": "vm1-root", "data": "vm1-data"}
    [m] = status(kubectl, ns)
    assert m["result"] == "Canceled"
    assert mc.get_or_none(R.DATAVOLUME, "vm1-data-fast", ns) is None  # the controller deleted its targets
    assert mc.get(R.PVC, "vm1-data", ns)


def test_cancel_of_a_live_datavolume_template_vm_is_refused_before_anything_changes(mc, kubectl, namespace):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.dv_disk("rootdisk")])
    set_faults(mc, ns, liveMigrationFail="true")
    assert vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, *ENGINE, "--detach").returncode == 0
    name = wait_for(lambda: [m["plan"] for m in status(kubectl, ns)], what="a migration")[0]
    wait_for(lambda: claims(mc, ns, "vm1") == {"rootdisk": "vm1-rootdisk-fast"}, what="VM patched")
    r = vs(kubectl, "cancel", name, "-n", ns, *ENGINE)
    assert r.returncode == 3 and "dataVolumeTemplates" in r.stderr, r.stderr
    assert mc.get(R.VMSM, name, ns)["metadata"].get("deletionTimestamp") is None


@pytest.fixture
def alice(mc, cp):
    """Bind a user of this test's own ("alice-<tag>") to the shipped roles for ``ns``; returns its kubeconfig."""
    from .reliability_kit import Grant

    made = []

    def do(ns, drop=None):
        made.append(Grant(mc, "migration-controller", ns, drop=drop))
        return cp.user_kubeconfig(made[-1].user)

    yield do
    for g in made:
        g.revoke()


def test_flow_as_alice_with_only_the_shipped_roles_and_a_missing_one_named_before_any_write(
        mc, kubectl, cp, namespace, alice):
    ns = namespace
    make_vm(mc, ns, "vm1", [F.pvc_disk("data")])
    as_alice = alice(ns)
    run = lambda *a, kc=as_alice: kubectl("vm-storage", *a, kubeconfig=kc, timeout=240)  # noqa: E731
    chk = run("check", "vm1", "--to", "fast", "-n", ns, "-o", "json")
    assert chk.returncode == 0, chk.stdout + chk.stderr
    assert json.loads(chk.stdout)["checks"][0]["message"].startswith("--engine auto picked migration-controller")
    r = run("migrate", "vm1", "--to", "fast", "-n", ns, "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    assert claims(mc, ns, "vm1") == {"data": "vm1-data-fast"}
    # status with only this engine's roles: the other engines' objects cannot be read (a warning each), this
    # engine's migration is shown with its verdict
    st = run("status", "-n", ns, "-o", "json")
    assert st.returncode == 0, st.stderr
    assert [m["result"] for m in json.loads(st.stdout)["migrations"]] == ["Succeeded"], st.stdout
    assert "warning: cannot read" in st.stderr and "Traceback" not in st.stderr, st.stderr
    ns2 = ns + "-b"
    mc.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns2}})
    make_vm(mc, ns2, "vm1", [F.pvc_disk("data")])
    trimmed = alice(ns2, drop=("delete", "migrations.kubevirt.io", "virtualmachinestoragemigrations"))
    r = run("migrate", "vm1", "--to", "fast", "-n", ns2, *ENGINE, "--wait", kc=trimmed)
    assert r.returncode == 3 and "delete virtualmachinestoragemigrations.migrations.kubevirt.io" in r.stderr, r.stderr
    assert mc.items(R.VMSM_PLAN, ns2) == [] and mc.items(R.DATAVOLUME, ns2) == []
