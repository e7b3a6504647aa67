"""Shared helpers for the controller stand-ins (mig-controller, KubeVirt, CDI).

A stand-in is a deterministic reconciler: ``step()`` is one pass over its objects that advances each by
one phase (or one progress increment); ``run(stop_event)`` loops step + sleep(pace). Tests either step an
instance by hand (fully deterministic) or start it in a thread (``start()``/``stop()``).

Faults are switched on per namespace with a ConfigMap named ``sim-faults`` (see tests/sim/README.md).
"""
import hashlib
import logging
import random
import threading
import time
from typing import Callable, Dict, List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .sim_time import (  # noqa: F401  (re-exported: the stand-ins import them from here)
    get_condition, go_duration, now, parse_go_duration, parse_time, remove_condition, seconds_since,
    set_condition, set_k8s_condition,
)

log = logging.getLogger("tests.sim")

MTC_NAMESPACE = "openshift-migration"
FAULTS_CONFIGMAP = "sim-faults"
# k8s.io/apimachinery rand.String alphabet (no vowels, no ambiguous characters).
K8S_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"



# ---- faults -------------------------------------------------------------------------------------
def faults(kube, namespace: Optional[str]) -> Dict[str, str]:
    """The ``data`` of ConfigMap ``sim-faults`` in ``namespace`` ({} when absent)."""
    if not namespace:
        return {}
    try:
        cm = kube.get_or_none(R.CONFIGMAP, FAULTS_CONFIGMAP, namespace)
    except errors.ApiError:
        return {}
    return dict((cm or {}).get("data") or {})


def fault_bool(f: Dict[str, str], key: str) -> bool:
    return str(f.get(key, "")).strip().lower() in ("true", "1", "yes")


def fault_int(f: Dict[str, str], key: str, default: Optional[int] = None) -> Optional[int]:
    try:
        return int(str(f[key]).strip())
    except (KeyError, ValueError):
        return default


def set_faults(kube, namespace: str, **data) -> None:
    """Test helper: create/replace the sim-faults ConfigMap (values are stringified)."""
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": FAULTS_CONFIGMAP, "namespace": namespace},
            "data": {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}}
    try:
        kube.create(R.CONFIGMAP, body, namespace)
    except errors.Conflict:
        kube.patch(R.CONFIGMAP, FAULTS_CONFIGMAP, {"data": body["data"]}, namespace)


# ---- small object helpers -----------------------------------------------------------------------
def md5hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def rand_string(n: int = 4, rng: Optional[random.Random] = None) -> str:
    r = rng or random
    return "".join(r.choice(K8S_RAND_ALPHABET) for _ in range(n))


def owner_ref(obj: dict, controller: bool = True, block: bool = False) -> dict:
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
           "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    if controller:
        ref["controller"] = True
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def labels(obj: dict) -> Dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations(obj: dict) -> Dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def patch_status(kube, res: R.Resource, obj: dict, status: dict, subresource: Optional[str] = "status"):
    """Merge-patch ``status``; ``subresource=None`` for kinds without a status subresource (VMI)."""
    md = obj["metadata"]
    return kube.patch(res, md["name"], {"status": status}, md.get("namespace"), subresource=subresource)


def put_status(kube, res: R.Resource, obj: dict, subresource: Optional[str] = "status"):
    """PUT the whole object to the status subresource (replaces status lists exactly; merge patch
    cannot remove list entries). Raises errors.Conflict on a stale resourceVersion."""
    md = obj["metadata"]
    path = res.path(md.get("namespace"), md["name"], subresource)
    return kube.request("PUT", path, body=obj)


def delete_any(kube, res: R.Resource, name: str, namespace: Optional[str] = None) -> bool:
    """Delete as a controller would, including PVCs/DataVolumes (the plugin's Kube.delete refuses
    volumes on purpose; a controller stand-in must be able to). Returns False if already gone."""
    try:
        kube.request("DELETE", res.path(namespace if res.namespaced else None, name))
        return True
    except errors.NotFound:
        return False


def create_or_get(kube, res: R.Resource, body: dict, namespace: Optional[str] = None) -> dict:
    """Create; on AlreadyExists return the existing object (controllers ignore AlreadyExists)."""
    ns = namespace or body.get("metadata", {}).get("namespace")
    try:
        return kube.create(res, body, ns)
    except errors.Conflict:
        return kube.get(res, body["metadata"]["name"], ns)


def ensure_namespace(kube, name: str) -> None:
    try:
        kube.create(R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except errors.Conflict:
        pass


# ---- the loop -----------------------------------------------------------------------------------
MANUAL_LABEL = "vmstorage-sim/manual"
IDLE_WAIT = 0.5  # seconds between passes of a stand-in that found nothing to do
IDLE_DOUBLINGS = 16  # the idle back-off doubles at most this often (pace * 2**16 is far above IDLE_WAIT)


class _WriteCounting:
    """The stand-in's view of the API client: counts writes, so an idle stand-in can slow its polling."""

    _WRITES = {"create", "replace", "patch", "delete", "subresource"}

    def __init__(self, kube):
        self._kube = kube
        self.writes = 0

    def __getattr__(self, name):
        attr = getattr(self._kube, name)
        if name in self._WRITES or name == "request":
            def counted(*a, **kw):
                if name != "request" or (a and a[0] != "GET") or kw.get("method", "GET") != "GET":
                    self.writes += 1
                return attr(*a, **kw)
            return counted
        return attr


class StandIn:
    """Base class: subclasses implement ``step()`` (one deterministic reconcile pass).

    ``namespaces=None`` means every namespace; otherwise ``in_scope(ns)`` limits the stand-in to those
    (tests that step by hand use their own instance on their own namespace).
    """

    name = "stand-in"

    def __init__(self, kube, pace: float = 0.05, namespaces: Optional[List[str]] = None):
        self.kube = _WriteCounting(kube)
        self.pace = pace
        self.namespaces = list(namespaces) if namespaces else None
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[threading.Event] = None
        self.errors: List[str] = []  # last exceptions from run(), for test diagnostics
        # Namespaces labelled MANUAL_LABEL=true belong to tests that step their own stand-in or write controller
        # status by hand: the session-wide (namespaces=None) stand-ins keep out of them.
        self.excluded: set = set()
        self._seen: set = set()  # every namespace at the last refresh_excluded
        self.idle = 0  # passes in a row without a write (tests may fast-forward it)
        self.died: Optional[str] = None  # traceback of a dead controller thread
        self.on_death: Optional[Callable[["StandIn"], None]] = None

    def in_scope(self, namespace: Optional[str]) -> bool:
        if self.namespaces is None:
            if namespace and namespace not in self.excluded and namespace not in self._seen:
                # created after this pass's refresh: look again before touching it (a test's manual namespace
                # would otherwise be reconciled once, racing its hand-written status)
                self.refresh_excluded()
            return namespace not in self.excluded
        return namespace in self.namespaces

    def refresh_excluded(self) -> None:
        if self.namespaces is None:
            spaces = self.kube.items(R.NAMESPACE)
            self._seen = {n["metadata"]["name"] for n in spaces}
            self.excluded = {n["metadata"]["name"] for n in spaces
                             if ((n["metadata"].get("labels") or {}).get(MANUAL_LABEL)) == "true"}

    def faults(self, namespace: Optional[str]) -> Dict[str, str]:
        return faults(self.kube, namespace)

    def stalled(self, namespace: Optional[str]) -> bool:
        return fault_bool(self.faults(namespace), "stall")

    def step(self) -> None:
        raise NotImplementedError

    def step_n(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def step_until(self, predicate: Callable[[], bool], max_steps: int = 300) -> int:
        """Step until ``predicate()`` holds; returns the number of steps taken, raises on timeout."""
        for i in range(max_steps):
            if predicate():
                return i
            self.step()
        if predicate():
            return max_steps
        raise AssertionError(f"{self.name}: condition not reached after {max_steps} steps")

    def idle_wait(self, idle: int) -> float:
        """Seconds to wait after ``idle`` passes without a write: ``pace`` for the first three, then doubling up
        to IDLE_WAIT. The exponent is bounded: ``pace * 2 ** idle`` overflowed a float (OverflowError: int too
        large to convert to float) after ~1000 idle passes (~15 minutes in the sandbox) and killed its stand-ins."""
        if idle < 3:
            return self.pace
        return min(self.pace * 2 ** min(idle - 2, IDLE_DOUBLINGS), max(self.pace, IDLE_WAIT))

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            writes = self.kube.writes
            try:
                self.refresh_excluded()
                self.step()
            except Exception as exc:  # a controller keeps running; the error is visible to tests
                self.errors = (self.errors + [f"{type(exc).__name__}: {exc}"])[-20:]
                log.warning("%s step failed: %s", self.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            # Nothing written for a few passes: poll less often (at most IDLE_WAIT), so a session's stand-ins do
            # not keep two cores busy LISTing an idle cluster; the first write brings back the normal pace.
            self.idle = self.idle + 1 if self.kube.writes == writes else 0
            stop_event.wait(self.idle_wait(self.idle))

    def _run_guarded(self, stop_event: threading.Event) -> None:
        """The thread's target: anything escaping ``run`` (a bug in the loop itself, not in a pass) is
        recorded with its traceback in ``self.died`` and ``self.errors`` and logged; ``runner.Handle.dead()``
        reports it, ``python -m tests.sim`` (the sandbox) then exits with the traceback instead of living on
        with a dead controller."""
        try:
            self.run(stop_event)
        except BaseException:  # noqa: B902 - the thread must not die silently
            import traceback
            self.died = traceback.format_exc()
            self.errors = (self.errors + [f"thread died: {self.died}"])[-20:]
            log.error("%s controller thread died:\n%s", self.name, self.died)
            if self.on_death is not None:
                self.on_death(self)

    def start(self) -> "StandIn":
        self._stop = threading.Event()
        self.died = None
        self._thread = threading.Thread(target=self._run_guarded, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop:
            self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self._thread = None


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition"):
    """Poll ``predicate`` (for tests running stand-ins in threads); returns its truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        val = predicate()
        if val:
            return val
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- volumes: tests/sim/volumes.py (re-exported here for the stand-ins and tests that import them from common)
from .volumes import PV_PROTECTION, PVC_PROTECTION, bind_pvc, finish_pvc_deletion, make_bound_pvc  # noqa: E402,F401
