"""watchcache.CachedReads with a scripted API (the reflector loop of client-go tools/cache/reflector.go):
LIST once, WATCH from the List's resourceVersion, events applied, BOOKMARK moves RV only, 410 relists, a lost
connection is the readers' error until the watch is back."""
import queue
import threading
import time

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from kubectl_vmmig.watchcache import Backoff, CachedReads


def obj(name, rv, ns="ns", **extra):
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv)}, **extra}


class FakeKube:
    """``list`` answers ``lists`` in turn; each ``watch`` takes the next script from ``watches`` (a queue): an
    exception to raise at the request, or a list of events / exceptions ending the stream."""

    namespace, max_backoff, verbosity = "ns", 0.01, 0

    class access:
        timeout = None

    def __init__(self, lists):
        self.lists, self.watches, self.calls = list(lists), queue.Queue(), []

    def _ns(self, res, namespace):
        return namespace or self.namespace

    def list(self, res, namespace=None, label_selector=None, field_selector=None, all_namespaces=False):
        self.calls.append(("LIST", res.plural, namespace, label_selector))
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def watch(self, res, namespace=None, label_selector=None, field_selector=None, resource_version=None,
              timeout_seconds=None, all_namespaces=False):
        self.calls.append(("WATCH", res.plural, resource_version, timeout_seconds))
        script = self.watches.get(timeout=5)
        if isinstance(script, Exception):
            raise script

        def events():
            for ev in script:
                if isinstance(ev, Exception):
                    raise ev
                if ev == "hold":  # an idle stream: stays open until the test ends
                    threading.Event().wait(30)
                    return
                yield ev

        return None, events()


def eventually(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def names(reads):
    return [o["metadata"]["name"] for o in reads.items(R.VM, "ns")]


def test_list_once_then_events_keep_the_store_current():
    kube = FakeKube([{"metadata": {"resourceVersion": "10"}, "items": [obj("a", 5), obj("b", 6)]}])
    reads = CachedReads(kube)
    try:
        assert names(reads) == ["a", "b"]
        kube.watches.put([("MODIFIED", obj("a", 11, status={"x": 1})), ("DELETED", obj("b", 12)),
                          ("ADDED", obj("c", 13)), ("BOOKMARK", {"metadata": {"resourceVersion": "20"}}), "hold"])
        assert eventually(lambda: names(reads) == ["a", "c"])
        assert reads.items(R.VM, "ns")[0]["status"] == {"x": 1}
        assert eventually(lambda: reads.stores[("kubevirt.io", "virtualmachines", "ns", None, None)].rv == "20")
        lists = [c for c in kube.calls if c[0] == "LIST"]
        assert len(lists) == 1  # every read after the first is the store's
        watch = [c for c in kube.calls if c[0] == "WATCH"][0]
        assert watch[2] == "10" and 300 <= watch[3] <= 600  # from the List's RV; reflector.go's timeout range
    finally:
        reads.close()


def test_a_watch_the_server_ended_resumes_from_the_last_resource_version():
    kube = FakeKube([{"metadata": {"resourceVersion": "10"}, "items": []}])
    reads = CachedReads(kube)
    try:
        reads.items(R.VM, "ns")
        kube.watches.put([("ADDED", obj("a", 15))])  # then the server ends it (timeoutSeconds)
        kube.watches.put(["hold"])
        assert eventually(lambda: len([c for c in kube.calls if c[0] == "WATCH"]) == 2)
        assert [c[2] for c in kube.calls if c[0] == "WATCH"] == ["10", "15"]
        assert [c for c in kube.calls if c[0] == "LIST"] == [("LIST", "virtualmachines", "ns", None)]
    finally:
        reads.close()


@pytest.mark.parametrize("gone", ["status", "event"])
def test_410_gone_relists_instead_of_failing(gone):
    expired = errors.api_error_for(410, "too old resource version: 10 (42)")
    kube = FakeKube([{"metadata": {"resourceVersion": "10"}, "items": [obj("a", 5)]},
                     {"metadata": {"resourceVersion": "50"}, "items": [obj("z", 49)]}])
    reads = CachedReads(kube)
    try:
        assert names(reads) == ["a"]
        kube.watches.put(expired if gone == "status" else [expired])
        kube.watches.put(["hold"])
        assert eventually(lambda: names(reads) == ["z"])
        assert eventually(lambda: [c[2] for c in kube.calls if c[0] == "WATCH"] == ["10", "50"])
    finally:
        reads.close()


def test_a_lost_connection_is_the_readers_error_until_the_watch_is_back():
    lost = errors.ConnectionFailed("cannot reach the API server")
    kube = FakeKube([{"metadata": {"resourceVersion": "10"}, "items": [obj("a", 5)]}])
    reads = CachedReads(kube)
    try:
        reads.items(R.VM, "ns")
        kube.watches.put([("MODIFIED", obj("a", 11)), lost])  # the stream drops
        kube.watches.put(lost)  # the server is away: refused
        assert eventually(lambda: _raises(reads))
        kube.watches.put(["hold"])  # back: watch again from the last RV, no relist
        assert eventually(lambda: not _raises(reads))
        assert [c[2] for c in kube.calls if c[0] == "WATCH"] == ["10", "11", "11"]
        assert len([c for c in kube.calls if c[0] == "LIST"]) == 1
    finally:
        reads.close()


def _raises(reads):
    try:
        reads.items(R.VM, "ns")
        return False
    except errors.ConnectionFailed:
        return True


def test_a_kind_not_served_is_asked_again_only_after_the_recheck_period():
    now = [0.0]
    kube = FakeKube([errors.NotFound("not found", status=404), errors.NotFound("not found", status=404)])
    reads = CachedReads(kube, recheck_seconds=300, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(errors.NotFound):
            reads.items(R.VMSM_PLAN, None, all_namespaces=True)
    assert len(kube.calls) == 1
    now[0] = 301
    with pytest.raises(errors.NotFound):
        reads.items(R.VMSM_PLAN, None, all_namespaces=True)
    assert len(kube.calls) == 2


def test_wait_returns_soon_after_a_change_and_otherwise_after_the_interval():
    reads = CachedReads(FakeKube([]), coalesce_seconds=0.05, min_frame_seconds=0)
    t0 = time.monotonic()
    reads.wait(0.3)
    assert time.monotonic() - t0 >= 0.29  # nothing changed: the tick
    threading.Timer(0.05, reads.changed.set).start()
    t0 = time.monotonic()
    reads.wait(10)
    assert time.monotonic() - t0 < 1.0


def test_backoff_doubles_to_the_cap_and_resets_after_two_quiet_minutes():
    now = [0.0]
    b = Backoff(cap=8.0, clock=lambda: now[0], rand=lambda: 0.0)
    assert [b.delay() for _ in range(6)] == [0.8, 1.6, 3.2, 6.4, 8.0, 8.0]
    now[0] = 200.0
    assert b.delay() == 0.8


def test_a_kind_that_may_be_listed_but_not_watched_is_listed_at_each_refresh():
    page = {"metadata": {"resourceVersion": "10"}, "items": [obj("a", 5)]}
    kube = FakeKube([page, page, {"metadata": {"resourceVersion": "12"}, "items": [obj("a", 5), obj("b", 11)]}])
    kube.watches.put(errors.Forbidden('virtualmachines is forbidden: cannot watch', status=403))
    reads = CachedReads(kube)
    try:
        assert names(reads) == ["a"]
        assert eventually(lambda: reads.stores[("kubevirt.io", "virtualmachines", "ns", None, None)].polled)
        assert names(reads) == ["a"] and names(reads) == ["a", "b"]  # a LIST each: no error, no stale answer
        assert [c[0] for c in kube.calls] == ["LIST", "WATCH", "LIST", "LIST"]
    finally:
        reads.close()
