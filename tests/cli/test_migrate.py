"""`migrate` in-process: flag interactions, exit codes and output formats (issue 13's four bugs among them)."""
import json

import pytest
import yaml

from kubectl_vmmig import errors
from tests.cli.worlds import WITH_MTC, cond, mtc_finished_world, stopped_vm_world

M = ("migrate", "a", "--to", "fast", "-n", "ns1")


def test_client_dry_run_exits_3_when_its_checks_list_a_blocking_error(api, run):
    """Issue 13: the preview listed `error kubevirt` yet the command exited 0 (cli.main dropped the code)."""
    kube = api(stopped_vm_world(kubevirt=False))
    res = run(*M, "--dry-run=client", "-o", "json")
    assert res.code == errors.PREFLIGHT, res.err
    preview = json.loads(res.out)
    assert [c["name"] for c in preview["checks"] if c["severity"] == "error"] == ["kubevirt"]
    assert res.err.startswith("error: preflight refused: KubeVirt is not installed") and res.err.count("\n") == 1
    assert kube.writes == []


def test_client_and_server_dry_run_and_the_real_run_refuse_alike(api, run):
    codes = {}
    for dry in ("client", "server", "none"):
        kube = api(stopped_vm_world(kubevirt=False))
        codes[dry] = run(*M, f"--dry-run={dry}", "--yes").code
        assert kube.writes == []
    assert codes == {"client": errors.PREFLIGHT, "server": errors.PREFLIGHT, "none": errors.PREFLIGHT}


def test_client_dry_run_exits_0_when_nothing_blocks(api, run):
    api(stopped_vm_world())
    res = run(*M, "--dry-run=client")
    assert res.code == 0, res.err
    assert "Would create:" in res.out and "DataVolume ns1/a-disk-fast" in res.out


def test_local_client_dry_run_exits_3_on_a_blocking_check(tmp_path, run):
    path = tmp_path / "objs.yaml"
    path.write_text(yaml.safe_dump_all(stopped_vm_world(kubevirt=False)))
    res = run(*M, "--local", "-f", str(path), "--dry-run=client", "-o", "yaml")
    assert res.code == errors.PREFLIGHT
    assert yaml.safe_load(res.out)["checks"]


@pytest.mark.parametrize("flags, named", [
    (("--stage",), "--stage"),
    (("--hook", "h:preBackup"), "--hook"),
    (("--stage", "--hook", "h:preBackup", "--mode", "offline"), "--stage"),
])
def test_mtc_only_flags_refused_when_auto_resolves_to_kubevirt(api, run, flags, named):
    """Issue 13: with --engine auto resolving to kubevirt (no MTC), --stage/--hook were silently ignored."""
    kube = api(stopped_vm_world())
    res = run(*M, *flags, "--dry-run=client")
    assert res.code == errors.BAD_INPUT, res.out
    assert res.err == f"error: {named} is not supported by the kubevirt engine; use --engine mtc, or drop {named}\n"
    assert res.out == "" and kube.writes == []


def test_typed_engine_refuses_unsupported_flags_before_connecting(run, monkeypatch):
    from kubectl_vmmig.kube import Kube

    monkeypatch.setattr(Kube, "connect", classmethod(lambda cls, *a, **k: pytest.fail("connected")))
    res = run(*M, "--engine", "kubevirt", "--stage")
    assert res.code == errors.BAD_INPUT and "--stage is not supported by the kubevirt engine" in res.err
    res = run(*M, "--engine", "mtc", "--stop")
    assert res.code == errors.BAD_INPUT and "--stop is not supported by the mtc engine" in res.err


def test_check_judges_the_resolved_engine_too(api, run):
    api(stopped_vm_world())
    res = run("check", "a", "--to", "fast", "-n", "ns1", "--stage")
    assert res.code == errors.BAD_INPUT and "--stage is not supported by the kubevirt engine" in res.err


@pytest.mark.parametrize("output, parse", [("yaml", yaml.safe_load), ("json", json.loads)])
def test_detach_prints_the_reference_in_the_asked_format(api, run, output, parse):
    """Issue 13: `-o yaml --detach` printed JSON. (A re-run re-attaches to the finished MTC migration.)"""
    api(mtc_finished_world([cond("Succeeded")]), namespace="ns", apis=WITH_MTC)
    res = run("migrate", "vm-0", "--to", "fast", "-n", "ns", "--detach", "-o", output)
    assert res.code == 0, res.err
    if output == "yaml":
        assert not res.out.lstrip().startswith("{")
    ref = parse(res.out)
    assert ref["migration"] == "vm-storage-cutover" and ref["plan"] == "vm-storage-ns"
    assert "already migrated: re-attaching to MigMigration openshift-migration/vm-storage-cutover" in res.err


def test_wait_and_status_agree_on_succeeded_with_warnings(api, run):
    """Issue 13: SucceededWithWarnings without a failed DVM: status said Succeeded, migrate --wait Failed."""
    world = mtc_finished_world([cond("SucceededWithWarnings"), cond("UnhealthyNamespaces", "Warn", "unhealthy")])
    api(world, namespace="ns", apis=WITH_MTC)
    status = run("status", "-n", "ns", "-o", "json")
    assert status.code == 0, status.err
    [m] = json.loads(status.out)["migrations"]
    watched = run("status", "-n", "ns", "-w", "-o", "json")
    waited = run("migrate", "vm-0", "--to", "fast", "-n", "ns", "--wait", "-o", "json")
    assert (m["engine"], m["result"]) == ("mtc", "Failed")
    assert watched.code == waited.code == errors.MIGRATION_FAILED, (watched.err, waited.err)


def test_wait_reports_success_the_conditions_back(api, run):
    api(mtc_finished_world([cond("Succeeded")]), namespace="ns", apis=WITH_MTC)
    waited = run("migrate", "vm-0", "--to", "fast", "-n", "ns", "--wait", "-o", "json")
    assert waited.code == 0, waited.err
    assert json.loads(run("status", "-n", "ns", "-o", "json").out)["migrations"][0]["result"] == "Succeeded"


@pytest.mark.parametrize("args, needle", [
    (("migrate", "a", "-n", "ns1"), "missing --to"),
    (("migrate", "--to", "fast", "-n", "ns1"), "no VM chosen"),
    (("migrate", "a", "--all", "--to", "fast"), "mutually exclusive"),
    (("migrate", "a", "--to", "fast", "--local"), "--local only previews"),
    (("migrate", "a", "--to", "fast", "--hook", "nophase"), "--hook"),
    (("migrate", "a", "--to", "fast", "--engine", "nope"), "--engine"),
    (("migrate", "a", "--to", "fast", "-o", "xml"), "-o"),
])
def test_bad_flags_are_one_line_and_exit_2(run, args, needle):
    res = run(*args)
    assert res.code == errors.BAD_INPUT and res.out == ""
    assert res.err.count("\n") == 1 and res.err.startswith("error: ") and needle in res.err
