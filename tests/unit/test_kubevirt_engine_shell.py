"""The kubevirt engine's shell parts that need no cluster: guarded patches against a fake client, and
``migrate --engine kubevirt --local -f … --dry-run=client`` (no API call at all)."""
import copy
import json

import jsonpatch
import pytest
import yaml

from kubectl_vmmig import errors
from kubectl_vmmig.engines.kubevirt.guarded_patch import PatchRefused, failed_tests, guarded_patch
from kubectl_vmmig.patches import volume_swap_patch


def vm(gen=3, claim="pa"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "ns", "generation": gen},
            "spec": {"runStrategy": "Always", "template": {"spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}}}


class FakeKube:
    """Applies JSON patches like the API server: a failed test op -> 422 with the generic message."""

    def __init__(self, obj, refuse=None):
        self.obj = obj
        self.refuse = refuse

    def patch(self, res, name, ops, ns, patch_type="merge", dry_run=False):
        if self.refuse:
            raise self.refuse
        try:
            self.obj = jsonpatch.apply_patch(self.obj, ops)
        except jsonpatch.JsonPatchTestFailed:
            raise errors.Invalid("the server rejected our request due to an error in our request", status=422)
        return self.obj

    def get_or_none(self, res, name, ns):
        return copy.deepcopy(self.obj)


def test_failed_tests_lists_changed_paths():
    ops = volume_swap_patch(vm(), {"pa": "pb"}, live=True)
    assert failed_tests(vm(), ops) == []
    assert failed_tests(vm(gen=4, claim="px"), ops) == ["/metadata/generation",
                                                        "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName"]


def test_guarded_patch_applies_when_nothing_changed():
    kube = FakeKube(vm())
    guarded_patch(kube, "vm1", "ns", volume_swap_patch(vm(), {"pa": "pb"}, live=True), "volume swap")
    assert kube.obj["spec"]["updateVolumesStrategy"] == "Migration"


def test_guarded_patch_refuses_after_concurrent_edit_and_overwrites_nothing():
    ops = volume_swap_patch(vm(), {"pa": "pb"}, live=True)
    edited = vm(gen=4)
    edited["spec"]["template"]["metadata"] = {"labels": {"x": "y"}}
    kube = FakeKube(copy.deepcopy(edited))
    with pytest.raises(PatchRefused) as exc:
        guarded_patch(kube, "vm1", "ns", ops, "volume swap")
    assert "changed after it was read" in exc.value.message and "/metadata/generation" in exc.value.message
    assert exc.value.exit_code == errors.API_ERROR
    assert kube.obj == edited


def test_guarded_patch_reraises_a_genuine_refusal():
    refusal = errors.Invalid("admission webhook denied: VolumesUpdateStrategy feature gate is not enabled", status=422)
    kube = FakeKube(vm(), refuse=refusal)
    with pytest.raises(errors.Invalid) as exc:
        guarded_patch(kube, "vm1", "ns", volume_swap_patch(vm(), {"pa": "pb"}, live=True), "volume swap")
    assert not isinstance(exc.value, PatchRefused) and "feature gate" in exc.value.message


def _pvc(name, size, sc="standard"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "storageClassName": sc,
                     "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]}}


def test_local_preview_makes_no_api_call(tmp_path, monkeypatch, capsys):
    from kubectl_vmmig.cli import main

    the_vm = vm()
    the_vm["metadata"]["uid"] = "u1"
    the_vm["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": "vm1-root"},
                                              "spec": {"storage": {"storageClassName": "standard"},
                                                       "source": {"blank": {}}}}]
    the_vm["spec"]["template"]["spec"]["volumes"].append({"name": "root", "dataVolume": {"name": "vm1-root"}})
    scs = [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": n},
            "provisioner": "x"} for n in ("standard", "fast")]
    # A deployed KubeVirt, so no check blocks: a blocking finding makes the client dry run exit 3 (issue 13).
    kubevirt = {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
                "spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate"},
                         "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}},
                "status": {"observedKubeVirtVersion": "v1.6.2", "phase": "Deployed",
                           "observedDeploymentID": "a", "targetDeploymentID": "a"}}
    docs = [the_vm, _pvc("pa", "2Gi"), _pvc("vm1-root", "1Gi"), kubevirt] + scs
    path = tmp_path / "objs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    code = main(["migrate", "vm1", "--to", "fast", "-n", "ns", "--engine", "kubevirt", "--mode", "offline",
                 "--local", "-f", str(path), "--dry-run=client", "-o", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    preview = json.loads(out.out)
    dvs = {o["metadata"]["name"]: o for o in preview["objects"] if o["kind"] == "DataVolume"}
    assert set(dvs) == {"pa-fast", "vm1-root-fast"}
    assert dvs["pa-fast"]["spec"]["source"] == {"pvc": {"namespace": "ns", "name": "pa"}}
    assert dvs["pa-fast"]["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"
    swap = [p for p in preview["patches"] if p["step"] == "swap-volumes"][0]["patch"]
    out_vm = jsonpatch.apply_patch(the_vm, swap)
    assert [v.get("persistentVolumeClaim", v.get("dataVolume")) for v in out_vm["spec"]["template"]["spec"]["volumes"]] \
        == [{"claimName": "pa-fast"}, {"name": "vm1-root-fast"}]
    assert "updateVolumesStrategy" not in out_vm["spec"]
