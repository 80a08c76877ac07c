"""The monthly report of the sharing indicators: one self-contained HTML page.

Figures in tables and as inline SVG bar charts (:mod:`exchange.indicators.charts`),
drawn by a Jinja2 template (``templates/report.html.j2``, autoescaped). The page has no
script, no web font and no external asset of any kind, so it opens offline and prints
as it shows; :func:`pdf` lays the same page out as PDF (WeasyPrint, optional). It
holds no personal data: departments, datasets, purposes and counts.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from exchange.core.errors import ConfigError
from exchange.indicators.charts import Chart, bar_chart, column_chart
from exchange.indicators.figures import Indicators

_ENV = Environment(
    loader=PackageLoader("exchange.indicators", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
HOUR = 3600.0


def timelines(found: Indicators) -> list[Chart]:
    """The period day by day: records, and data requests."""
    days = found.daily
    every = max(1, len(days) // 15)  # about 15 day labels, whatever the period
    labels = [f"{d.day:%m-%d}" for d in days]
    return [
        column_chart(
            "Records per day: versions applied, rows and records rejected",
            ["applied", "rejected by the connector", "rejected by the registry"],
            [
                (label, [d.applied, d.rejected, d.registry_rejected])
                for label, d in zip(labels, days, strict=True)
            ],
            label_every=every,
        ),
        column_chart(
            "Data requests per day",
            ["served", "refused"],
            [(label, [d.served, d.refused]) for label, d in zip(labels, days, strict=True)],
            label_every=every,
        ),
    ]


def charts(found: Indicators) -> list[Chart]:
    """The report's charts, in its order."""
    pub = found.publishing
    reasons: dict[str, int] = {}
    for p in pub:
        for code, count in p.rejected_by_reason.items():
            reasons[f"connector: {code}"] = reasons.get(f"connector: {code}", 0) + count
        for code, count in p.registry_rejected_by_reason.items():
            reasons[f"registry: {code}"] = reasons.get(f"registry: {code}", 0) + count
    served: dict[str, list[int]] = {}
    for r in found.requests:
        counts = served.setdefault(r.purpose, [0, 0])
        counts[0] += r.served
        counts[1] += r.refused

    def hours(value: float | None) -> float | None:
        return None if value is None else value / HOUR

    return [
        bar_chart(
            "Records published and rejected",
            ["published", "rejected by the connector", "rejected by the registry"],
            [
                (
                    f"{p.department} / {p.dataset}",
                    [p.published, p.rejected, p.registry_rejected],
                )
                for p in pub
            ],
            stacked=True,
        ),
        bar_chart(
            "Rejections by reason",
            ["rejected"],
            [(code, [count]) for code, count in sorted(reasons.items(), key=lambda i: -i[1])],
            stacked=True,
        ),
        bar_chart(
            "Freshness: source change to registry (hours)",
            ["p50", "p95"],
            [
                (f"{f.department} / {f.dataset}", [hours(f.p50_s), hours(f.p95_s)])
                for f in found.freshness
                if f.with_change_time
            ],
            stacked=False,
            unit=" h",
            decimals=1,
        ),
        bar_chart(
            "Timeliness: intervals with new data (%)",
            ["share"],
            [
                (f"{t.department} / {t.dataset} ({t.frequency})", [t.share * 100])
                for t in found.timeliness
                if t.share is not None
            ],
            stacked=True,
            unit=" %",
            scale=100,
        ),
        bar_chart(
            "People known to another department (%)",
            ["linked"],
            [
                (d.department, [None if d.rate is None else d.rate * 100])
                for d in found.linkage.by_department
            ],
            stacked=True,
            unit=" %",
            scale=100,
        ),
        bar_chart(
            "Data requests by purpose",
            ["served", "refused"],
            [(purpose, [float(c[0]), float(c[1])]) for purpose, c in sorted(served.items())],
            stacked=True,
        ),
        bar_chart(
            "Query latency by action (ms)",
            ["p50", "p95"],
            [
                (lat.action or "every data request", [lat.p50_ms, lat.p95_ms])
                for lat in found.latency
                if lat.requests
            ],
            stacked=False,
            unit=" ms",
        ),
        bar_chart(
            "Sharing-request turnaround (hours)",
            ["p50", "p95"],
            [
                (f"{t.department} / {t.dataset}", [hours(t.p50_s), hours(t.p95_s)])
                for t in found.turnaround
                if t.decided
            ],
            stacked=False,
            unit=" h",
            decimals=1,
        ),
    ]


def pdf(page: str) -> bytes:
    """The report ``page`` laid out as PDF by WeasyPrint (the optional ``pdf`` extra, which
    needs the system's Pango); ConfigError if it is not installed."""
    try:
        import weasyprint  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:  # OSError too: Pango missing
        raise ConfigError(
            "a PDF report needs WeasyPrint: pip install 'data-exchange[pdf]' "
            f"(and the system's Pango); or write HTML ({exc})"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"WeasyPrint cannot load the system's Pango: {exc}") from exc
    document: bytes = weasyprint.HTML(string=page).write_pdf()
    return document


def html(found: Indicators, *, title: str) -> str:
    """The report page for ``found``."""
    pub = found.publishing
    summary: dict[str, Any] = {
        "published": sum(p.published for p in pub),
        "rejected": sum(p.rejected for p in pub),
        "registry_rejected": sum(p.registry_rejected for p in pub),
        "people": found.linkage.people,
        "linked": found.linkage.known_to_two_or_more,
        "rate": found.linkage.rate,
        "served": sum(r.served for r in found.requests),
        "refused": sum(r.refused for r in found.requests),
        "latency": found.latency[0] if found.latency else None,
        "open": sum(t.open for t in found.turnaround),
    }
    return _ENV.get_template("report.html.j2").render(
        title=title,
        found=found,
        summary=summary,
        charts=charts(found),
        timelines=timelines(found),
    )
