"""What a pass of the kubevirt engine's driver reads (shell): one LIST per kind per pass, answered by name.

A GET per VM/VMI/DV and a VMIM LIST per VM made the waiting loop's cost grow with the number of VMs; a pass
LISTs each kind it needs once and answers every VM from that. A LIST without resourceVersion is a consistent
read of the most recent state, as a GET is (the API's "resourceVersion unset" semantics), so nothing is staler
than a GET would be.

- ``NamespaceReads``: one namespace's record (``migrate -n``): a write drops that kind's snapshot, so a step that
  follows a write in the same pass re-reads it.
- ``FleetReads``: every namespace of a fleet (``migrate -A``): one LIST per kind per pass across all namespaces
  (``/apis/.../virtualmachines`` without a namespace), split by namespace - the number of requests per pass does
  not grow with the namespaces either. A user whose rights are namespaced gets 403 for that LIST: from then on
  that kind is LISTed per namespace. A write does not re-read the fleet's kind: the VM written to waits for the
  next pass (``wrote`` returns False), the other VMs are not concerned by it (each step reads only its own VM's
  objects).
"""
import time
from typing import Dict, Iterable, Optional

from ... import errors
from ... import labels as L
from ... import resources as R

OWN_WRITE_SECONDS = 10.0
RECORDS = "records"                    # the pass's LIST of the plugin's migration records
RECORD_LABEL = f"{L.ENGINE}=kubevirt"  # build.labels: every record carries it


def _version(obj) -> Optional[str]:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _by_name(items) -> Dict[str, dict]:
    return {(o.get("metadata") or {}).get("name"): o for o in items}


class NamespaceReads:
    def __init__(self, kube, namespace: str):
        self.kube, self.namespace = kube, namespace
        self._seen: Dict[str, dict] = {}

    def new_pass(self) -> None:
        self._seen = {}

    def kind(self, res, namespace: Optional[str] = None) -> Dict[str, dict]:
        if res.kind not in self._seen:
            self._seen[res.kind] = _by_name(self.kube.items(res, self.namespace))
        return self._seen[res.kind]

    def records(self, namespace: Optional[str] = None) -> Dict[str, dict]:
        """The plugin's record ConfigMaps (by their engine label), once per pass."""
        if RECORDS not in self._seen:
            self._seen[RECORDS] = _by_name(self.kube.items(R.CONFIGMAP, self.namespace, label_selector=RECORD_LABEL))
        return self._seen[RECORDS]

    def wrote(self, *resources, made=None) -> bool:
        """After a write: True when the VM's next step may go on in this pass (it re-reads)."""
        for res in resources:
            self._seen.pop(res.kind, None)
        return True


class FleetReads:
    """``source``: what answers the LISTs (default: the connection; anything with Kube's ``items`` - e.g. a store
    kept current by WATCHes - may stand there: a VM written to waits for the next pass, and a destination a lagging
    store does not show yet is created again only to get 409, which the driver takes as made)."""

    def __init__(self, kube, namespaces: Iterable[str], source=None):
        self.kube = source or kube
        self.namespaces = sorted(set(namespaces))
        self._seen: Dict[str, Dict[str, Dict[str, dict]]] = {}   # kind -> namespace -> name -> object
        self.last: Dict[str, Dict[str, Dict[str, dict]]] = {}    # the latest LIST of each kind (the view's)
        self._per_namespace = set()                              # kinds whose cluster-wide LIST was refused
        self._own: Dict[tuple, tuple] = {}                       # (kind, ns, name) -> (our write's answer, when)
        self.clock = time.monotonic

    def new_pass(self) -> None:
        self._seen = {}

    def _list(self, res, selector=None, key=None) -> Dict[str, Dict[str, dict]]:
        key = key or res.kind
        out: Dict[str, Dict[str, dict]] = {ns: {} for ns in self.namespaces}
        if key not in self._per_namespace and len(self.namespaces) > 1:
            try:
                for o in self.kube.items(res, None, label_selector=selector, all_namespaces=True):
                    ns = (o.get("metadata") or {}).get("namespace")
                    if ns in out:
                        out[ns][(o.get("metadata") or {}).get("name")] = o
                return out
            except errors.Forbidden:
                self._per_namespace.add(key)  # namespaced rights: one LIST per namespace from now on
        for ns in self.namespaces:
            out[ns] = _by_name(self.kube.items(res, ns, label_selector=selector))
        return out

    def records(self, namespace: Optional[str] = None) -> Dict[str, dict]:
        if RECORDS not in self._seen:
            self._seen[RECORDS] = self._list(R.CONFIGMAP, RECORD_LABEL, RECORDS)
        return self._seen[RECORDS].get(namespace, {})

    def kind(self, res, namespace: Optional[str] = None) -> Dict[str, dict]:
        if res.kind not in self._seen:
            self._seen[res.kind] = self.last[res.kind] = self._own_writes(res.kind, self._list(res))
        return self._seen[res.kind].get(namespace, {})

    def _own_writes(self, kind, listed):
        """Our writes the reads do not show yet stand in for the objects read (see ``wrote``)."""
        for key in [k for k in self._own if k[0] == kind]:
            made, before, when = self._own[key]
            _, ns, name = key
            seen = (listed.get(ns) or {}).get(name)
            if (seen is not None and _version(seen) != before) or self.clock() - when > OWN_WRITE_SECONDS:
                del self._own[key]  # the store moved past our write, or we gave up waiting for it
            elif ns in listed:
                listed[ns] = dict(listed[ns], **{name: made})
        return listed

    def wrote(self, *resources, made=None) -> bool:
        """A store fed by a WATCH shows our own write a moment later: until it does, the API server's answer
        stands in for the object - so a destination just created is not created again, a VM just patched not
        judged from before the patch. "Until it does" without comparing resourceVersions (opaque to clients):
        until the store shows the object in another version than it showed before our write (a WATCH delivers
        events in order, so that version includes ours), at most OWN_WRITE_SECONDS."""
        md = (made or {}).get("metadata") or {}
        if resources and md.get("name") and md.get("resourceVersion"):  # an API server's answer
            kind, ns, name = resources[0].kind, md.get("namespace"), md["name"]
            before = ((self.last.get(kind) or {}).get(ns) or {}).get(name)
            self._own[(kind, ns, name)] = (made, _version(before), self.clock())
        return False

    def view(self, namespace: str) -> "FleetView":
        return FleetView(self, namespace)


class FleetView:
    """One namespace's window on the fleet's reads (what a namespace's Driver is given)."""

    def __init__(self, fleet: FleetReads, namespace: str):
        self.fleet, self.namespace = fleet, namespace

    def new_pass(self) -> None:
        """The fleet starts each pass once for every namespace."""

    def kind(self, res, namespace: Optional[str] = None) -> Dict[str, dict]:
        return self.fleet.kind(res, self.namespace)

    def records(self, namespace: Optional[str] = None) -> Dict[str, dict]:
        return self.fleet.records(self.namespace)

    def wrote(self, *resources, made=None) -> bool:
        return self.fleet.wrote(*resources, made=made)
