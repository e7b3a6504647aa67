"""Kube.watch: one streaming request (a chunked HTTP/1.1 answer, as kube-apiserver sends a watch), parsed line by
line; an ERROR event is the error its Status names (apimachinery watch.Error + metav1.Status), a stream that
breaks off is ConnectionFailed; the -v 6 log shows the request as kubectl does (GET …watch=true… 200 OK)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from kubectl_vmmig.kube import Kube
from kubectl_vmmig.kubeconfig import ClusterAccess


def serve(lines, truncate=False):
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:
                data = (json.dumps(line) + "\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            if truncate:
                self.wfile.write(b"40\r\n{\"type\":")  # a chunk cut short: the connection then closes
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(b"0\r\n\r\n")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, seen


def kube_for(srv, verbosity=0):
    return Kube(ClusterAccess(server=f"http://127.0.0.1:{srv.server_address[1]}", namespace="ns"),
                verbosity=verbosity)


def test_events_are_yielded_in_order_and_the_request_is_a_reflector_watch(capsys):
    vm = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "11"}}
    srv, seen = serve([{"type": "ADDED", "object": vm}, {"type": "BOOKMARK",
                                                         "object": {"metadata": {"resourceVersion": "20"}}}])
    try:
        _, events = kube_for(srv, verbosity=6).watch(R.VM, resource_version="10", timeout_seconds=301)
        assert [(t, o["metadata"]["resourceVersion"]) for t, o in events] == [("ADDED", "11"), ("BOOKMARK", "20")]
    finally:
        srv.shutdown()
    q = parse_qs(urlsplit(seen[0]).query)
    assert urlsplit(seen[0]).path == "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines"
    assert q == {"watch": ["true"], "resourceVersion": ["10"], "allowWatchBookmarks": ["true"],
                 "timeoutSeconds": ["301"]}
    log = capsys.readouterr().err
    assert "vm-storage] GET http://127.0.0.1:" in log and "watch=true" in log and " 200 OK in " in log


def test_an_error_event_is_the_error_its_status_names():
    srv, _ = serve([{"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                 "message": "too old resource version: 10 (42)",
                                                 "reason": "Expired", "code": 410}}])
    try:
        _, events = kube_for(srv).watch(R.VM, resource_version="10")
        with pytest.raises(errors.ApiError) as exc:
            list(events)
        assert exc.value.status == 410 and "too old resource version" in exc.value.message
    finally:
        srv.shutdown()


def test_a_stream_cut_short_is_a_lost_connection():
    srv, _ = serve([{"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "11"}}}],
                   truncate=True)
    try:
        _, events = kube_for(srv).watch(R.VM, resource_version="10")
        got = []
        with pytest.raises(errors.ConnectionFailed):
            for ev in events:
                got.append(ev)
        assert [t for t, _ in got] == ["ADDED"]
    finally:
        srv.shutdown()
