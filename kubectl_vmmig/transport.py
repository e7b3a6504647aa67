"""TLS and proxies for the API connection, following client-go transport/ and Go's net/http.

* TLS: transport.TLSConfigFor / rootCertPool (a CA that is not PEM is an error), tlsCacheKey's ServerName.
* Proxies: the cluster's ``proxy-url`` (clientcmd ClientConfig -> http.ProxyURL: used for every request,
  loopback included, and a dead one is an error, never bypassed), else the environment as
  golang.org/x/net/http/httpproxy reads it (HTTPS_PROXY for https, HTTP_PROXY for http, NO_PROXY; never
  for localhost or a loopback address).
* Nothing here prints a URL with its userinfo (``display``).
"""
import os
import ssl
import tempfile
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
    ctx = ssl.create_default_context()
    if acc.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        pem = ca_pem(acc)
        if pem is not None:
            where = acc.ca_file or "certificate-authority-data"
            try:
                ctx.load_verify_locations(cadata=pem.decode("ascii"))
            except (UnicodeDecodeError, ssl.SSLError, ValueError):
                # rootCertPool: "unable to load root certificates: unable to parse bytes as PEM block"
                raise errors.BadInput(f"unable to load root certificates from {where}: not a PEM certificate",
                                      "put the CA certificate in PEM form in the kubeconfig") from None
    cert_file, key_file, tmp = acc.client_cert_file, acc.client_key_file, []
    cert_data, key_data = exec_cert or (acc.client_cert_data, acc.client_key_data)
    if cert_data or key_data:
        # ssl can only load a client key pair from files: write them 0600, load, delete at once.
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


def pool_manager(acc, ctx):
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    kw = {"maxsize": 4, "retries": False}
    if acc.server.startswith("https"):
        kw["ssl_context"] = ctx
        if acc.tls_server_name:
            kw["server_hostname"] = acc.tls_server_name
            kw["assert_hostname"] = acc.tls_server_name
    proxy = proxy_for(acc)
    if not proxy:
        return urllib3.PoolManager(**kw)
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
