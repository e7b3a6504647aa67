"""Reading what ``status -f`` is given: files and must-gather directories, into one pile of objects.

A must-gather (``oc adm must-gather``/``oc adm inspect``, the kubevirt must-gather image) is a tree:
``namespaces/<ns>/<group>/<kind>.yaml`` holding a ``<Kind>List``, per-object files under
``.../<resource>/<name>.yaml``, ``cluster-scoped-resources/...``, plus logs and other files that are not
Kubernetes objects. So, for a directory: every ``*.yaml``/``*.yml``/``*.json`` below it (sorted, so the
result does not depend on the file system), documents that are not Kubernetes objects are skipped (a
must-gather holds config files and summaries), but a file that does not parse is an error naming it.
Items of a typed List (``VirtualMachineList``) without their own kind get it from the List, as the
API server leaves them (``meta/v1`` List items carry no TypeMeta). An object found twice (a List and a
per-object file) is kept once: the newest ``resourceVersion``.

Explicit files keep the strict rules of manifests.load_objects (every document must be an object).
No API call; used by commands/status.py.
"""
import os
from typing import Iterable, List

from . import errors, manifests

SUFFIXES = (".yaml", ".yml", ".json")


def files_below(directory: str) -> List[str]:
    """Every YAML/JSON file below ``directory``, sorted; symlinked directories are not followed (loops)."""
    out = []
    for root, dirs, names in os.walk(directory, onerror=_walk_error):
        dirs.sort()
        out += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(SUFFIXES)]
    return out


def _walk_error(exc):
    raise errors.BadInput(f"cannot read {exc.filename}: {exc.strerror}", "check the directory given with -f")


def _list_item_kind(doc: dict):
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and kind != "List":
        return kind[: -len("List")]
    return None


def _objects_of(doc, out: List[dict], api_version=None, kind=None) -> None:
    """Kubernetes objects in one document of a must-gather file (Lists expanded, non-objects skipped)."""
    if not isinstance(doc, dict):
        return
    if isinstance(doc.get("items"), list) and (doc.get("kind") is None or str(doc.get("kind")).endswith("List")):
        item_kind, item_api = _list_item_kind(doc), doc.get("apiVersion")
        for item in doc["items"]:
            _objects_of(item, out, item_api, item_kind)
        return
    if kind and "kind" not in doc:
        doc = dict(doc, kind=kind, apiVersion=doc.get("apiVersion") or api_version)
    meta = doc.get("metadata")
    if (isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str) and isinstance(meta, dict)
            and isinstance(meta.get("name"), str)):
        out.append(doc)


def _version(obj) -> int:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return int(rv) if isinstance(rv, str) and rv.isdigit() else -1


def dedupe(objects: Iterable[dict]) -> List[dict]:
    """One object per (group, kind, namespace, name): the newest resourceVersion, else the last seen."""
    kept, order = {}, []
    for o in objects:
        meta = o.get("metadata") or {}
        key = (str(o.get("apiVersion")).split("/")[0] if "/" in str(o.get("apiVersion")) else "", o.get("kind"),
               meta.get("namespace") or "", meta.get("name"))
        if key not in kept:
            order.append(key)
            kept[key] = o
        elif _version(o) >= _version(kept[key]):
            kept[key] = o
    return [kept[k] for k in order]


def load(paths: Iterable[str]) -> List[dict]:
    """Objects from files and directories (``-`` is stdin), in path order, each object once."""
    paths = list(paths)
    if not paths:
        raise errors.BadInput("no file given", "pass -f FILE or -f MUST-GATHER-DIR")
    out: List[dict] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            found = files_below(path)
            if not found:
                raise errors.BadInput(f"{path} holds no YAML or JSON file", "pass a must-gather directory or files")
            for f in found:
                for doc in manifests.parse_documents(manifests.read_text(f), f):
                    _objects_of(doc, out)
        else:
            out += manifests.load_objects([path])
        if len(out) > manifests.MAX_OBJECTS:
            raise errors.BadInput(f"more than {manifests.MAX_OBJECTS} objects in the -f files", "pass fewer objects")
    return dedupe(out)
