"""Secrets (issue 7): no token, password or client key printed at any -v level 0..10, including errors and
interrupted runs; nothing written to disk unless asked (HOME and TMPDIR are empty temp dirs: nothing new appears)."""
import os
import subprocess

import pytest

from tests.cluster.controlplane import ADMIN_TOKEN

from .reliability_kit import make_vm, world  # noqa: F401

pytestmark = pytest.mark.cluster
PASSWORD = "hunter2-very-secret"
KEY_MARK = "PRIVATE KEY"


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


@pytest.fixture
def clean_env(cp, tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = dict(cp.env, HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    return env, home, tmp


def run(cp, env, *args):
    return subprocess.run([cp.kubectl_bin, "vm-storage", *args], capture_output=True, text=True, env=env,
                          timeout=180, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("level", range(0, 11))
def test_no_secret_at_any_verbosity(level, cp, world, namespace, clean_env):
    env, home, tmp = clean_env
    make_vm(world, namespace, "vm1")
    outs = []
    for args in (("check", "vm1", "--to", "fast", "-n", namespace, "--engine", "kubevirt"),
                 ("status", "-n", namespace, "-o", "json"),
                 ("migrate", "vm1", "--to", "fast", "-n", namespace, "--engine", "kubevirt", "--dry-run=client"),
                 ("migrate", "nope", "--to", "fast", "-n", namespace, "--token", ADMIN_TOKEN),   # an error
                 ("status", "-n", namespace, "--token", "wrong-" + ADMIN_TOKEN),               # 401
                 ("status", "-n", namespace, "-s", "https://127.0.0.1:9", "--token", ADMIN_TOKEN)):  # unreachable
        r = run(cp, env, *args, "-v", str(level))
        assert "Traceback" not in r.stderr or level >= 9
        outs.append(r.stdout + r.stderr)
    text = "\n".join(outs)
    assert ADMIN_TOKEN not in text
    assert KEY_MARK not in text
    assert files_under(str(home)) == [] and files_under(str(tmp)) == []  # nothing written to disk


def test_basic_auth_password_and_client_key_never_printed(cp, tmp_path, clean_env):
    env, home, tmp = clean_env
    key = tmp_path / "client.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    kc = tmp_path / "kc.yaml"
    kc.write_text(f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
                  f"    server: {cp.server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n"
                  "  context: {cluster: k, user: u}\n"
                  f"users:\n- name: u\n  user: {{username: admin, password: {PASSWORD}}}\n")
    before = files_under(str(home)) + files_under(str(tmp))
    for level in (0, 6, 9, 10):
        for args in (("status", "-A", "--kubeconfig", str(kc)),
                     ("status", "-A", "--client-key", str(key), "--client-certificate", str(key))):
            r = run(cp, env, *args, "-v", str(level))
            text = r.stdout + r.stderr
            assert PASSWORD not in text and KEY_MARK not in text, text
            assert key.read_text().splitlines()[1] not in text
    assert files_under(str(home)) + files_under(str(tmp)) == before == []


def test_interrupted_runs_print_a_reattach_command_without_the_token():
    from kubectl_vmmig.exits import reattach_command

    cmd = reattach_command(["migrate", "vm1", "--to", "fast", "--token", "s3cr3t", "--token=s3cr3t2", "-n", "x"])
    assert "s3cr3t" not in cmd and cmd.endswith("migrate vm1 --to fast -n x")
