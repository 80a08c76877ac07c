"""The gateway's Prometheus metrics, served at ``/metrics`` (``gateway.metrics``).

Each application has a registry of its own (tests build several in one process).
No label ever holds personal data: a route is named by its path template
(``/v1/persons/lookup``, ``/v1/entities/{entity_id}``), never by the path asked for,
and no identifier, name, birth date, user or query string is a label.

A scrape presents ``gateway.metrics_token`` as a bearer token, compared in constant
time. Without a token configured, development serves ``/metrics`` to anyone who can
reach the gateway (the local stack, tests) and production refuses it (403, naming the
setting). Neither ``/metrics`` nor a refused scrape is audited: it discloses counts only,
and a scraper every 15 seconds would otherwise fill the audit log with itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from exchange.core.config import Environment, Settings
from exchange.core.errors import AuthenticationError, PermissionDeniedError
from exchange.security.crypto import equal

UNMATCHED = "unmatched"  # the route label of a request no route served (404 or 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: the gateway answers lookups in milliseconds; a slow database in seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """What one gateway process counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The labelled series of each (route, method, status, decision) seen, by that key.
        self._children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
        self.auth_throttled = Counter(
            "exchange_gateway_auth_throttled",
            "Requests refused (429) before authentication because their client address "
            "failed to authenticate too often; not audited one by one.",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "exchange_gateway_auth_failures",
            "Failed authentications (answered 401 and audited).",
            registry=self.registry,
        )
        self.requests = Counter(
            "exchange_gateway_requests",
            "Requests answered, by route (path template), method, status and decision "
            "(allow or deny as audited; none for the unaudited: /healthz, /readyz, /metrics, "
            "the API documentation, requests no route served, refusals before authentication).",
            ["route", "method", "status", "decision"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "exchange_gateway_request_duration_seconds",
            "Time from a request's arrival to its response's end, audit entry included, "
            "by route (path template).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_appends = Counter(
            "exchange_gateway_audit_appends",
            "Audit entries committed by this process.",
            registry=self.registry,
        )
        self.audit_append_failures = Counter(
            "exchange_gateway_audit_append_failures",
            "Audit entries that could not be committed (their requests were answered 503).",
            registry=self.registry,
        )
        self.heads_signed = Counter(
            "exchange_gateway_audit_heads_signed",
            "Signed tree heads over new audit entries, signed by this process.",
            registry=self.registry,
        )
        self.head_sign_failures = Counter(
            "exchange_gateway_audit_head_sign_failures",
            "Attempts to sign a tree head that failed (retried on the next round).",
            registry=self.registry,
        )
        self.head_sign_duration = Histogram(
            "exchange_gateway_audit_head_sign_duration_seconds",
            "Time taken to sign a tree head over new entries (reading their leaves included).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )

    def request(self, route: str, method: str, status: int, decision: str, seconds: float) -> None:
        """Count one answered request (``route``: its path template, or UNMATCHED)."""
        method = method if method in METHODS else "other"  # a client may send any word
        key = (route, method, status, decision)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds its key: once per key
            children = self._children[key] = (
                self.requests.labels(route, method, str(status), decision),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def audit_written(self, written: int, failed: int) -> None:
        """Entries committed and entries refused by one audit transaction (or its retries)."""
        if written:
            self.audit_appends.inc(written)
        if failed:
            self.audit_append_failures.inc(failed)

    def head_signed(self, seconds: float, ok: bool) -> None:
        """A head signed over new entries in ``seconds``, or a failed attempt."""
        if ok:
            self.heads_signed.inc()
            self.head_sign_duration.observe(seconds)
        else:
            self.head_sign_failures.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def check_scraper(settings: Settings, authorization: str | None) -> None:
    """Let a scrape through, or raise: AuthenticationError (401) without the configured
    token, PermissionDeniedError (403) in production when no token is configured."""
    token = settings.gateway.metrics_token
    if token is None:
        if settings.env is Environment.PRODUCTION:
            raise PermissionDeniedError(
                "metrics are not served in production without a credential: set "
                "gateway.metrics_token (EXCHANGE_GATEWAY__METRICS_TOKEN) and have Prometheus "
                "send it as a bearer token (docs/operations.md)"
            )
        return
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not equal(given.strip().encode(), expected):
        raise AuthenticationError(
            "metrics need the scrape credential: Authorization: Bearer <gateway.metrics_token>"
        )


def install(app: FastAPI) -> None:
    """Serve ``/metrics`` in Prometheus' text format (left out of the OpenAPI document)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        state = request.app.state.exchange
        check_scraper(state.settings, request.headers.get("authorization"))
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
