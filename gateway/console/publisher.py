"""The publisher's pages: its department's connector runs with their reconciliation, its
rejected rows by reason (with the row and the field), its withdrawn records, and who used
its data for which purposes.

Each page is one audited read that mirrors an API call of :mod:`gateway.connectors_api`,
with the same work function and action:

- ``GET /ui/publisher/runs``: ``GET /v1/connectors/runs`` (``connectors.runs``);
- ``GET /ui/publisher/rejections``: ``GET /v1/connectors/rejections``
  (``connectors.rejections``);
- ``GET /ui/publisher/withdrawals``: ``GET /v1/connectors/withdrawals``
  (``connectors.withdrawals``);
- ``GET /ui/publisher/usage``: ``GET /v1/connectors/usage`` (``connectors.usage``).

A publisher sees its own department only: naming another (``?department=``) is refused
403 and audited, as by the API. An administrator may read any department's runs,
withdrawals and data use, but no department's rejected rows. Reasons are shown in the
user's language by their code (:mod:`gateway.console.publisher_reasons`), beside the
connector's own message.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from exchange.core.errors import ExchangeError
from exchange.identity.apikeys import Identity
from gateway import connectors_api as api
from gateway.console import publisher_reasons, web
from gateway.console.i18n import N_
from gateway.deps import AppState

router = APIRouter(prefix=f"{web.PREFIX}/publisher", include_in_schema=False)

PUBLISHERS = frozenset({"publisher"})
READERS = frozenset({"publisher", "admin"})

web.nav_item(f"{web.PREFIX}/publisher/runs", N_("Connector runs"), READERS, order=50)
web.nav_item(f"{web.PREFIX}/publisher/rejections", N_("Rejected rows"), PUBLISHERS, order=51)
web.nav_item(f"{web.PREFIX}/publisher/withdrawals", N_("Withdrawals"), READERS, order=52)
# An administrator reads a department's use with ?department= (the page has no chooser).
web.nav_item(f"{web.PREFIX}/publisher/usage", N_("Use of our data"), PUBLISHERS, order=53)


def _name(value: str | None) -> str | None:
    """A department or dataset name from the address, as the API's pattern allows; anything
    else is treated as not given (the API would refuse it before the route ran)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    return value if re.fullmatch(api.NAME, value) else None


def _texts(request: Request) -> dict[str, Any]:
    _ = web.gettext(request)
    return {
        "reason_text": lambda code: publisher_reasons.reason(code, _),
        "run_status": lambda status: publisher_reasons.run_status(status, _),
    }


@router.get("/runs")
async def runs_page(request: Request) -> Response:
    department = _name(request.query_params.get("department"))
    dataset = _name(request.query_params.get("dataset"))
    decision = web.decision_for(request, "connectors.runs", dataset=dataset)

    def work(session: Session, identity: Identity) -> api.RunsView:
        return api.runs_of(session, identity, decision, department=department, dataset=dataset)

    outcome = await web.read(request, decision, work, roles=READERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, "publisher/runs.html", {"view": outcome, **_texts(request)})


@router.get("/rejections")
async def rejections_page(request: Request) -> Response:
    state: AppState = request.app.state.exchange
    dataset = _name(request.query_params.get("dataset"))
    decision = web.decision_for(request, "connectors.rejections", dataset=dataset)

    def work(session: Session, identity: Identity) -> api.RejectionsView:
        return api.rejections_of(state, session, identity, decision, dataset=dataset)

    outcome = await web.read(request, decision, work, roles=PUBLISHERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(
        request,
        "publisher/rejections.html",
        {
            "view": outcome,
            "dataset": dataset,
            "dataset_options": [(name, name) for name in outcome.available],
            **_texts(request),
        },
    )


@router.get("/withdrawals")
async def withdrawals_page(request: Request) -> Response:
    department = _name(request.query_params.get("department"))
    decision = web.decision_for(request, "connectors.withdrawals")

    def work(session: Session, identity: Identity) -> api.WithdrawalsView:
        return api.withdrawals_of(session, identity, decision, department=department)

    outcome = await web.read(request, decision, work, roles=READERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, "publisher/withdrawals.html", {"view": outcome})


@router.get("/usage")
async def usage_page(request: Request) -> Response:
    department = _name(request.query_params.get("department"))
    start = request.query_params.get("from") or None
    end = request.query_params.get("to") or None
    decision = web.decision_for(request, "connectors.usage")

    def work(session: Session, identity: Identity) -> api.UsageView:
        return api.usage_of(
            session,
            identity,
            decision,
            department=department,
            start=start[:40] if start else None,
            end=end[:40] if end else None,
        )

    outcome = await web.read(request, decision, work, roles=READERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, "publisher/usage.html", {"view": outcome})
