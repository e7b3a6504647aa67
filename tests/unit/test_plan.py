"""plan.py: inventory + choices -> per-disk moves."""
import pytest

from kubectl_vmmig.inventory import build_inventory
from kubectl_vmmig.plan import build_plan, claim_mapping, moves_by_vm, resolve_mode

from tests.unit.vmshapes import pvc, sc, vm, vmi

NAMING = lambda d: d["claim"] + "-mig-abcd"  # noqa: E731


def _inv():
    vms = [vm("run", dvs=[("root", "run-root")], pvcs=[("data", "run-data")], templates=[("run-root", "standard", "10Gi")]),
           vm("stop", pvcs=[("data", "stop-data")], run_strategy="Halted"),
           vm("done", pvcs=[("data", "done-data")])]
    pvcs = [pvc("run-root", capacity="11Gi"), pvc("run-data", sc_name="slow"), pvc("stop-data"),
            pvc("done-data", sc_name="fast")]
    return build_inventory(vms, [vmi("run")], pvcs, [], [sc("standard", True), sc("fast"), sc("slow")])


def test_auto_with_live_capability():
    p = build_plan(_inv(), ["ns1/run", "ns1/stop", "ns1/done"], "fast", "auto", {"liveMigration": True}, naming=NAMING)
    assert p["liveMigrate"] is True and p["mode"] == "live" and p["namespace"] == "ns1"
    got = [(m["vm"], m["volume"], m["sourcePVC"], m["targetPVC"], m["sourceSC"], m["mode"]) for m in p["moves"]]
    assert got == [("run", "data", "run-data", "run-data-mig-abcd", "slow", "live"),
                   ("run", "root", "run-root", "run-root-mig-abcd", "standard", "live"),
                   ("stop", "data", "stop-data", "stop-data-mig-abcd", "standard", "offline")]
    assert p["moves"][1]["kind"] == "dataVolume" and p["moves"][1]["dataVolumeTemplateIndex"] == 0
    assert p["moves"][1]["size"] == "11Gi" and p["moves"][0]["dataVolumeTemplateIndex"] is None
    assert p["skipped"] == [{"vm": "done", "volume": "data", "claim": "done-data",
                             "reason": "already on StorageClass fast"}]
    assert not [f for f in p["findings"] if f["severity"] != "ok"]


def test_auto_falls_back_to_offline_with_warning():
    p = build_plan(_inv(), ["ns1/run"], "fast", "auto",
                   {"liveMigration": False, "liveMigrationReason": "KubeVirtStorageLiveMigrationNotEnabled"},
                   naming=NAMING)
    assert p["liveMigrate"] is False and all(m["mode"] == "offline" for m in p["moves"])
    (w,) = [f for f in p["findings"] if f["severity"] == "warning"]
    assert "offline" in w["message"] and "KubeVirtStorageLiveMigrationNotEnabled" in w["message"]


def test_live_refused_when_cluster_cannot():
    p = build_plan(_inv(), ["ns1/run"], "fast", "live", {"liveMigration": False}, naming=NAMING)
    errs = [f for f in p["findings"] if f["severity"] == "error"]
    assert errs and "--mode offline" in errs[0]["message"]


def test_offline_mode_all_offline():
    p = build_plan(_inv(), ["ns1/run"], "fast", "offline", {"liveMigration": True}, naming=NAMING)
    assert p["liveMigrate"] is False and {m["mode"] for m in p["moves"]} == {"offline"}


def test_overrides_and_volume_mode_default():
    p = build_plan(_inv(), ["ns1/stop"], "fast", "offline", access_mode="ReadWriteMany", naming=NAMING)
    (m,) = p["moves"]
    assert m["targetAccessMode"] == "ReadWriteMany" and m["targetVolumeMode"] == "Filesystem"
    p = build_plan(_inv(), ["ns1/stop"], "fast", "offline", volume_mode="Block", naming=NAMING)
    assert p["moves"][0]["targetVolumeMode"] == "Block"


def test_unknown_vm_and_several_namespaces_are_errors():
    inv = _inv()
    p = build_plan(inv, ["ns1/nope"], "fast", naming=NAMING)
    assert any(f["name"] == "vm-exists" and f["severity"] == "error" for f in p["findings"])
    p = build_plan(inv, ["ns1/run", "ns2/x"], "fast", naming=NAMING)
    assert p["namespace"] is None
    assert any(f["name"] == "namespace" and f["severity"] == "error" for f in p["findings"])


def test_shared_claim_moved_once():
    inv = build_inventory([vm("a", pvcs=[("d", "shared")]), vm("b", pvcs=[("d", "shared")])], [], [pvc("shared")])
    p = build_plan(inv, ["ns1/a", "ns1/b"], "fast", "offline", naming=NAMING)
    assert len(p["moves"]) == 1
    assert any(f["name"] == "shared-claim" for f in p["findings"])


def test_helpers_and_bad_mode():
    p = build_plan(_inv(), ["ns1/run", "ns1/stop"], "fast", naming=NAMING)
    assert list(moves_by_vm(p)) == ["run", "stop"]
    assert claim_mapping(p, "stop") == {"stop-data": "stop-data-mig-abcd"}
    assert len(claim_mapping(p)) == 3
    with pytest.raises(ValueError):
        build_plan(_inv(), [], "fast", "fastest")


def test_resolve_mode_ok_findings():
    live, f = resolve_mode("auto", None)
    assert live is True and f[0]["severity"] == "ok"
