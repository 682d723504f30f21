"""A real webhook receiver for tests: HTTP on 127.0.0.1, signatures checked with ``verify``.

It records every request and the status it answered; it can answer another status, answer
slowly, or be stopped and started again on the same port to play an outage.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from monitor.alerts import SIGNATURE_HEADER, verify

__all__ = ["Receiver", "Request"]


@dataclass
class Request:
    status: int  # what the receiver answered
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.raw)
        return data


class Receiver:
    """A webhook receiver on 127.0.0.1:<free port> that verifies signatures."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[Request] = []
        self.in_flight = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/driftline"

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.in_flight.set()
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay_s)
                signed = receiver.secret is None or verify(
                    self.headers.get(SIGNATURE_HEADER), raw, receiver.secret, tolerance_s=300
                )
                status = receiver.status if signed else 401
                receiver.requests.append(Request(status, dict(self.headers), raw))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
