"""The indicators as CSV: one row a figure, in long form (what a spreadsheet pivots).

Columns: ``section`` (publishing, freshness, timeliness, linkage, requests, latency,
turnaround), ``department``, ``dataset``, ``dimension`` (``reason=<code>``,
``purpose=<code>``, ``action=<name>``, ``frequency=<name>`` or empty), ``figure`` and
``value`` (empty when the figure has nothing to be computed from).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

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
        for name in ("versions", "with_change_time", "without_change_time", "p50_s", "p95_s"):
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


def to_csv(found: Indicators) -> str:
    """The CSV text, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(found):
        value = row[5]
        writer.writerow([*row[:5], "" if value is None else _text(value)])
    return out.getvalue()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
