"""Shared helpers of the reliability/security e2e tests (issue 7): a cluster with MTC + KubeVirt + CDI and the
stand-ins, VMs of every shape, a listing of everything a command could create (to prove it created nothing),
the clean-failure assertion, dedicated control planes, and RBAC bindings from deploy/rbac/ for user alice."""
import copy
import glob
import json
import os
import shutil
import tempfile
import uuid

import pytest
import yaml

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.cluster.rbac import CLUSTERROLE, CLUSTERROLEBINDING, ROLE, ROLEBINDING, Grants, binding, user_subject
from tests.sim import factories as F
from tests.sim.common import wait_for as _sim_wait_for
from tests.sim.mtc import install_mtc

MTC_NS = "openshift-migration"
MANAGED = "app.kubernetes.io/managed-by=kubectl-vm-storage"
RBAC_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "rbac")
ALICE = "alice"


def install_all(kube):
    install_mtc(kube)
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    # no node lifecycle controller in the test cluster: lift the not-ready taint the admission adds
    for node in kube.items(R.NODE):
        if node["spec"].get("taints"):
            kube.patch(R.NODE, node["metadata"]["name"], {"spec": {"taints": None}})


def new_namespace(kube, prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    kube.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def wait_for(pred, timeout=60.0, what="condition", interval=0.2):
    """tests.sim.common.wait_for with this kit's argument order (timeout, what) and slower default polling."""
    return _sim_wait_for(pred, timeout=timeout, interval=interval, what=what)


def vmi_running(kube, ns, name):
    return ((kube.get_or_none(R.VMI, name, ns) or {}).get("status") or {}).get("phase") == "Running"


def make_vm(kube, ns, name, disks=None, running=True, wait=True, **kw):
    """A VM (default: one 1Gi PVC disk + cloud-init) whose PVCs are Bound and, when running, whose VMI runs."""
    disks = disks if disks is not None else [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()]
    F.apply(kube, ns, *F.make_vm_bundle(name, disks, running=running, **kw))
    if not wait:
        return
    for d in disks:
        if d["kind"] in ("pvc", "dv"):
            claim = d.get("claim") or f"{name}-{d['name']}"
            wait_for(lambda: ((kube.get_or_none(R.PVC, claim, ns) or {}).get("status") or {}).get("phase")
                     == "Bound", 60, f"PVC {ns}/{claim} Bound")
    if running:
        wait_for(lambda: vmi_running(kube, ns, name), 60, f"VMI {ns}/{name} Running")


def _names(kube, res, ns):
    try:
        return sorted(o["metadata"]["name"] for o in kube.items(res, ns))
    except errors.NotFound:  # CRD not installed on that control plane
        return None


def snapshot(kube, ns):
    """Everything a command could create or change: MigPlans/MigMigrations in MTC's namespace, DataVolumes,
    PVCs and ConfigMaps in the namespace, and each VM's generation and spec (not its resourceVersion: the KubeVirt
    stand-in keeps writing VM status, which is no change made by the plugin)."""
    vms = None
    try:
        vms = {v["metadata"]["name"]: (v["metadata"].get("generation"), json.dumps(v.get("spec"), sort_keys=True))
               for v in kube.items(R.VM, ns)}
    except errors.NotFound:
        pass
    return {"migplans": _names(kube, R.MIGPLAN, MTC_NS), "migmigrations": _names(kube, R.MIGMIGRATION, MTC_NS),
            "datavolumes": _names(kube, R.DATAVOLUME, ns), "pvcs": _names(kube, R.PVC, ns),
            "configmaps": _names(kube, R.CONFIGMAP, ns), "vms": vms}


def assert_clean_failure(proc, code, needles=(), what=""):
    """The documented exit code, no traceback, and exactly one 'error:' line (the last one) naming the problem
    (every needle, case-insensitive) and the fix (after '; ')."""
    err = proc.stderr
    ctx = f"{what}\nexit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {err[-3000:]}"
    assert proc.returncode == code, ctx
    assert "Traceback" not in err and "Traceback" not in proc.stdout, ctx
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("error:")]
    assert len(errs) == 1 and lines[-1] == errs[0], ctx
    line = errs[0]
    assert "; " in line, f"no fix named: {line}"
    for n in needles:
        assert n.lower() in line.lower(), f"{n!r} not in {line!r}"
    return line


# ---- dedicated control planes --------------------------------------------------------------------------
class Plane:
    """A ControlPlane of our own (fault tests stop its API server; missing-CRD tests install a subset)."""

    def __init__(self, groups=None, basics=True):
        from tests.cluster.controlplane import ControlPlane, bin_dir

        self.dir = tempfile.mkdtemp(prefix="vmstorage-rel-")
        self.plane = ControlPlane(self.dir, bins=bin_dir())
        self.plane.start()
        if basics:
            self.plane.install(groups=groups)
        self.admin = self.plane.admin()

    def env(self, base_env):
        e = dict(base_env)
        e["KUBECONFIG"] = self.plane.admin_kubeconfig
        return e

    def close(self):
        self.plane.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def world(cp, sims):
    """MTC + KubeVirt + CDI with the stand-ins running (session cluster)."""
    install_all(cp.admin)
    return cp.admin


# ---- RBAC from deploy/rbac -----------------------------------------------------------------------------
def rbac_roles(engine):
    out = []
    for path in sorted(glob.glob(os.path.join(RBAC_DIR, "*.yaml"))):
        with open(path) as fh:
            out += [d for d in yaml.safe_load_all(fh)
                    if d and (d["metadata"].get("annotations") or {}).get("vm-storage.kubevirt-tools.io/engine") == engine]
    return out


def _without(role, drop):
    """A copy of ``role`` without the permission ``drop`` = (verb, group, resource)."""
    role = copy.deepcopy(role)
    verb, group, resource = drop
    rules = []
    for rule in role["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            others = [r for r in rule["resources"] if r != resource]
            if others:
                rules.append(dict(rule, resources=others))
            verbs = [v for v in rule["verbs"] if v != verb]
            if verbs:
                rules.append(dict(rule, resources=[resource], verbs=verbs))
        else:
            rules.append(rule)
    role["rules"] = rules
    return role


class Grant(Grants):
    """Bind ``user`` (by default one of its own, ``self.user`` = alice-<tag>: tests run in parallel, and a grant
    to a shared user reaches every test using it) to the deploy/rbac roles of ``engine`` for namespace ``ns``
    (optionally without one permission, or without one verb everywhere); ``revoke()`` deletes what it created.
    ControlPlane.user_kubeconfig(grant.user) is the user's kubeconfig."""

    def __init__(self, kube, engine, ns, drop=None, user=None, drop_verb=None):
        super().__init__(kube)
        tag = uuid.uuid4().hex[:6]
        self.user = user = user or f"{ALICE}-{tag}"
        subject = user_subject(user)
        for role in rbac_roles(engine):
            scope = role["metadata"]["annotations"]["vm-storage.kubevirt-tools.io/scope"]
            if drop is not None:
                role = _without(role, drop)
            if drop_verb is not None:  # e.g. "watch": the roles as a cluster admin may have trimmed them
                role = dict(role, rules=[dict(r, verbs=[v for v in r["verbs"] if v != drop_verb])
                                         for r in role["rules"] if set(r["verbs"]) - {drop_verb}])
            # our own copy per test: the rules may differ (drop), and revoke removes it
            role["metadata"]["name"] = f"{role['metadata']['name']}-{tag}"
            if role["kind"] == "Role":
                role_ns = role["metadata"]["namespace"]
                self.create(ROLE, role, role_ns)
                self.create(ROLEBINDING, binding("RoleBinding", role, role_ns, subject), role_ns)
            elif scope == "cluster":
                self.create(CLUSTERROLE, role)
                self.create(CLUSTERROLEBINDING, binding("ClusterRoleBinding", role, None, subject))
            else:
                self.create(CLUSTERROLE, role)
                self.create(ROLEBINDING, binding("RoleBinding", role, ns, subject), ns)


def stopped_fleet(kube, prefix, namespaces, vms, tag):
    """``namespaces`` new namespaces ``<prefix>-<i>``, each with ``vms`` stopped VMs ``vm0``… of one 1Gi PVC disk
    (+ cloud-init), labelled ``fleet=<tag>``: what the ``migrate -A -l fleet=<tag>`` tests move. Returns the names."""
    from tests.conftest import make_namespace

    spaces = [make_namespace(kube, f"{prefix}-{i}") for i in range(namespaces)]
    for ns in spaces:
        for i in range(vms):
            F.apply(kube, ns, *F.make_vm_bundle(f"vm{i}", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                                                running=False, labels={"fleet": tag}))
    return spaces
