"""The request id: a fresh id on every request, in ``request.state`` and ``X-Request-ID``.

A pure ASGI middleware (Starlette's ``@app.middleware("http")`` wraps each
request and response in extra tasks and streams, which costs the gateway
throughput). An exception that escapes a route before the response has started
is logged with the request id and answered with a 500 problem that quotes it,
never a stack trace.

Ids are random UUID4s drawn from the operating system 256 at a time: ``uuid.uuid4()``
asks the kernel for every id, and each such call gives up the GIL, which the event
loop must then wait for behind the routes' threads. Under load that wait cost the
gateway about 0.09 ms of CPU a request (A/B, ``docs/benchmarks.md``).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import problems
from gateway.headers import secure

log = logging.getLogger(__name__)

HEADER = "X-Request-ID"


class RequestIds:
    """Fresh request ids: random UUID4s as 32 hex digits, from ``os.urandom`` in blocks."""

    PER_BLOCK = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the ids of two event loops never overlap
        self._block = b""
        self._at = 0

    def next(self) -> str:
        with self._lock:
            if self._at >= len(self._block):
                self._block, self._at = os.urandom(16 * self.PER_BLOCK), 0
            raw = self._block[self._at : self._at + 16]
            self._at += 16
        return uuid.UUID(bytes=raw, version=4).hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._ids.next()
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope.get("path", "")
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers.append(HEADER, request_id)
                secure(headers, path)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error in request %s", request_id)
            if started:
                raise
            response = problems.problem(
                500,
                "Internal error",
                "the request could not be completed; quote the request id to the operator",
                "internal_error",
                Request(scope),
            )
            await response(scope, receive, send_with_id)
