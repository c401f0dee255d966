"""A reverse proxy in front of a real model server that injects faults on request.

The thing under test is our HTTP scoring client, so the faults are the ones a real endpoint or
load balancer produces: a late answer, a 5xx, a body that is not JSON, the wrong number of rows,
a row that is not probabilities, a connection closed without an answer. Faults are queued with
``inject(mode, times)`` and consumed one per request; with none queued the request is forwarded
to the upstream unchanged. It also records the headers of each request it sees.

Runs in a thread of the test process on 127.0.0.1 (HTTP/1.1, keep-alive, like the servers).
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    """``FaultProxy(upstream_base_url)``; ``base_url`` is where clients connect."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._faults: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self.headers: list[dict[str, str]] = []
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, mode: str, times: int = 1) -> None:
        """Queue ``times`` faults: ``delay:<s>``, ``status:<code>``, ``not_json``, ``rows:<n>``,
        ``bad_row:<i>`` (row i becomes [2, -1, 0]), ``close`` (drop the connection, no answer)."""
        with self._lock:
            self._faults.extend([mode] * times)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.headers.clear()
            self.requests = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            return self._faults.popleft() if self._faults else None

    def _forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization", "accept",
                                                                      "azureml-model-deployment")}
            conn.request("POST", path, body=body, headers=keep)
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type", "application/json")
        finally:
            conn.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._lock:
                    proxy.headers.append(dict(self.headers.items()))
                fault = proxy._next_fault()
                if fault == "close":
                    self.close_connection = True
                    return
                if fault is not None and fault.startswith("delay:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                if fault is not None and fault.startswith("status:"):
                    self._send(int(fault.split(":", 1)[1]), b'{"message": "injected"}')
                    return
                if fault == "not_json":
                    self._send(200, b"<html>gateway says hello</html>", "text/html")
                    return
                status, payload, kind = proxy._forward(self.path, body, dict(self.headers.items()))
                if fault is not None and (fault.startswith("rows:") or fault.startswith("bad_row:")):
                    payload = _tamper(payload, fault)
                self._send(status, payload, kind)

            def _send(self, status: int, payload: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _tamper(payload: bytes, fault: str) -> bytes:
    answer = json.loads(payload)
    rows = answer["predictions"] if isinstance(answer, dict) else answer
    mode, arg = fault.split(":", 1)
    if mode == "rows":
        rows = (rows * (int(arg) // max(len(rows), 1) + 1))[: int(arg)]
    else:
        rows[int(arg)] = [2.0, -1.0, 0.0]
    return json.dumps({"predictions": rows} if isinstance(answer, dict) else rows).encode()
