"""The gateway's Prometheus metrics, served at ``/metrics`` (``gateway.metrics``).

Each application has a registry of its own (tests build several in one process).
Counts only: no identifier, address or personal data is ever a label.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest


class GatewayMetrics:
    """The counters one gateway process keeps."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def render(self) -> bytes:
        return generate_latest(self.registry)


def install(app: FastAPI) -> None:
    """Serve ``/metrics`` in Prometheus' text format (left out of the OpenAPI document)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        state = request.app.state.exchange
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
