"""Issue 12 acceptance, end to end through the real kubectl against the real API server and the mig-controller
stand-in as upstream runs it (Suspended plans, PV.Update, discovery skip rules, rsync exhaustion ending Succeeded):
several migrations in one namespace, a hostPath disk, an rsync failure."""
import json

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.e2e.test_mtc_migrate import MTC_NS, all_plans_for, claims, env, make_vms, vs  # noqa: F401 (fixture)
from tests.sim import factories as F
from tests.sim.common import set_faults
from tests.sim.mtc_testkit import make_hostpath_pvc

pytestmark = pytest.mark.cluster


def status_doc(kubectl, ns, *args):
    r = vs(kubectl, "status", *args, "-n", ns, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["migrations"]


def test_three_migrations_in_one_namespace(env, kubectl):
    """B1 + B3 + item 3: VM one, then a VM created afterwards, then VM one again to a third class."""
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    (first,) = claims(kube, ns, "vm1")
    assert first.startswith("vm1-data-mig-") and kube.get(R.PVC, first, ns)["spec"]["storageClassName"] == "fast"

    make_vms(kube, ns, ["vm2"], running=False)  # created after the plan was suspended
    r = vs(kubectl, "migrate", "vm2", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    (second,) = claims(kube, ns, "vm2")
    assert second.startswith("vm2-data-mig-") and kube.get(R.PVC, second, ns)["spec"]["storageClassName"] == "fast"

    r = vs(kubectl, "migrate", "vm1", "--to", "slow", "-n", ns, "--yes", "--wait")  # a disk this plan created
    assert r.returncode == 0, r.stderr + r.stdout
    (third,) = claims(kube, ns, "vm1")
    assert third != first and third.startswith("vm1-data-mig-")
    assert kube.get(R.PVC, third, ns)["spec"]["storageClassName"] == "slow"
    for c in ("vm1-data", first, "vm2-data"):  # nothing the user had is deleted
        assert kube.get(R.PVC, c, ns) is not None
    open_plans = [p for p in all_plans_for(kube, ns) if not p["spec"].get("closed")]
    assert len(open_plans) == 1  # the first plan was closed for the second (no PlanConflict)

    runs = status_doc(kubectl, ns)
    assert [(m["type"], m["result"]) for m in runs] == [("cutover", "Succeeded")] * 3
    assert [m["started"] for m in runs] == sorted(m["started"] for m in runs)  # oldest first
    assert [d["vm"] for m in runs for d in m["disks"]] == ["vm1", "vm2", "vm1"]
    assert runs[2]["disks"][0]["targetStorageClass"] == "slow"


def test_host_path_disk_is_never_succeeded(env, kubectl):
    """B2: MTC can only skip a hostPath PV; the plugin refuses before any write."""
    kube, ns = env
    make_hostpath_pvc(kube, ns, "vm1-data")
    F.apply(kube, ns, F.make_vm("vm1", [F.pvc_disk("data", claim="vm1-data", create=False), F.cloudinit_disk()],
                                running=False))
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait")
    assert r.returncode == errors.PREFLIGHT, r.stderr + r.stdout
    assert "vm1-data" in r.stderr and "hostPath" in r.stderr
    assert all_plans_for(kube, ns) == []
    assert claims(kube, ns, "vm1") == ["vm1-data"]


def test_rsync_exhaustion_is_failed_and_says_what_happened_to_the_vm(env, kubectl):
    """M1: the DVM fails with empty errors, MTC still swaps the claims and ends Succeeded; the plugin says Failed,
    names the disk and says the VM now runs on the incomplete copy."""
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=True)
    set_faults(kube, ns, rsyncFailAt=40, rsyncFailAttempts=99, backOffLimit=2)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "--mode", "offline", "-n", ns, "--yes", "--wait")
    assert r.returncode == errors.MIGRATION_FAILED, r.stderr + r.stdout
    assert "vm1/data" in r.stderr and "switched VM(s) vm1" in r.stderr and "rollback" in r.stderr
    (now,) = claims(kube, ns, "vm1")
    assert now.startswith("vm1-data-mig-")  # MTC's SwapPVCReferences ran: what the message describes
    [m] = status_doc(kubectl, ns)
    assert m["result"] == "Failed" and [d["phase"] for d in m["disks"]] == ["Failed"]
    assert m["disks"][0]["sourcePVC"] == "vm1-data"
    r = vs(kubectl, "status", "-n", ns)
    assert r.returncode == 0 and "switched VM(s) vm1" in r.stdout, r.stdout


def test_a_migrated_disk_moves_again(env, kubectl):
    """B3 alone: the disk the first cutover created is never re-discovered by that plan."""
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    assert vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--yes", "--wait").returncode == 0
    r = vs(kubectl, "migrate", "vm1", "--to", "slow", "-n", ns, "--yes", "--wait")
    assert r.returncode == 0, r.stderr + r.stdout
    (now,) = claims(kube, ns, "vm1")
    assert kube.get(R.PVC, now, ns)["spec"]["storageClassName"] == "slow"


def test_mtc_namespace_other_than_openshift_migration_is_bad_input(env, kubectl):
    """B4: mig-controller reconciles only openshift-migration; anything else is refused at once, creating nothing."""
    kube, ns = env
    make_vms(kube, ns, ["vm1"], running=False)
    r = vs(kubectl, "migrate", "vm1", "--to", "fast", "-n", ns, "--mtc-namespace", ns, "--yes", "--detach")
    assert r.returncode == errors.BAD_INPUT, r.stderr
    assert "openshift-migration" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert kube.items(R.MIGPLAN, ns) == [] and all_plans_for(kube, ns) == []
