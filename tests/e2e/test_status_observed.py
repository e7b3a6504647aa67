"""issue 14 end to end: `status` tells volume migrations the plugin did not start, and never writes. The real
kubectl runs the plugin against the real API server; the KubeVirt/CDI stand-ins (tests/sim) play the controllers."""
import json
import re

import pytest
import yaml

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim.common import set_faults

from .test_kubevirt_engine import claims, kv, running_vm, wait_for  # noqa: F401

pytestmark = pytest.mark.cluster
REQUEST = re.compile(r"vm-storage\] (GET|POST|PUT|PATCH|DELETE) ")


def methods(stderr):
    """The HTTP methods of every request the plugin made (its -v=6 request log, one line per request)."""
    return REQUEST.findall(stderr)


def hand_patch(kubectl, kv, ns, vm, volume, destination):  # noqa: F811 (kv is the fixture's client)
    """The user guide's procedure (docs/storage/volume_migration.md): a blank destination DataVolume, then a patch
    that names it and sets updateVolumesStrategy Migration - all through kubectl, no plugin involved."""
    dv = F.make_blank_dv(destination, size="2Gi", storage_class="fast")
    made = kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(dv))
    assert made.returncode == 0, made.stderr
    wait_for(lambda: (kv.get(R.DATAVOLUME, destination, ns).get("status") or {}).get("phase") == "Succeeded", 60,
             "destination DataVolume Succeeded")
    vols = kv.get(R.VM, vm, ns)["spec"]["template"]["spec"]["volumes"]
    index = [v["name"] for v in vols].index(volume)
    patch = [{"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"},
             {"op": "replace", "path": f"/spec/template/spec/volumes/{index}/persistentVolumeClaim/claimName",
              "value": destination}]
    done = kubectl("patch", "vm", vm, "-n", ns, "--type=json", "-p", json.dumps(patch))
    assert done.returncode == 0, done.stderr


def test_a_vm_patched_by_hand_shows_up_in_status_w_and_follows_to_succeeded(kv, kubectl, namespace):
    ns = namespace
    running_vm(kv, ns, "hm", [F.pvc_disk("data", size="2Gi"), F.cloudinit_disk()])
    before = kubectl("vm-storage", "status", "hm", "-n", ns)
    assert before.returncode == 0 and "VM hm in namespace " + ns + ": no storage migration" in before.stderr
    set_faults(kv, ns, liveMigrationFail="2")  # two failed attempts first: a window to watch it run
    hand_patch(kubectl, kv, ns, "hm", "data", "hm-data-fast")

    watch = kubectl("vm-storage", "status", "hm", "-n", ns, "-w", "--interval", "0.5", "-v=6", timeout=300)
    assert watch.returncode == 0, watch.stdout + watch.stderr
    # non-TTY: one line per change (render.follow), then the final view and its summary
    moving = re.findall(r"hm/data \(live\): (\w+) .*attempt (\d)", watch.stdout)
    assert [p for p, _ in moving if p != "Succeeded"], watch.stdout  # seen while KubeVirt was still at it
    assert {"2", "3"} <= {a for _, a in moving}, watch.stdout  # followed through KubeVirt's retries
    assert re.search(r"hm kubevirt cutover: Succeeded \[Succeeded\]", watch.stdout), watch.stdout
    assert "Succeeded: 1 of 1 disk(s) moved" in watch.stdout, watch.stdout
    seen = methods(watch.stderr)
    assert seen and set(seen) == {"GET"}, seen  # status -w only reads

    once = kubectl("vm-storage", "status", "hm", "-n", ns, "-o", "json", "-v=6")
    assert once.returncode == 0, once.stderr
    [m] = json.loads(once.stdout)["migrations"]
    assert (m["plan"], m["engine"], m["startedBy"], m["result"]) == ("hm", "kubevirt", "manual", "Succeeded")
    [d] = m["disks"]
    assert (d["vm"], d["volume"], d["sourcePVC"], d["targetPVC"], d["mode"], d["phase"]) == \
        ("hm", "data", "hm-data", "hm-data-fast", "live", "Succeeded")
    assert d["targetStorageClass"] == "fast" and d["attempt"] == 3
    assert set(methods(once.stderr)) == {"GET"}
    every = kubectl("vm-storage", "status", "-A", "-o", "json", "-v=6")
    assert every.returncode == 0 and set(methods(every.stderr)) == {"GET"}
    assert ("hm", ns) in {(x["plan"], x["namespace"]) for x in json.loads(every.stdout)["migrations"]}
    assert claims(kv.get(R.VM, "hm", ns)) == {"data": "hm-data-fast"}


def test_a_refused_hand_patch_is_failed_with_the_restore_patch_and_status_writes_nothing(kv, kubectl, namespace):
    """The RWO root disk is not moved: KubeVirt refuses the update (volume-migration.go
    ValidateVolumesUpdateMigration -> RestartRequired); status says so and gives the kubectl patch that restores."""
    ns = namespace
    running_vm(kv, ns, "rf", [F.pvc_disk("rootdisk", size="2Gi"), F.pvc_disk("data", size="2Gi")])
    hand_patch(kubectl, kv, ns, "rf", "data", "rf-data-fast")

    def refused():
        st = kubectl("vm-storage", "status", "rf", "-n", ns, "-o", "json")
        ms = json.loads(st.stdout)["migrations"] if st.returncode == 0 else []
        return ms[0] if ms and ms[0]["result"] == "Failed" else None

    m = wait_for(refused, 90, "status reports the refused update")
    [d] = m["disks"]
    assert m["startedBy"] == "manual" and (d["sourcePVC"], d["targetPVC"]) == ("rf-data", "rf-data-fast")
    assert "WITHOUT copying data" in d["message"] and f"kubectl patch vm rf -n {ns} --type=json" in d["message"]
    rv = kv.get(R.VM, "rf", ns)["metadata"]["resourceVersion"]
    table = kubectl("vm-storage", "status", "rf", "-n", ns, "-v=6")
    assert table.returncode == 0 and set(methods(table.stderr)) == {"GET"}
    assert kv.get(R.VM, "rf", ns)["metadata"]["resourceVersion"] == rv


def test_manual_recovery_of_a_hand_patched_vm_live_and_from_a_must_gather(kv, kubectl, namespace, tmp_path):
    """Stopped while KubeVirt keeps failing the copy: ManualRecoveryRequired (vm.go syncVolumeMigration). status
    says to restore the sources, with the patch; a must-gather-shaped dump of the same objects says the same."""
    ns = namespace
    running_vm(kv, ns, "mr", [F.pvc_disk("data", size="2Gi"), F.cloudinit_disk()])
    set_faults(kv, ns, liveMigrationFail="true")
    hand_patch(kubectl, kv, ns, "mr", "data", "mr-data-fast")
    wait_for(lambda: any((m.get("status") or {}).get("phase") == "Failed" for m in kv.items(R.VMIM, ns)), 90,
             "a failed attempt")
    stop = kubectl("patch", "vm", "mr", "-n", ns, "--type=merge", "-p", '{"spec":{"runStrategy":"Halted"}}')
    assert stop.returncode == 0, stop.stderr

    def recovery():
        st = kubectl("vm-storage", "status", "mr", "-n", ns, "-o", "json")
        ms = json.loads(st.stdout)["migrations"] if st.returncode == 0 else []
        return ms if ms and ms[0]["result"] == "Failed" else None

    [m] = wait_for(recovery, 90, "status reports ManualRecoveryRequired")
    [d] = m["disks"]
    assert "needs manual recovery" in d["message"] and "restore the original volumes" in d["message"], d
    assert f"kubectl patch vm mr -n {ns} --type=json" in d["message"] and '"value":"mr-data"' in d["message"]
    assert "kubectl vm-storage cancel" not in d["message"] and m["startedBy"] == "manual"

    root = tmp_path / "must-gather.local.1" / "quay-io-kubevirt-must-gather"
    for kind, group in (("vm", "kubevirt.io"), ("vmi", "kubevirt.io"), ("vmim", "kubevirt.io"),
                        ("dv", "cdi.kubevirt.io"), ("pvc", "core")):
        got = kubectl("get", kind, "-n", ns, "-o", "yaml")
        assert got.returncode == 0, got.stderr
        (root / "namespaces" / ns / group).mkdir(parents=True, exist_ok=True)
        (root / "namespaces" / ns / group / f"{kind}.yaml").write_text(got.stdout)
    (root / "timestamp").write_text("done")
    offline = kubectl("vm-storage", "status", "mr", "-n", ns, "-o", "json", "-f", str(tmp_path / "must-gather.local.1"))
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["migrations"] == [m]
