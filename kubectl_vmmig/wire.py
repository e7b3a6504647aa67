"""HTTP/1.1 to the API server on socket + ssl (messages: http11.py): every connection without a proxy.

Why not urllib3 here: importing it costs about 45 ms on every command (it pulls logging, email, hashlib,
importlib.metadata, zipfile... besides http.client and ssl), more than twice the request itself; talking to one
API server without a proxy needs a socket, TLS and HTTP/1.1 framing. Connections through a proxy (CONNECT
tunnels, TLS to an https proxy, socks5) keep urllib3: ``transport.ProxiedPool``, with the same ``request`` and
``Response`` shapes.

What it keeps from urllib3's HTTPConnectionPool, so both paths behave alike: idle keep-alive connections are
reused after a check that the server has not closed them (urllib3 util/connection.py is_connection_dropped),
the connect timeout bounds TCP connect + TLS handshake, the read timeout what is left of the request's total
(connectionpool.py _make_request / util/timeout.py Timeout.read_timeout), and failures keep urllib3's wording
("Failed to establish a new connection: ...", "Failed to resolve 'host' (...)", connection.py _new_conn).
Like Go's net/http (transport.go persistConn.shouldRetryRequest, Request.isReplayable), a replayable request
that finds its reused connection closed by the server is sent once more on a new connection.
"""
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from . import http11

REPLAYABLE = {"GET", "HEAD", "OPTIONS", "TRACE"}  # net/http Request.isReplayable
STALE = (http11.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Failure(Exception):
    """No HTTP answer. ``kind``: 'tls', 'timeout', 'connect' or 'proxy'; ``text``: the cause in one line;
    ``cause``: the name of what failed (for the -v 6 log); ``proxy``: the proxy URL (kind 'proxy')."""

    def __init__(self, kind, text, cause, proxy=None):
        super().__init__(text)
        self.kind, self.text, self.cause, self.proxy = kind, text, cause, proxy


def timeouts(seconds, stream):
    """(connect, read, total) seconds for one request (None: unbounded). ``--request-timeout`` bounds the whole
    request, as kubectl's http.Client.Timeout does; a stream (a watch) gets it as the bound of each read."""
    if stream or not seconds:
        return min(seconds or 10, 10), seconds or None, None
    return min(seconds, 10), None, seconds


def failure(exc, host):
    """The Failure for an exception of socket, ssl or http11."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, socket.timeout):  # before OSError: a subclass (TimeoutError since 3.10), also TLS handshakes
        return Failure("timeout", str(exc) or "timed out", "TimeoutError")
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return Failure("tls", str(exc).splitlines()[0], "SSLError")
    if isinstance(exc, socket.gaierror):
        return Failure("connect", f"Failed to resolve '{host}' ({exc})", "NameResolutionError")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return Failure("connect", text, type(exc).__name__)


def lines(chunks):
    """Split a stream of byte chunks into lines (without the newline); the last one may lack it."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        if b"\n" in chunk:
            *complete, buf = buf.split(b"\n")
            yield from complete
    if buf:
        yield buf


class _Connection:
    """One TCP (+ TLS) connection; ``server_hostname``: the TLS name checked and sent as SNI (tls-server-name)."""

    def __init__(self, host, port, ctx, server_hostname):
        self.host, self.port, self._ctx, self._sni = host, port, ctx, server_hostname or host
        self.sock = self.fp = None

    def connect(self, timeout):
        # An ASCII name goes as bytes: str names are IDNA-encoded by getaddrinfo and ssl (_encode_hostname), which
        # imports encodings.idna + stringprep + unicodedata (~2 ms of every start) to give the same bytes back.
        host, sni = (n.encode("ascii") if isinstance(n, str) and n.isascii() else n for n in (self.host, self._sni))
        try:
            sock = socket.create_connection((host, self.port), timeout)
        except (socket.timeout, socket.gaierror):
            raise
        except OSError as exc:  # urllib3 connection.py _new_conn: NewConnectionError
            raise Failure("connect", f"Failed to establish a new connection: {exc}", "NewConnectionError") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client and Go do
            if self._ctx is not None:
                sock = self._ctx.wrap_socket(sock, server_hostname=sni)
        except BaseException:
            sock.close()
            raise
        self.sock, self.fp = sock, sock.makefile("rb")

    def close(self):
        for part in (self.fp, self.sock):
            if part is not None:
                part.close()
        self.sock = self.fp = None


def _dropped(conn):
    """urllib3 util/connection.py is_connection_dropped: an idle connection that is readable has been closed
    (or sent something unasked, which makes it unusable just the same)."""
    try:
        pending = conn.sock.pending() if isinstance(conn.sock, ssl.SSLSocket) else 0
        return bool(pending or select.select([conn.sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Response:
    """``status``, ``reason``, ``headers`` (``.get``, case-insensitive), ``data`` (the body, unless streamed);
    a streamed body is read with ``stream``/``iter_lines`` (each read bounded by the read timeout) and handed
    back with ``release_conn``."""

    def __init__(self, raw, conn, pool):
        self._raw, self._conn, self._pool = raw, conn, pool
        self.status, self.reason, self.headers = raw.status, raw.reason, raw.msg
        self.data = None

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            self._conn.close()
            raise failure(exc, self._pool.host) from None

    def read(self):
        return self._guard(self._raw.read)

    def stream(self, amt=64 * 1024, decode_content=True):
        """The body as it arrives, in pieces of at most ``amt`` bytes (``decode_content``: urllib3's signature;
        no Accept-Encoding is sent, so there is nothing to decode)."""
        while True:
            chunk = self._guard(self._raw.read1, amt)
            if not chunk:
                return
            yield chunk

    def iter_lines(self):
        """The body line by line (without the newline), as each line arrives: a watch's events."""
        return lines(self.stream())

    def shutdown(self):
        """Unblock a read in progress in another thread (status -w stopping its watches): it then fails."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def release_conn(self):
        if self._raw.isclosed() and not self._raw.will_close:  # read to the end: it can carry the next request
            self._pool.put(self._conn)
        else:
            self._raw.close()
            self._conn.close()


class DirectPool:
    """Keep-alive connections to one API server (``maxsize`` idle at most)."""

    def __init__(self, server, ctx, server_hostname=None, maxsize=4):
        parts = urlsplit(server)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host_header = parts.netloc  # Go's net/http: Host is the URL's host[:port] as written
        self._ctx = ctx if parts.scheme == "https" else None
        self._sni = server_hostname
        self._maxsize = maxsize
        self._idle = []

    def _get(self):
        """(connection, whether it already carried a request)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.sock is not None and not _dropped(conn):
                return conn, True
            conn.close()
        return _Connection(self.host, self.port, self._ctx, self._sni), False

    def put(self, conn):
        if conn.sock is not None and len(self._idle) < self._maxsize:
            self._idle.append(conn)
        else:
            conn.close()

    def request(self, method, url, body=None, headers=(), timeout=None, stream=False):
        """Send one request (``url``: this server's URL; ``headers``: (name, value) pairs, names may repeat)."""
        connect_timeout, read_timeout, total = timeouts(timeout, stream)
        target = (url[len(self._origin):] if url.startswith(self._origin) else url) or "/"
        if isinstance(body, str):
            body = body.encode("utf-8")
        start = time.monotonic()
        for attempt in (1, 2):
            conn, reused = self._get()
            try:
                if conn.sock is None:
                    conn.connect(connect_timeout)
                if total is not None:
                    read_timeout = total - (time.monotonic() - start)
                    if read_timeout <= 0:
                        raise socket.timeout("timed out")
                conn.sock.settimeout(read_timeout)
                http11.write_request(conn.sock, method, target, self._host_header, headers, body)
                raw = http11.read_response(conn.fp, method)
            except STALE as exc:
                conn.close()
                if reused and attempt == 1 and method in REPLAYABLE:
                    continue  # the server closed the idle connection as we sent: a new one
                raise failure(exc, self.host) from None
            except Exception as exc:
                conn.close()
                raise failure(exc, self.host) from None
            resp = Response(raw, conn, self)
            if not stream:
                resp.data = resp.read()
                resp.release_conn()
            return resp
        raise AssertionError("unreachable")
