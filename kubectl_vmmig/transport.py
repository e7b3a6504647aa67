"""TLS and proxies for the API connection, following client-go transport/ and Go's net/http.

* TLS: transport.TLSConfigFor / rootCertPool (a CA that is not PEM is an error), tlsCacheKey's ServerName.
* Proxies: the cluster's ``proxy-url`` (clientcmd ClientConfig -> http.ProxyURL: used for every request,
  loopback included, and a dead one is an error, never bypassed), else the environment as
  golang.org/x/net/http/httpproxy reads it (HTTPS_PROXY for https, HTTP_PROXY for http, NO_PROXY; never
  for localhost or a loopback address).
* Nothing here prints a URL with its userinfo (``display``).
* Without a proxy, requests go over the standard library (wire.py); through one, over urllib3 (ProxiedPool).
"""
import os
import ssl
from urllib.parse import urlsplit

from . import errors
from .kubeconfig import split_userinfo


def display(url):
    """A URL as it may be printed: userinfo (user:password@) removed."""
    return split_userinfo(url)[0] if url else url


def ca_pem(acc):
    """The CA bundle bytes (file or data), or None."""
    if acc.ca_data:
        return acc.ca_data
    if acc.ca_file:
        try:
            with open(acc.ca_file, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise errors.BadInput(f"cannot load certificate authority {acc.ca_file}: {exc.strerror}",
                                  "check --certificate-authority or the kubeconfig") from None
    return None


def ssl_context(acc, exec_cert=None):
    """transport.TLSConfigFor: a configured CA is the only root (tls.Config.RootCAs = rootCertPool(CAData)); the
    system's roots only when none is configured; none at all when insecure. Loading the system bundle costs
    10-30 ms, so it is loaded only when it is used."""
    if acc.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        pem = ca_pem(acc)
        if pem is None:
            ctx = ssl.create_default_context()
        else:
            where = acc.ca_file or "certificate-authority-data"
            try:
                ctx = ssl.create_default_context(cadata=pem.decode("ascii"))
            except (UnicodeDecodeError, ssl.SSLError, ValueError):
                # rootCertPool: "unable to load root certificates: unable to parse bytes as PEM block"
                raise errors.BadInput(f"unable to load root certificates from {where}: not a PEM certificate",
                                      "put the CA certificate in PEM form in the kubeconfig") from None
    cert_file, key_file, tmp = acc.client_cert_file, acc.client_key_file, []
    cert_data, key_data = exec_cert or (acc.client_cert_data, acc.client_key_data)
    if cert_data or key_data:
        # ssl can only load a client key pair from files: write them 0600, load, delete at once.
        import tempfile  # only here: it pulls shutil, random, bz2, lzma...

        for data, name in ((cert_data, "cert"), (key_data, "key")):
            if data:
                fd, path = tempfile.mkstemp(prefix="vmstorage-", suffix="." + name)
                os.write(fd, data)
                os.close(fd)
                tmp.append(path)
                if name == "cert":
                    cert_file = path
                else:
                    key_file = path
    try:
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise errors.BadInput(f"cannot load client certificate/key: {exc}",
                              "check --client-certificate/--client-key or the kubeconfig")
    finally:
        for path in tmp:
            os.unlink(path)
    return ctx


def _split_host_port(entry):
    """net.SplitHostPort for a NO_PROXY entry: (host, port) or (entry, '') when it has no port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return (host, rest[1:]) if rest.startswith(":") else (entry, "")
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""


def _no_proxy_match(host, port, no_proxy):
    """httpproxy config.init + useProxy: '*', CIDRs, IPs and domains, each optionally with a port;
    'foo.com' matches foo.com and its subdomains, '.foo.com' / '*.foo.com' only the subdomains."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        phost, pport = _split_host_port(entry)
        if not phost or (pport and pport != str(port)):
            continue
        try:
            if ip == ipaddress.ip_address(phost):
                return True
            continue
        except ValueError:
            pass
        if phost.startswith("*."):
            phost = phost[1:]
        if host.endswith(phost if phost.startswith(".") else "." + phost) or host == phost:
            return True
    return False


def env_proxy(server):
    """golang.org/x/net/http/httpproxy FromEnvironment + ProxyFunc for one API server URL, or None."""
    parts = urlsplit(server)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def env(*names):
        return next((os.environ[n] for n in names if os.environ.get(n)), "")

    proxy = env("HTTPS_PROXY", "https_proxy") if parts.scheme == "https" else env("HTTP_PROXY", "http_proxy")
    if not proxy:
        return None
    import ipaddress

    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    if _no_proxy_match(host, port, env("NO_PROXY", "no_proxy")):
        return None
    if urlsplit(proxy).scheme not in ("http", "https", "socks5"):
        proxy = "http://" + proxy  # httpproxy parseProxy: a bare host:port means http
    return proxy


def proxy_for(acc):
    return acc.proxy_url or env_proxy(acc.server)


def open_pool(acc, ctx):
    """The connection pool for ``acc``: the standard library's (wire.DirectPool) unless a proxy is to be used."""
    proxy = proxy_for(acc)
    if proxy:
        return ProxiedPool(acc, ctx, proxy)
    from .wire import DirectPool

    return DirectPool(acc.server, ctx, server_hostname=acc.tls_server_name)


def pool_manager(acc, ctx, proxy):
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    kw = {"maxsize": 4, "retries": False}
    if acc.server.startswith("https"):
        kw["ssl_context"] = ctx
        if acc.tls_server_name:
            kw["server_hostname"] = acc.tls_server_name
            kw["assert_hostname"] = acc.tls_server_name
    bare, has_auth = split_userinfo(proxy)
    parts = urlsplit(proxy)
    if parts.scheme == "socks5":
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise errors.BadInput(f"the socks5 proxy {display(proxy)} needs the PySocks package",
                                  "pip install pysocks next to the plugin, or use an http proxy") from None
        # Go's socks5 dialer sends the host name to the proxy (remote DNS): urllib3 calls that socks5h.
        return SOCKSProxyManager("socks5h" + proxy[len("socks5"):], **kw)
    headers = None
    if has_auth:
        from urllib.parse import unquote

        headers = urllib3.make_headers(proxy_basic_auth=f"{unquote(parts.username or '')}:"
                                                        f"{unquote(parts.password or '')}")
    return urllib3.ProxyManager(bare, proxy_headers=headers, **kw)


class ProxiedPool:
    """urllib3 through a proxy, with wire.DirectPool's ``request`` and failures (wire.Failure)."""

    def __init__(self, acc, ctx, proxy):
        self._manager = pool_manager(acc, ctx, proxy)
        self._proxy = proxy

    def request(self, method, url, body=None, headers=(), timeout=None, stream=False):
        import urllib3

        from .wire import timeouts

        h = urllib3.HTTPHeaderDict()
        for name, value in headers:
            h.add(name, value)  # one header line per value (Impersonate-Group)
        connect, read, total = timeouts(timeout, stream)
        limits = {k: v for k, v in (("connect", connect), ("read", read), ("total", total)) if v is not None}
        try:
            resp = self._manager.request(method, url, body=body, headers=h, preload_content=not stream,
                                         timeout=urllib3.Timeout(**limits), redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise self.failure(exc) from None
        return _ProxiedResponse(resp, self.failure, stream)

    def failure(self, exc):
        """The wire.Failure for a urllib3 exception."""
        import urllib3

        from .wire import Failure

        x = urllib3.exceptions
        if isinstance(exc, x.SSLError):
            return Failure("tls", f"{exc.reason if hasattr(exc, 'reason') else exc}".splitlines()[0], "SSLError")
        # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
        if isinstance(exc, (x.ReadTimeoutError, x.ConnectTimeoutError)) and not isinstance(exc, x.NewConnectionError):
            return Failure("timeout", str(exc), type(exc).__name__)
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, x.SSLError):
            return self.failure(reason)
        if isinstance(reason, x.ProxyError):
            cause = reason.args[-1] if reason.args else reason
            text = str(getattr(cause, "reason", None) or cause).split(": ", 1)[-1].splitlines()[0]
            return Failure("proxy", text, type(exc).__name__, proxy=self._proxy)
        return Failure("connect", str(reason).split(": ", 1)[-1].splitlines()[0], type(exc).__name__)


class _ProxiedResponse:
    """A urllib3 response with wire.Response's surface; read errors become wire.Failure."""

    def __init__(self, resp, failure, stream):
        self._resp, self._failure = resp, failure
        self.status, self.reason, self.headers = resp.status, resp.reason, resp.headers
        self.data = None if stream else resp.data

    def _guard(self, fn, *args, **kw):
        import urllib3

        try:
            return fn(*args, **kw)
        except urllib3.exceptions.HTTPError as exc:
            raise self._failure(exc) from None

    def read(self):
        return self._guard(self._resp.read)

    def stream(self, amt=64 * 1024, decode_content=True):
        it = self._resp.stream(amt, decode_content=decode_content)
        while True:
            chunk = self._guard(next, it, b"")
            if not chunk:
                return
            yield chunk

    def iter_lines(self):
        from .wire import lines

        return lines(self.stream())

    def shutdown(self):
        shutdown = getattr(self._resp, "shutdown", None)  # urllib3 >= 2.3
        if shutdown is not None:
            shutdown()

    def release_conn(self):
        self._resp.release_conn()
