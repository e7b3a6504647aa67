"""Least privilege (issue 7): the complete flow passes as a user ("alice-<tag>", one per test: tests run in parallel)
bound only to the deploy/rbac roles of the engine; with one permission removed, the preflight's SelfSubjectAccessReviews name it before any write."""
import json

import pytest

from kubectl_vmmig import errors as E
from kubectl_vmmig import resources as R

from .reliability_kit import Grant, make_vm, snapshot, world  # noqa: F401

pytestmark = pytest.mark.cluster


@pytest.fixture
def grant(world, cp):
    """Bind a user of this test's own to the roles; returns the user's kubeconfig."""
    made = []

    def do(engine, ns, drop=None):
        g = Grant(world, engine, ns, drop=drop)
        made.append(g)
        return cp.user_kubeconfig(g.user)

    yield do
    for g in made:
        g.revoke()


def as_alice(kubectl, kubeconfig, *args, timeout=300):
    return kubectl("vm-storage", *args, kubeconfig=kubeconfig, timeout=timeout)


def test_kubevirt_engine_flow_as_alice_with_only_the_shipped_roles(cp, world, kubectl, namespace, grant):
    ns = namespace
    make_vm(world, ns, "vm1")
    alice = grant("kubevirt", ns)
    chk = as_alice(kubectl, alice, "check", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt")
    assert chk.returncode == 0, chk.stdout + chk.stderr
    r = as_alice(kubectl, alice, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt", "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    st = as_alice(kubectl, alice, "status", "-n", ns, "-o", "json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["migrations"][0]["result"] == "Succeeded"


def test_kubevirt_engine_offline_clone_as_alice_with_only_the_shipped_roles(cp, world, kubectl, namespace, grant):
    """The shipped roles let the least-privileged user complete an offline (CDI clone) move, through the CDI
    clone authorization of tests/sim/cdi_admission.py: a PVC clone of the DataVolume's own namespace needs create
    datavolumes only (authorize_utils.go CanUserClonePVC), not create datavolumes/source."""
    ns = namespace
    make_vm(world, ns, "cold", running=False)
    alice = grant("kubevirt", ns)
    r = as_alice(kubectl, alice, "migrate", "cold", "--to", "fast", "-n", ns, "--engine", "kubevirt", "--mode", "offline",
                 "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    dvs = world.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage")
    assert dvs and all("pvc" in d["spec"]["source"] and d["status"]["phase"] == "Succeeded" for d in dvs)
    st = as_alice(kubectl, alice, "status", "-n", ns, "-o", "json")
    assert json.loads(st.stdout)["migrations"][0]["result"] == "Succeeded"


def test_mtc_engine_flow_as_alice_with_only_the_shipped_roles(cp, world, kubectl, namespace, grant):
    ns = namespace
    make_vm(world, ns, "vm1", running=False)
    alice = grant("mtc", ns)
    r = as_alice(kubectl, alice, "migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline",
                 "--yes", "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    st = as_alice(kubectl, alice, "status", "-n", ns, "-o", "json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["migrations"][0]["result"] == "Succeeded"


DROPS = [("kubevirt", ("patch", "kubevirt.io", "virtualmachines")),
         ("kubevirt", ("create", "cdi.kubevirt.io", "datavolumes")),
         # finding 6: Manual VMs start through the start subresource
         ("kubevirt", ("update", "subresources.kubevirt.io", "virtualmachines/start")),
         ("kubevirt", ("create", "", "configmaps")), ("kubevirt", ("update", "", "configmaps")),
         ("kubevirt", ("list", "kubevirt.io", "virtualmachineinstancemigrations")),
         ("mtc", ("create", "migration.openshift.io", "migplans")),
         ("mtc", ("patch", "migration.openshift.io", "migplans")),
         ("mtc", ("create", "migration.openshift.io", "migmigrations")),
         ("mtc", ("list", "migration.openshift.io", "directvolumemigrations"))]


@pytest.mark.parametrize("engine,drop", DROPS, ids=[f"{e}-{d[0]}-{d[2]}" for e, d in DROPS])
def test_one_permission_missing_is_reported_before_any_write(engine, drop, cp, world, kubectl, namespace, grant):
    ns = namespace
    make_vm(world, ns, "vm1", running=engine == "kubevirt")
    alice = grant(engine, ns, drop=drop)
    before = snapshot(world, ns)
    args = ["migrate", "vm1", "--to", "fast", "-n", ns, "--engine", engine, "--yes"]
    if engine == "mtc":
        args += ["--mode", "offline"]
    r = as_alice(kubectl, alice, *args)
    assert r.returncode == E.PREFLIGHT, r.stdout + r.stderr
    verb, group, resource = drop
    named = f"{verb} {resource}" + (f".{group}" if group else "")
    assert named in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(world, ns) == before  # refused before the first write
    assert world.items(R.DATAVOLUME, ns, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage") == []
