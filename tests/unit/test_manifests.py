"""manifests.py: -f FILE reading (YAML/JSON, Lists, multi-doc, hostile input)."""
import json

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import manifests as M

VM = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "a", "namespace": "n"}}
PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}}


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return str(f)


def test_yaml_multi_doc_and_json_list(tmp_path):
    import yaml

    a = write(tmp_path, "a.yaml", yaml.safe_dump_all([VM, None, PVC]))
    b = write(tmp_path, "b.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": [VM, PVC]}))
    c = write(tmp_path, "c.json", json.dumps([PVC]))
    objs = M.load_objects([a, b, c])
    assert [o["kind"] for o in objs] == ["VirtualMachine", "PersistentVolumeClaim"] * 2 + ["PersistentVolumeClaim"]
    assert list(M.by_kind(objs)) == ["VirtualMachine", "PersistentVolumeClaim"]


@pytest.mark.parametrize("text,words", [
    ("a: [1, 2", "invalid YAML"),
    ("- 1\n- 2\n", "not a Kubernetes object"),
    ("kind: VirtualMachine\nmetadata: {name: a}\n", "no apiVersion/kind"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "no metadata.name"),
    ("!!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
])
def test_bad_files_are_one_line_bad_input(tmp_path, text, words):
    f = write(tmp_path, "bad.yaml", text)
    with pytest.raises(errors.BadInput) as exc:
        M.load_objects([f])
    assert words in exc.value.line() and "\n" not in exc.value.line()


def test_alias_bomb_refused(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    f = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(errors.BadInput) as exc:
        M.load_objects([f])
    assert "alias" in exc.value.line()


def test_size_limit_missing_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "MAX_BYTES", 10)
    f = write(tmp_path, "big.yaml", "x" * 100)
    with pytest.raises(errors.BadInput, match="limit"):
        M.load_objects([f])
    with pytest.raises(errors.BadInput, match="cannot read"):
        M.load_objects([str(tmp_path / "nope.yaml")])
    with pytest.raises(errors.BadInput, match="directory"):
        M.load_objects([str(tmp_path)])
    with pytest.raises(errors.BadInput):
        M.load_objects([])


def test_match_labels():
    labels = {"app": "db", "tier": "1"}
    assert M.match_labels(labels, "app=db")
    assert M.match_labels(labels, "app==db,tier")
    assert not M.match_labels(labels, "app=web")
    assert M.match_labels(labels, "app!=web,!missing")
    assert not M.match_labels(labels, "!app")
    assert not M.match_labels(labels, "missing")
