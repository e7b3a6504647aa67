"""The one API client: raw REST (wire.py: http.client; urllib3 through proxies), dicts in and out, a kubectl-style
request log.

Why not the kubernetes client's generated APIs: every object here is a custom resource handled as a
dict anyway, model deserialization costs time at N=1000 VMs, and we need exact control of the request
log (-v 6), impersonation headers (repeated Impersonate-Group) and retries. How to connect (kubeconfig,
TLS, proxies, credentials) follows kubectl's client-go: kubeconfig.py, transport.py, credentials.py.
"""
import json
import os
import sys
import time
from urllib.parse import quote, urlencode

from . import errors
from .kubeconfig import ClusterAccess, ConnectionOptions, resolve_access
from .resources import Resource

RETRY_STATUSES = {429, 500, 502, 503, 504}
# Deleting a user's volume is never part of a migration; this guard makes that a property of the client.
NEVER_DELETE = {("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("cdi.kubevirt.io", "datavolumes")}


def _log(msg):
    # klog-like prefix so the lines read like kubectl -v output.
    t = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1e6):06d}"
    sys.stderr.write(f"I{stamp} {os.getpid()} vm-storage] {msg}\n")


def shared(kube, key, read):
    """``read()`` once per command for ``key``: cluster-scoped facts the preflight of every namespace of a fleet
    needs (StorageClasses, the KubeVirt CR, nodes, served APIs) are read once, not once per namespace (nor twice
    per namespace: the plan's read and the engine's checks). A failed read is not kept (each caller meets it)."""
    memo = getattr(kube, "_shared", None)
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key]


def remember(kube, key, value) -> None:
    """What a read just proved, for ``shared(kube, key, ...)`` to answer (e.g. a LIST that succeeded: its API is
    served), so it is not asked again."""
    memo = getattr(kube, "_shared", None)
    if memo is not None:
        memo[key] = value


class Kube:
    """A connection to one API server. Create with ``Kube.connect(ConnectionOptions)``."""

    def __init__(self, access: ClusterAccess, verbosity=0, retries=5, max_backoff=8.0, on_retry=None):
        self.access = access
        self.verbosity = verbosity
        self.retries = retries
        self.max_backoff = max_backoff
        self.on_retry = on_retry  # callback(message) so a watcher can say "reconnecting"
        self.request_count = 0
        self._connected = False  # set by the first HTTP answer: later connection errors are outages to ride out
        self._pool = None
        self._pool_cert = None
        self._creds = None
        self._rules = {}    # namespace -> its SelfSubjectRulesReview status (can_i): one per namespace a command asks
        self._reviews = {}  # (verb, resource, group, namespace, subresource, name) -> can_i's answer
        self._shared = {}   # shared(): cluster-scoped preflight reads, once per command

    @classmethod
    def connect(cls, opts: ConnectionOptions, **kw):
        return cls(resolve_access(opts), verbosity=opts.verbosity, **kw)

    @property
    def namespace(self):
        return self.access.namespace

    # ---- transport: TLS/proxy in transport.py, identity in credentials.py ---------------------
    def _credentials(self):
        if self._creds is None:
            from .credentials import Credentials
            from .transport import ca_pem

            acc = self.access
            wants_ca = bool(acc.exec_config and acc.exec_config.get("provideClusterInfo"))
            self._creds = Credentials(acc, ca_pem=ca_pem(acc) if wants_ca else None)
        return self._creds

    def _base_headers(self):
        """(name, value) pairs: a name may repeat (one Impersonate-Group line per group, as the API server
        expects)."""
        creds = self._credentials()
        h = [("Accept", "application/json"), ("User-Agent", "kubectl-vm_storage")]
        auth = creds.authorization()
        if auth:
            h.append(("Authorization", auth))
        h.extend(creds.impersonation())
        return h

    def _pool_manager(self):
        cert = self._credentials().client_cert() if self.access.server.startswith("https") else None
        if self._pool is None or cert != self._pool_cert:  # an exec plugin rotated its client certificate
            from .transport import open_pool, ssl_context

            ctx = ssl_context(self.access, exec_cert=cert) if self.access.server.startswith("https") else None
            self._pool, self._pool_cert = open_pool(self.access, ctx), cert
        return self._pool

    def request(self, method, path, query=None, body=None, content_type="application/json",
                stream=False, timeout=None, retry=True):
        """One API call. Returns the decoded JSON body, or when ``stream`` the response (wire.Response:
        ``iter_lines()`` yields the body line by line as it arrives, each read bounded by ``timeout``; hand it back
        with ``release_conn()``; a read that fails raises wire.Failure, see ``connection_error``)."""
        from .wire import Failure

        url = self.access.server + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        headers = self._base_headers()
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers.append(("Content-Type", content_type))
        if timeout is None:
            timeout = self.access.timeout
        attempts = self.retries + 1 if retry else 1
        delay = 0.5
        for attempt in range(1, attempts + 1):
            start = time.monotonic()
            self.request_count += 1
            try:
                resp = self._pool_manager().request(method, url, body=data, headers=headers, timeout=timeout,
                                                    stream=stream)
            except Failure as exc:
                ms = int((time.monotonic() - start) * 1000)
                if self.verbosity >= 6:
                    _log(f"{method} {url}  in {ms} milliseconds ({exc.cause})")
                err = self.connection_error(exc)
                # Retry only an outage of a server we have already talked to; a wrong address or a cluster that
                # is down fails at once with one line, as kubectl does (no 15 s of back-off before the error).
                if attempt < attempts and self._connected and exc.kind != "tls":
                    # said at every verbosity: a silent pause while the API server is away looks like a hang
                    self._backoff(f"{err.message}; reconnecting in {delay:g}s (attempt {attempt}/{attempts - 1})",
                                  delay, always=True)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                raise err from None
            ms = int((time.monotonic() - start) * 1000)
            self._connected = True
            if self.verbosity >= 6:
                _log(f"{method} {url} {resp.status} {resp.reason or ''} in {ms} milliseconds")
            if resp.status in RETRY_STATUSES and attempt < attempts:
                wait = delay
                ra = resp.headers.get("Retry-After")
                if ra and ra.isdigit():
                    wait = min(float(ra), self.max_backoff)
                if stream:
                    resp.release_conn()
                self._backoff(f"API server answered {resp.status}; retrying", wait)
                delay = min(delay * 2, self.max_backoff)
                continue
            if resp.status == 401:
                self._credentials().forget_exec()  # exec.go maybeRefreshCreds: a new credential next time
            if resp.status >= 400:
                payload = resp.data if not stream else self._read_and_release(resp)
                raise self._status_error(method, path, resp.status, payload)
            if stream:
                return resp
            if self.verbosity >= 8 and resp.data:
                _log(f"Response Body: {resp.data[:1024].decode(errors='replace')}")
            return json.loads(resp.data) if resp.data else {}
        raise AssertionError("unreachable")

    def _backoff(self, message, wait, always=False):
        if self.on_retry:
            self.on_retry(message)
        elif self.verbosity >= 2:
            _log(message)
        elif always:
            sys.stderr.write(f"warning: {message}\n")
            sys.stderr.flush()
        time.sleep(wait)

    def connection_error(self, failure):
        """The one-line error for a wire.Failure (no HTTP answer, or a stream that broke)."""
        server = self.access.server
        if failure.kind == "tls":
            return errors.ConnectionFailed(
                f"TLS error talking to {server}: {failure.text}".splitlines()[0],
                hint="check the certificate authority (--certificate-authority) or --tls-server-name")
        if failure.kind == "timeout":
            return errors.ConnectionFailed(f"timed out talking to {server}",
                                           hint="check the network, or raise --request-timeout")
        if failure.kind == "proxy":
            from .transport import display

            return errors.ConnectionFailed(
                f"cannot reach the API server at {server} through the proxy {display(failure.proxy)} ({failure.text})",
                hint="check the cluster's proxy-url in the kubeconfig or HTTPS_PROXY/NO_PROXY")
        return errors.ConnectionFailed(f"cannot reach the API server at {server} ({failure.text})",
                                       hint="check the kubeconfig context and that the cluster is up")

    def _read_and_release(self, resp):
        from .wire import Failure

        try:
            return resp.read()
        except Failure:
            return b""
        finally:
            resp.release_conn()

    @staticmethod
    def _status_error(method, path, status, payload):
        try:
            body = json.loads(payload)
        except (ValueError, TypeError):
            body = {}
        message = body.get("message") or (payload or b"").decode(errors="replace")[:200] or f"HTTP {status}"
        return errors.api_error_for(status, message.splitlines()[0] if message else f"HTTP {status}",
                                    reason=body.get("reason"), body=body)

    # ---- resource verbs ----------------------------------------------------------------------
    def get(self, res: Resource, name, namespace=None):
        return self.request("GET", res.path(self._ns(res, namespace), name))

    def get_or_none(self, res: Resource, name, namespace=None):
        try:
            return self.get(res, name, namespace)
        except errors.NotFound:
            return None

    def list(self, res: Resource, namespace=None, label_selector=None, field_selector=None,
             all_namespaces=False):
        """One LIST request; returns the List object (items + metadata.resourceVersion)."""
        ns = None if all_namespaces else self._ns(res, namespace)
        q = {"labelSelector": label_selector, "fieldSelector": field_selector}
        # A LIST across the cluster answers "may I list this at cluster scope?" as a SelfSubjectAccessReview of
        # it would (the API server authorizes exactly that request), so can_i asks no review for it afterwards.
        asked = ("list", res.plural, res.group, None, None, None) if ns is None and not field_selector else None
        try:
            out = self.request("GET", res.path(ns), query=q)
        except errors.Forbidden as exc:
            if asked:
                self._reviews[asked] = (False, exc.message)
            raise
        if asked:
            self._reviews[asked] = (True, "")
        for item in out.get("items") or []:
            # LIST responses omit apiVersion/kind on items; restore them so items are complete objects.
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return out

    def items(self, res: Resource, namespace=None, **kw):
        return self.list(res, namespace, **kw).get("items") or []

    def create(self, res: Resource, body, namespace=None, dry_run=False):
        ns = self._ns(res, namespace or body.get("metadata", {}).get("namespace"))
        return self.request("POST", res.path(ns), query={"dryRun": "All" if dry_run else None}, body=body)

    def replace(self, res: Resource, body, namespace=None, dry_run=False):
        ns = self._ns(res, namespace or body["metadata"].get("namespace"))
        return self.request("PUT", res.path(ns, body["metadata"]["name"]),
                            query={"dryRun": "All" if dry_run else None}, body=body)

    def patch(self, res: Resource, name, patch, namespace=None, patch_type="merge", subresource=None,
              dry_run=False):
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        path = res.path(self._ns(res, namespace), name, subresource)
        return self.request("PATCH", path, query={"dryRun": "All" if dry_run else None}, body=patch,
                            content_type=ctype)

    def delete(self, res: Resource, name, namespace=None):
        if (res.group, res.plural) in NEVER_DELETE:
            raise AssertionError(f"refusing to delete {res.plural}/{name}: the plugin never deletes volumes")
        return self.request("DELETE", res.path(self._ns(res, namespace), name))

    def subresource(self, method, res: Resource, name, sub, namespace=None, body=None):
        """Call an aggregated subresource such as subresources.kubevirt.io/v1 .../virtualmachines/X/stop."""
        return self.request(method, res.subresource_path(self._ns(res, namespace), name, sub), body=body)

    def watch(self, res: Resource, namespace=None, label_selector=None, field_selector=None, resource_version=None,
              timeout_seconds=300, all_namespaces=False):
        """One WATCH request (``?watch=true&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T``, as
        client-go's Reflector.watch sends it). Returns once the server answered 200, so the caller knows it is
        connected; the returned iterator yields ``(type, object)`` until the server ends the watch after ``T``
        seconds. An ERROR event is raised as the ApiError its Status names (a compacted resourceVersion: 410,
        apimachinery watch.Error + metav1.Status); a connection that drops mid-stream as ConnectionFailed.
        A 410 or other error status on the request itself is raised by ``request``."""
        from .wire import Failure

        ns = None if all_namespaces else self._ns(res, namespace)
        q = {"allowWatchBookmarks": "true", "fieldSelector": field_selector, "labelSelector": label_selector,
             "resourceVersion": resource_version, "timeoutSeconds": str(int(timeout_seconds)), "watch": "true"}
        # The read timeout is the longest silence tolerated: the server ends the watch at timeoutSeconds (and sends
        # bookmarks about once a minute meanwhile), so a stream quiet for longer than that is a dead connection.
        resp = self.request("GET", res.path(ns), query=q, stream=True, timeout=timeout_seconds + 30, retry=False)

        def events():
            buf = b""
            try:
                for chunk in resp.stream(64 * 1024, decode_content=True):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        kind, obj = ev.get("type"), ev.get("object") or {}
                        if kind == "ERROR":  # reflector.go handleAnyWatch: apierrors.FromObject(event.Object)
                            raise errors.api_error_for(obj.get("code") or 500, obj.get("message") or "watch error",
                                                       reason=obj.get("reason"), body=obj)
                        yield kind, obj
            except (Failure, OSError) as exc:  # reset, truncated chunk, read timeout (wire.Response.stream)
                cause = exc.cause if isinstance(exc, Failure) else type(exc).__name__
                raise errors.ConnectionFailed(f"watch of {res.plural} interrupted ({cause})") from None
            finally:
                resp.release_conn()

        return resp, events()

    def server_version(self):
        return self.request("GET", "/version")

    def can_i(self, verb, resource, group="", namespace=None, subresource=None, name=None):
        """(allowed, reason). In a namespace: from the namespace's one SelfSubjectRulesReview (access_rules.py),
        a SelfSubjectAccessReview only when those rules do not allow it and are incomplete; cluster-scoped: a
        SelfSubjectAccessReview. Each answer is kept for the command (a fleet's namespaces share them)."""
        key = (verb, resource, group, namespace, subresource, name)
        if key not in self._reviews:
            self._reviews[key] = self._can_i(*key)
        return self._reviews[key]

    def _can_i(self, verb, resource, group, namespace, subresource, name):
        from .access_rules import rules_allow

        if namespace:
            status = self.rules_review(namespace)
            if status is not None:
                if rules_allow(status.get("resourceRules"), verb, group, resource, subresource, name):
                    return True, ""
                if not status.get("incomplete"):
                    return False, ""
        return self.access_review(verb, resource, group, namespace, subresource, name)

    def rules_review(self, namespace):
        """The status of a SelfSubjectRulesReview in ``namespace`` (what ``kubectl auth can-i --list`` shows),
        None when the server does not answer one (then each permission is asked on its own)."""
        if namespace not in self._rules:
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                    "spec": {"namespace": namespace}}
            try:
                out = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", body=body)
                self._rules[namespace] = out.get("status") or {}
            except (errors.NotFound, errors.Forbidden, errors.Invalid):
                self._rules[namespace] = None
        return self._rules[namespace]

    def access_review(self, verb, resource, group="", namespace=None, subresource=None, name=None):
        """SelfSubjectAccessReview: returns (allowed, reason)."""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                                "namespace": namespace, "subresource": subresource,
                                                "name": name}}}
        out = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        st = out.get("status") or {}
        return bool(st.get("allowed")), st.get("reason") or st.get("evaluationError") or ""

    def has_api(self, group, version):
        """Whether the API server serves group/version (CRDs installed)."""
        try:
            self.request("GET", f"/apis/{quote(group)}/{quote(version)}")
            return True
        except errors.NotFound:
            return False

    def _ns(self, res: Resource, namespace):
        if not res.namespaced:
            return None
        return namespace or self.access.namespace
