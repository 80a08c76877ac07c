"""The request id: a fresh id on every request, in ``request.state`` and ``X-Request-ID``.

A pure ASGI middleware (Starlette's ``@app.middleware("http")`` wraps each
request and response in extra tasks and streams, which costs the gateway
throughput). An exception that escapes a route before the response has started
is logged with the request id and answered with a 500 problem that quotes it,
never a stack trace.
"""

from __future__ import annotations

import logging
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import problems

log = logging.getLogger(__name__)

HEADER = "X-Request-ID"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append(HEADER, request_id)
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
