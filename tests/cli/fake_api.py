"""An in-memory stand-in for ``kubectl_vmmig.kube.Kube`` (the same methods, dicts in and out), so command tests
run in-process with no API server. It stores objects and answers reads and writes as the API server's generic
registry does (k8s.io/apiserver pkg/registry/generic/registry/store.go: Create refuses an existing name with
409 AlreadyExists, Get of a missing name is 404, List filters by label selector); it runs no controller."""
import copy
import itertools
import threading

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R


BUILT_IN_GROUPS = ("", "apps", "batch", "storage.k8s.io", "apiextensions.k8s.io", "authorization.k8s.io")


def _key(res):
    return (res.group, res.plural)


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def _matches(obj, selector):
    """The equality-based label selector terms: ``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``
    (k8s.io/apimachinery pkg/labels/selector.go Parse)."""
    labels = _labels(obj)
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKube:
    def __init__(self, objects=(), namespace="default", apis=("kubevirt.io/v1", "cdi.kubevirt.io/v1beta1"),
                 denied=()):
        self.namespace = namespace
        self.apis = set(apis)
        self.denied = set(denied)          # {(verb, resource)} SelfSubjectAccessReviews answer "no"
        self.store = {}                    # (group, plural) -> {(namespace, name): obj}
        self.writes = []                   # (verb, kind, namespace, name) in order
        self._rv = itertools.count(1)
        self.last_rv = 0
        self.events = []                   # (rv, type, res key, obj): what a watch replays after its RV
        self.changed = threading.Condition()
        for obj in objects:
            self._put(R.BY_KIND[obj["kind"]], copy.deepcopy(obj))

    # ---- storage -----------------------------------------------------------------------------------
    def _put(self, res, obj):
        md = obj.setdefault("metadata", {})
        rv = next(self._rv)
        md["resourceVersion"] = str(rv)
        if not res.namespaced:
            md.pop("namespace", None)
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        objs = self.store.setdefault(_key(res), {})
        kind = "MODIFIED" if (md.get("namespace") or "", md["name"]) in objs else "ADDED"
        objs[(md.get("namespace") or "", md["name"])] = obj
        with self.changed:
            self.last_rv = rv
            self.events.append((rv, kind, _key(res), copy.deepcopy(obj)))
            self.changed.notify_all()
        return copy.deepcopy(obj)

    def _served(self, res):
        if res.group not in BUILT_IN_GROUPS and f"{res.group}/{res.version}" not in self.apis:
            raise errors.NotFound(f"the server could not find the requested resource ({res.plural}.{res.group})",
                                  status=404)

    def _ns(self, res, namespace):
        return (namespace or self.namespace) if res.namespaced else ""

    # ---- the Kube surface --------------------------------------------------------------------------
    def has_api(self, group, version):
        return group in BUILT_IN_GROUPS or f"{group}/{version}" in self.apis

    def get(self, res, name, namespace=None):
        obj = self.get_or_none(res, name, namespace)
        if obj is None:
            raise errors.NotFound(f'{res.plural} "{name}" not found', status=404)
        return obj

    def get_or_none(self, res, name, namespace=None):
        if res == R.NAMESPACE:
            return {"kind": "Namespace", "metadata": {"name": name}}
        self._served(res)
        obj = self.store.get(_key(res), {}).get((self._ns(res, namespace), name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, res, namespace=None, label_selector=None, field_selector=None, all_namespaces=False):
        self._served(res)
        ns = None if (all_namespaces or not res.namespaced) else (namespace or self.namespace)
        out = [copy.deepcopy(o) for (ons, _), o in sorted(self.store.get(_key(res), {}).items())
               if (ns is None or ons == ns) and _matches(o, label_selector)]
        return out

    def list(self, res, namespace=None, label_selector=None, field_selector=None, all_namespaces=False):
        return {"metadata": {"resourceVersion": str(self.last_rv)},
                "items": self.items(res, namespace, label_selector, field_selector, all_namespaces)}

    def watch(self, res, namespace=None, label_selector=None, field_selector=None, resource_version=None,
              timeout_seconds=300, all_namespaces=False):
        """The writes after ``resource_version`` of this kind, namespace and selector, as the API server's watch
        sends them (k8s.io/apiserver pkg/storage/cacher watch_cache.go getAllEventsSinceLocked), until
        ``timeout_seconds`` (waiting in short steps, so a test's thread is never stuck for long)."""
        import time

        self._served(res)
        ns = None if (all_namespaces or not res.namespaced) else (namespace or self.namespace)
        since, until = int(resource_version or 0), time.monotonic() + min(timeout_seconds, 5)

        def events():
            nonlocal since
            while time.monotonic() < until:
                with self.changed:
                    new = [e for e in self.events if e[0] > since]
                    if not new:
                        self.changed.wait(0.2)
                        continue
                since = new[-1][0]
                for _, kind, key, obj in new:
                    if key == _key(res) and (ns is None or (obj["metadata"].get("namespace") or "") == ns) \
                            and _matches(obj, label_selector):
                        yield kind, copy.deepcopy(obj)

        return None, events()

    def create(self, res, body, namespace=None, dry_run=False):
        self._served(res)
        body = copy.deepcopy(body)
        md = body.setdefault("metadata", {})
        md.setdefault("namespace", self._ns(res, namespace))
        if (self._ns(res, namespace), md["name"]) in self.store.get(_key(res), {}):
            raise errors.Conflict(f'{res.plural} "{md["name"]}" already exists', status=409)
        if dry_run:
            return body
        self.writes.append(("create", res.kind, md.get("namespace"), md["name"]))
        return self._put(res, body)

    def replace(self, res, body, namespace=None, dry_run=False):
        if dry_run:
            return copy.deepcopy(body)
        md = body["metadata"]
        self.writes.append(("update", res.kind, md.get("namespace"), md["name"]))
        return self._put(res, copy.deepcopy(body))

    def patch(self, res, name, patch, namespace=None, patch_type="merge", subresource=None, dry_run=False):
        import jsonpatch

        obj = self.get(res, name, namespace)
        if patch_type == "json":
            try:
                obj = jsonpatch.apply_patch(obj, patch)
            except jsonpatch.JsonPatchTestFailed:
                raise errors.Invalid("the server rejected our request due to an error in our request",
                                     status=422) from None
        else:
            obj = _merge(obj, patch)
        if dry_run:
            return obj
        self.writes.append(("patch", res.kind, obj["metadata"].get("namespace"), name))
        return self._put(res, obj)

    def delete(self, res, name, namespace=None):
        raise AssertionError("command tests never delete")

    def can_i(self, verb, resource, group="", namespace=None, subresource=None, name=None):
        if (verb, resource) in self.denied:
            return False, "denied by the test"
        return True, ""

    def server_version(self):
        return {"gitVersion": "v1.37.1-fake"}


def _merge(obj, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(obj) if isinstance(obj, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out
