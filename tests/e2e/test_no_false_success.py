"""No false success (issue 7): for every failure the stand-ins can inject (tests/sim/README.md: rsyncFailAt,
rsyncFailPVC, dvmWarnFailure, liveMigrationFail, destinationSmaller, a target that never schedules), the
plugin's exit code says failure (4, README "Exit codes") and its result (`status -o json`) is not Succeeded —
for both engines where the fault applies."""
import json
import time

import pytest

from kubectl_vmmig import errors as E
from kubectl_vmmig import resources as R
from tests.sim.common import set_faults

from .reliability_kit import make_vm, wait_for, world  # noqa: F401

pytestmark = pytest.mark.cluster
FAILED = E.MIGRATION_FAILED


def vs(kubectl, *args, timeout=300):
    return kubectl("vm-storage", *args, timeout=timeout)


def status_of(kubectl, ns):
    st = vs(kubectl, "status", "-n", ns, "-o", "json")
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout)["migrations"]


def assert_failed(proc, kubectl, ns, needle=None):
    out = proc.stdout + proc.stderr
    assert proc.returncode == FAILED, out
    assert "Traceback" not in out
    last = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(last) == 1 and "migration" in last[0], proc.stderr
    if needle:
        assert needle in last[0], last[0]
    ms = status_of(kubectl, ns)
    assert ms and all(m["result"] != "Succeeded" for m in ms), ms
    assert any(m["result"] == "Failed" for m in ms), ms
    return ms


@pytest.fixture
def cordon(world):
    """Cordon a node for the test (the live-migration target never schedules); always uncordoned after."""
    done = []

    def do(node):
        world.patch(R.NODE, node, {"spec": {"unschedulable": True}})
        done.append(node)

    yield do
    for node in done:
        world.patch(R.NODE, node, {"spec": {"unschedulable": None}})


def other_node(kube, ns, vm):
    vmi = wait_for(lambda: (kube.get(R.VMI, vm, ns).get("status") or {}).get("nodeName") and kube.get(R.VMI, vm, ns))
    return next(n for n in ("node01", "node02") if n != vmi["status"]["nodeName"])


def when_migration_started(kube, ns, engine):
    """Wait for the plugin's first write (the MigPlan / the record ConfigMap) from a background migrate."""
    if engine == "mtc":
        return wait_for(lambda: kube.items(R.MIGMIGRATION, "openshift-migration",
                                           label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage")
                        and any(ns in json.dumps(m["spec"]) or ns in m["metadata"]["name"]
                                for m in kube.items(R.MIGMIGRATION, "openshift-migration")), 120, "MigMigration")
    return wait_for(lambda: kube.items(R.CONFIGMAP, ns, label_selector="vm-storage.kubevirt-tools.io/engine=kubevirt"),
                    120, "record ConfigMap")


# ---- MTC engine --------------------------------------------------------------------------------------
def test_mtc_rsync_failure_is_a_failure_naming_the_disk(world, kubectl, namespace):
    make_vm(world, namespace, "vm1", running=False)
    set_faults(world, namespace, rsyncFailAt="40", backOffLimit="2")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "mtc", "--mode", "offline",
           "--yes", "--wait")
    ms = assert_failed(r, kubectl, namespace, needle="vm1")
    assert any(d["phase"] == "Failed" for m in ms for d in m["disks"]), ms


def test_mtc_one_disk_failing_of_two_vms_is_a_failure(world, kubectl, namespace):
    make_vm(world, namespace, "vm1", running=False)
    make_vm(world, namespace, "vm2", running=False)
    set_faults(world, namespace, rsyncFailAt="40", rsyncFailPVC="vm2-data", backOffLimit="2")
    r = vs(kubectl, "migrate", "vm1", "vm2", "--to", "fast", "-n", namespace, "--engine", "mtc", "--mode",
           "offline", "--yes", "--wait", "-o", "json")
    assert_failed(r, kubectl, namespace, needle="vm2")


def test_mtc_succeeded_with_warnings_is_never_success(world, kubectl, namespace):
    make_vm(world, namespace, "vm1", running=False)
    set_faults(world, namespace, dvmWarnFailure="true")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "mtc", "--mode", "offline",
           "--yes", "--wait")
    assert_failed(r, kubectl, namespace)


def test_mtc_live_migration_failure_is_a_failure(world, kubectl, namespace):
    make_vm(world, namespace, "vm1")
    set_faults(world, namespace, liveMigrationFail="true")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "mtc", "--mode", "live",
           "--yes", "--wait")
    assert_failed(r, kubectl, namespace)


def test_mtc_live_target_never_schedules_is_never_a_success(world, kubectl, namespace, cordon):
    """AUDIT M2: a VMIM that failed before KubeVirt wrote status.migrationState is not reported failed by
    mig-controller (rsync.go runLiveMigrations / vm.go virtualMachineMigrationStatus): the disk stays in
    pendingLiveMigration. The plugin never calls that a success, and points at the VMIM."""
    make_vm(world, namespace, "vm1")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "mtc", "--mode", "live",
           "--yes", "--detach")
    assert r.returncode == 0, r.stderr
    cordon(other_node(world, namespace, "vm1"))  # after the preflight counted two schedulable nodes
    wait_for(lambda: any((m.get("status") or {}).get("phase") == "Failed" for m in world.items(R.VMIM, namespace)),
             120, "a failed VMIM")
    for pause in (0, 10):  # and it stays so: no false success, no false failure
        time.sleep(pause)
        [m] = status_of(kubectl, namespace)
        assert m["result"] == "Running", m
        [d] = m["disks"]
        assert (d["mode"], d["phase"]) == ("live", "Pending") and "KubeVirt" in d["message"], d


# ---- kubevirt engine -----------------------------------------------------------------------------------
def test_kubevirt_live_migration_failure_is_a_failure(world, kubectl, namespace):
    make_vm(world, namespace, "vm1")
    set_faults(world, namespace, liveMigrationFail="true")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "kubevirt", "--mode", "live",
           "--wait")
    assert_failed(r, kubectl, namespace, needle="vm1")
    assert "cancel" in r.stderr  # says how to restore the original volumes


def test_kubevirt_destination_smaller_is_a_failure(world, kubectl, namespace):
    make_vm(world, namespace, "vm1")
    set_faults(world, namespace, destinationSmaller="true")
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "kubevirt", "--mode", "live",
           "--wait")
    ms = assert_failed(r, kubectl, namespace)
    assert "smaller" in json.dumps(ms) + r.stderr


def test_kubevirt_target_never_schedules_is_a_failure(world, kubectl, namespace, cordon):
    make_vm(world, namespace, "vm1")
    proc = kubectl_bg(kubectl, "migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "kubevirt",
                      "--mode", "live", "--wait")
    when_migration_started(world, namespace, "kubevirt")
    cordon(other_node(world, namespace, "vm1"))
    assert_failed(proc.result(), kubectl, namespace)


def kubectl_bg(kubectl, *args):
    """Run ``kubectl vm-storage ARGS`` in a thread; ``.result()`` waits for the CompletedProcess."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    fut = pool.submit(vs, kubectl, *args)
    pool.shutdown(wait=False)
    return fut
