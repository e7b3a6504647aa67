"""Interruption (issue 7): SIGINT / SIGTERM during `migrate --wait` — the migration goes on in the cluster, the
exit code is 130 / 143, the printed command re-attaches, and re-running the same migrate adopts what exists and
creates nothing twice. kubectl execs the plugin, so a signal to the kubectl process reaches the plugin."""
import json
import shlex
import signal
import subprocess
import time

import pytest

from kubectl_vmmig import errors as E
from kubectl_vmmig import resources as R
from tests.sim.common import set_faults

from .reliability_kit import MANAGED, MTC_NS, make_vm, wait_for, world  # noqa: F401

pytestmark = pytest.mark.cluster
SIGNALS = [(signal.SIGINT, E.INTERRUPTED, "stopped"), (signal.SIGTERM, E.TERMINATED, "terminated")]


def start(cp, *args):
    return subprocess.Popen([cp.kubectl_bin, "vm-storage", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=cp.env)


def interrupt(proc, sig):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def reattach_command(err):
    """The command the plugin printed after 're-attach with: ' (argv for subprocess)."""
    line = next(ln for ln in err.splitlines() if "re-attach with: " in ln)
    return shlex.split(line.split("re-attach with: ", 1)[1])


def run_printed(cp, argv, timeout=300):
    assert argv[:2] == ["kubectl", "vm-storage"], argv
    return subprocess.run([cp.kubectl_bin, *argv[1:]], capture_output=True, text=True, env=cp.env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def mtc_objects(kube, ns):
    plans = [p for p in kube.items(R.MIGPLAN, MTC_NS) if ns in (p["spec"].get("namespaces") or [])]
    names = {p["metadata"]["name"] for p in plans}
    migs = [m for m in kube.items(R.MIGMIGRATION, MTC_NS) if m["spec"]["migPlanRef"]["name"] in names]
    return plans, migs


# ---- MTC engine: the controller does the work, the plugin only follows -------------------------------------
@pytest.mark.parametrize("sig,code,word", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_mtc_signal_while_waiting_leaves_the_migration_running(sig, code, word, cp, world, namespace):
    kube, ns = world, namespace
    make_vm(kube, ns, "vm1", running=False)
    set_faults(kube, ns, rsyncStep="4")  # a copy that lasts long enough to be interrupted
    args = ["migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "mtc", "--mode", "offline", "--yes", "--wait"]
    proc = start(cp, *args)
    wait_for(lambda: mtc_objects(kube, ns)[1], 120, "the MigMigration")
    time.sleep(1.0)  # now following
    rc, out, err = interrupt(proc, sig)
    assert rc == code, err
    assert "Traceback" not in err and word in err and "goes on in the cluster" in err, err
    plans, migs = mtc_objects(kube, ns)
    assert len(plans) == 1 and len(migs) == 1
    assert not migs[0]["spec"].get("canceled"), "a signal must never cancel the migration"
    printed = reattach_command(err)
    assert printed[:3] == ["kubectl", "vm-storage", "status"], printed

    if sig == signal.SIGINT:
        # re-running the same migrate adopts the running MigMigration and follows it to the end
        again = subprocess.run([cp.kubectl_bin, "vm-storage", *args], capture_output=True, text=True, env=cp.env,
                               timeout=300, stdin=subprocess.DEVNULL)
        assert again.returncode == 0, again.stderr
    else:
        # the printed command follows the migration, which went on without the plugin, to its end
        st = run_printed(cp, printed + ["-o", "json"])
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout.strip().splitlines()[-1])["migrations"][0]["result"] == "Succeeded"
    plans2, migs2 = mtc_objects(kube, ns)
    assert [p["metadata"]["uid"] for p in plans2] == [p["metadata"]["uid"] for p in plans]  # nothing twice
    assert [m["metadata"]["uid"] for m in migs2] == [m["metadata"]["uid"] for m in migs]
    assert kube.get(R.MIGMIGRATION, migs[0]["metadata"]["name"], MTC_NS)["status"]["phase"] == "Completed"


# ---- kubevirt engine: KubeVirt copies; the plugin drives the steps around it -------------------------------
@pytest.mark.parametrize("sig,code,word", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_kubevirt_signal_during_live_migration_then_rerun_adopts(sig, code, word, cp, world, namespace):
    kube, ns = world, namespace
    make_vm(kube, ns, "vm1")
    # Every attempt fails until the signal is sent, so the migration is surely still running when it arrives
    # (with a fixed number of failures a slow test process could observe the swap only after the end).
    set_faults(kube, ns, liveMigrationFail="true")
    args = ["migrate", "vm1", "--to", "fast", "-n", ns, "--engine", "kubevirt", "--mode", "live", "--wait"]
    proc = start(cp, *args)
    wait_for(lambda: kube.get(R.VM, "vm1", ns)["spec"].get("updateVolumesStrategy") == "Migration", 120,
             "the volume swap")
    # Freeze the KubeVirt stand-in (fault "stall": it touches nothing in the namespace) so the plugin cannot
    # see its third failed attempt and stop following before the signal arrives on a loaded machine
    set_faults(kube, ns, liveMigrationFail="true", stall="true")
    assert proc.poll() is None, "the plugin ended before the signal"
    rc, out, err = interrupt(proc, sig)
    set_faults(kube, ns, liveMigrationFail="0", stall="false")  # KubeVirt's next attempt succeeds
    assert rc == code, err
    assert "Traceback" not in err and (word in err or "interrupted" in err), err
    printed = reattach_command(err)
    assert printed == ["kubectl", "vm-storage", *args], printed
    dvs = sorted(d["metadata"]["uid"] for d in kube.items(R.DATAVOLUME, ns, label_selector=MANAGED))
    assert len(dvs) == 1

    # KubeVirt goes on without the plugin: the VMI ends up on the destination claim
    def on_destination():
        vmi = kube.get(R.VMI, "vm1", ns)
        claims = [(v.get("persistentVolumeClaim") or {}).get("claimName") for v in vmi["spec"]["volumes"]]
        conds = {c["type"]: c["status"] for c in (vmi.get("status") or {}).get("conditions") or []}
        return "vm1-data-fast" in claims and conds.get("VolumesChange") != "True"
    if sig == signal.SIGTERM:
        wait_for(on_destination, 180, "KubeVirt to finish the migration on its own")

    again = run_printed(cp, printed)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "re-attaching" in again.stderr
    vm = kube.get(R.VM, "vm1", ns)
    # the strategy stays on the running VM (removing it raises RestartRequired, issue 11 finding 1)
    assert vm["spec"]["updateVolumesStrategy"] == "Migration"
    assert sorted(d["metadata"]["uid"] for d in kube.items(R.DATAVOLUME, ns, label_selector=MANAGED)) == dvs
    records = kube.items(R.CONFIGMAP, ns, label_selector="vm-storage.kubevirt-tools.io/engine=kubevirt")
    assert len(records) == 1 and json.loads(records[0]["data"]["record"])["result"] == "Succeeded"
    assert kube.get_or_none(R.PVC, "vm1-data", ns) is not None  # the source is kept
