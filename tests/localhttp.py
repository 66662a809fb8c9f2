"""A local HTTP server on 127.0.0.1 for URL tests: images, redirects, slow, late and huge answers.

Tests never make the server under test fetch anything but this loopback server (admitted
through the URL allow-list in those tests only). Every request is recorded, so a test can
also prove that a URL was *not* fetched.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: "LocalHTTPServer"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.requests.append({"path": parts.path, "query": query, "host": self.headers.get("Host")})
        route = self.server.routes.get(parts.path)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        route(self, query)

    def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.routes = {
            "/file": self._file,
            "/redirect": self._redirect,
            "/loop": self._loop,
            "/slow": self._slow,
            "/delayed": self._delayed,
            "/stream": self._stream,
            "/declared": self._declared,
        }
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, name: str, data: bytes) -> str:
        """Serve `data` at /file?name=<name>; returns its URL."""
        self.files[name] = data
        return self.url(f"/file?name={name}")

    # routes -------------------------------------------------------------------------------

    def _file(self, handler: _Handler, q: dict) -> None:
        data = self.files.get(q.get("name", ""))
        if data is None:
            handler._send(404, b"no such file", "text/plain")
        else:
            handler._send(200, data, q.get("type", "image/jpeg"))

    def _redirect(self, handler: _Handler, q: dict) -> None:
        handler.send_response(int(q.get("status", "302")))
        handler.send_header("Location", q["to"])
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _loop(self, handler: _Handler, q: dict) -> None:
        """Redirects to itself, forever."""
        self._redirect(handler, {"to": "/loop"})

    def _slow(self, handler: _Handler, q: dict) -> None:
        """Accepts the request and never answers (until the server stops)."""
        self._stop.wait(float(q.get("seconds", "60")))

    def _delayed(self, handler: _Handler, q: dict) -> None:
        """A served file (`name`), answered after `seconds`: a request that stays in flight."""
        self._stop.wait(float(q.get("seconds", "3")))
        self._file(handler, q)

    def _stream(self, handler: _Handler, q: dict) -> None:
        """`size` bytes without a Content-Length (the body ends when the connection closes)."""
        size = int(q["size"])
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b"\xff" * 65536
        sent = 0
        try:
            while sent < size:
                handler.wfile.write(chunk[: size - sent])
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def _declared(self, handler: _Handler, q: dict) -> None:
        """Declares a huge Content-Length, sends a few bytes."""
        handler.send_response(200)
        handler.send_header("Content-Length", q["size"])
        handler.end_headers()
        try:
            handler.wfile.write(b"\xff\xd8\xff" + b"\x00" * 1024)
            time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> "LocalHTTPServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.shutdown()
        self.server_close()
