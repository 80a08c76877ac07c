"""What each request did, for operators: the request metrics and the access log.

:class:`ObserveMiddleware` sits inside the request id middleware and outside the audit
middleware. When a request ends it counts it (route, method, status, decision) and its
duration in the gateway's metrics (:mod:`gateway.metrics`), and writes one access-log
line to the ``gateway.access`` logger: method, route, status, latency, request id,
decision and the caller's department and role, as the audit entry has them.

The route is the path TEMPLATE the router matched (``/v1/persons/lookup``,
``/v1/persons/{_rest}``), never the path or query string asked for, which may hold an
identifier, a name or a birth date (:mod:`gateway.urls`); a request no route served
is ``unmatched``. The caller's actor name is not written either: the audit log has it.

The middleware also puts the request id in :data:`exchange.core.logs.request_id` for the
request's duration, so every line logged while serving it carries the id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.core import logs
from gateway.metrics import UNMATCHED

LOGGER = "gateway.access"
log = logging.getLogger(LOGGER)


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request, or ``unmatched``."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def _outcome(scope: Scope, status: int) -> tuple[str, str | None, str | None]:
    """(decision, department, role) of a request as its audit entry has them; decision
    ``none`` for a request nothing audited."""
    found: Any = scope.get("state", {}).get("audit")
    if found is None or getattr(found, "unaudited", False) or scope.get("route") is None:
        return "none", None, None
    decision = getattr(found, "decision", None)
    if decision is None:  # refused before its route ran: the audit middleware's own entry
        return ("deny" if status >= 400 else "allow"), None, None
    return decision.decision, decision.department, decision.role


class ObserveMiddleware:
    """Counts and logs every HTTP request once it has been answered (see the module)."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log  # gateway.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an escaping error is answered 500 outside
        request_id = scope.get("state", {}).get("request_id")
        token = logs.request_id.set(request_id)

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            try:
                self._observe(scope, status, seconds, request_id, self.access_log)
            finally:
                logs.request_id.reset(token)

    @staticmethod
    def _observe(
        scope: Scope, status: int, seconds: float, request_id: str | None, access_log: bool
    ) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        decision, department, role = _outcome(scope, status)
        state = getattr(scope.get("app"), "state", None)
        exchange = getattr(state, "exchange", None)
        if exchange is not None:  # None before the lifespan opened the application
            exchange.metrics.request(route, method, status, decision, seconds)
        if access_log and log.isEnabledFor(logging.INFO):
            latency_ms = round(seconds * 1000, 2)
            log.info(
                "%s %s %d %.2fms %s %s/%s",
                method,
                route,
                status,
                latency_ms,
                decision,
                department or "-",
                role or "-",
                extra={
                    "request_id": request_id,
                    "fields": {
                        "method": method,
                        "route": route,
                        "status": status,
                        "latency_ms": latency_ms,
                        "decision": decision,
                        "department": department,
                        "role": role,
                    },
                },
            )
