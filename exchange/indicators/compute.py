"""Every sharing indicator over one period and scope, in one read of the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from exchange.indicators.daily import daily
from exchange.indicators.figures import Indicators, PeriodView, ScopeView
from exchange.indicators.freshness import freshness, timeliness
from exchange.indicators.linkage import linkage
from exchange.indicators.period import Period, Scope
from exchange.indicators.publishing import publishing
from exchange.indicators.requests import data_requests, requests
from exchange.indicators.turnaround import turnaround


def compute(session: Session, period: Period, scope: Scope, *, now: datetime) -> Indicators:
    """The indicators of ``period`` and ``scope`` (``now``: when computed, for the report)."""
    asked = data_requests(session, period, scope)
    served, latency = requests(session, period, scope, asked)
    return Indicators(
        period=PeriodView(start=period.start, end=period.end),
        scope=ScopeView(department=scope.department, dataset=scope.dataset),
        computed_at=now,
        publishing=publishing(session, period, scope),
        freshness=freshness(session, period, scope),
        timeliness=timeliness(session, period, scope),
        linkage=linkage(session, scope),
        requests=served,
        latency=latency,
        turnaround=turnaround(session, period, scope),
        daily=daily(session, period, scope, asked),
    )
