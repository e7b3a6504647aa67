"""`make sandbox`: the real control plane + controller stand-ins + a seeded `demo` namespace, in the background.

    python -m tests.cluster.sandbox up|down|status [--dir .sandbox] [--pace 0.5]

`up` is idempotent: a running sandbox is reused (and re-seeded only where objects are missing); stand-ins that
are down (their process exits when a controller thread dies) are reported with the end of their log and started
again. `status` says whether the API server and the stand-ins are up (exit 1 when something is down).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from tests.cluster import controlplane

DEMO_NS = "demo"


def seed_demo(kube):
    """MTC, KubeVirt, CDI and kubevirt-migration-controller 'installed', and VMs of every shape a user meets,
    in namespace demo."""
    from kubectl_vmmig import errors
    from kubectl_vmmig import resources as R
    from tests.sim import factories as F
    from tests.sim.migration_controller import install_migration_controller
    from tests.sim.mtc import install_mtc

    install_mtc(kube)
    install_migration_controller(kube)  # a Deployed MigController: --engine auto picks migration-controller
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    try:
        kube.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NS}})
    except errors.Conflict:
        pass
    bundles = [
        F.make_vm_bundle("demo-dv", [F.dv_disk("rootdisk", size="2Gi"), F.cloudinit_disk()], running=True),
        F.make_vm_bundle("demo-pvc", [F.containerdisk_disk(), F.pvc_disk("data", size="1Gi"), F.cloudinit_disk()],
                         running=True),
        F.make_vm_bundle("demo-stopped", [F.dv_disk("rootdisk", size="1Gi"), F.pvc_disk("data", size="1Gi")],
                         running=False),
        F.make_vm_bundle("demo-shared", [F.pvc_disk("shared", size="1Gi", access_modes=("ReadWriteMany",),
                                                    shareable=True)], running=True),
    ]
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demo-web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "demo-web"}},
                    "template": {"metadata": {"labels": {"app": "demo-web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
    for obj in [o for b in bundles for o in b] + [web]:
        try:
            F.apply(kube, DEMO_NS, obj)
        except errors.Conflict:
            pass


def up(workdir, pace):
    os.makedirs(workdir, exist_ok=True)
    controlplane.sandbox_up(workdir)
    state_path = os.path.join(workdir, "state.json")
    with open(state_path) as fh:
        state = json.load(fh)
    plane = controlplane.ControlPlane(workdir, bins=controlplane.bin_dir())
    plane.server = state["server"]
    kube = plane.admin()
    if state.get("extra_pids") and not controlplane._alive(state["extra_pids"]):
        print(f"warning: the controller stand-ins were down; last lines of {workdir}/standins.log:\n"
              f"{_log_tail(workdir)}\nstarting them again", file=sys.stderr)
    if not controlplane._alive(state.get("extra_pids", [])):
        log = open(os.path.join(workdir, "standins.log"), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tests.sim", "--kubeconfig", plane.admin_kubeconfig,
                                 "--pace", str(pace)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=controlplane.REPO,
                                env=dict(os.environ, PYTHONPATH=controlplane.REPO))
        state["extra_pids"] = [proc.pid]
        with open(state_path, "w") as fh:
            json.dump(state, fh)
        time.sleep(1)
        if proc.poll() is not None:
            print(f"error: controller stand-ins exited; see {workdir}/standins.log", file=sys.stderr)
            return 1
    seed_demo(kube)
    kc = os.path.relpath(plane.kubeconfig)
    print(f"""sandbox ready: API server {plane.server}, controller stand-ins running (pace {pace}s)
  export KUBECONFIG={os.path.abspath(plane.kubeconfig)}     # contexts: admin (current), restricted
  kubectl get vm -n {DEMO_NS}
  kubectl vm-storage migrate demo-dv --to fast -n {DEMO_NS} --dry-run=client
  kubectl vm-storage migrate demo-dv --to fast -n {DEMO_NS} --yes --wait
stop it with: make sandbox-down   (kubeconfig: {kc})""")
    return 0


def _log_tail(workdir, lines=15):
    try:
        with open(os.path.join(workdir, "standins.log"), errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log)"


def status(workdir):
    """Exit 0 when the API server and the stand-ins run, 1 (saying what is down) otherwise."""
    state_path = os.path.join(workdir, "state.json")
    if not os.path.exists(state_path):
        print("sandbox not running (make sandbox)", file=sys.stderr)
        return 1
    with open(state_path) as fh:
        state = json.load(fh)
    ok = True
    if controlplane._alive(state.get("pids", [])):
        print(f"API server: up at {state['server']}")
    else:
        print("error: API server is down (make sandbox-down && make sandbox)", file=sys.stderr)
        ok = False
    if controlplane._alive(state.get("extra_pids", [])):
        print("controller stand-ins: running")
    else:
        print(f"error: controller stand-ins are down; last lines of {workdir}/standins.log:\n{_log_tail(workdir)}\n"
              "run make sandbox to start them again", file=sys.stderr)
        ok = False
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.cluster.sandbox")
    ap.add_argument("action", choices=["up", "down", "status"])
    ap.add_argument("--dir", default=os.path.join(controlplane.REPO, ".sandbox"))
    ap.add_argument("--pace", type=float, default=float(os.environ.get("VMSTORAGE_SIM_PACE", "0.5")))
    a = ap.parse_args(argv)
    try:
        if a.action == "down":
            return controlplane.sandbox_down(a.dir)
        if a.action == "status":
            return status(a.dir)
        return up(a.dir, a.pace)
    except controlplane.ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
