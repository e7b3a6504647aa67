"""The completion protocol, the shims, `completion install`, and the dynamic sources failing soft (no cluster)."""
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

import click
import pytest

from kubectl_vmmig import cli, completion_sources as cs
from kubectl_vmmig.commands import completion as comp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VISIBLE = [name for name in cli.COMMANDS if not name.startswith("_")]


def lines(args):
    items, directive = comp.completions(args)
    return comp.format_protocol(items, directive).splitlines()


def test_subcommands_listed_with_descriptions_and_no_file_completion():
    out = lines([""])
    assert out[-1] == ":4"
    names = [ln.split("\t")[0] for ln in out[:-1]]
    assert names == VISIBLE
    assert "__complete" not in names
    assert all("\t" in ln and ln.split("\t")[1] for ln in out[:-1])


def test_subcommand_prefix_and_group_flags():
    assert lines(["ver"]) == ["version\tPrint the client and server versions.", ":4"]
    flags = [ln.split("\t")[0] for ln in lines(["--"])[:-1]]
    assert "--help" in flags and "--version" in flags


def test_options_and_choices_of_a_subcommand():
    out = lines(["version", "--req"])
    assert out[0].startswith("--request-timeout\t") and out[-1] == ":4"
    assert [ln.split("\t")[0] for ln in lines(["version", "-o", ""])[:-1]] == ["text", "json", "yaml"]
    assert lines(["version", "--output=y"])[:-1] == ["yaml"]


def test_path_flags_fall_back_to_file_completion():
    assert lines(["version", "--kubeconfig", ""]) == [":0"]
    assert lines(["version", "--client-key=./k"]) == [":0"]


def test_unknown_subcommand_is_an_error_directive_not_a_traceback():
    assert lines(["no-such-verb", ""]) == [":1"]


def test_descriptions_stay_on_one_line():
    text = comp.format_protocol([("a", "two\nlines\tand tab")], 4)
    assert text == "a\ttwo lines and tab\n:4\n"


def test_hidden_complete_command_through_main(capsys):
    assert cli.main(["__complete", "completion", "ba"]) == 0
    assert capsys.readouterr().out == "bash\tPrint the bash completion script for...\n:4\n"


def test_help_hides_the_protocol_entry(capsys):
    cli.main(["--help"])
    out = capsys.readouterr().out
    assert "completion" in out and "__complete" not in out


def test_console_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["kubectl_complete-vm_storage", "comp"])
    with pytest.raises(SystemExit) as exc:
        comp.kubectl_complete()
    assert exc.value.code == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("completion\t")


# ---- shims and scripts ----------------------------------------------------------------------------------
def test_shim_forwards_to_the_plugin_protocol():
    for tool in ("kubectl", "oc"):
        text = comp.shim(tool)
        assert text.startswith("#!/usr/bin/env sh\n")
        assert 'exec kubectl-vm_storage __complete "$@"' in text


def test_completion_copies_are_up_to_date():
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    try:
        import gen_completion
    finally:
        sys.path.pop(0)
    for name, (text, mode) in gen_completion.files().items():
        path = os.path.join(REPO, "completion", name)
        with open(path) as fh:
            assert fh.read() == text, f"{path} is stale: run `make completion`"
        assert bool(os.stat(path).st_mode & stat.S_IXUSR) == bool(mode & 0o100), path


def test_bash_script_is_valid_bash():
    res = subprocess.run(["bash", "-n"], input=comp.SCRIPTS["bash"], text=True, capture_output=True)
    assert res.returncode == 0, res.stderr


def test_install_writes_executable_shims(tmp_path, capsys):
    target = tmp_path / "bin"
    assert cli.main(["completion", "install", "--dir", str(target)]) == 0
    for name in ("kubectl_complete-vm_storage", "oc_complete-vm_storage"):
        path = target / name
        assert os.access(path, os.X_OK)
        assert "kubectl-vm_storage __complete" in path.read_text()
    assert f"wrote {target / 'kubectl_complete-vm_storage'}" in capsys.readouterr().out


def test_install_defaults_to_krew_bin_and_refuses_foreign_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KREW_ROOT", str(tmp_path))
    assert cli.main(["completion", "install"]) != 0  # no $KREW_ROOT/bin: say so, do not create it
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bin").mkdir()
    foreign = tmp_path / "bin" / "oc_complete-vm_storage"
    foreign.write_text("#!/bin/sh\necho mine\n")
    assert cli.main(["completion", "install"]) != 0
    assert "not written by kubectl vm-storage" in capsys.readouterr().err
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    assert cli.main(["completion", "install", "--force"]) == 0
    assert "__complete" in foreign.read_text()
    assert cli.main(["completion", "install"]) == 0  # our own shims are rewritten without --force


# ---- dynamic sources -------------------------------------------------------------------------------------
def _ctx(**params):
    ctx = click.Context(click.Command("x"))
    ctx.params = params
    return ctx


def test_sources_without_kubeconfig_are_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for source in (cs.complete_namespaces, cs.complete_storageclasses, cs.complete_vms, cs.complete_plans):
        assert source(_ctx(), None, "") == []


def test_sources_give_up_at_the_deadline_on_a_silent_server(monkeypatch):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)  # accepts connections, never answers
    monkeypatch.setattr(cs, "TIMEOUT", 0.5)
    try:
        start = time.monotonic()
        got = cs.complete_storageclasses(_ctx(server=f"http://127.0.0.1:{srv.getsockname()[1]}"), None, "")
        took = time.monotonic() - start
    finally:
        srv.close()
    assert got == []
    assert took < 1.5


def test_deadline_abandons_a_hung_lookup():
    release = threading.Event()
    start = time.monotonic()
    assert cs._with_deadline(lambda: release.wait(10) or ["late"], timeout=0.2) is None
    assert time.monotonic() - start < 1.5
    release.set()


def test_candidates_filter_sort_and_dedupe():
    got = cs._candidates([("slow", ""), ("fast", "x"), ("fast", "y"), ("standard", "d")], "s")
    assert [(c.value, c.help) for c in got] == [("slow", None), ("standard", "d")]


def test_storageclass_description_marks_the_default():
    sc = {"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "kubernetes.io/no-provisioner"}
    assert cs.storageclass_description(sc) == "kubernetes.io/no-provisioner (default)"
    assert cs.storageclass_description({"metadata": {}, "provisioner": "csi.x"}) == "csi.x"


def test_plan_candidates_from_migplans_and_datavolumes():
    plans = [{"kind": "MigPlan", "metadata": {"name": "p1", "labels": {cs.MIGRATION_LABEL: "vm-storage-a"}}},
             {"kind": "MigPlan", "metadata": {"name": "theirs"}}]
    dvs = [{"kind": "DataVolume", "metadata": {"name": "d", "labels": {cs.MIGRATION_LABEL: "vm-storage-b",
                                                                        cs.ENGINE_LABEL: "kubevirt"}}}]
    assert cs.plan_candidates(plans, "mtc") + cs.plan_candidates(dvs, "kubevirt") == [
        ("vm-storage-a", "engine mtc"), ("theirs", "engine mtc"), ("vm-storage-b", "engine kubevirt")]


def test_plan_completion_asks_every_registered_engine(monkeypatch):
    """completion_sources names no engine: each engine's completion_objects() feeds the candidates."""
    from tests.cli.fake_api import FakeKube
    from tests.cli.worlds import WITH_MTC, cond, mtc_finished_world

    kube = FakeKube(mtc_finished_world([cond("Succeeded")]), namespace="openshift-migration", apis=WITH_MTC)
    monkeypatch.setattr(cs, "_kube", lambda ctx: kube)
    got = [(c.value, c.help) for c in cs.complete_plans(_ctx(), None, "vm-")]
    assert got == [("vm-storage-ns", "engine mtc")]


def test_connection_flags_typed_so_far_reach_the_source():
    parent = _ctx(kubeconfig="/k", namespace=None)
    child = click.Context(click.Command("y"), parent=parent)
    child.params = {"namespace": "ns1", "as_groups": ("g",)}
    conn = cs._conn_from_ctx(child)
    assert (conn.kubeconfig, conn.namespace, conn.as_groups) == ("/k", "ns1", ("g",))


def _shell_env():
    return dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
                KUBECONFIG=os.devnull)


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_script_completes_words_flags_and_files():
    script = (comp.SCRIPTS["fish"] + '\ncomplete -C "kubectl-vm_storage ver"; echo ---\n'
              'complete -C "kubectl-vm_storage version --output=j"; echo ---\n'
              f'complete -C "kubectl-vm_storage version --kubeconfig {REPO}/setup.c"\n')
    res = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, env=_shell_env(),
                         timeout=60)
    assert res.returncode == 0, res.stderr
    first, second, third = res.stdout.split("---\n")
    assert first == "version\tPrint the client and server versions.\n"
    assert second == "--output=json\n"
    assert third == f"{REPO}/setup.cfg\n"


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_script_feeds_describe_and_falls_back_to_files():
    harness = comp.SCRIPTS["zsh"] + r'''
_describe() { print -l -- "${cands[@]}" }
compset() { : }
_files() { print FILES }
t() { words=("$@"); CURRENT=$#; _kubectl_vm_storage; print -- "---" }
t kubectl-vm_storage ver
t kubectl-vm_storage version -o ""
t kubectl-vm_storage version --kubeconfig ""
'''
    res = subprocess.run(["zsh", "-f", "-c", "compdef() { : }\n" + harness], capture_output=True, text=True,
                         env=_shell_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("---\n")[:3] == ["version:Print the client and server versions.\n",
                                              "text\njson\nyaml\n", "FILES\n"]
