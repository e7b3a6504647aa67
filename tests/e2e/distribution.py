"""Helpers for the distribution tests: the krew release, a krew install, a `pip install .` venv, clean PATHs.

Every layout gets its own PATH with nothing from this interpreter's bin directory (which holds the editable
install's kubectl-vm_storage and completion shims), so a test can only pass through the form it installed.
"""
import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY39 = "/root/.pyenv/versions/3.9.18/bin/python3.9"
SYSTEM_PATH = ["/usr/bin", "/bin"]


def host_env():
    """This process's environment minus PYTHONPATH (make test sets it; an install under test must not see the
    source tree through it)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _tmpdir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path


def tools_dir(kubectl_bin, python=sys.executable):
    """A directory holding only `kubectl` (the real one) and `python3` (the interpreter under test)."""
    d = _tmpdir("vmstorage-tools-")
    os.symlink(os.path.realpath(kubectl_bin), os.path.join(d, "kubectl"))
    os.symlink(python, os.path.join(d, "python3"))
    return d


def clean_env(base_env, *path_dirs, **extra):
    env = dict(base_env)
    env["PATH"] = os.pathsep.join(list(path_dirs) + SYSTEM_PATH)
    env.pop("KUBECTL_PATH", None)
    env.pop("PYTHONPATH", None)
    env["KREW_NO_UPGRADE_CHECK"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, env, timeout=120, check=True, cwd=None):
    # cwd defaults to a neutral directory: from the repository, `python -c` would import the source tree
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                         cwd=cwd or tempfile.gettempdir())
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    return res


@functools.lru_cache(maxsize=None)
def krew_release():
    """Build the krew archive + manifest once per test session with scripts/krew.sh; returns the dist dir."""
    dist = _tmpdir("vmstorage-dist-")
    env = dict(host_env(), DIST=dist, PYTHON=sys.executable)
    run(["bash", os.path.join(REPO, "scripts", "krew.sh")], env=env, timeout=600)
    return dist


def krew_install(bins, kubectl_bin, python=sys.executable):
    """Install the release offline into a fresh KREW_ROOT. Returns (krew_root, env to run the plugin with)."""
    dist = krew_release()
    root = _tmpdir("vmstorage-krew-")
    tools = tools_dir(kubectl_bin, python)
    env = clean_env(os.environ, tools, bins, os.path.join(root, "bin"), KREW_ROOT=root,
                    VMSTORAGE_CACHE_DIR=os.path.join(root, "vmstorage-cache"))
    run(["kubectl", "krew", "install", "--manifest=" + os.path.join(dist, "vm-storage.yaml"),
         "--archive=" + os.path.join(dist, "kubectl-vm-storage.tar.gz")], env=env)
    # the plugin must run on the interpreter under test, not on whatever python3 krew's PATH had
    env["PATH"] = os.pathsep.join([tools, os.path.join(root, "bin")] + SYSTEM_PATH)
    return root, env


@functools.lru_cache(maxsize=None)
def pip_venv():
    """`pip install .` into a fresh venv (dependencies from this environment's site-packages)."""
    base = _tmpdir("vmstorage-pip-")
    src = os.path.join(base, "src")
    os.makedirs(src)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(REPO, name), src)
    shutil.copytree(os.path.join(REPO, "kubectl_vmmig"), os.path.join(src, "kubectl_vmmig"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    venv = os.path.join(base, "venv")
    # ensurepip inside: minutes on a loaded 2-CPU machine (it once took over 120 s with 5 test workers)
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], env=host_env(), timeout=600)
    py = os.path.join(venv, "bin", "python")
    run([py, "-m", "pip", "install", "--quiet", "--no-deps", src], env=host_env(), timeout=600)
    return venv
