"""The krew release: the real validate-krew-manifest accepts it, the real krew installs it offline, and the
installed plugin runs against the test API server on this machine's python3 and on Python 3.9."""
import hashlib
import json
import os
import re
import subprocess
import tarfile
import zipfile

import pytest
import yaml

from tests.e2e.distribution import PY39, krew_install, krew_release, run

pytestmark = pytest.mark.cluster

PLATFORMS = {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}
PYTHONS = {"python3.11": "/root/.pyenv/versions/3.11.7/bin/python3.11", "python3.9": PY39}


@pytest.fixture(scope="module")
def bins():
    from tests.cluster.controlplane import ControlPlaneError, bin_dir

    try:
        d = bin_dir()
    except ControlPlaneError as exc:
        pytest.fail(f"krew binaries unavailable: {exc}")
    for name in ("krew", "kubectl-krew", "validate-krew-manifest"):
        assert os.access(os.path.join(d, name), os.X_OK), f"{name} missing in {d} (scripts/test-bins.sh)"
    return d


@pytest.fixture(scope="module")
def dist():
    return krew_release()


def test_validate_krew_manifest_accepts_the_manifest(bins, dist):
    manifest = os.path.join(dist, "vm-storage.yaml")
    res = subprocess.run([os.path.join(bins, "validate-krew-manifest"), "-manifest", manifest, "-skip-install"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "structural validation OK" in res.stderr


def test_manifest_carries_the_archive_sha_and_every_platform(dist):
    with open(os.path.join(dist, "vm-storage.yaml")) as fh:
        doc = yaml.safe_load(fh)
    with open(os.path.join(dist, "kubectl-vm-storage.tar.gz"), "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    from kubectl_vmmig import __version__

    assert doc["metadata"]["name"] == "vm-storage"
    assert doc["spec"]["version"] == "v" + __version__
    assert "python3" in doc["spec"]["caveats"] and "completion install" in doc["spec"]["caveats"]
    seen = set()
    for p in doc["spec"]["platforms"]:
        assert p["sha256"] == sha
        assert p["bin"] == "kubectl-vm_storage"
        seen.add((p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]))
    assert seen == PLATFORMS


def test_archive_is_one_pure_python_zipapp_with_license_and_shims(dist):
    with tarfile.open(os.path.join(dist, "kubectl-vm-storage.tar.gz")) as tf:
        members = {m.name: m for m in tf.getmembers()}
        app = tf.extractfile("kubectl-vm_storage").read()
    assert {"kubectl-vm_storage", "LICENSE", "completion/kubectl_complete-vm_storage",
            "completion/oc_complete-vm_storage", "completion/kubectl-vm_storage.bash"} <= set(members)
    for exe in ("kubectl-vm_storage", "completion/kubectl_complete-vm_storage", "completion/oc_complete-vm_storage"):
        assert members[exe].mode & 0o111, f"{exe} is not executable"
    # a shell launcher: python3 -E -s -S (no site-packages, no .pth start-up hooks, no PYTHON* variables)
    assert app.startswith(b"#!/bin/sh\n")
    assert b'exec "${KUBECTL_VM_STORAGE_PYTHON:-python3}" -E -s -S "$0" "$@"\n' in app[:600]
    path = os.path.join(dist, "kubectl-vm_storage")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        k8s_version = re.search(r'__version__ = "([^"]+)"', zf.read("kubernetes/__init__.py").decode()).group(1)
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    assert "kubectl_vmmig/cli.py" in names and "click/__init__.py" in names and "urllib3/__init__.py" in names
    assert "socks.py" in names  # PySocks for a socks5 proxy-url: the host's site-packages are not on the path
    assert int(k8s_version.split(".")[0]) < 36, k8s_version  # 36+ pulls compiled aiohttp, 37+ pydantic-core


@pytest.fixture(scope="module", params=sorted(PYTHONS))
def installed(request, bins, cp):
    python = PYTHONS[request.param]
    assert os.access(python, os.X_OK), f"{python} missing"
    root, env = krew_install(bins, cp.kubectl_bin, python)
    env["KUBECONFIG"] = cp.admin_kubeconfig
    return request.param, root, env


def test_krew_installs_offline_with_license(installed):
    _, root, env = installed
    store = os.path.join(root, "store", "vm-storage")
    (version,) = os.listdir(store)
    assert {"kubectl-vm_storage", "LICENSE", "completion"} <= set(os.listdir(os.path.join(store, version)))
    assert os.path.realpath(os.path.join(root, "bin", "kubectl-vm_storage")) == \
        os.path.join(store, version, "kubectl-vm_storage")
    # krew's receipt records the install (`krew list` needs an index, which an offline install never has)
    with open(os.path.join(root, "receipts", "vm-storage.yaml")) as fh:
        receipt = yaml.safe_load(fh)
    assert receipt["metadata"]["name"] == "vm-storage" and receipt["spec"]["version"] == version


def test_installed_plugin_reports_client_and_server_version(installed, cp):
    name, _, env = installed
    res = run(["kubectl", "vm-storage", "version"], env=env)
    want_py = name.replace("python", "")
    assert re.search(rf"Client Version: \d+\.\d+\.\d+ \(python {re.escape(want_py)}\.\d+\)", res.stdout), res.stdout
    server = cp.admin.server_version()["gitVersion"]
    assert f"Server Version: {server}" in res.stdout
    assert res.stderr == ""


def test_installed_plugin_is_not_shadowed_by_pythonpath_nor_site_packages(installed, tmp_path):
    """python3 -E -s -S: a PYTHONPATH holding a broken click (a user's other project) changes nothing, and the
    interpreter's site-packages (with their .pth start-up hooks) are not on the plugin's path."""
    _, _, env = installed
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "__init__.py").write_text("raise ImportError('the wrong click')\n")
    res = run(["kubectl", "vm-storage", "version", "-o", "json"], env=dict(env, PYTHONPATH=str(tmp_path)))
    assert json.loads(res.stdout)["serverVersion"]["gitVersion"]
    argv = tmp_path / "argv"  # an "interpreter" that prints how the launcher started it
    argv.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    argv.chmod(0o755)
    res = run(["kubectl-vm_storage", "version"], env=dict(env, KUBECTL_VM_STORAGE_PYTHON=str(argv)))
    flags, script = res.stdout.splitlines()[:3], res.stdout.splitlines()[3]
    assert flags == ["-E", "-s", "-S"], res.stdout
    # unpacked by the runs before: the launcher starts the unpacked copy, not the archive (~12 ms less)
    cache = env["VMSTORAGE_CACHE_DIR"]
    assert script.startswith(cache + "/zipapp-") and script.endswith("/__main__.py"), (script, cache)
    res = run(["kubectl-vm_storage", "version"], env=dict(env, KUBECTL_VM_STORAGE_PYTHON=str(argv),
                                                          VMSTORAGE_ZIPAPP_CACHE="0"))
    assert res.stdout.splitlines()[3].endswith("/bin/kubectl-vm_storage"), res.stdout


def test_installed_plugin_help_says_kubectl_vm_storage(installed):
    _, _, env = installed
    res = run(["kubectl", "vm-storage", "--help"], env=env)
    assert res.stdout.startswith("Usage: kubectl vm-storage ")


def test_installed_plugin_status_talks_to_the_api_server(installed, namespace):
    _, _, env = installed
    res = run(["kubectl", "vm-storage", "status", "-n", namespace, "-o", "json"], env=env)
    assert json.loads(res.stdout) == {"migrations": []}
    res = run(["kubectl", "vm-storage", "status", "no-such-plan", "-n", namespace], env=env, check=False)
    assert res.returncode not in (0, 1) and "no migration of plan or VM 'no-such-plan'" in res.stderr
    assert "Traceback" not in res.stderr
