"""status, check, cancel, rollback, version in-process: exit codes, output formats and engine choice."""
import json

import pytest
import yaml

from kubectl_vmmig import errors
from tests.cli.worlds import KUBEVIRT_ONLY, WITH_MTC, cond, mtc_finished_world, stopped_vm_world


@pytest.fixture
def mtc_world(api):
    return api(mtc_finished_world([cond("Succeeded")]), namespace="ns", apis=WITH_MTC)


@pytest.mark.parametrize("output, parse", [("json", json.loads), ("yaml", yaml.safe_load)])
def test_status_formats(mtc_world, run, output, parse):
    res = run("status", "-n", "ns", "-o", output)
    assert res.code == 0, res.err
    [m] = parse(res.out)["migrations"]
    assert (m["engine"], m["plan"], m["result"]) == ("mtc", "vm-storage-ns", "Succeeded")
    assert [d["targetPVC"] for d in m["disks"]] == ["pvc-0-mig-x7bq"]


def test_status_table_and_unknown_name(mtc_world, run):
    res = run("status", "-n", "ns")
    assert res.code == 0 and "vm-storage-ns" in res.out
    res = run("status", "nothing-here", "-n", "ns")
    assert res.code == errors.BAD_INPUT and "no migration of plan or VM 'nothing-here'" in res.err


def test_status_flag_conflicts(run):
    assert run("status", "-n", "ns", "-A").code == errors.BAD_INPUT
    res = run("status", "-w", "-f", "x.yaml")
    assert res.code == errors.BAD_INPUT


def test_status_from_files_reads_every_engine(tmp_path, run):
    path = tmp_path / "dump.yaml"
    path.write_text(yaml.safe_dump_all(mtc_finished_world([cond("Succeeded")])))
    res = run("status", "-f", str(path), "-A", "-o", "json")
    assert res.code == 0, res.err
    assert [m["engine"] for m in json.loads(res.out)["migrations"]] == ["mtc"]


def test_status_without_mtc_rights_warns_and_still_answers(api, run):
    kube = api(stopped_vm_world(), apis=WITH_MTC)
    original = kube.items

    def items(res, *a, **k):
        if res.group == "migration.openshift.io":
            raise errors.Forbidden("migplans.migration.openshift.io is forbidden", status=403)
        return original(res, *a, **k)

    kube.items = items
    res = run("status", "-n", "ns1", "-o", "json")
    assert res.code == 0 and json.loads(res.out) == {"migrations": []}
    assert res.err.count("warning: cannot read MTC migrations") == 1


def test_check_says_which_engine_auto_picked_and_why(api, run):
    api(stopped_vm_world(), namespace="ns1")
    res = run("check", "a", "--to", "fast", "-n", "ns1", "-o", "json")
    first = json.loads(res.out)["checks"][0]
    assert first["name"] == "engine" and first["message"].startswith("--engine auto picked kubevirt (")
    assert "migration-controller declined: the migrations.kubevirt.io API is not served" in first["message"]
    assert "mtc declined: " in first["message"]
    typed = run("check", "a", "--to", "fast", "-n", "ns1", "--engine", "kubevirt", "-o", "json")
    assert "engine" not in [c["name"] for c in json.loads(typed.out)["checks"]]


def test_check_formats_and_exit_codes(api, run):
    api(stopped_vm_world())
    ok = run("check", "a", "--to", "fast", "-n", "ns1", "-o", "json")
    assert ok.code == 0, ok.err
    assert {c["severity"] for c in json.loads(ok.out)["checks"]} <= {"ok", "warning"}
    api(stopped_vm_world(kubevirt=False))
    bad = run("check", "a", "--to", "fast", "-n", "ns1", "-o", "yaml")
    assert bad.code == errors.PREFLIGHT and "1 blocking problem(s)" in bad.err
    assert any(c["severity"] == "error" for c in yaml.safe_load(bad.out)["checks"])


def test_cancel_without_mtc(api, run):
    api(stopped_vm_world(), apis=KUBEVIRT_ONLY)
    res = run("cancel", "vm-storage-x", "-n", "ns1", "--engine", "mtc")
    assert res.code == errors.PREFLIGHT and "MTC is not installed" in res.err
    res = run("cancel", "nothing", "-n", "ns1")  # auto: no engine owns it, kubevirt has no such record
    assert res.code == errors.BAD_INPUT and "no kubevirt-engine migration 'nothing'" in res.err


def test_cancel_auto_finds_the_mtc_plan_and_says_nothing_runs(mtc_world, run):
    res = run("cancel", "vm-storage-ns", "-n", "ns")
    assert res.code == errors.BAD_INPUT and "has no running migration to cancel" in res.err


def test_rollback(mtc_world, run):
    res = run("rollback", "vm-storage-ns", "--yes", "--detach")
    assert res.code == 0, res.err
    assert res.out.startswith("migmigration.migration.openshift.io/") and res.out.rstrip().endswith("created")
    assert [w[:2] for w in mtc_world.writes] == [("create", "MigMigration")]
    again = run("rollback", "vm-storage-ns", "--yes", "--detach")  # the rollback itself is still running
    assert again.code == errors.BAD_INPUT and "has a running migration" in again.err


def test_rollback_needs_confirmation_or_mtc(api, run):
    api(mtc_finished_world([cond("Succeeded")]), namespace="ns", apis=WITH_MTC)
    res = run("rollback", "vm-storage-ns")
    assert res.code == errors.PREFLIGHT and "needs confirmation" in res.err
    api(stopped_vm_world(), apis=KUBEVIRT_ONLY)
    res = run("rollback", "vm-storage-x", "--yes")
    assert res.code == errors.PREFLIGHT and "MTC is not installed; rollback is an MTC feature" in res.err


def test_version(api, run):
    res = run("version", "--client", "-o", "json")
    assert res.code == 0 and "serverVersion" not in json.loads(res.out)
    api()
    res = run("version", "-o", "yaml")
    assert res.code == 0 and yaml.safe_load(res.out)["serverVersion"]["gitVersion"] == "v1.37.1-fake"


def test_status_warns_once_when_migration_controller_objects_are_forbidden(api, run):
    """A user bound to another engine's roles: status still answers (exit 0) and says what it could not read."""
    kube = api(stopped_vm_world(), namespace="ns1")
    original = kube.items

    def items(res, *a, **k):
        if res.group in ("migration.openshift.io", "migrations.kubevirt.io"):
            raise errors.Forbidden(f"{res.plural}.{res.group} is forbidden", status=403)
        return original(res, *a, **k)

    kube.items = items
    res = run("status", "-n", "ns1", "-o", "json")
    assert res.code == 0 and json.loads(res.out) == {"migrations": []}
    assert res.err.count("warning: cannot read migration-controller migrations") == 1


def test_status_of_a_vm_nothing_moves_says_so_and_exits_0(api, run, tmp_path):
    api(stopped_vm_world(), apis=KUBEVIRT_ONLY)
    res = run("status", "a", "-n", "ns1")
    assert res.code == 0 and res.err.strip() == "VM a in namespace ns1: no storage migration" and res.out == ""
    res = run("status", "a", "-n", "ns1", "-o", "json")
    assert res.code == 0 and json.loads(res.out) == {"migrations": []} and "no storage migration" in res.err
    res = run("status", "a", "-A")
    assert res.code == 0 and "VM a in namespace ns1: no storage migration" in res.err
    missing = run("status", "no-such-vm", "-n", "ns1")
    assert missing.code == errors.BAD_INPUT and "no migration of plan or VM 'no-such-vm'" in missing.err
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump_all(stopped_vm_world()))
    res = run("status", "a", "-n", "ns1", "-f", str(dump))
    assert res.code == 0 and "VM a in namespace ns1: no storage migration" in res.err
    assert run("status", "b", "-n", "ns1", "-f", str(dump)).code == errors.BAD_INPUT


def test_status_without_rights_on_kubevirt_migrations_warns_and_still_answers(api, run):
    kube = api(stopped_vm_world(), apis=KUBEVIRT_ONLY)
    original = kube.items

    def items(res, *a, **k):
        if res.plural == "virtualmachineinstancemigrations":  # e.g. a user holding only the MTC engine's role
            raise errors.Forbidden("virtualmachineinstancemigrations.kubevirt.io is forbidden", status=403)
        return original(res, *a, **k)

    kube.items = items
    res = run("status", "-n", "ns1", "-o", "json")
    assert res.code == 0 and json.loads(res.out) == {"migrations": []}
    assert res.err.count("warning: cannot read KubeVirt volume migrations") == 1


def test_status_with_no_right_to_read_any_engines_objects_is_forbidden_exit_7(api, run):
    """As `kubectl get` answers a user who may read nothing: a refusal (exit 7), not an empty list and exit 0."""
    kube = api(stopped_vm_world(), namespace="ns1")

    def items(res, *a, **k):
        raise errors.Forbidden(f"{res.plural}.{res.group} is forbidden: User \"alice\" cannot list", status=403)

    kube.items = items
    res = run("status", "-n", "ns1", "-o", "json")
    assert res.code == errors.FORBIDDEN and res.out == "" and "forbidden" in res.err
