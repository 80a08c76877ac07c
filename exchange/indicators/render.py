"""The indicators as text: rich tables for people (:func:`tables`, what ``exchange
indicators`` prints and the demo can print), and CSV, one row a figure, in long form
(what a spreadsheet pivots).

CSV columns: ``section`` (publishing, freshness, timeliness, linkage, requests, latency,
turnaround, daily), ``department``, ``dataset``, ``dimension`` (``reason=<code>``,
``purpose=<code>``, ``action=<name>``, ``frequency=<name>``, ``day=<YYYY-MM-DD>`` or
empty), ``figure`` and
``value`` (empty when the figure has nothing to be computed from).

A text cell that a spreadsheet would take for a formula (one starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is written with a leading ``'``
(:func:`exchange.core.spreadsheet.cell`): department and dataset names of registry
rejections are what a record's headers claimed, so any producer chooses them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from rich.table import Table

from exchange.core.spreadsheet import cell
from exchange.indicators.figures import Indicators

COLUMNS = ("section", "department", "dataset", "dimension", "figure", "value")
Row = tuple[str, str, str, str, str, object]


def rows(found: Indicators) -> Iterator[Row]:
    """Every figure of ``found`` as a CSV row (without the header)."""
    for p in found.publishing:
        for name in ("runs", "read", "published", "rejected", "registry_rejected", "applied"):
            yield "publishing", p.department, p.dataset, "", name, getattr(p, name)
        for code, count in p.rejected_by_reason.items():
            yield "publishing", p.department, p.dataset, f"reason={code}", "rejected", count
        for code, count in p.registry_rejected_by_reason.items():
            yield (
                "publishing", p.department, p.dataset, f"reason={code}", "registry_rejected",
                count,
            )  # fmt: skip
    for f in found.freshness:
        for name in (
            "versions", "with_change_time", "without_change_time", "change_time_ahead", "p50_s",
            "p95_s",
        ):  # fmt: skip
            yield "freshness", f.department, f.dataset, "", name, getattr(f, name)
    for t in found.timeliness:
        dimension = f"frequency={t.frequency}"
        for name in (
            "expected_intervals", "intervals_with_data", "share", "age_s", "within_frequency",
        ):  # fmt: skip
            yield "timeliness", t.department, t.dataset, dimension, name, getattr(t, name)
    link = found.linkage
    yield "linkage", "", "", "", "people", link.people
    yield "linkage", "", "", "", "known_to_two_or_more", link.known_to_two_or_more
    yield "linkage", "", "", "", "rate", link.rate
    for d in link.by_department:
        for name in ("people", "known_elsewhere", "rate"):
            yield "linkage", d.department, "", "", name, getattr(d, name)
    for r in found.requests:
        dimension = f"purpose={r.purpose}"
        for name in ("served", "refused", "latency_p50_ms", "latency_p95_ms"):
            yield "requests", r.department or "", r.dataset or "", dimension, name, getattr(r, name)
    for lat in found.latency:
        dimension = "" if lat.action is None else f"action={lat.action}"
        for name in ("requests", "without_latency", "p50_ms", "p95_ms"):
            yield "latency", "", "", dimension, name, getattr(lat, name)
    for t2 in found.turnaround:
        for name in ("decided", "approved", "narrowed", "refused", "open", "p50_s", "p95_s"):
            yield "turnaround", t2.department, t2.dataset, "", name, getattr(t2, name)
    for day in found.daily:
        for name in ("applied", "rejected", "registry_rejected", "served", "refused"):
            yield "daily", "", "", f"day={day.day}", name, getattr(day, name)


def to_csv(found: Indicators) -> str:
    """The CSV text, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(found):
        value = row[5]
        writer.writerow([*(cell(c) for c in row[:5]), "" if value is None else _text(value)])
    return out.getvalue()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _n(value: float | int | None, decimals: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def tables(found: Indicators) -> list[Table]:
    """The indicators as rich tables, one a section."""
    span = f"{found.period.start:%Y-%m-%d %H:%M} to {found.period.end:%Y-%m-%d %H:%M} UTC"
    pub = Table(title=f"Records published and rejected, {span}")
    for name in ("department", "dataset", "runs", "read", "published", "rejected", "by reason"):
        pub.add_column(name)
    for name in ("registry rejected", "by reason", "applied"):
        pub.add_column(name)
    for p in found.publishing:
        pub.add_row(
            p.department, p.dataset, _n(p.runs), _n(p.read), _n(p.published), _n(p.rejected),
            ", ".join(f"{k}: {v}" for k, v in p.rejected_by_reason.items()),
            _n(p.registry_rejected),
            ", ".join(f"{k}: {v}" for k, v in p.registry_rejected_by_reason.items()),
            _n(p.applied),
        )  # fmt: skip
    fresh = Table(title="Freshness: source change time to registry")
    for name in ("department", "dataset", "versions", "with time", "without", "ahead", "p50"):
        fresh.add_column(name)
    fresh.add_column("p95")
    for f in found.freshness:
        fresh.add_row(
            f.department, f.dataset, _n(f.versions), _n(f.with_change_time),
            _n(f.without_change_time), _n(f.change_time_ahead), _seconds(f.p50_s),
            _seconds(f.p95_s),
        )  # fmt: skip
    timely = Table(title="Timeliness against the declared update frequency")
    for name in ("owner", "dataset", "frequency", "intervals", "with data", "share", "age at end"):
        timely.add_column(name)
    timely.add_column("within frequency")
    for t in found.timeliness:
        timely.add_row(
            t.department, t.dataset, t.frequency, _n(t.expected_intervals),
            _n(t.intervals_with_data), _pct(t.share), _seconds(t.age_s),
            "n/a" if t.within_frequency is None else ("yes" if t.within_frequency else "no"),
        )  # fmt: skip
    link = found.linkage
    linked = Table(
        title=f"Linkage: {_n(link.known_to_two_or_more)} of {_n(link.people)} people known to "
        f"two or more departments ({_pct(link.rate)})"
    )
    for name in ("department", "people", "known elsewhere", "rate"):
        linked.add_column(name)
    for d in link.by_department:
        linked.add_row(d.department, _n(d.people), _n(d.known_elsewhere), _pct(d.rate))
    asked = Table(title="Data requests served and refused")
    for name in ("department", "purpose", "dataset", "served", "refused", "p50 ms", "p95 ms"):
        asked.add_column(name)
    for r in found.requests:
        asked.add_row(
            r.department or "n/a", r.purpose, r.dataset or "n/a", _n(r.served), _n(r.refused),
            _n(r.latency_p50_ms), _n(r.latency_p95_ms),
        )  # fmt: skip
    slow = Table(title="Query latency (arrival to answer)")
    for name in ("action", "requests", "without latency", "p50 ms", "p95 ms"):
        slow.add_column(name)
    for lat in found.latency:
        slow.add_row(
            lat.action or "(all)", _n(lat.requests), _n(lat.without_latency), _n(lat.p50_ms),
            _n(lat.p95_ms),
        )  # fmt: skip
    turn = Table(title="Sharing-request turnaround (submitted to decided)")
    for name in ("owner", "dataset", "decided", "approved", "narrowed", "refused", "open"):
        turn.add_column(name)
    turn.add_column("p50")
    turn.add_column("p95")
    for t2 in found.turnaround:
        turn.add_row(
            t2.department, t2.dataset, _n(t2.decided), _n(t2.approved), _n(t2.narrowed),
            _n(t2.refused), _n(t2.open), _seconds(t2.p50_s), _seconds(t2.p95_s),
        )  # fmt: skip
    days = Table(title="Day by day (UTC)")
    for name in ("day", "versions applied", "rejected", "registry rejected", "served"):
        days.add_column(name)
    days.add_column("refused")
    for one in found.daily:
        days.add_row(
            f"{one.day}", _n(one.applied), _n(one.rejected), _n(one.registry_rejected),
            _n(one.served), _n(one.refused),
        )  # fmt: skip
    return [pub, fresh, timely, linked, asked, slow, turn, days]


def _seconds(value: float | None) -> str:
    """A duration for people: seconds, minutes, hours or days."""
    if value is None:
        return "n/a"
    size = abs(value)
    if size < 120:
        return f"{value:.0f} s"
    if size < 7200:
        return f"{value / 60:.1f} min"
    if size < 172_800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"
