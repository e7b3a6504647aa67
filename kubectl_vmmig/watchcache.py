"""Cached reads for ``status -w``: each LIST answered once, then kept current by a WATCH (client-go's reflector).

``CachedReads(kube)`` stands where a ``Kube`` stands. ``items(res, ns, label_selector=…, all_namespaces=…)`` is
answered from a store per (kind, namespace, selectors): the first call LISTs (in the caller's thread, so its
errors reach the caller as a LIST's would), and a thread then follows client-go tools/cache/reflector.go:

* ListAndWatchWithContext: LIST, remember the List's ``metadata.resourceVersion``, then Reflector.watch: WATCH
  ``?watch=true&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T``, T random in [5 min, 10 min]
  (defaultMinWatchTimeout, "random in [minWatchTimeout, 2*minWatchTimeout]" to spread the load), and bounded by
  ``--request-timeout`` when one is set (client-go's http.Client.Timeout ends a watch there too).
* handleAnyWatch: ADDED/MODIFIED replace the object, DELETED removes it, BOOKMARK only moves RV, every event's
  ``metadata.resourceVersion`` becomes the RV to resume from; an ERROR event is the error its Status names.
* A watch the server ended (its timeout): watch again from RV at once. A 410 (``isExpiredError``: the RV was
  compacted, as an HTTP status or an ERROR event): LIST again (``relistResourceVersion`` falls back to "", the
  consistent read; we always LIST that way). A dropped connection, 429 or 5xx (``isWatchErrorRetriable``,
  IsInternalError): back off and watch again from RV; a watch that ends in under a second with no event
  (VeryShortWatchError) backs off too.
* Back-off as the reflector's ``wait.Backoff``: 800 ms, doubling, jitter 1.0, reset after 2 min without trouble;
  capped at ``kube.max_backoff`` (8 s), not 30 s, because a person is watching the view.

While a store's connection is down, ``items`` raises its ConnectionFailed, so the follow loop says "reconnecting"
and bounds the outage as before; once the watch is back (or relisted) the store answers again. A kind that is not
served (404) or not readable (403) is remembered and asked again only every ``recheck_seconds``; a kind that
may be listed but not watched (a WATCH answered 403) is LISTed at each refresh instead, as before watches.
``wait(interval)`` returns when an event changed a store (after a short pause that gathers a burst into one
frame), else after ``interval``: the view redraws elapsed times on ticks without a request.
"""
import random
import threading
import time

from . import errors

MIN_WATCH_TIMEOUT = 300.0  # reflector.go defaultMinWatchTimeout; the maximum is twice it
BACKOFF_INIT, BACKOFF_FACTOR, BACKOFF_JITTER, BACKOFF_RESET = 0.8, 2.0, 1.0, 120.0  # reflector.go defaultBackoff*
TRANSIENT = (429, 500, 502, 503, 504)


def _key_of(obj):
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name") or ""


class Backoff:
    """wait.Backoff.DelayWithReset as NewReflectorWithOptions builds it (see the module doc)."""

    def __init__(self, cap, clock=time.monotonic, rand=random.random):
        self.cap, self.clock, self.rand = cap, clock, rand
        self.step, self.last = BACKOFF_INIT, None

    def delay(self):
        now = self.clock()
        if self.last is not None and now - self.last >= BACKOFF_RESET:
            self.step = BACKOFF_INIT
        self.last = now
        d = min(self.step, self.cap)
        self.step = min(self.step * BACKOFF_FACTOR, self.cap)
        return min(d + self.rand() * BACKOFF_JITTER * d, self.cap)


class Store:
    """The objects of one LIST+WATCH, the RV to resume from, and the connection's error while it is down."""

    def __init__(self):
        self.lock = threading.Lock()
        self.objects, self.rv, self.error = {}, None, None
        self.polled = False  # the WATCH was forbidden: readers LIST instead (CachedReads.items)

    def replace(self, items, rv):  # reflector.syncWith
        with self.lock:
            self.objects = {_key_of(o): o for o in items}
            self.rv, self.error = rv, None

    def apply(self, kind, obj):
        """One watch event; True when an object changed (not a bookmark)."""
        with self.lock:
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.rv = rv
            if kind in ("ADDED", "MODIFIED"):
                self.objects[_key_of(obj)] = obj
            elif kind == "DELETED":
                self.objects.pop(_key_of(obj), None)
            else:
                return False
            return True

    def items(self):
        with self.lock:
            if self.error is not None:
                raise self.error
            return [self.objects[k] for k in sorted(self.objects)]  # a LIST's order: namespace, then name


class Reflector(threading.Thread):
    """Keeps one Store current (tools/cache/reflector.go, see the module doc). Daemon: never holds up exit."""

    def __init__(self, kube, res, query, store, changed, stopping, log):
        super().__init__(daemon=True, name=f"watch-{res.plural}")
        self.kube, self.res, self.query, self.store = kube, res, query, store
        self.changed, self.stopping, self.log = changed, stopping, log
        self.backoff = Backoff(getattr(kube, "max_backoff", 8.0))
        self.response = None
        self.relists = 0

    def _timeout_seconds(self):
        t = MIN_WATCH_TIMEOUT + random.random() * MIN_WATCH_TIMEOUT  # reflector.go watch(): timeoutSeconds
        limit = getattr(getattr(self.kube, "access", None), "timeout", None)
        return max(1, int(min(t, limit) if limit else t))

    def _relist(self):
        out = self.kube.list(self.res, **self.query)
        self.store.replace(out.get("items") or [], (out.get("metadata") or {}).get("resourceVersion"))
        self.relists += 1
        self.changed.set()

    def _fail(self, exc):
        """Readers get the error while it lasts (a lost connection or 5xx: the view says "reconnecting" and bounds
        the outage; a 403/404: the answer a LIST would give), then back off."""
        with self.store.lock:
            self.store.error = exc
        self.changed.set()
        self.stopping.wait(self.backoff.delay())

    def run(self):
        relist = False
        while not self.stopping.is_set():
            try:
                if relist:
                    self._relist()
                    relist = False
                started = time.monotonic()
                try:
                    self.response, events = self.kube.watch(self.res, resource_version=self.store.rv,
                                                            timeout_seconds=self._timeout_seconds(), **self.query)
                except errors.Forbidden as exc:
                    # Allowed to list, not to watch: the readers LIST at each refresh, as status -w did before
                    # it watched. Nothing is lost but requests.
                    self.log(f"cannot watch {self.res.plural} ({exc.message}); listing at each refresh")
                    self.store.polled = True
                    return
                with self.store.lock:
                    self.store.error = None  # connected again: the store (resumed from RV) is current
                count = 0
                for kind, obj in events:
                    obj.setdefault("apiVersion", self.res.api_version)
                    obj.setdefault("kind", self.res.kind)
                    count += 1
                    if self.store.apply(kind, obj):
                        self.changed.set()
                if count == 0 and time.monotonic() - started < 1.0:  # reflector.go VeryShortWatchError
                    self.stopping.wait(self.backoff.delay())
            except errors.ApiError as exc:
                if self.stopping.is_set():
                    return
                if exc.status == 410:  # isExpiredError: "too old resource version"; relist, no back-off
                    self.log(f"watch of {self.res.plural}: {exc.message}; listing again")
                    relist = True
                    continue
                self.log(f"watch of {self.res.plural} failed: {exc.message}; retrying")
                self._fail(exc)
                # After a 403/404 (a role or CRD removed), a plain re-watch cannot tell what changed meanwhile.
                relist = relist or not (isinstance(exc, errors.ConnectionFailed) or exc.status in TRANSIENT)
            except ValueError as exc:  # a line that is not JSON: the stream is not trustworthy any more
                self.log(f"watch of {self.res.plural}: bad event ({exc}); listing again")
                relist = True
                self.stopping.wait(self.backoff.delay())

    def stop(self):
        resp = self.response
        if resp is not None:
            try:
                resp.shutdown()  # wire.Response.shutdown (urllib3 >= 2.3 through a proxy): unblocks run()'s read
            except Exception:  # noqa: BLE001 - closing on the way out
                pass


class CachedReads:
    """A Kube whose ``items`` are answered from watched stores; every other attribute is the Kube's own."""

    def __init__(self, kube, recheck_seconds=300.0, coalesce_seconds=0.2, min_frame_seconds=0.5,
                 clock=time.monotonic):
        self.kube = kube
        self.recheck_seconds, self.coalesce, self.min_frame = recheck_seconds, coalesce_seconds, min_frame_seconds
        self.clock = clock
        self.changed, self.stopping = threading.Event(), threading.Event()
        self.stores, self.reflectors, self.refused = {}, {}, {}
        self._last_frame = None

    def __getattr__(self, name):
        return getattr(self.kube, name)

    def _log(self, message):
        if getattr(self.kube, "verbosity", 0) >= 4:
            from .kube import _log

            _log(message)

    def items(self, res, namespace=None, label_selector=None, field_selector=None, all_namespaces=False):
        ns = None if all_namespaces else self.kube._ns(res, namespace)
        key = (res.group, res.plural, ns, label_selector, field_selector)
        store = self.stores.get(key)
        if store is not None and store.polled:
            out = self.kube.list(res, **self.reflectors[key].query)
            store.replace(out.get("items") or [], (out.get("metadata") or {}).get("resourceVersion"))
        if store is not None:
            return store.items()
        refused = self.refused.get(key)
        if refused and self.clock() - refused[1] < self.recheck_seconds:
            raise refused[0]  # not served / not allowed: asked again only every recheck_seconds
        query = {"namespace": ns, "label_selector": label_selector, "field_selector": field_selector,
                 "all_namespaces": ns is None}
        try:
            out = self.kube.list(res, **query)
        except (errors.NotFound, errors.Forbidden) as exc:
            self.refused[key] = (exc, self.clock())
            raise
        self.refused.pop(key, None)
        store = Store()
        store.replace(out.get("items") or [], (out.get("metadata") or {}).get("resourceVersion"))
        self.stores[key] = store
        reflector = Reflector(self.kube, res, query, store, self.changed, self.stopping, self._log)
        self.reflectors[key] = reflector
        reflector.start()
        return store.items()

    def wait(self, interval):
        """Until a store changed (then a short pause gathers the burst) or ``interval`` passed."""
        if self._last_frame is not None:  # at most one frame per min_frame: a busy fleet must not eat the CPU
            rest = self.min_frame - (self.clock() - self._last_frame)
            if rest > 0:
                self.stopping.wait(rest)
        if self.changed.wait(interval):
            self.stopping.wait(self.coalesce)
        self.changed.clear()
        self._last_frame = self.clock()

    def close(self):
        self.stopping.set()
        for r in self.reflectors.values():
            r.stop()
