"""dumps.py: status -f on files and must-gather directories (namespaces/<ns>/<group>/<kind>.yaml, Lists, JSON)."""
import json

import pytest
import yaml

from kubectl_vmmig import dumps, errors


def vm(name, ns="vm-ns", rv="10"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "spec": {}}


def must_gather(tmp_path):
    """The layout of `oc adm must-gather` / `oc adm inspect` output, with the noise such a tree holds."""
    root = tmp_path / "must-gather.local.5127" / "quay-io-kubevirt-must-gather-sha256-abc"
    ns = root / "namespaces" / "vm-ns"
    (ns / "kubevirt.io").mkdir(parents=True)
    (ns / "core").mkdir()
    (ns / "cdi.kubevirt.io").mkdir()
    (ns / "core" / "pods" / "virt-launcher-a" / "compute" / "logs").mkdir(parents=True)
    # a typed List whose items carry no TypeMeta (as meta/v1 List items come from the API)
    items = [{k: v for k, v in vm(n).items() if k not in ("kind", "apiVersion")} for n in ("a", "b")]
    (ns / "kubevirt.io" / "virtualmachines.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineList", "items": items}))
    # the same VM again as a per-object file, newer
    (ns / "kubevirt.io" / "virtualmachines").mkdir()
    (ns / "kubevirt.io" / "virtualmachines" / "a.yaml").write_text(yaml.safe_dump(dict(vm("a", rv="12"), spec={"x": 1})))
    (ns / "core" / "persistentvolumeclaims.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p", "namespace": "vm-ns"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unknown-kind-is-kept-for-readers-to-ignore"}}]))
    (ns / "cdi.kubevirt.io" / "datavolumes.json").write_text(json.dumps(
        {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "List", "items": [
            {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
             "metadata": {"name": "dv", "namespace": "vm-ns"}}]}))
    (ns / "core" / "pods" / "virt-launcher-a" / "compute" / "logs" / "current.log").write_text("not yaml: [")
    (root / "timestamp").write_text("2026-12-01 09:00:00")
    (root / "version.yaml").write_text("- not\n- an object\n")  # a summary, not a Kubernetes object
    (root / "cluster-scoped-resources" / "storage.k8s.io").mkdir(parents=True)
    (root / "cluster-scoped-resources" / "storage.k8s.io" / "storageclasses.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}}]}))
    return tmp_path / "must-gather.local.5127"


def test_must_gather_directory_is_read_recursively(tmp_path):
    objs = dumps.load([str(must_gather(tmp_path))])
    got = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert got == [("DataVolume", "dv"), ("PersistentVolumeClaim", "p"), ("Secret",
                   "unknown-kind-is-kept-for-readers-to-ignore"), ("StorageClass", "fast"),
                   ("VirtualMachine", "a"), ("VirtualMachine", "b")]
    a = [o for o in objs if o["metadata"]["name"] == "a"][0]
    assert a["apiVersion"] == "kubevirt.io/v1" and a["spec"] == {"x": 1}  # the newer copy won
    b = [o for o in objs if o["metadata"]["name"] == "b"][0]
    assert b["kind"] == "VirtualMachine" and b["apiVersion"] == "kubevirt.io/v1"  # TypeMeta from the List


def test_a_malformed_file_in_the_directory_is_named(tmp_path):
    root = must_gather(tmp_path)
    bad = root / "quay-io-kubevirt-must-gather-sha256-abc" / "namespaces" / "vm-ns" / "core" / "events.yaml"
    bad.write_text("items: [1, 2\n")
    with pytest.raises(errors.BadInput) as exc:
        dumps.load([str(root)])
    assert str(bad) in exc.value.line() and "invalid YAML" in exc.value.line()
    assert "\n" not in exc.value.line() and exc.value.exit_code == errors.BAD_INPUT


def test_files_and_directories_mix_and_empty_directory_is_refused(tmp_path):
    f = tmp_path / "one.yaml"
    f.write_text(yaml.safe_dump(vm("c")))
    objs = dumps.load([str(must_gather(tmp_path)), str(f)])
    assert ("VirtualMachine", "c") in {(o["kind"], o["metadata"]["name"]) for o in objs}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.BadInput, match="holds no YAML or JSON file"):
        dumps.load([str(empty)])


def test_explicit_files_stay_strict(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n")
    with pytest.raises(errors.BadInput, match="not a Kubernetes object"):
        dumps.load([str(f)])


def test_status_from_a_must_gather_ignores_unknown_kinds(tmp_path):
    from kubectl_vmmig.commands.status import from_files

    assert from_files([str(must_gather(tmp_path))]) == []
