"""HTTP/1.1 messages on one connection (RFC 9112): the part of http.client that talking to an API server needs.

Why not http.client: it imports the email package (parser, feedparser, policies, utils -> calendar, random...)
to parse header lines, and http's HTTPStatus enum: ~15 ms of every command's start-up, more than the request.
This follows CPython's Lib/http/client.py and keeps its limits and checks:
* the request (putrequest/putheader/endheaders): request line, Host, ``Accept-Encoding: identity``, the caller's
  headers (a name may repeat), Content-Length for a body and 0 for POST/PUT/PATCH without one; a header with
  CR or LF is refused (_is_illegal_header_value); bytes urllib3 would percent-encode in a path
  (util/url.py _encode_invalid_chars: controls, space, non-ASCII) are percent-encoded.
* the response (HTTPResponse.begin, _read_status, _check_close, _read_chunked): the status line (1xx
  informational answers skipped), at most 100 header lines of at most 65 536 bytes (_MAXHEADERS, _MAXLINE), the
  body framed by chunked Transfer-Encoding, else Content-Length, else the end of the connection; no body for
  HEAD, 1xx, 204 and 304; HTTP/1.0 closes unless keep-alive.
"""
MAXLINE = 65536
MAXHEADERS = 100
BODYLESS = {204, 304}


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection without answering (http.client.RemoteDisconnected)."""


class BadResponse(Exception):
    """Not an HTTP/1.x answer, or one that ended too early."""


class Headers(dict):
    """Response headers by lower-case name; a repeated one joined with ', ' (RFC 9110 section 5.3)."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


def _percent_encode(target):
    raw = target.encode("utf-8")
    if all(0x20 < b < 0x7F for b in raw):
        return raw
    return b"".join(bytes((b,)) if 0x20 < b < 0x7F else b"%%%02X" % b for b in raw)


def write_request(sock, method, target, host, headers, body):
    """Send one request. ``headers``: (name, value) pairs; ``body``: bytes or None."""
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), _percent_encode(target)),
             b"Host: " + host.encode("idna" if not host.isascii() else "ascii"), b"Accept-Encoding: identity"]
    for name, value in headers:
        if any(c in name or c in value for c in "\r\n"):
            raise ValueError(f"Invalid header {name!r}: a header cannot hold CR or LF")
        lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: %d" % len(body or b""))
    sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))


def _line(fp):
    line = fp.readline(MAXLINE + 1)
    if len(line) > MAXLINE:
        raise BadResponse("header line longer than %d bytes" % MAXLINE)
    return line


def _status(fp):
    line = _line(fp)
    if not line:
        raise RemoteDisconnected("Remote end closed connection without response")
    parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or not 100 <= int(parts[1]) <= 999:
        raise BadResponse(f"not an HTTP answer: {line[:80]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _headers(fp):
    headers, last = Headers(), None
    for _ in range(MAXHEADERS + 1):
        line = _line(fp)
        if line in (b"\r\n", b"\n", b""):
            return headers
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last:  # obsolete line folding: the previous header goes on
            headers[last] += " " + text.strip()
            continue
        name, sep, value = text.partition(":")
        if not sep:
            continue  # not a header line: http.client's parser records a defect and goes on
        last, value = name.strip().lower(), value.strip()
        headers[last] = headers[last] + ", " + value if last in headers else value
    raise BadResponse("got more than %d headers" % MAXHEADERS)


def read_response(fp, method):
    """Read the status line and headers from ``fp`` (a buffered reader on the socket); the body is left to
    the returned Response."""
    while True:
        version, status, reason = _status(fp)
        if status >= 200 or status == 101:
            break
        _headers(fp)  # 1xx informational: its headers, then the real answer
    headers = _headers(fp)
    conn = (headers.get("connection") or "").lower()
    if version == "HTTP/1.1":
        will_close = "close" in conn
    else:
        will_close = "keep-alive" not in conn and not headers.get("keep-alive")
    chunked = (headers.get("transfer-encoding") or "").lower().rsplit(",", 1)[-1].strip() == "chunked"
    length = None
    if method == "HEAD" or status in BODYLESS or status < 200:
        length, chunked = 0, False
    elif not chunked and headers.get("content-length"):
        try:
            length = int(headers.get("content-length"))
        except ValueError:
            length = None
        if length is not None and length < 0:
            length = None
    if length is None and not chunked:
        will_close = True  # the body ends with the connection
    return Response(fp, status, reason, headers, will_close, length, chunked)


class Response:
    """One response; the body is read with ``read()`` (all of it) or ``read1(n)`` (what has arrived, at most n)."""

    def __init__(self, fp, status, reason, headers, will_close, length, chunked):
        self._fp, self.status, self.reason, self.msg = fp, status, reason, headers
        self.will_close, self._length, self._chunked = will_close, length, chunked
        self._chunk_left = None  # bytes left of the current chunk; None: a chunk-size line comes next
        self._done = length == 0 and not chunked

    def isclosed(self):
        """The whole body has been read."""
        return self._done

    def close(self):
        self._done = True

    def read(self):
        if self._length is not None and not self._done:
            data = self._fp.read(self._length)
            if len(data) < self._length:
                raise BadResponse(f"the connection ended {self._length - len(data)} bytes before the body did")
            self._length, self._done = 0, True
            return data
        parts = []
        while True:
            chunk = self.read1(64 * 1024)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def read1(self, amt):
        if self._done:
            return b""
        if self._chunked:
            return self._read1_chunked(amt)
        if self._length is None:  # until the server closes
            data = self._fp.read1(amt)
            self._done = not data
            return data
        data = self._fp.read1(min(amt, self._length))
        if not data:
            raise BadResponse(f"the connection ended {self._length} bytes before the body did")
        self._length -= len(data)
        self._done = self._length == 0
        return data

    def _read1_chunked(self, amt):
        if not self._chunk_left:
            if self._chunk_left == 0:
                _line(self._fp)  # the CRLF after a chunk's data
            size_line = _line(self._fp)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadResponse(f"bad chunk size line {size_line[:40]!r}") from None
            if size == 0:
                while _line(self._fp) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
            self._chunk_left = size
        data = self._fp.read1(min(amt, self._chunk_left))
        if not data:
            raise BadResponse("the connection ended inside a chunk")
        self._chunk_left -= len(data)
        return data
