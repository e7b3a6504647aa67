"""kubectl_vmmig/wire.py against a local HTTP/1.1 server (http.server, keep-alive): connection reuse, a
connection the server closed while idle, a streamed body line by line, the read timeout of a stream."""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubectl_vmmig import wire


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked
    connections = []

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        Handler.connections.append(self.connection)

    def do_GET(self):
        if self.path == "/close-after":  # answers, then closes the connection it would have kept
            self._send(b'{"closing":true}')
            self.close_connection = True
            return
        if self.path.startswith("/watch"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in (b'{"type":"ADDED"}\n{"type":"MOD', b'IFIED"}\n', b'{"type":"DELETED"}\n'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                time.sleep(0.05)
            if self.path == "/watch-then-silence":
                time.sleep(2)
            self.wfile.write(b"0\r\n\r\n")
            return
        self._send(b'{"path":"%s"}' % self.path.encode())

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.connections = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_requests_reuse_one_keep_alive_connection(server):
    pool = wire.DirectPool(server, None)
    for i in range(3):
        resp = pool.request("GET", f"{server}/r{i}", headers=[("Accept", "application/json")], timeout=5)
        assert (resp.status, resp.data) == (200, b'{"path":"/r%d"}' % i)
    assert len(Handler.connections) == 1


def test_a_connection_the_server_closed_is_not_reused(server):
    pool = wire.DirectPool(server, None)
    assert pool.request("GET", server + "/close-after", timeout=5).status == 200
    time.sleep(0.1)
    resp = pool.request("GET", server + "/next", timeout=5)
    assert resp.data == b'{"path":"/next"}'
    assert len(Handler.connections) == 2


def test_a_stream_yields_each_line_as_it_arrives_and_the_connection_is_reused(server):
    pool = wire.DirectPool(server, None)
    resp = pool.request("GET", server + "/watch", timeout=5, stream=True)
    assert resp.data is None
    assert list(resp.iter_lines()) == [b'{"type":"ADDED"}', b'{"type":"MODIFIED"}', b'{"type":"DELETED"}']
    resp.release_conn()
    assert pool.request("GET", server + "/after", timeout=5).status == 200
    assert len(Handler.connections) == 1


def test_a_silent_stream_fails_with_the_read_timeout(server):
    pool = wire.DirectPool(server, None)
    resp = pool.request("GET", server + "/watch-then-silence", timeout=0.5, stream=True)
    got = []
    with pytest.raises(wire.Failure) as info:
        for line in resp.iter_lines():
            got.append(line)
    assert info.value.kind == "timeout"
    assert len(got) == 3  # every event before the silence was delivered


def test_a_refused_connection_says_so_in_urllib3s_words():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(wire.Failure) as info:
        wire.DirectPool(f"http://127.0.0.1:{port}", None).request("GET", f"http://127.0.0.1:{port}/version")
    assert info.value.kind == "connect"
    assert info.value.text.startswith("Failed to establish a new connection: ") and "refused" in info.value.text


def test_the_total_timeout_bounds_a_request_and_a_stream_each_read():
    assert wire.timeouts(30, stream=False) == (10, None, 30)
    assert wire.timeouts(2, stream=False) == (2, None, 2)
    assert wire.timeouts(70, stream=True) == (10, 70, None)
    assert wire.timeouts(None, stream=False) == (10, None, None)


class CannedServer:
    """Answers each request on a connection with the next canned bytes; records the request heads."""

    def __init__(self, answers, close_after=False):
        self.answers, self.close_after, self.heads = list(answers), close_after, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.answers:
            conn, _ = self.sock.accept()
            with conn:
                while self.answers:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(4096)
                        if not data:
                            break
                        head += data
                    if not head:
                        break
                    self.heads.append(head.split(b"\r\n\r\n")[0].decode())
                    conn.sendall(self.answers.pop(0))
                    if self.close_after:
                        break


def test_http11_framings_close_delimited_chunked_with_trailers_1xx_and_bodyless():
    srv = CannedServer([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        b"X-A: 1\r\nx-a: 2\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n",
                        b"HTTP/1.1 204 No Content\r\n\r\n",
                        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"])
    pool = wire.DirectPool(srv.url, None)
    resp = pool.request("GET", srv.url + "/a b/\u00e9", timeout=5)
    assert (resp.status, resp.data, resp.headers.get("X-A")) == (200, b"hello!", "1, 2")
    assert srv.heads[0].startswith("GET /a%20b/%C3%A9 HTTP/1.1\r\nHost: 127.0.0.1:")
    resp = pool.request("POST", srv.url + "/b", timeout=5)  # same connection, no body
    assert (resp.status, resp.data) == (204, b"")
    assert "Content-Length: 0" in srv.heads[1]
    srv.sock.close()  # the HTTP/1.0 answer ends with the connection: read to the end, then not kept
    resp = pool.request("GET", srv.url + "/c", timeout=5)
    assert resp.data == b"until the end" and pool._idle == []


def test_a_header_with_a_newline_is_refused_before_anything_is_sent():
    srv = CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(wire.Failure) as info:
        wire.DirectPool(srv.url, None).request("GET", srv.url + "/", headers=[("Authorization", "Bearer x\r\nX: y")])
    assert "CR or LF" in info.value.text and "Bearer" not in info.value.text
    assert srv.heads == []


def test_an_answer_that_is_not_http_is_a_connection_failure():
    srv = CannedServer([b"SSH-2.0-OpenSSH_9.6\r\n"], close_after=True)
    with pytest.raises(wire.Failure) as info:
        wire.DirectPool(srv.url, None).request("GET", srv.url + "/version", timeout=5)
    assert info.value.kind == "connect" and "not an HTTP answer" in info.value.text
