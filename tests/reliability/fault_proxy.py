"""A fault-injecting HTTP proxy on loopback, in front of the moto server.

Clients are pointed at the proxy's URL as their endpoint. Every request is forwarded to the real
server; a request that matches a rule gets that rule's fault instead of a normal answer:

- ``drop``: the request reaches the server (so it takes effect), the response is thrown away and
  the client's connection closed: what a client sees when a response is lost on the way back.
- ``delay``: the request takes effect, the response is sent ``seconds`` later (past a client's
  read timeout when the test sets one shorter).
- ``blackhole``: the request is never forwarded and never answered; the connection stays open.
- ``deny``: the request is never forwarded; S3's ``403 AccessDenied`` answers it (what a caller whose
  identity may not do that sees).

Each rule applies ``times`` times, then the proxy forwards normally. ``Blackhole`` is a bare
listening socket that accepts connections and never answers anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>0</RequestId></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


@dataclasses.dataclass
class Rule:
    """A fault for requests whose method matches and whose path matches ``path`` (a regex, searched)."""

    method: str
    path: str
    fault: str  # "drop" | "delay" | "blackhole" | "deny"
    times: int = 1
    seconds: float = 0.0
    #: How many requests this rule has faulted so far.
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.hits < self.times and method == self.method and re.search(self.path, path) is not None


class FaultProxy:
    """``FaultProxy(upstream_url)``: ``.url`` to point clients at, ``.add(rule)``, ``.close()``."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream = urlsplit(upstream_url)
        self.rules: list[Rule] = []
        #: ``(method, path, fault or "")`` of every request seen, in order.
        self.seen: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _pick(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        rule = self._pick(handler.command, handler.path)
        with self._lock:
            self.seen.append((handler.command, handler.path, rule.fault if rule else ""))
        if rule is not None and rule.fault == "blackhole":
            self._release.wait()
            handler.close_connection = True
            return
        if rule is not None and rule.fault == "deny":
            self._deny(handler)
            return
        upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream.request(handler.command, handler.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        if rule is not None and rule.fault == "drop":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule is not None and rule.fault == "delay":
            time.sleep(rule.seconds)
        try:
            handler.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        except OSError:
            handler.close_connection = True  # the client gave up (read timeout) meanwhile

    @staticmethod
    def _deny(handler: BaseHTTPRequestHandler) -> None:
        data = _ACCESS_DENIED if handler.command != "HEAD" else b""
        handler.send_response_only(403, "Forbidden")
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


class Blackhole:
    """A port that accepts TCP connections and never answers: an endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self._held: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self._held:
            conn.close()
