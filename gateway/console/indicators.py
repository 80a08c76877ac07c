"""The sharing indicators as a dashboard: the figures of ``GET /v1/indicators`` over a
period the user chooses, as charts (inline SVG, :mod:`exchange.indicators.charts`, the
monthly report's) with a table beside each, which holds the same figures for those who do
not see the chart.

``GET /ui/indicators`` (``indicators.read``, audited as the API's: the department, dataset
and period in its entry). The API's rule decides the scope
(:func:`gateway.indicators_api.scope_for`): the central administrator and auditors read
every department's or the one they choose; a department's administrator or data steward
their own. The period: the last 7, 30 or 90 days, or from and to dates (UTC days, the end
excluded, as the API takes them); a period the API refuses is shown against its field.

The charts' SVG uses presentation attributes (``fill``) and no ``style`` attribute, so the
console's Content Security Policy allows them; their text takes the console's CSS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.errors import ExchangeError, ValidationError
from exchange.identity import identities
from exchange.identity.apikeys import Identity
from exchange.indicators import Indicators, compute, period_of
from exchange.indicators.charts import Chart
from exchange.indicators.report import charts, timelines
from gateway.audited import end_reads
from gateway.console import web
from gateway.console.admin_forms import form_refused
from gateway.console.i18n import N_
from gateway.indicators_api import ANY_DEPARTMENT, READERS, scope_for

router = APIRouter(prefix=f"{web.PREFIX}/indicators", include_in_schema=False)

web.nav_item(f"{web.PREFIX}/indicators", "Sharing indicators", READERS, order=460)

PRESETS = ("7", "30", "90")
CONTROLS = ("days", "from", "to", "department", "dataset")

# The charts' words (exchange.indicators.report writes them in English), translated where
# they are drawn.
CHART_WORDS = (
    N_("Records per day: versions applied, rows and records rejected"),
    N_("Data requests per day"),
    N_("Records published and rejected"),
    N_("Rejections by reason"),
    N_("Freshness: source change to registry (hours)"),
    N_("Timeliness: intervals with new data (%)"),
    N_("People known to another department (%)"),
    N_("Data requests by purpose"),
    N_("Query latency by action (ms)"),
    N_("Sharing-request turnaround (hours)"),
    N_("applied"),
    N_("rejected by the connector"),
    N_("rejected by the registry"),
    N_("served"),
    N_("refused"),
    N_("published"),
    N_("rejected"),
    N_("share"),
    N_("linked"),
    N_("nothing in this period"),
    N_("every data request"),
)


def _bounds(params: Any) -> tuple[str | None, str | None, str]:
    """The period asked: ``from`` and ``to`` as the API takes them, or a preset of days."""
    start, end = params.get("from") or None, params.get("to") or None
    days = params.get("days") or ("" if start or end else "30")
    if days:
        if days not in PRESETS:
            raise ValidationError(
                [("days", "period.malformed", f"choose one of {', '.join(PRESETS)} days")]
            )
        until = utcnow()
        start = (until - timedelta(days=int(days))).isoformat()
        end = until.isoformat()
    return start, end, days


@router.get("")
async def dashboard(request: Request) -> Response:
    params = request.query_params
    department = params.get("department") or None
    dataset = params.get("dataset") or None
    decision = web.decision_for(request, "indicators.read", dataset=(dataset or "")[:100] or None)
    seen: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> Indicators:
        seen["central"] = identity.role in ANY_DEPARTMENT
        seen["departments"] = [
            (d.code, f"{d.name} ({d.code})") for d in identities.list_departments(session)
        ]
        scope = scope_for(identity, department, dataset)
        seen["department"] = scope.department
        start, end, _days = _bounds(params)
        period = period_of(start, end, now=utcnow())
        decision.reason = (
            f"indicators of {scope.department or 'every department'}, "
            f"{scope.dataset or 'every dataset'}, {period.start:%Y-%m-%dT%H:%M}Z to "
            f"{period.end:%Y-%m-%dT%H:%M}Z"
        )
        found = compute(session, period, scope, now=utcnow())
        end_reads(session)
        return found

    found = await web.read(request, decision, work, roles=READERS)
    form = {name: params.get(name) or "" for name in CONTROLS}
    if not (form["from"] or form["to"] or form["days"]):
        form["days"] = "30"
    context = _context(request, seen, form)
    if isinstance(found, ValidationError) and "departments" in seen:
        context |= {"found": None}
        return form_refused(request, "indicators/dashboard.html", context, found, CONTROLS)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    context |= {
        "found": found,
        "charts": _translated(charts(found), web.gettext(request)),
        "timelines": _translated(timelines(found), web.gettext(request)),
        "totals": _totals(found),
    }
    return web.render(request, "indicators/dashboard.html", context)


def _context(request: Request, seen: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    _ = web.gettext(request)
    everyone = [("", _("every department"))]
    return {
        "form": form,
        "central": seen.get("central", False),
        "department_options": everyone + seen.get("departments", []),
        "scope_department": seen.get("department"),
        "presets": [("", _("dates below"))]
        + [(days, _("the last %(days)s days") % {"days": days}) for days in PRESETS],
    }


def _translated(drawn: list[Chart], _: Callable[[str], str]) -> list[Chart]:
    """The charts with their words in the user's language (titles, legends, "nothing in
    this period"); labels are departments', datasets' and purposes' codes."""
    for chart in drawn:
        chart.title = _(chart.title)
        chart.legend = [(_(name), color, x) for name, color, x in chart.legend]
        if chart.empty:
            chart.texts = [replace(t, text=_(t.text)) for t in chart.texts]
    return drawn


def _totals(found: Indicators) -> dict[str, Any]:
    """The dashboard's headline figures."""
    return {
        "published": sum(p.published for p in found.publishing),
        "rejected": sum(p.rejected + p.registry_rejected for p in found.publishing),
        "served": sum(r.served for r in found.requests),
        "refused": sum(r.refused for r in found.requests),
        "rate": found.linkage.rate,
        "decided": sum(t.decided for t in found.turnaround),
        "open": sum(t.open for t in found.turnaround),
    }


__all__ = ["router"]
