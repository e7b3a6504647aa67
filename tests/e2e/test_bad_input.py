"""Bad input, table-driven (issue 7): each case runs the plugin through the real kubectl and must fail with
the documented exit code (README "Exit codes"), one 'error:' line naming the problem and the fix, no
traceback, and ZERO objects created or changed — asserted by listing the API before and after (MigPlans and
MigMigrations in openshift-migration, DataVolumes/PVCs/ConfigMaps in the namespace, VM resourceVersions)."""
import os
import subprocess
import time

import pytest

from kubectl_vmmig import errors as E
from kubectl_vmmig import resources as R
from tests.sim import factories as F

from .reliability_kit import (Plane, assert_clean_failure, make_vm, new_namespace, snapshot, vmi_running,  # noqa: F401
                              wait_for, world)

pytestmark = pytest.mark.cluster
BAD, PRE, API, FORB = E.BAD_INPUT, E.PREFLIGHT, E.API_ERROR, E.FORBIDDEN
LIVE_MTC, LIVE_KV = ("--mode", "live", "--engine", "mtc", "--yes"), ("--mode", "live", "--engine", "kubevirt")
M = ("migrate",)

# (id, argv after 'kubectl vm-storage', exit code, needles in the error line, options)
# options: kc = kubeconfig file from `files` ("restricted" = user nobody: no rights, ever), plane = "bare" (no CRDs)
# | "kvonly" (KubeVirt CRDs only: no MTC, no CDI), kv = install_kubevirt(**kv) for the case, then restored.
CASES = [
    # ---- flags and arguments (refused before any connection) ----
    ("invalid-vm-name", M + ("VM_1", "--to", "fast"), BAD, ["invalid name 'VM_1'", "DNS-1123"], {}),
    ("invalid-sc-name", M + ("vm1", "--to", "Fast!"), BAD, ["invalid name 'Fast!'"], {}),
    ("invalid-namespace", M + ("vm1", "--to", "fast", "-n", "Bad_NS"), BAD, ["invalid namespace"], {}),
    ("missing-to", M + ("vm1",), BAD, ["missing --to"], {}),
    ("no-vm-chosen", M + ("--to", "fast"), BAD, ["no VM chosen", "--all"], {}),
    ("names-and-all", M + ("vm1", "--all", "--to", "fast"), BAD, ["mutually exclusive"], {}),
    ("selector-and-all", M + ("-l", "a=b", "--all", "--to", "fast"), BAD, ["mutually exclusive"], {}),
    ("unknown-flag", M + ("vm1", "--to", "fast", "--bogus"), BAD, ["no such option", "--help"], {}),
    ("bad-output", M + ("vm1", "--to", "fast", "-o", "xml"), BAD, ["'xml' is not one of"], {}),
    ("status-bad-output", ("status", "-o", "csv"), BAD, ["'csv' is not one of"], {}),
    ("bad-mode", M + ("vm1", "--to", "fast", "--mode", "fast"), BAD, ["--mode"], {}),
    ("bad-engine", M + ("vm1", "--to", "fast", "--engine", "velero"), BAD, ["--engine"], {}),
    ("bad-access-mode", M + ("vm1", "--to", "fast", "--access-mode", "RWX"), BAD, ["invalid --access-mode"], {}),
    ("bad-volume-mode", M + ("vm1", "--to", "fast", "--volume-mode", "Raw"), BAD, ["invalid --volume-mode"], {}),
    ("bad-dry-run", M + ("vm1", "--to", "fast", "--dry-run=yes"), BAD, ["--dry-run"], {}),
    ("local-without-dry-run", M + ("vm1", "--to", "fast", "--local", "-f", "x.yaml"), BAD, ["--dry-run=client"], {}),
    ("file-without-local", M + ("vm1", "--to", "fast", "-f", "x.yaml"), BAD, ["--local"], {}),
    ("stage-with-kubevirt", M + ("vm1", "--to", "fast", "--stage", "--engine", "kubevirt"), BAD, ["--stage"], {}),
    ("hook-bad-phase", M + ("vm1", "--to", "fast", "--hook", "h:never"), BAD, ["never"], {}),
    ("status-n-and-A", ("status", "-n", "x", "-A"), BAD, ["-n and -A"], {}),
    ("status-watch-file", ("status", "-w", "-f", "x.yaml"), BAD, ["-w cannot be used with -f"], {}),
    ("bad-verbosity", M + ("vm1", "--to", "fast", "-v", "loud"), BAD, ["verbosity"], {}),
    ("bad-request-timeout", M + ("vm1", "--to", "fast", "--request-timeout", "soon"), BAD, ["--request-timeout"], {}),
    ("as-group-without-as", M + ("vm1", "--to", "fast", "--as-group", "g"), BAD, ["--as"], {}),
    # ---- kubeconfig and connection ----
    ("kubeconfig-not-yaml", M + ("vm1", "--to", "fast"), BAD, ["not valid YAML"], {"kc": "broken.yaml"}),
    ("kubeconfig-a-list", M + ("vm1", "--to", "fast"), BAD, ["not a kubeconfig"], {"kc": "list.yaml"}),
    ("kubeconfig-missing", M + ("vm1", "--to", "fast", "--kubeconfig", "/nonexistent/kc"), BAD, ["does not exist"], {}),
    ("kubeconfig-no-server", M + ("vm1", "--to", "fast"), BAD, ["no cluster configured"], {"kc": "empty.yaml"}),
    ("kubeconfig-bad-base64", M + ("vm1", "--to", "fast"), BAD, ["base64"], {"kc": "b64.yaml"}),
    ("unknown-context", M + ("vm1", "--to", "fast", "--context", "nope"), BAD, ["context 'nope' not found"], {}),
    ("unknown-user", M + ("vm1", "--to", "fast", "--user", "nope"), BAD, ["user 'nope' not found"], {}),
    ("missing-ca-file", M + ("vm1", "--to", "fast", "--certificate-authority", "/nonexistent/ca.crt"), BAD,
     ["certificate authority"], {}),
    ("unreachable-server", M + ("vm1", "--to", "fast", "-s", "https://127.0.0.1:9"), API, ["cannot reach"], {}),
    ("invalid-token", M + ("vm1", "--to", "fast", "--token", "not-a-token"), API, ["unauthorized"], {}),
    ("tls-wrong-ca", M + ("vm1", "--to", "fast", "--certificate-authority", "{files}/wrong-ca.crt"), API,
     ["TLS", "certificate"], {}),
    ("tls-wrong-server-name", M + ("vm1", "--to", "fast", "--tls-server-name", "wrong.example"), API, ["TLS"], {}),
    # ---- unknown objects, nothing to do ----
    ("unknown-vm", M + ("nope", "--to", "fast"), BAD, ["VirtualMachine nope not found"], {}),
    ("unknown-namespace", M + ("vm1", "--to", "fast", "-n", "no-such-ns"), BAD, ["namespace no-such-ns not found"],
     {"no_ns": True}),
    ("unknown-storageclass", M + ("vm1", "--to", "gold"), BAD, ["StorageClass gold not found", "fast"], {}),
    ("selector-matches-nothing", M + ("-l", "app=none", "--to", "fast"), BAD, ["no VirtualMachine matching"], {}),
    ("source-equals-target", M + ("vm1", "--to", "standard"), BAD, ["already on StorageClass standard"], {}),
    ("no-disk-to-move", M + ("vmcd", "--to", "fast"), BAD, ["no PVC or DataVolume disk"], {}),
    ("status-unknown-plan", ("status", "nope"), BAD, ["'nope'"], {}),
    ("cancel-unknown-plan", ("cancel", "nope"), BAD, ["MigPlan nope not found"], {}),
    # names that are not one path segment (client-go rest/request.go refuses them before any request)
    ("status-namespace-with-slash", ("status", "-n", "bad/ns"), BAD, ["invalid namespace 'bad/ns'", "'/'"], {}),
    ("status-namespace-dot-dot", ("status", "-n", ".."), BAD, ["invalid namespace '..'", "may not be"], {}),
    ("cancel-name-with-slash", ("cancel", "a/b"), BAD, ["invalid resource name 'a/b'"], {}),
    ("cancel-name-with-percent", ("cancel", "a%2fb"), BAD, ["invalid resource name 'a%2fb'", "'%'"], {}),
    ("rollback-unknown-plan", ("rollback", "nope", "--yes"), BAD, ["MigPlan nope not found"], {}),
    # ---- preflight refusals: VM shapes that cannot move, cluster that cannot ----
    ("cutover-needs-yes", M + ("vm1", "--to", "fast", "--engine", "mtc", "--mode", "offline"), PRE, ["--yes"], {}),
    ("live-stopped-vm-mtc", M + ("vm2", "--to", "fast") + LIVE_MTC, PRE, ["not running"], {}),
    ("live-stopped-vm-kubevirt", M + ("vm2", "--to", "fast") + LIVE_KV, PRE, ["not running"], {}),
    ("offline-running-no-stop", M + ("vm1", "--to", "fast", "--engine", "kubevirt", "--mode", "offline"), PRE,
     ["--stop"], {}),
    ("shareable-mtc", M + ("vmshare", "--to", "fast") + LIVE_MTC, PRE, ["shareable"], {}),
    ("shareable-kubevirt", M + ("vmshare", "--to", "fast") + LIVE_KV, PRE, ["shareable"], {}),
    ("lun-mtc", M + ("vmlun", "--to", "fast") + LIVE_MTC, PRE, ["LUN"], {}),
    ("lun-kubevirt", M + ("vmlun", "--to", "fast") + LIVE_KV, PRE, ["LUN"], {}),
    ("virtiofs-mtc", M + ("vmfs", "--to", "fast") + LIVE_MTC, PRE, ["virtiofs"], {}),
    ("virtiofs-kubevirt", M + ("vmfs", "--to", "fast") + LIVE_KV, PRE, ["virtiofs"], {}),
    ("hostdisk-mtc", M + ("vmhost", "--to", "fast") + LIVE_MTC, PRE, ["hostDisk"], {}),
    ("hostdisk-kubevirt", M + ("vmhost", "--to", "fast") + LIVE_KV, PRE, ["hostDisk"], {}),
    ("not-live-migratable-mtc", M + ("vmbridge", "--to", "fast") + LIVE_MTC, PRE, ["StorageLiveMigratable"], {}),
    ("not-live-migratable-kubevirt", M + ("vmbridge", "--to", "fast") + LIVE_KV, PRE, ["live-migrated"], {}),
    ("smaller-destination-mtc", M + ("vmdv", "--to", "fast") + LIVE_MTC, PRE, ["smaller"], {}),
    ("old-kubevirt-mtc", M + ("vm1", "--to", "fast") + LIVE_MTC, PRE, ["older than v1.4.0"],
     {"kv": {"version": "v1.2.0"}}),
    ("old-kubevirt-kubevirt", M + ("vm1", "--to", "fast") + LIVE_KV, PRE, ["v1.2.0"], {"kv": {"version": "v1.2.0"}}),
    ("live-migration-off-mtc", M + ("vm1", "--to", "fast") + LIVE_MTC, PRE, ["LiveMigrate"],
     {"kv": {"workload_update_methods": ("Evict",)}}),
    ("live-migration-off-kubevirt", M + ("vm1", "--to", "fast") + LIVE_KV, PRE, ["LiveMigrate"],
     {"kv": {"workload_update_methods": ("Evict",)}}),
    ("feature-gates-missing-kubevirt", M + ("vm1", "--to", "fast") + LIVE_KV, PRE, ["VolumesUpdateStrategy"],
     {"kv": {"version": "v1.4.0", "feature_gates": ()}}),
    # ---- missing CRDs (a second control plane) ----
    ("no-kubevirt", M + ("vm1", "--to", "fast"), PRE, ["KubeVirt is not installed"], {"plane": "bare"}),
    ("no-kubevirt-check", ("check", "vm1", "--to", "fast"), PRE, ["KubeVirt is not installed"], {"plane": "bare"}),
    ("no-mtc", M + ("vm1", "--to", "fast", "--engine", "mtc", "--yes"), PRE, ["MTC is not installed"],
     {"plane": "kvonly"}),
    ("no-mtc-cancel", ("cancel", "vm-storage-x", "--engine", "mtc"), PRE, ["MTC is not installed"], {"plane": "kvonly"}),
    ("no-mtc-rollback", ("rollback", "vm-storage-x", "--yes"), PRE, ["MTC is not installed"], {"plane": "kvonly"}),
    ("no-cdi", M + ("vm1", "--to", "fast", "--engine", "kubevirt", "--mode", "offline"), PRE, ["CDI"],
     {"plane": "kvonly"}),
    # ---- 403: a user with no rights, on each verb ----
    ("forbidden-migrate", M + ("vm1", "--to", "fast", "--yes"), FORB, ["forbidden", "nobody"], {"kc": "restricted"}),
    ("forbidden-check", ("check", "vm1", "--to", "fast"), FORB, ["forbidden"], {"kc": "restricted"}),
    ("forbidden-status", ("status",), FORB, ["forbidden"], {"kc": "restricted"}),
    ("forbidden-cancel", ("cancel", "vm-storage-x"), FORB, ["forbidden"], {"kc": "restricted"}),
    ("forbidden-rollback", ("rollback", "vm-storage-x", "--yes"), FORB, ["forbidden"], {"kc": "restricted"}),
    # ---- malformed -f files (--local makes no API call; still nothing may appear) ----
    ("file-wrong-kinds", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/deploy.yaml"),
     BAD, ["no VirtualMachine", "Deployment"], {}),
    ("file-alias-bomb", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/bomb.yaml"),
     BAD, ["alias"], {}),
    ("file-python-tag", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/pytag.yaml"),
     BAD, ["pytag.yaml"], {}),
    ("file-too-deep", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/deep.yaml"),
     BAD, ["nesting"], {}),
    ("file-huge", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/huge.yaml"),
     BAD, ["MiB limit"], {}),
    ("file-binary", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/binary.bin"),
     BAD, ["binary.bin"], {}),
    ("file-missing", M + ("vm1", "--to", "fast", "--local", "--dry-run=client", "-f", "{files}/nope.yaml"),
     BAD, ["cannot read"], {}),
    ("status-file-hostile", ("status", "-f", "{files}/bomb.yaml"), BAD, ["alias"], {}),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory, cp):
    d = tmp_path_factory.mktemp("bad-input")

    def w(name, text):
        (d / name).write_text(text)

    w("broken.yaml", "apiVersion: v1\nclusters: [\n  - name: x\n    cluster: {server: ")
    w("list.yaml", "- just\n- a list\n")
    w("empty.yaml", "apiVersion: v1\nkind: Config\n")
    w("b64.yaml", f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
                  f"    server: {cp.server}\n    certificate-authority-data: '%%%not base64%%%'\n"
                  "contexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user: {token: t}\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "wrong.key"),
                    "-out", str(d / "wrong-ca.crt"), "-days", "1", "-subj", "/CN=wrong-ca"], check=True,
                   capture_output=True)
    w("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: x}\nspec: {}\n")
    w("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(20)))
    w("pytag.yaml", "kind: VirtualMachine\nx: !!python/object/apply:os.system ['touch /tmp/vmstorage-pwned']\n")
    w("deep.yaml", "kind: VirtualMachine\nx: " + "{a: " * 500 + "1" + "}" * 500 + "\n")
    with open(d / "huge.yaml", "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: over the 64 MiB cap without using disk
    (d / "binary.bin").write_bytes(bytes(range(256)) * 64)
    return str(d)


@pytest.fixture(scope="module")
def ns(world):
    kube = world
    name = new_namespace(kube, "bad-input")
    ci = F.cloudinit_disk
    make_vm(kube, name, "vm1")
    make_vm(kube, name, "vm2", running=False)
    make_vm(kube, name, "vmcd", [F.containerdisk_disk(), ci()])
    make_vm(kube, name, "vmshare", [F.pvc_disk("data", shareable=True), ci()])
    make_vm(kube, name, "vmlun", [F.pvc_disk("data", lun=True), ci()])
    make_vm(kube, name, "vmfs", [F.pvc_disk("data"), F.virtiofs_fs("fs"), ci()])
    make_vm(kube, name, "vmhost", [F.pvc_disk("data"), F.hostdisk_disk(), ci()])
    make_vm(kube, name, "vmbridge", [F.pvc_disk("data"), ci()], bridge_on_pod_network=True)
    make_vm(kube, name, "vmdv", [F.dv_disk("rootdisk", size="1Gi"), ci()])
    # the provisioner gave more than asked: a copy sized from the request would be smaller than the source
    kube.patch(R.PVC, "vmdv-rootdisk", {"status": {"capacity": {"storage": "2Gi"}}}, name, subresource="status")
    return name


def _bound_pvc(kube, ns, name, size="1Gi"):
    kube.create(R.PVC, F.make_pvc(name, size), ns)
    kube.patch(R.PVC, name, {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                        "capacity": {"storage": size}}}, ns, subresource="status")


@pytest.fixture(scope="module")
def planes():
    made = {}

    def get(kind):
        if kind not in made:
            p = made[kind] = Plane(groups=set() if kind == "bare" else {"kubevirt.io"})
            p.admin.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rel"}})
            if kind == "kvonly":
                F.install_kubevirt(p.admin)
                _bound_pvc(p.admin, "rel", "vm1-data")
                F.apply(p.admin, "rel", F.make_vm("vm1", [F.pvc_disk("data"), F.cloudinit_disk()], running=False))
        return made[kind]

    yield get
    for p in made.values():
        p.close()


def settled_snapshot(kube, ns):
    """After a KubeVirt reconfiguration the stand-in rewrites VM status once: wait until nothing moves."""
    prev = snapshot(kube, ns)
    for _ in range(30):
        time.sleep(1.0)
        cur = snapshot(kube, ns)
        if cur == prev:
            return cur
        prev = cur
    raise AssertionError("VMs never settled after the KubeVirt change")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly_and_creates_nothing(case, cp, kubectl, ns, files, planes):
    name, argv, code, needles, opt = case
    argv = [a.replace("{files}", files) for a in argv]
    env, kube, target_ns = dict(cp.env), cp.admin, ns
    if opt.get("plane"):
        plane = planes(opt["plane"])
        env, kube, target_ns = plane.env(cp.env), plane.admin, "rel"
    if opt.get("kc") == "restricted":
        env["KUBECONFIG"] = cp.nobody_kubeconfig
    elif opt.get("kc"):
        env["KUBECONFIG"] = os.path.join(files, opt["kc"])
    if not opt.get("no_ns") and "-n" not in argv and "-A" not in argv:
        argv += ["-n", target_ns]
    if opt.get("kv"):
        F.install_kubevirt(kube, **opt["kv"])
    try:
        before = settled_snapshot(kube, target_ns) if opt.get("kv") else snapshot(kube, target_ns)
        proc = subprocess.run(["kubectl", "vm-storage", *argv], capture_output=True, text=True, env=env,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert_clean_failure(proc, code, needles, what=f"case {name}: {' '.join(argv)}")
        assert snapshot(kube, target_ns) == before, f"case {name} created or changed objects"
    finally:
        if opt.get("kv"):
            F.install_kubevirt(kube)  # back to the v1.6 configuration every other case expects
    assert not os.path.exists("/tmp/vmstorage-pwned")


def test_the_corpus_is_large_and_covers_every_exit_code():
    assert len(CASES) >= 40
    assert {c[2] for c in CASES} == {BAD, PRE, API, FORB}
