"""The live view in a real terminal: `kubectl vm-storage migrate --wait` run by the real kubectl in a pty at
80x24 and 200x50, its output rendered by a terminal emulator (tests/e2e/ptyterm.py), driving a migration on
the stand-ins with each engine. Asserted on the screen: no line wider than the terminal, one header, every
disk's row, the progress moving, colour by phase, the final summary; a resize mid-run re-lays the view."""
import os
import re
import subprocess

import pytest

from kubectl_vmmig import resources as R
from tests.e2e.ptyterm import PtyRun
from tests.sim import factories as F
from tests.sim.common import set_faults, wait_for
from tests.sim.mtc import install_mtc

pytestmark = pytest.mark.cluster

OVERALL = re.compile(r"^DISKS \d+/\d+ done.*?(\d+(?:\.\d+)?)%")


@pytest.fixture
def stand(cp, sims):
    kube = cp.admin
    install_mtc(kube)
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    for node in kube.items(R.NODE):  # see test_kubevirt_engine.kv: nobody lifts the not-ready taint here
        if node["spec"].get("taints"):
            kube.patch(R.NODE, node["metadata"]["name"], {"spec": {"taints": None}})
    return kube


def vms_for(kube, ns, engine):
    """Three disks on two VMs. mtc: stopped VMs, offline rsync slowed to 4% a step; kubevirt: one running VM
    stopped by --stop and one stopped VM, CDI clones (progress in steps)."""
    bundles = [("vm1", [F.pvc_disk("data", size="1Gi"), F.pvc_disk("logs", size="2Gi")], engine == "kubevirt"),
               ("vm2", [F.pvc_disk("data", size="1Gi")], False)]
    for name, disks, running in bundles:
        F.apply(kube, ns, *F.make_vm_bundle(name, disks + [F.cloudinit_disk()], running=running))
    for name, disks, running in bundles:
        for d in ("data", "logs")[:len(disks)]:
            wait_for(lambda: (kube.get(R.PVC, f"{name}-{d}", ns).get("status") or {}).get("phase") == "Bound", 30)
        if running:
            wait_for(lambda: (kube.get_or_none(R.VMI, name, ns) or {}).get("status", {}).get("phase") == "Running",
                     60)
    if engine == "mtc":
        set_faults(kube, ns, rsyncStep="4")
    return {"vm1": 2, "vm2": 1}


def start(cp, ns, engine, columns, lines):
    env = dict(cp.env)
    env.pop("NO_COLOR", None)
    env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    argv = [cp.kubectl_bin, "vm-storage", "migrate", "vm1", "vm2", "--to", "fast", "--mode", "offline", "-n", ns,
            "--engine", engine, "--yes", "--wait"] + (["--stop"] if engine == "kubevirt" else [])
    return PtyRun(argv, env, columns, lines)


def view_checks(rows, columns, disks):
    """What must hold on any screen that shows the view."""
    assert all(len(r) <= columns for r in rows), "\n".join(r for r in rows if len(r) > columns)
    assert sum(r.startswith("PLAN ") for r in rows) == 1, "\n".join(rows)
    if any(r.startswith("VM ") for r in rows):
        for vm, n in disks.items():
            assert sum(r.startswith(vm + " ") for r in rows) == n, "\n".join(rows)


def overall_percents(snapshots):
    out = []
    for _, _, rows in snapshots:
        for r in rows:
            m = OVERALL.match(r)
            if m:
                out.append(float(m.group(1)))
    return out


def finished(run, ns, rows, color=True):
    rc = run.wait()
    rows = run.rows()
    text = "\n".join(rows)
    assert rc == 0, text
    assert re.search(r"^Succeeded: 3 of 3 disk\(s\) moved \(4\.0 GiB\) in \d", text, re.M), text
    assert re.search(r"^Slowest disk: vm\d/\w+ \(\d", text, re.M) and "Next: verify the VM(s)" in text, text
    joined = " ".join(text.replace("\\\n", " ").split())
    assert f"kubectl delete dv,pvc -n {ns} vm1-data vm1-logs vm2-data --ignore-not-found" in joined, text
    # colour by phase: every disk ended Succeeded, drawn green
    green = [run.screen.buffer[y][r.index("Succeeded")].fg for y, r in enumerate(rows)
             if r.startswith(("vm1 ", "vm2 ")) and "Succeeded" in r]
    assert green == (["green"] if color else ["default"]) * 3, green  # NO_COLOR: no colour on a terminal either
    return text


@pytest.mark.parametrize("engine", ["mtc", "kubevirt"])
def test_live_view_at_80x24(cp, stand, namespace, engine):
    disks = vms_for(stand, namespace, engine)
    run = start(cp, namespace, engine, 80, 24)
    try:
        run.wait_for(lambda rows: any(r.startswith("VM ") for r in rows), 120, "the per-disk table")
        finished(run, namespace, run.rows())
    finally:
        run.close()
    shown = [(t, c, rows) for t, c, rows in run.snapshots if any(r.startswith("PLAN ") for r in rows)]
    assert len(shown) > 3
    for _, columns, rows in shown:
        view_checks(rows, columns, disks)
    seen = overall_percents(shown)
    assert len(set(seen)) >= 3 and seen[-1] == 100.0 and min(seen) < 100.0, seen  # the progress moved
    assert seen == sorted(seen)


@pytest.mark.parametrize("engine", ["mtc", "kubevirt"])
def test_live_view_at_200x50_and_a_resize_mid_run_relays_it(cp, stand, namespace, engine):
    disks = vms_for(stand, namespace, engine)
    run = start(cp, namespace, engine, 200, 50)
    try:
        rows = run.wait_for(lambda rows: any(r.startswith("VM ") for r in rows), 120, "the per-disk table")
        head = [r for r in rows if r.startswith("VM ")][0]
        assert head.split() == ["VM", "VOLUME", "MODE", "PHASE", "PROGRESS", "ETA", "PVC", "MESSAGE"]
        view_checks(rows, 200, disks)
        resized_at = len(run.snapshots)
        run.resize(80, 24)

        def relaid(rows):
            heads = [r for r in rows if r.startswith("VM ")]
            return heads and "PVC" not in heads[0] and all(len(r) <= 80 for r in rows) and \
                sum(r.startswith("PLAN ") for r in rows) == 1
        run.wait_for(relaid, 30, "the view re-laid at 80 columns")
        text = finished(run, namespace, run.rows())
    finally:
        run.close()
    assert "PVC" not in [r for r in text.splitlines() if r.startswith("VM ")][0]
    after = run.snapshots[resized_at:]
    first = next(i for i, (_, _, rows) in enumerate(after) if relaid(rows))
    for _, _, rows in after[first:]:   # from the first re-laid frame on, every screen holds
        if any(r.startswith("PLAN ") for r in rows):
            view_checks(rows, 80, disks)


@pytest.mark.parametrize("engine", ["mtc", "kubevirt"])
def test_before_anything_stops_the_plan_and_hazards_then_the_question(cp, stand, namespace, engine):
    """A terminal: the plan table and the hazard, then 'Continue?'; answering no writes nothing (exit 3).
    Not a terminal and no --yes: the same table and hazard on stderr, refused with the fix (--yes)."""
    vms_for(stand, namespace, engine)
    if engine == "mtc":
        stand.patch(R.VM, "vm1", {"spec": {"runStrategy": "Always"}}, namespace)  # a workload MTC quiesces
        wait_for(lambda: stand.get_or_none(R.VMI, "vm1", namespace), 60)
    env = dict(cp.env, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    argv = [cp.kubectl_bin, "vm-storage", "migrate", "vm1", "vm2", "--to", "fast", "--mode", "offline", "-n",
            namespace, "--engine", engine, "--wait"] + (["--stop"] if engine == "kubevirt" else [])
    run = PtyRun(argv, env, 80, 24)
    try:
        rows = run.wait_for(lambda rows: any("Continue? [y/N]" in r for r in rows), 120, "the question")
        os.write(run.fd, b"n\r")
        rc = run.wait()
    finally:
        run.close()
    text = "\n".join(run.rows())
    assert rc == 3, text
    assert "Plan: 3 disk(s) of 2 VM(s) in namespace test-" in text
    assert re.search(r"^VM\s+VOLUME", text, re.M) and re.search(r"^vm1\s+logs", text, re.M), text
    hazard = "hazard: the cutover quiesces" if engine == "mtc" else "hazard: --stop stops the running VM(s) vm1"
    assert hazard in text and text.index("VOLUME") < text.index(hazard) < text.index("Continue?")
    assert "not confirmed; nothing was changed" in text
    assert all(len(r) <= 80 for r in rows if not r.startswith("hazard:"))
    assert stand.items(R.DATAVOLUME, namespace, label_selector="app.kubernetes.io/managed-by=kubectl-vm-storage") == []
    assert not [p for p in stand.items(R.MIGPLAN, "openshift-migration")
                if namespace in (p["spec"].get("namespaces") or [])]
    r = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 3 and "--yes" in r.stderr and hazard in r.stderr and "VOLUME" in r.stderr, r.stderr


def test_status_watch_shows_the_same_view_to_the_end(cp, stand, namespace, kubectl):
    """`migrate --detach`, then `status -w` in the terminal: the same view, bytes from the PVC sizes, the summary,
    the result's exit code."""
    disks = vms_for(stand, namespace, "mtc")
    r = kubectl("vm-storage", "migrate", "vm1", "vm2", "--to", "fast", "--mode", "offline", "-n", namespace,
                "--engine", "mtc", "--yes", "--detach")
    assert r.returncode == 0, r.stderr
    env = dict(cp.env, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    run = PtyRun([cp.kubectl_bin, "vm-storage", "status", "-n", namespace, "-w", "--interval", "0.5"], env, 80, 24)
    try:
        run.wait_for(lambda rows: any(r.startswith("VM ") for r in rows), 120, "the per-disk table")
        finished(run, namespace, run.rows(), color=False)   # cp.env sets NO_COLOR
    finally:
        run.close()
    assert not re.search(r"\x1b\[[0-9;]*m", run.raw.decode("utf-8", "replace"))  # not a single SGR escape
    shown = [(t, c, rows) for t, c, rows in run.snapshots if any(r.startswith("PLAN ") for r in rows)]
    for _, columns, rows in shown:
        view_checks(rows, columns, disks)
    seen = overall_percents(shown)
    assert seen[-1] == 100.0 and len(set(seen)) >= 2, seen


FLEET = re.compile(r"^FLEET (\d+) namespace\(s\)\s+VMS (\d+)\s+QUEUED (\d+)\s+RUNNING (\d+)\s+DONE (\d+)$")


def test_a_fleet_live_view_at_80x24_counts_the_fleet_and_groups_the_rows_by_namespace(cp, stand):
    """`migrate -A -l` over 3 namespaces x 3 stopped VMs with --parallel 2 in a real pty at 80x24: the fleet line
    (queued/running/done across the namespaces) over one block per namespace, never wider than the terminal,
    never more than 2 VMs running, every namespace's header on every screen, all 9 done at the end."""
    import uuid

    from tests.e2e.reliability_kit import stopped_fleet

    tag = uuid.uuid4().hex[:6]
    spaces = stopped_fleet(stand, "view-fleet", 3, 3, tag)
    env = dict(cp.env)
    env.pop("NO_COLOR", None)
    env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    argv = [cp.kubectl_bin, "vm-storage", "migrate", "-A", "-l", f"fleet={tag}", "--to", "fast", "--engine",
            "kubevirt", "--parallel", "2", "--yes", "--wait"]
    run = PtyRun(argv, env, 80, 24)
    try:
        run.wait_for(lambda rows: any(FLEET.match(r) for r in rows), 180, "the fleet line")
        rc = run.wait()
    finally:
        run.close()
    text = "\n".join(run.rows())
    assert rc == 0, text
    counted = []
    for _, columns, rows in run.snapshots:
        assert all(len(r) <= columns for r in rows), "\n".join(r for r in rows if len(r) > columns)
        fleet = [FLEET.match(r) for r in rows if FLEET.match(r)]
        if not fleet:
            continue
        assert len(fleet) == 1, "\n".join(rows)
        n_spaces, vms, queued, running, done = (int(x) for x in fleet[0].groups())
        assert (n_spaces, vms, queued + running + done) == (3, 9, 9), fleet[0].group(0)
        assert running <= 2, "\n".join(rows)
        counted.append((queued, running, done))
        heads = [r.split()[1].split("/")[0] for r in rows if r.startswith("PLAN ")]
        assert sorted(heads) == sorted(spaces), "\n".join(rows)  # every namespace keeps its block
        assert rows.index(next(r for r in rows if FLEET.match(r))) < rows.index(next(r for r in rows
                                                                                     if r.startswith("PLAN ")))
    assert counted and counted[-1] == (0, 0, 9), counted
    assert any(q > 0 for q, _, _ in counted), counted  # the queue was seen, not only the end
