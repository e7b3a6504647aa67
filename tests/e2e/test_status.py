"""`kubectl vm-storage status` through the real kubectl against the real API server.

MTC objects with the reference sample statuses are written into the cluster (status via the status
subresource) in openshift-migration — the only namespace mig-controller reconciles and the plugin reads — named
after the test; the mig-controller stand-in keeps out of plans covering a manual namespace (tests/sim/mtc.py).
"""
import copy
import hashlib
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.sim.common import MANUAL_LABEL

pytestmark = pytest.mark.cluster

FIX = Path(__file__).parent.parent / "unit" / "fixtures" / "mtc"


def sample(name):
    obj = json.loads((FIX / f"status-{name}.json").read_text())
    obj.pop("_source", None)
    return obj


def _strip(obj):
    obj = copy.deepcopy(obj)
    md = obj["metadata"]
    for k in ("uid", "resourceVersion", "creationTimestamp", "generateName", "ownerReferences", "finalizers"):
        md.pop(k, None)
    return obj


def _retarget(obj, ns):
    """Sample objects use namespace 'ns': point every reference at the test namespace."""
    text = json.dumps(obj).replace('"namespace": "ns"', f'"namespace": "{ns}"').replace('"podNamespace": "ns"',
                                                                                       f'"podNamespace": "{ns}"')
    return json.loads(text)


def set_status(kube, res, name, ns, status):
    """The real MTC CRDs have no status subresource (status is written with the object); KubeVirt's VM has."""
    try:
        return kube.patch(res, name, {"status": status}, ns, subresource="status")
    except errors.NotFound:
        return kube.patch(res, name, {"status": status}, ns)


def create_with_status(kube, res, obj, ns):
    status = obj.get("status")
    created = kube.create(res, obj, ns)
    if status and created.get("status") != status:
        created = set_status(kube, res, created["metadata"]["name"], ns, status)
    return created


MTC_NS = "openshift-migration"


@pytest.fixture
def namespace(manual_namespace):
    """The tests here hand-write controller status: in a namespace the session's stand-ins leave alone (a
    mig-controller stand-in running for another test would reconcile the seeded objects between reads)."""
    return manual_namespace


def tag(vm_ns):
    """Per-test suffix of the seeded MTC object names (they share openshift-migration)."""
    return hashlib.md5(vm_ns.encode()).hexdigest()[:6]


def plan_name(vm_ns):
    return f"vm-storage-plan-{tag(vm_ns)}"


def seed_mtc(kube, vm_ns, dvm_sample="dvm-live-migration-running", dvmp_sample=None, n_extra_vms=0,
             mig_status_patch=None):
    """VM(s) + MigPlan + MigMigration + DVM (+ DVMP) like a cutover in progress. Returns the MTC namespace."""
    mtc_ns = MTC_NS
    try:
        kube.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": mtc_ns}})
    except errors.Conflict:
        pass
    for i, (name, claim) in enumerate([("vm-0", "pvc-0")] + [(f"extra-{i}", f"x-{i}") for i in range(n_extra_vms)]):
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": vm_ns},
              "spec": {"runStrategy": "Always", "template": {"spec": {
                  "domain": {"devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}]}},
                  "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": claim}}]}}},
              "status": {"printableStatus": "Running", "ready": True}}
        create_with_status(kube, R.VM, vm, vm_ns)
    plan = {"apiVersion": "migration.openshift.io/v1alpha1", "kind": "MigPlan",
            "metadata": {"name": plan_name(vm_ns), "namespace": mtc_ns},
            "spec": {"namespaces": [vm_ns], "liveMigrate": True,
                     "srcMigClusterRef": {"name": "host", "namespace": mtc_ns},
                     "destMigClusterRef": {"name": "host", "namespace": mtc_ns},
                     "persistentVolumes": [{
                         "name": "pv-pvc-0", "capacity": "1Gi", "storageClass": "standard",
                         "supported": {"actions": ["skip", "copy"], "copyMethods": ["filesystem", "block", "snapshot"]},
                         "selection": {"action": "copy", "storageClass": "fast", "copyMethod": "block"},
                         "pvc": {"name": "pvc-0:pvc-0-mig-x7bq", "namespace": vm_ns}}]}}
    create_with_status(kube, R.MIGPLAN, plan, mtc_ns)
    mig = _strip(sample("migmigration-cutover-running"))
    mig["metadata"].update(namespace=mtc_ns, name=f"vm-storage-cutover-{tag(vm_ns)}")
    mig["spec"]["migPlanRef"].update(namespace=mtc_ns, name=plan_name(vm_ns))
    if mig_status_patch:
        mig["status"].update(mig_status_patch)
    mig = create_with_status(kube, R.MIGMIGRATION, mig, mtc_ns)
    dvm = _retarget(_strip(sample(dvm_sample)), vm_ns)
    dvm["metadata"].update(namespace=mtc_ns, name=f"{dvm['metadata']['name']}-{tag(vm_ns)}")
    dvm["metadata"]["labels"].update(migmigration=mig["metadata"]["uid"],
                                     **{"migration-direct-volume": mig["metadata"]["uid"]})
    dvm = create_with_status(kube, R.DVM, dvm, mtc_ns)
    if dvmp_sample:
        dvmp = _retarget(_strip(sample(dvmp_sample)), vm_ns)
        dvmp["metadata"].update(namespace=mtc_ns, name=hashlib.md5(
            f"{dvm['metadata']['name']}pvc-0{vm_ns}".encode()).hexdigest())
        dvmp["metadata"]["labels"]["directvolumemigration"] = dvm["metadata"]["uid"]
        create_with_status(kube, R.DVMP, dvmp, mtc_ns)
    return mtc_ns


def status_json(kubectl, *args, kubeconfig=None):
    r = kubectl("vm-storage", "status", "-o", "json", *args, kubeconfig=kubeconfig)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def namespace(manual_namespace):
    """These tests write controller status by hand: the session-wide stand-ins must keep out."""
    return manual_namespace


def test_live_status_json_contract(cp, kubectl, namespace):
    seed_mtc(cp.admin, namespace)
    doc = status_json(kubectl, "-n", namespace)
    [m] = doc["migrations"]
    assert {k: m[k] for k in ("plan", "namespace", "engine", "type", "phase", "result", "started", "completed")} == {
        "plan": plan_name(namespace), "namespace": namespace, "engine": "mtc", "type": "cutover",
        "phase": "WaitForDirectVolumeMigrationToComplete", "result": "Running", "started": "2025-06-01T10:03:30Z",
        "completed": None}
    assert m["disks"] == [{
        "vm": "vm-0", "volume": "rootdisk", "sourcePVC": "pvc-0", "targetPVC": "pvc-0-mig-x7bq",
        "sourceStorageClass": "standard", "targetStorageClass": "ocs-storagecluster-ceph-rbd-virtualization",
        "mode": "live", "phase": "Running", "progressPercent": 50, "transferRate": "10MB/s", "elapsed": "1m30s",
        "attempt": None, "message": "Running"}]
    # Another namespace sees nothing; -A sees it.
    other = status_json(kubectl, "-n", "default")
    assert all(mm["namespace"] != namespace for mm in other["migrations"])
    assert any(mm["namespace"] == namespace for mm in status_json(kubectl, "-A")["migrations"])


def test_status_from_dump_equals_live(cp, kubectl, namespace, tmp_path):
    mtc_ns = seed_mtc(cp.admin, namespace, dvm_sample="dvm-live-migration-running", dvmp_sample="dvmp-retries")
    live = status_json(kubectl, "-n", namespace)
    assert live["migrations"][0]["disks"][0]["phase"] == "Running"
    mtc_dump = kubectl("get", "migplan,migmigration,dvm,dvmp", "-n", mtc_ns, "-o", "yaml")
    vm_dump = kubectl("get", "vm", "-n", namespace, "-o", "json")
    assert mtc_dump.returncode == 0 and vm_dump.returncode == 0, mtc_dump.stderr + vm_dump.stderr
    (tmp_path / "mtc.yaml").write_text(mtc_dump.stdout)
    (tmp_path / "vms.json").write_text(vm_dump.stdout)
    # No API call: an unreachable kubeconfig must not matter.
    bad = tmp_path / "nowhere.kubeconfig"
    bad.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                                   "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                                   "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
                                   "users": [{"name": "x", "user": {"token": "t"}}]}))
    from_file = status_json(kubectl, "-n", namespace, "-f", str(tmp_path / "mtc.yaml"), "-f",
                            str(tmp_path / "vms.json"), kubeconfig=str(bad))
    assert from_file == live
    # One multi-document file works as well.
    (tmp_path / "all.yaml").write_text(mtc_dump.stdout + "\n---\n" + yaml.safe_dump(json.loads(vm_dump.stdout)))
    assert status_json(kubectl, "-n", namespace, "-f", str(tmp_path / "all.yaml"), kubeconfig=str(bad)) == live


def test_table_names_plan_step_result_and_vm_filter(cp, kubectl, namespace):
    seed_mtc(cp.admin, namespace)
    r = kubectl("vm-storage", "status", "-n", namespace)
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0]
    assert f"PLAN {namespace}/{plan_name(namespace)}" in head and "TYPE cutover" in head and "RESULT Running" in head
    assert "STEP DirectVolume" in head
    assert "pvc-0 → pvc-0-mig-x7bq" in r.stdout and "50%" in r.stdout and "~" in r.stdout
    assert "\x1b[" not in r.stdout
    r = kubectl("vm-storage", "status", "vm-0", "-n", namespace, "-o", "yaml")
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["migrations"][0]["disks"][0]["vm"] == "vm-0"
    r = kubectl("vm-storage", "status", "no-such-vm", "-n", namespace)
    assert r.returncode == 2 and "no-such-vm" in r.stderr


def test_failed_rsync_is_failed_and_names_the_disk(cp, kubectl, namespace):
    failed = {"phase": "Completed", "itinerary": "Failed", "errors": ["direct volume migration failed"],
              "conditions": [{"type": "Failed", "status": "True", "category": "Advisory", "durable": True,
                              "reason": "WaitForDirectVolumeMigrationToComplete",
                              "message": "The migration has failed.  See: Errors.",
                              "lastTransitionTime": "2025-06-01T10:09:00Z"}]}
    seed_mtc(cp.admin, namespace, dvm_sample="dvm-rsync-failed", mig_status_patch=failed)
    [m] = status_json(kubectl, "-n", namespace)["migrations"]
    assert m["result"] == "Failed" and m["completed"] == "2025-06-01T10:09:00Z"
    assert m["disks"][0]["phase"] == "Failed" and m["disks"][0]["attempt"] == 20
    r = kubectl("vm-storage", "status", "-n", namespace)
    assert "failed: disk vm-0/rootdisk (pvc-0 → pvc-0-mig-x7bq)" in r.stdout


def test_succeeded_with_warnings_and_failed_dvm_is_not_success(cp, kubectl, namespace):
    warn = {"phase": "Completed", "conditions": [
        {"type": "SucceededWithWarnings", "status": "True", "category": "Advisory", "durable": True,
         "message": "The migration has completed with warnings, please look at `Warn` conditions.",
         "lastTransitionTime": "2025-06-01T10:09:00Z"},
        {"type": "DirectVolumeMigrationFailed", "status": "True", "category": "Warn", "durable": True,
         "message": "DirectVolumeMigration (dvm): x/y failed. See in dvm status.Errors",
         "lastTransitionTime": "2025-06-01T10:08:00Z"}]}
    seed_mtc(cp.admin, namespace, dvm_sample="dvm-completed", mig_status_patch=warn)
    [m] = status_json(kubectl, "-n", namespace)["migrations"]
    assert m["result"] == "Failed"


def _watch_while(cp, namespace, mtc_ns, migmigration_status, dvm_status):
    """Run `status -w` without a TTY, then end the migration with the given statuses; (rc, stdout, stderr)."""
    proc = subprocess.Popen([cp.kubectl_bin, "vm-storage", "status", "-w", "--interval", "0.5", "-n", namespace],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(cp.env),
                            stdin=subprocess.DEVNULL)
    try:
        # The first state first (a fixed sleep is not enough on a loaded machine: the writes came before it)
        first = []

        def read_first_state():  # up to the disk's row: the plan's line may come a frame before it
            while True:
                line = proc.stdout.readline()
                first.append(line)
                if not line or "vm-0/rootdisk" in line:
                    return

        reader = threading.Thread(target=read_first_state, daemon=True)
        reader.start()
        reader.join(60)
        assert first and "vm-0/rootdisk" in first[-1] and proc.poll() is None, (first, proc.poll())
        # The DVM ends first: the MigMigration reads the finished DVM before it ends itself (mig-controller
        # migmigration/task.go waitForDVMToComplete), so a watcher never sees the reverse order
        [dvm] = [d for d in cp.admin.items(R.DVM, mtc_ns) if d["metadata"]["name"].endswith("-" + tag(namespace))]
        set_status(cp.admin, R.DVM, dvm["metadata"]["name"], mtc_ns, dvm_status)
        set_status(cp.admin, R.MIGMIGRATION, f"vm-storage-cutover-{tag(namespace)}", mtc_ns, migmigration_status)
        out, err = proc.communicate(timeout=30)
        out = "".join(first) + out
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_watch_non_tty_follows_to_the_end(cp, kubectl, namespace):
    mtc_ns = seed_mtc(cp.admin, namespace)
    rc, out, err = _watch_while(cp, namespace, mtc_ns, {"phase": "Completed", "conditions": [
        {"type": "Succeeded", "status": "True", "category": "Advisory", "reason": "Completed", "durable": True,
         "message": "The migration has completed successfully.", "lastTransitionTime": "2025-06-01T10:10:00Z"}]}, {
        "conditions": [{"type": "Succeeded", "status": "True", "category": "Advisory", "reason": "Completed",
                        "message": "The migration has succeeded", "lastTransitionTime": "2025-06-01T10:09:00Z"}],
        "phase": "Completed", "runningLiveMigration": None, "successfulLiveMigration": [
            {"vmName": "vm-0", "vmNamespace": namespace, "pvcRef": {"namespace": namespace, "name": "pvc-0"},
             "lastObservedProgressPercent": "100%", "totalElapsedTime": "3m0s"}]})
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if "vm-0/rootdisk" in ln]
    assert "Running 50%" in lines[0] and "Succeeded 100%" in lines[-1], out
    assert "RESULT Succeeded" in out and "\x1b[" not in out


def _requests(stderr):
    return len(re.findall(r"vm-storage\] (GET|POST|PUT|PATCH|DELETE) ", stderr))


def test_requests_do_not_grow_with_vms(cp, kubectl, manual_namespace):
    # Hand-written controller status in namespaces the session stand-ins keep out of: otherwise the
    # mig-controller stand-in reconciles the seeded plans between the two runs and the states differ.
    namespace = manual_namespace
    seed_mtc(cp.admin, namespace)
    r1 = kubectl("vm-storage", "status", "-n", namespace, "-o", "json", "-v", "6")
    ns2 = f"{namespace[:40]}-big"
    cp.admin.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns2, "labels": {MANUAL_LABEL: "true"}}})
    seed_mtc(cp.admin, ns2, n_extra_vms=25)
    r2 = kubectl("vm-storage", "status", "-n", ns2, "-o", "json", "-v", "6")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    n1, n2 = _requests(r1.stderr), _requests(r2.stderr)
    assert n1 == n2 and 0 < n1 <= 10, (n1, n2, r2.stderr)


def test_restricted_user_gets_forbidden_exit_code(cp, kubectl, namespace):
    r = kubectl("vm-storage", "status", "-n", namespace, kubeconfig=cp.nobody_kubeconfig)
    assert r.returncode == 7, (r.returncode, r.stderr)
    assert "forbidden" in r.stderr.lower()


# ---- with the controller stand-ins: a real run of `migrate`, followed by `status` -------------------------
def test_status_follows_a_run_and_dump_matches_live(cp, sims, kubectl, request, tmp_path):
    from tests.conftest import make_namespace

    namespace = make_namespace(cp.admin, request.node.name)  # driven by the stand-ins
    from tests.sim import factories as F
    from tests.sim.common import set_faults, wait_for
    from tests.sim.mtc import install_mtc

    kube, ns = cp.admin, namespace
    install_mtc(kube)
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    F.apply(kube, ns, *F.make_vm_bundle("vm1", [F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()], running=False))
    wait_for(lambda: (kube.get(R.PVC, "vm1-data", ns).get("status") or {}).get("phase") == "Bound", timeout=30)
    set_faults(kube, ns, rsyncStep=10)  # a few observable progress steps
    r = kubectl("vm-storage", "migrate", "vm1", "--to", "fast", "--mode", "offline", "-n", ns, "--yes", "--detach")
    assert r.returncode == 0, r.stderr
    r = kubectl("vm-storage", "status", "-n", ns, "-w", "--interval", "0.5", "-o", "json", timeout=240)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert len(docs) >= 2
    first, last = docs[0]["migrations"][0], docs[-1]["migrations"][0]
    assert first["result"] == "Running" and last["result"] == "Succeeded"
    assert last["completed"] and last["type"] == "cutover" and last["engine"] == "mtc"
    [d] = last["disks"]
    assert (d["vm"], d["volume"], d["sourcePVC"], d["mode"], d["phase"]) == ("vm1", "data", "vm1-data", "offline",
                                                                              "Succeeded")
    assert d["targetPVC"].startswith("vm1-data-mig-") and d["targetStorageClass"] == "fast"
    assert d["sourceStorageClass"] == "standard" and d["progressPercent"] == 100
    seen = [m["disks"][0]["progressPercent"] for doc in docs for m in doc["migrations"]
            if m["disks"] and m["disks"][0]["progressPercent"] is not None]
    assert seen == sorted(seen)  # progress never goes backwards on screen
    live = status_json(kubectl, "-n", ns)
    dump = kubectl("get", "migplan,migmigration,dvm,dvmp", "-n", "openshift-migration", "-o", "yaml")
    vms = kubectl("get", "vm", "-n", ns, "-o", "yaml")
    (tmp_path / "d.yaml").write_text(dump.stdout + "\n---\n" + vms.stdout)
    assert status_json(kubectl, "-n", ns, "-f", str(tmp_path / "d.yaml")) == live


def test_watch_exit_code_is_the_result(cp, kubectl, namespace):
    """`status -w` ends with the result's exit code: a failed migration gives 4 and names the disk."""
    mtc_ns = seed_mtc(cp.admin, namespace)
    rc, out, err = _watch_while(cp, namespace, mtc_ns, {"phase": "Completed", "conditions": [
        {"type": "Failed", "status": "True", "category": "Advisory", "reason": "DirectVolumeMigrationFailed",
         "durable": True, "message": "The migration has failed.  See: Errors.",
         "lastTransitionTime": "2025-06-01T10:10:00Z"}]}, {
        "phase": "Completed", "runningLiveMigration": None, "failedLiveMigration": [
            {"vmName": "vm-0", "vmNamespace": namespace, "pvcRef": {"namespace": namespace, "name": "pvc-0"},
             "message": "Live migration failed", "totalElapsedTime": "3m0s"}]})
    assert rc == 4, (out, err)
    assert "RESULT Failed" in out
    assert err.strip().splitlines()[-1].startswith("error: 1 migration(s) failed") and "vm-0/rootdisk" in err
