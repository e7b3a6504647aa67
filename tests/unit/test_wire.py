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
