"""Completion through the real kubectl (plugin-completion protocol), for `pip install .` and the krew install,
the bash script, and the dynamic sources against the test API server."""
import os
import subprocess
import time

import pytest

from kubectl_vmmig import cli, completion_sources as cs, resources as R
from kubectl_vmmig.commands.completion import SHIM_NAMES
from tests.e2e.distribution import clean_env, host_env, krew_install, pip_venv, run, tools_dir

pytestmark = pytest.mark.cluster

VISIBLE = [name for name in cli.COMMANDS if not name.startswith("_")]


@pytest.fixture(scope="module")
def venv():
    return pip_venv()


@pytest.fixture(scope="module", params=["pip", "krew"])
def form(request, cp, venv):
    """(name, env) where `kubectl` finds the plugin and its completion shims only from that install."""
    if request.param == "pip":
        env = clean_env(os.environ, tools_dir(cp.kubectl_bin), os.path.join(venv, "bin"))
    else:
        from tests.cluster.controlplane import bin_dir

        root, env = krew_install(bin_dir(), cp.kubectl_bin)
        # krew links only the plugin: the shims reach PATH through the opt-in `completion install`
        res = run(["kubectl", "vm-storage", "completion", "install"], env=env)
        assert res.stdout.count("wrote ") == 2 and res.stderr == ""
    env["KUBECONFIG"] = cp.admin_kubeconfig
    # the default 2 s budget is for a user's shell; a loaded CI machine needs more to prove the function
    env["VMSTORAGE_COMPLETION_TIMEOUT"] = "15"
    return request.param, env


def kubectl_complete(env, *words):
    """`kubectl __complete vm-storage <words>` -> (candidates {value: description}, directive line, stderr)."""
    res = run(["kubectl", "__complete", "vm-storage", *words], env=env, timeout=60)
    lines = res.stdout.splitlines()
    cands = dict((ln.split("\t", 1) + [""])[:2] for ln in lines[:-1] if ln)
    return cands, lines[-1], res.stderr


def test_pip_install_is_the_copy_under_test(venv):
    res = run([os.path.join(venv, "bin", "python"), "-c", "import kubectl_vmmig; print(kubectl_vmmig.__file__)"],
              env=host_env())
    assert res.stdout.startswith(venv), res.stdout
    for name in ("kubectl-vm_storage", *SHIM_NAMES.values()):
        assert os.access(os.path.join(venv, "bin", name), os.X_OK), name


def test_kubectl_runs_the_installed_plugin(form, cp):
    name, env = form
    res = run(["kubectl", "vm-storage", "version"], env=env)
    assert f"Server Version: {cp.admin.server_version()['gitVersion']}" in res.stdout
    listing = run(["kubectl", "plugin", "list"], env=env, check=False).stdout
    assert "kubectl-vm_storage" in listing and "/root/.pyenv" not in listing  # only the install under test


def test_kubectl_lists_the_subcommands(form):
    name, env = form
    cands, directive, stderr = kubectl_complete(env, "")
    assert list(cands) == VISIBLE
    assert cands["migrate"].startswith("Move VM disks")
    assert directive == ":4"
    assert "About to call: " in stderr and "kubectl_complete-vm_storage" in stderr


def test_kubectl_lists_the_clusters_storageclasses(form):
    _, env = form
    cands, directive, _ = kubectl_complete(env, "migrate", "--to", "")
    assert {"standard", "fast", "slow"} <= set(cands)
    assert cands["standard"].endswith("(default)")
    assert directive == ":4"
    cands, _, _ = kubectl_complete(env, "migrate", "--to", "f")
    assert set(cands) == {"fast"}


def test_kubectl_lists_vms_of_the_chosen_namespace(form, cp, namespace):
    _, env = form
    for vm in ("db-1", "web-1"):
        cp.admin.create(R.VM, {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                               "metadata": {"name": vm, "namespace": namespace},
                               "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}}},
                        namespace)
    cands, directive, _ = kubectl_complete(env, "migrate", "-n", namespace, "")
    assert set(cands) == {"db-1", "web-1"}
    cands, _, _ = kubectl_complete(env, "migrate", "-n", namespace, "w")
    assert set(cands) == {"web-1"}


def test_kubectl_lists_namespaces(form, namespace):
    _, env = form
    cands, directive, _ = kubectl_complete(env, "status", "-n", namespace[:-2])
    assert namespace in cands and directive == ":4"


def test_no_kubeconfig_static_words_still_complete_and_dynamic_fail_soft(form, tmp_path):
    _, env = form
    env = dict(env, KUBECONFIG=str(tmp_path / "none"), HOME=str(tmp_path), VMSTORAGE_COMPLETION_TIMEOUT="2")
    cands, _, stderr = kubectl_complete(env, "")
    assert list(cands) == VISIBLE
    start = time.monotonic()
    cands, directive, stderr = kubectl_complete(env, "migrate", "--to", "")
    assert cands == {} and directive == ":4"
    assert "Traceback" not in stderr
    assert time.monotonic() - start < 10


def test_oc_shim_speaks_the_same_protocol(form):
    _, env = form
    res = run(["oc_complete-vm_storage", "comp"], env=env)
    assert res.stdout.splitlines()[0].startswith("completion\t") and res.stdout.endswith(":4\n")


def test_bash_script_completes_the_binary(venv, cp):
    env = clean_env(os.environ, os.path.join(venv, "bin"), KUBECONFIG=cp.admin_kubeconfig,
                    VMSTORAGE_COMPLETION_TIMEOUT=15)
    script = (
        'source <(kubectl-vm_storage completion bash)\n'
        'complete_line() { COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMPREPLY=();'
        ' __kubectl_vm_storage_complete; printf "%s\\n" "${COMPREPLY[@]}" | sort | tr "\\n" " "; echo; }\n'
        'complete_line "kubectl-vm_storage ver"\n'
        'complete_line "kubectl-vm_storage migrate --to "\n'
        'complete_line "kubectl-vm_storage migrate --to=fa"\n')
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0].split() == ["version"]
    assert {"fast", "slow", "standard"} <= set(out[1].split())
    assert out[2].split() == ["fast"]


def test_sources_against_the_api_server(cp, namespace):
    import click

    ctx = click.Context(click.Command("x"))
    ctx.params = {"kubeconfig": cp.admin_kubeconfig, "namespace": namespace}
    plan = {"apiVersion": "migration.openshift.io/v1alpha1", "kind": "MigPlan",
            "metadata": {"name": "vm-storage-abc", "namespace": namespace,
                         "labels": {cs.MIGRATION_LABEL: "vm-storage-abc", cs.ENGINE_LABEL: "mtc"}},
            "spec": {}}
    cp.admin.create(R.MIGPLAN, plan, namespace)
    plans = cs.complete_plans(ctx, None, "vm-")
    assert [(c.value, c.help) for c in plans] == [("vm-storage-abc", "engine mtc")]
    assert namespace in [c.value for c in cs.complete_namespaces(ctx, None, namespace[:3])]
    ctx.params["kubeconfig"] = cp.nobody_kubeconfig  # no rights: nothing, quietly
    assert cs.complete_storageclasses(ctx, None, "") == []
