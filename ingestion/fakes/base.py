"""A threaded HTTP server on 127.0.0.1 with JSON routing and fault injection."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[["Request"], "Response"]


class Request:
    """What a route handler sees of one HTTP request."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers, body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query or form parameter; ``name`` and ``name[]`` are the same parameter."""
        values = self.query.get(name) or self.query.get(f"{name}[]")
        return values[0] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name) or self.query.get(f"{name}[]") or []

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


class Response:
    def __init__(self, status: int = 200, body: Any = None, headers: dict | None = None,
                 raw: bytes | None = None):  # fmt: skip
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw


class FakeServer:
    """Routes ``(method, path prefix)`` to handlers; injects faults on demand.

    ``fail_next(status, times, headers)`` makes the next requests answer an
    error (429 with Retry-After, 500, …) before serving normally again, so
    clients' backoff and retries are exercised against real HTTP.
    """

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []
        self.requests: list[Request] = []
        self._faults: list[tuple[int, dict]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration --------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method.upper(), path, handler))

    def fail_next(self, status: int, *, times: int = 1, headers: dict | None = None) -> None:
        with self._lock:
            self._faults.extend([(status, headers or {})] * times)

    # --- lifecycle --------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: tests read .requests instead
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                    self.headers, body,
                )  # fmt: skip
                response = fake.dispatch(request)
                payload = (
                    response.raw
                    if response.raw is not None
                    else json.dumps(response.body, default=str).encode()
                )
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- dispatch ---------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            status, headers = fault
            return Response(status, {"error": {"message": f"injected {status}"}}, headers)
        for method, prefix, handler in self.routes:
            if method == request.method and request.path.startswith(prefix):
                return handler(request)
        return Response(404, {"error": {"message": f"no route for {request.path}"}})
