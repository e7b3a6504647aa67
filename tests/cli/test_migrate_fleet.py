"""`migrate -A -l SELECTOR` / `-A --all` and the throttle flags --parallel / --max-per-node (issue 16)."""
import json

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig.commands.migrate import MigrateOptions
from kubectl_vmmig.kubevirt_capabilities import migration_limits
from tests.cli.worlds import kubevirt_cr
from tests.unit.vmshapes import pvc, sc, vm


def fleet(labels=(("ns1", "a", "db"), ("ns2", "b", "db"), ("ns3", "c", "web")), cr=None):
    """Stopped VMs, one PVC disk each on ``standard``, labelled app=<label>, in their namespaces."""
    objs = [sc("standard"), sc("fast"), cr or kubevirt_cr()]
    for ns, name, app in labels:
        objs += [vm(name, ns=ns, pvcs=[("disk", f"{name}-disk")], run_strategy="Halted", labels={"app": app}),
                 pvc(f"{name}-disk", ns=ns)]
    return objs


def _created(kube, kind):
    return sorted((ns, name) for verb, k, ns, name in kube.writes if verb == "create" and k == kind)


@pytest.mark.parametrize("flag", ["--parallel", "--max-per-node"])
@pytest.mark.parametrize("value, why", [("0", "at least 1"), ("-2", "at least 1"), ("abc", "not a number"),
                                        ("1.5", "not a number"), ("", "not a number")])
def test_bad_throttle_values_exit_2_with_one_line_naming_the_fix(api, run, flag, value, why):
    kube = api(fleet())
    res = run("migrate", "a", "--to", "fast", "-n", "ns1", f"{flag}={value}", "--yes")
    assert res.code == errors.BAD_INPUT and res.out == ""
    assert res.err.count("\n") == 1 and res.err.startswith(f"error: invalid {flag} ")
    assert why in res.err and f"e.g. {flag} 3" in res.err
    assert kube.writes == []


@pytest.mark.parametrize("args", [("-A",), ("-A", "a"), ("--all-namespaces", "a", "b")])
def test_all_namespaces_without_selector_or_all_exits_2(api, run, args):
    kube = api(fleet())
    res = run("migrate", *args, "--to", "fast", "--yes")
    assert res.code == errors.BAD_INPUT and res.out == ""
    assert res.err.count("\n") == 1 and "add -l SELECTOR or --all" in res.err
    assert kube.writes == []


def test_all_namespaces_with_local_files_exits_2(run, tmp_path):
    res = run("migrate", "-A", "--all", "--to", "fast", "--local", "-f", str(tmp_path / "x.yaml"),
              "--dry-run=client")
    assert res.code == errors.BAD_INPUT and "-A is not read from -f files" in res.err


def test_selector_across_namespaces_previews_only_the_labelled_vms(api, run):
    kube = api(fleet())
    res = run("migrate", "-A", "-l", "app=db", "--to", "fast", "--dry-run=client", "-o", "json")
    assert res.code == 0, res.err
    previews = [json.loads(doc) for doc in res.out.replace("}\n{", "}\n\x00{").split("\x00")]
    created = sorted((o["metadata"]["namespace"], o["metadata"]["name"])
                     for p in previews for o in p["objects"] if o["kind"] == "DataVolume")
    assert created == [("ns1", "a-disk-fast"), ("ns2", "b-disk-fast")]
    assert "fleet: 2 VM(s) in 2 namespace(s)" in res.err
    assert kube.writes == []


def test_all_across_namespaces_starts_every_namespace(api, run):
    kube = api(fleet())
    res = run("migrate", "-A", "--all", "--to", "fast", "--detach", "--yes")
    assert res.code == 0, res.err
    assert [ns for ns, _ in _created(kube, "DataVolume")] == ["ns1", "ns2", "ns3"]
    assert res.out.count("started; follow it with") == 3


def test_selector_matching_nothing_anywhere_is_not_found(api, run):
    kube = api(fleet())
    res = run("migrate", "-A", "-l", "app=none", "--to", "fast", "--yes")
    assert res.code == errors.BAD_INPUT and "no VirtualMachine matching -l app=none in any namespace" in res.err
    assert kube.writes == []


def test_a_refusal_in_one_namespace_writes_nothing_in_any(api, run):
    """ns2's destination name is taken by someone else's PVC: the preflight refuses, before ns1 is touched."""
    kube = api(fleet() + [pvc("b-disk-fast", ns="ns2", sc_name="fast")])
    res = run("migrate", "-A", "-l", "app=db", "--to", "fast", "--detach", "--yes")
    assert res.code == errors.PREFLIGHT, res.err
    assert kube.writes == []


def test_namespace_already_moved_is_skipped_not_fatal(api, run):
    objs = fleet()
    objs = [o for o in objs if not (o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "c-disk")]
    objs.append(pvc("c-disk", ns="ns3", sc_name="fast"))
    kube = api(objs)
    res = run("migrate", "-A", "--all", "--to", "fast", "--detach", "--yes")
    assert res.code == 0, res.err
    assert "namespace ns3: skipped - every disk of the chosen VMs is already on StorageClass fast" in res.err
    assert [ns for ns, _ in _created(kube, "DataVolume")] == ["ns1", "ns2"]


@pytest.mark.parametrize("migrations, expected", [
    ({}, (5, 2)),
    ({"parallelMigrationsPerCluster": 7, "parallelOutboundMigrationsPerNode": 3}, (7, 3)),
    ({"parallelMigrationsPerCluster": 0}, (5, 2)),
])
def test_throttle_defaults_come_from_the_kubevirt_cr(migrations, expected):
    cr = kubevirt_cr()
    cr["spec"]["configuration"]["migrations"] = migrations
    assert migration_limits(cr) == expected
    assert migration_limits(None) == (5, 2)
    opts = MigrateOptions(to="fast", all_=True).validate().throttle_from(cr)
    assert (opts.parallel_n, opts.max_per_node_n) == expected


def test_typed_throttle_flags_win_over_the_cr():
    cr = kubevirt_cr()
    cr["spec"]["configuration"]["migrations"] = {"parallelMigrationsPerCluster": 7}
    opts = MigrateOptions(to="fast", all_=True, parallel="2", max_per_node="1").validate().throttle_from(cr)
    assert (opts.parallel_n, opts.max_per_node_n) == (2, 1)


def test_the_engine_is_given_the_crs_limits(api, run, monkeypatch):
    from kubectl_vmmig.engines.kubevirt import engine as E

    seen = []

    def apply_fleet(self, plans, dry_run_server=False, show=None):
        seen.append(([p["namespace"] for p in plans], self.options["parallel"], self.options["max_per_node"]))
        return [{"migration": f"m{i}", "plan": f"m{i}", "namespace": p["namespace"]} for i, p in enumerate(plans)]

    monkeypatch.setattr(E.KubevirtEngine, "apply_fleet", apply_fleet)
    cr = kubevirt_cr()
    cr["spec"]["configuration"]["migrations"] = {"parallelMigrationsPerCluster": 4}
    api(fleet(cr=cr))
    res = run("migrate", "-A", "--all", "--to", "fast", "--detach", "--yes", "--engine", "kubevirt")
    assert res.code == 0, res.err
    # ONE call for the whole fleet (one window over every namespace), with the CR's limits
    assert seen == [(["ns1", "ns2", "ns3"], 4, 2)]


def test_an_engine_whose_apply_fleet_answers_by_namespace_is_followed_per_namespace(api, run, monkeypatch):
    """The generic dispatch (engines/base.py apply_fleet): references by namespace, each one then handled as after
    ``apply`` (here --detach: what started and how to follow it, once per namespace)."""
    from kubectl_vmmig.engines.kubevirt import engine as E

    def apply_fleet(self, plans, dry_run_server=False, show=None):
        return {p["namespace"]: {"migration": f"m-{p['namespace']}", "plan": f"m-{p['namespace']}",
                                 "namespace": p["namespace"], "result": "Running"} for p in plans}

    monkeypatch.setattr(E.KubevirtEngine, "apply_fleet", apply_fleet)
    api(fleet())
    res = run("migrate", "-A", "--all", "--to", "fast", "--detach", "--yes", "--engine", "kubevirt")
    assert res.code == 0, res.err
    assert [ln.split()[1] for ln in res.out.splitlines() if "started; follow it with" in ln] == \
        ["m-ns1", "m-ns2", "m-ns3"]
