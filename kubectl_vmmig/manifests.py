"""Reading ``-f FILE…``: YAML or JSON, single objects, ``*List`` objects, several documents per file.

Used by ``migrate --local -f`` and ``status -f``. Files are untrusted input (a must-gather, a Git
checkout): only safe loading, a size cap per file, a cap on YAML aliases (the "billion laughs"
expansion), on nesting depth and on the number of objects, and every problem is one line that names
the file and the fix.
"""
import json
import os
import sys
from typing import Iterable, List

from . import errors

MAX_BYTES = 64 * 1024 * 1024
MAX_ALIASES = 100
MAX_OBJECTS = 200_000
MAX_DEPTH = 100


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses more than MAX_ALIASES aliases and deep nesting."""

        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_ALIASES} YAML aliases (refusing a possible alias bomb)")
            self._depth = getattr(self, "_depth", 0) + 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    Loader.aliases = 0
    return Loader


def _read(path) -> str:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        try:
            if os.path.isdir(path):
                raise errors.BadInput(f"{path} is a directory", "pass files with -f (e.g. -f dir/*.yaml)")
            size = os.path.getsize(path)
            if size > MAX_BYTES:
                raise errors.BadInput(f"{path} is {size} bytes, over the {MAX_BYTES // 2 ** 20} MiB limit",
                                      "split the file or pass only the objects needed")
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise errors.BadInput(f"cannot read {path}: {exc.strerror}", "check the path given with -f")
    if len(data) > MAX_BYTES:
        raise errors.BadInput(f"{path} is over the {MAX_BYTES // 2 ** 20} MiB limit", "split the file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.BadInput(f"{path} is not UTF-8 text", "pass a YAML or JSON file") from None


read_text = _read  # one file's text, with the size cap (dumps.py reads must-gather files with it)


def parse_documents(text: str, path: str = "<input>") -> List:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
            return doc if isinstance(doc, list) else [doc]
        except ValueError:
            pass  # YAML flow style is a superset: let the YAML parser say what is wrong
    import yaml

    try:
        return [d for d in yaml.load_all(text, Loader=_loader()) if d is not None]  # noqa: S506 (SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise errors.BadInput(f"{path}: invalid YAML/JSON{where}: {problem}", "fix the file") from None
    except RecursionError:
        raise errors.BadInput(f"{path}: nesting too deep", "fix the file") from None


def _flatten(doc, path, index, out):
    if not isinstance(doc, dict):
        raise errors.BadInput(f"{path}: document {index + 1} is a {type(doc).__name__}, not a Kubernetes object",
                              "pass YAML/JSON objects with apiVersion and kind")
    kind = doc.get("kind")
    if isinstance(doc.get("items"), list) and (kind is None or str(kind).endswith("List")):
        for item in doc["items"]:
            _flatten(item, path, index, out)
        return
    if not isinstance(kind, str) or not kind or not isinstance(doc.get("apiVersion"), str):
        raise errors.BadInput(f"{path}: document {index + 1} has no apiVersion/kind",
                              "pass Kubernetes objects (e.g. 'kubectl get vm,pvc -o yaml' output)")
    if not isinstance(doc.get("metadata"), dict) or not isinstance(doc["metadata"].get("name"), str):
        raise errors.BadInput(f"{path}: {kind} in document {index + 1} has no metadata.name", "fix the file")
    out.append(doc)
    if len(out) > MAX_OBJECTS:
        raise errors.BadInput(f"more than {MAX_OBJECTS} objects in the -f files", "pass fewer objects")


def load_objects(paths: Iterable[str]) -> List[dict]:
    """All objects from the files, Lists expanded, in file order."""
    out: List[dict] = []
    paths = list(paths)
    if not paths:
        raise errors.BadInput("no file given", "pass -f FILE")
    for path in paths:
        for i, doc in enumerate(parse_documents(_read(path), path)):
            _flatten(doc, path, i, out)
    return out


def by_kind(objects: Iterable[dict]) -> dict:
    out = {}
    for o in objects:
        out.setdefault(o["kind"], []).append(o)
    return out


def match_labels(labels: dict, selector: str) -> bool:
    """Equality-based label selectors (``a=b,c!=d,e``, ``!f``) for ``-l`` with ``--local``."""
    labels = labels or {}
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            k, v = (x.strip() for x in term.split("!=", 1))
            if labels.get(k) == v:
                return False
        elif "==" in term or "=" in term:
            k, v = (x.strip() for x in term.replace("==", "=").split("=", 1))
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True
