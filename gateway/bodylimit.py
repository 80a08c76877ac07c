"""A request body larger than ``gateway.max_body_bytes`` is refused, 413, as it is read.

A pure ASGI middleware that wraps ``receive``: a declared ``Content-Length`` over the limit
is refused at the first read, before any byte of the body is taken, and a body sent in
chunks is counted as it arrives and refused once it passes the limit, so no route ever
holds more than the limit in memory. It raises Starlette's ``HTTPException``, which
FastAPI lets through its body parsing and the gateway answers as a problem
(:mod:`gateway.problems`); the route was matched, so the request is audited with the 413
answered, like any request refused before its route ran (:mod:`gateway.audited`).
Routes that read no body are not touched.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _declared(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            f"the request body is larger than {self.limit} bytes (gateway.max_body_bytes); "
            "send less at a time",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared(scope)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared is not None and declared > self.limit:
                raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self._too_large()
            return message

        await self.app(scope, limited, send)
