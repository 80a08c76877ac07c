"""Every sharing indicator, on a real run, against counts made independently.

Two departments publish through real connector runs (a real Kafka broker), with rows
the connectors reject; two forged records are put on the standard topic for the
registry builder to dead-letter; the real builder builds the registry; caseworkers'
lookups are served and refused through the gateway; sharing requests are inserted as
rows. Then every figure ``exchange.indicators`` computes (and ``GET /v1/indicators``
serves, and ``exchange indicators`` prints) is checked against counts made here
without it: the std. and dlq. topics read with a plain consumer, the audit log's and
record versions' rows read directly, percentiles by numpy. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from exchange import audit
from exchange.cli.context import CliContext
from exchange.cli.main import app as cli_app
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.models import (
    AuditEntry,
    CatalogueResource,
    Department,
    RecordVersion,
    SharingRequest,
    SourceRecord,
)
from exchange.identity.apikeys import create_key
from exchange.indicators import Period, Scope, compute
from exchange.kafka.producer import Producer
from exchange.local.broker import LocalKafka
from exchange.registry.builder import DLQ_TOPIC, RegistryBuilder
from exchange.security.crypto import sign
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support import publishing
from tests.support.catalogue import add_grant, add_purpose
from tests.support.examples import benefits_toml, household_toml, write_toml
from tests.support.kafka import end_offsets, read_topic, start_group_at, start_group_at_ends
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"
TAX = "tax-assessment"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERSON_HEADER = "local_id,id_number,surname,given,dob,sex,division,phone,updated"
BENEFIT_HEADER = "payment_no,id_number,benefit,amount,start,end,paid,case_ref,division"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def nearest_rank(values: list[float], p: int) -> float | None:
    """numpy's inverted_cdf percentile: the definition the indicators follow."""
    if not values:
        return None
    return float(np.percentile(np.array(values, dtype=float), p, method="inverted_cdf"))


def dead_reasons(messages: list[Any]) -> Counter[str]:
    """The connector dead letters' problem codes (a row with two problems counts twice)."""
    return Counter(r["code"] for m in messages for r in json.loads(m.value)["reasons"])


def published_records(messages: list[Any]) -> list[Any]:
    """Records of signed batches (not manifests, not what a test forged)."""
    return [m for m in messages if "batch" in dict(m.headers) and "manifest" not in dict(m.headers)]


def test_every_indicator_against_independent_counts(
    kafka: LocalKafka, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(database_url)
    request.addfinalizer(engine.dispose)
    migrate(engine)
    sessions = session_factory(engine)
    bootstrap = kafka.bootstrap_servers
    tag = uuid.uuid4().hex[:8]
    hh, ca = f"hh_{tag}", f"ca_{tag}"
    seed = f"{int(tag, 16) % 1000:03d}"
    a, b, c, d, e = (rid(f"1101051980010{n}{seed}") for n in range(1, 6))
    now = utcnow()
    period = Period(now - timedelta(days=2), now + timedelta(days=1))

    # --- publishing: real connector runs, some rows rejected --------------------------------
    group = f"indicators-{tag}"
    start_group_at_ends(bootstrap, group, "std.", but="std.person.v1")  # others: from now on
    starts = {t: end_offsets(bootstrap, t) for t in ("std.person.v1", "std.benefit_payment.v1")}
    start_group_at(bootstrap, group, "std.person.v1", starts["std.person.v1"])
    start_group_at(bootstrap, group, "std.benefit_payment.v1", starts["std.benefit_payment.v1"])
    people = [
        PERSON_HEADER,
        f"H1,{a},王,秀英,1980-01-01,2,110105,13800000001,2026-12-01 08:00:00",  # Shanghai
        f"H2,{b},李,伟,1980-01-02,1,110105,13800000002,2026-12-02T10:30:00+08:00",
        f"H3,{c},陈,芳,1980-01-03,2,110105,13800000003,",  # no change time: unknown
        f"H4,{d},张,强,1980-01-04,1,110105,13800000004,2026-12-03T00:00:00Z",
        f"H5,{e},赵,敏,1980-13-45,2,110105,13800000005,2026-12-03T00:00:00Z",  # bad date
        f"H6,{e},赵,敏,1980-01-05,2,110105,13800000005,yesterday",  # bad change time
        f",{e},赵,敏,1980-01-05,2,110105,13800000005,2026-12-03T00:00:00Z",  # no key
    ]
    (tmp_path / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    source = {
        "type": "csv",
        "path": "people.csv",
        "encoding": "utf-8",
        "key": "local_id",
        "changed_at": "updated",
        "changed_at_zone": "Asia/Shanghai",
    }
    hh_toml = write_toml(
        tmp_path, household_toml(connector_id=f"p-{hh}", department=hh, source=source), "p.toml"
    )
    payments = [
        BENEFIT_HEADER,
        f"P1,{a},1,112000,2024-03-01,2024-03-31,2024-03-05,MZ-2024-001,110105",
        f"P2,{b},1,98000,2024-03-01,2024-03-31,2024-03-05,MZ-2024-002,110105",
        f"P3,{e},1,98000,2024-03-01,2024-03-31,2024-03-05,MZ-2024-003,110105",
        f"P4,{c},1,lots,2024-03-01,2024-03-31,2024-03-05,MZ-2024-004,110105",  # bad amount
    ]
    (tmp_path / "payments.csv").write_text("\n".join(payments) + "\n", encoding="utf-8")
    ca_toml = write_toml(
        tmp_path,
        benefits_toml(connector_id=f"b-{ca}", department=ca, csv="payments.csv", encoding="utf-8"),
        "b.toml",
    )
    ran_hh = publishing.publish(bootstrap, sessions, hh_toml)
    ran_ca = publishing.publish(bootstrap, sessions, ca_toml)
    assert (ran_hh.read, ran_hh.published, ran_hh.rejected) == (7, 4, 3)
    assert (ran_ca.read, ran_ca.published, ran_ca.rejected) == (4, 3, 1)

    # Two records the registry builder must refuse: unsigned, and signed by nobody's key.
    key_id, private = keys_for(sessions).keystore.signing_key(hh)
    provenance = [
        ("department", hh.encode()),
        ("dataset", b"person"),
        ("source-id", b"F1"),
        ("content-hash", b"f"),
    ]
    forged = Producer(bootstrap)
    try:
        forged.send("std.person.v1", b"\x00" * 8, key=f"{hh}:F1".encode(), headers=provenance)
        forged.send(
            "std.person.v1",
            b"\x00" * 8,
            key=f"{hh}:F2".encode(),
            headers=[
                *provenance,
                ("signing-key-id", key_id.encode()),
                ("signature", sign(private, b"something else")),
            ],
        )
        forged.flush(30)
    finally:
        forged.close()

    builder = RegistryBuilder(
        bootstrap,
        sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(sessions).keystore,
        group_id=group,
    )
    try:
        builder.run_until_idle(idle_s=3.0, timeout_s=120)
    finally:
        builder.close()

    # --- the catalogue, grants, and sharing requests (rows) ---------------------------------
    with transaction(sessions) as session:
        session.add_all([Department(code=hh, name="household"), Department(code=ca, name="ca")])
        session.flush()
        session.add(
            CatalogueResource(
                dataset="person",
                owner_department=hh,
                title="residents",
                update_frequency="daily",
                sharing_type="conditional",
                updated_by="test",
            )
        )
        decided = [("approved", 2.0), ("refused", 10.0), ("submitted", None), ("withdrawn", 1.0)]
        for status, hours in decided:
            submitted = now - timedelta(hours=12)
            session.add(
                SharingRequest(
                    dataset="person",
                    owner_department=hh,
                    requester_department=ca,
                    grantee_role="caseworker",
                    requested_by="li.na",
                    fields={"full_name": "full"},
                    purposes=[MLA],
                    legal_basis="Measures for minimum living allowance, art. 8",
                    justification="allowance reviews",
                    row_constraints={},
                    duration_days=90,
                    status=status,
                    submitted_at=submitted,
                    decided_at=None if hours is None else submitted + timedelta(hours=hours),
                )
            )
    add_purpose(sessions, MLA)
    add_purpose(sessions, TAX)
    add_grant(
        sessions,
        department=ca,
        dataset="person",
        fields={"resident_id": "full", "full_name": "full"},
        purposes=[MLA],
    )

    # --- requests through the gateway, served and refused -----------------------------------
    with transaction(sessions) as session:
        caseworker = create_key(session, actor="li.na", department=ca, role="caseworker")
        stranger = create_key(session, actor="wu.fei", department=hh, role="caseworker")
        admin = create_key(session, actor="root", department="exchange", role="admin")
        steward = create_key(session, actor="zhou", department=hh, role="data_steward")
        head = create_key(session, actor="qian", department=hh, role="department_admin")
    settings = Settings(
        database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
    )
    unknown = rid(f"31010419750301{seed}")
    asked = [
        (caseworker, a, MLA, 200),
        (caseworker, b, MLA, 200),
        (caseworker, unknown, MLA, 404),  # entitled to ask: served, nothing found
        (caseworker, a, TAX, 403),  # no grant serves the purpose: refused
        (stranger, a, MLA, 403),  # no grant for the department: refused
    ]
    with TestClient(create_app(settings)) as client:
        for key, person, purpose, status in asked:
            answer = client.post(
                "/v1/persons/lookup",
                json={"resident_id": person},
                params={"purpose": purpose},
                headers={"X-API-Key": key},
            )
            assert answer.status_code == status, answer.text
        span = {"from": period.start.isoformat(), "to": period.end.isoformat()}
        served = client.get("/v1/indicators", params=span, headers={"X-API-Key": admin})
        assert served.status_code == 200, served.text
        own = client.get("/v1/indicators", params=span, headers={"X-API-Key": steward})
        assert own.status_code == 200, own.text
        assert own.json()["scope"]["department"] == hh
        other = client.get(
            "/v1/indicators", params={**span, "department": ca}, headers={"X-API-Key": head}
        )
        assert other.status_code == 403
        assert other.headers["content-type"] == "application/problem+json"
        nobody = client.get("/v1/indicators", params=span, headers={"X-API-Key": caseworker})
        assert nobody.status_code == 403
        bad = client.get(
            "/v1/indicators", params={"from": "tomorrow"}, headers={"X-API-Key": admin}
        )
        assert bad.status_code == 400

    with sessions() as session:
        found = compute(session, period, Scope(), now=utcnow())
        versions = session.execute(
            select(
                SourceRecord.department,
                SourceRecord.dataset,
                RecordVersion.source_changed_at,
                RecordVersion.applied_at,
            )
            .select_from(RecordVersion)
            .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
            .where(RecordVersion.deleted.is_(False))
        ).all()
        entries = session.execute(
            select(
                AuditEntry.department,
                AuditEntry.purpose,
                AuditEntry.dataset,
                AuditEntry.decision,
                AuditEntry.latency_ms,
                AuditEntry.action,
                AuditEntry.at,
            )
        ).all()
        assert audit.verify(session) is None  # latency_ms is covered, and verifies

    # The API served what the library computes (the figures, not when they were computed).
    api = served.json()
    mine = json.loads(found.model_dump_json())
    assert {k: v for k, v in api.items() if k != "computed_at"} == {
        k: v for k, v in mine.items() if k != "computed_at"
    }

    # --- publishing, against the topics -----------------------------------------------------
    hh_std = read_topic(bootstrap, "std.person.v1", f"{hh}:".encode())
    ca_std = read_topic(bootstrap, "std.benefit_payment.v1", f"{ca}:".encode())
    hh_dlq = read_topic(bootstrap, f"dlq.{hh}.person", b"")
    ca_dlq = read_topic(bootstrap, f"dlq.{ca}.benefit_payment", b"")
    registry_dlq = read_topic(bootstrap, DLQ_TOPIC, f"{hh}:".encode())
    rows = {(p.department, p.dataset): p for p in found.publishing}
    assert set(rows) == {(hh, "person"), (ca, "benefit_payment")}
    for (department, dataset), std, dlq in [
        ((hh, "person"), hh_std, hh_dlq),
        ((ca, "benefit_payment"), ca_std, ca_dlq),
    ]:
        figure = rows[(department, dataset)]
        records = published_records(std)
        assert figure.runs == 1
        assert figure.published == len(records)
        assert figure.rejected == len(dlq)
        assert figure.read == len(records) + len(dlq)
        assert figure.rejected_by_reason == dict(dead_reasons(dlq))
        assert figure.applied == len({m.key for m in records})  # every record new: one version
    assert rows[(hh, "person")].rejected_by_reason["changed_at.invalid"] == 1
    registry_reasons = Counter(json.loads(m.value)["reason"].split(":")[0] for m in registry_dlq)
    assert registry_reasons == {"unverified_record": 1, "bad_signature": 1}
    assert rows[(hh, "person")].registry_rejected == len(registry_dlq)
    assert rows[(hh, "person")].registry_rejected_by_reason == dict(registry_reasons)
    assert rows[(ca, "benefit_payment")].registry_rejected == 0

    # --- freshness: the change times the records carried, against their applied times -------
    sent = {m.key.decode().split(":", 1)[1]: dict(m.headers) for m in published_records(hh_std)}
    changed_at = {k: h.get("source_changed_at") for k, h in sent.items()}
    assert changed_at == {
        "H1": datetime(2026, 12, 1, 8, tzinfo=SHANGHAI).astimezone(UTC).isoformat().encode(),
        "H2": b"2026-12-02T02:30:00+00:00",
        "H3": None,
        "H4": b"2026-12-03T00:00:00+00:00",
    }
    for figure in found.freshness:
        department, dataset = figure.department, figure.dataset
        mine_versions = [v for v in versions if (v[0], v[1]) == (department, dataset)]
        lags = [(v[3] - v[2]).total_seconds() for v in mine_versions if v[2] is not None]
        assert figure.versions == len(mine_versions)
        assert figure.with_change_time == len(lags)
        assert figure.without_change_time == len(mine_versions) - len(lags)
        assert figure.p50_s == nearest_rank(lags, 50)
        assert figure.p95_s == nearest_rank(lags, 95)
    hh_fresh = next(f for f in found.freshness if f.department == hh)
    assert (hh_fresh.with_change_time, hh_fresh.without_change_time) == (3, 1)
    ca_fresh = next(f for f in found.freshness if f.department == ca)
    assert (ca_fresh.with_change_time, ca_fresh.without_change_time) == (0, 3)
    assert (ca_fresh.p50_s, ca_fresh.p95_s) == (None, None)

    # --- timeliness: the owner's versions against its daily promise -------------------------
    [timely] = found.timeliness
    applied = [v[3] for v in versions if (v[0], v[1]) == (hh, "person")]
    first_day = (period.start + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    days = [first_day + timedelta(days=n) for n in range(5)]
    whole = [day for day in days if day + timedelta(days=1) <= period.end]
    assert (timely.department, timely.dataset, timely.frequency) == (hh, "person", "daily")
    assert timely.expected_intervals == len(whole) == 2
    assert timely.intervals_with_data == len(
        [day for day in whole if any(day <= at < day + timedelta(days=1) for at in applied)]
    )
    assert timely.newest_applied_at == max(applied)
    assert timely.age_s == (period.end - max(applied)).total_seconds()
    assert timely.within_frequency is (timely.age_s <= 86400)

    # --- linkage: identity numbers both departments published --------------------------------
    hh_ids, ca_ids = {a, b, c, d}, {a, b, e}
    link = found.linkage
    assert link.people == len(hh_ids | ca_ids) == 5
    assert link.known_to_two_or_more == len(hh_ids & ca_ids) == 2
    assert link.rate == 2 / 5
    assert [(x.department, x.people, x.known_elsewhere) for x in link.by_department] == sorted(
        [(hh, len(hh_ids), 2), (ca, len(ca_ids), 2)]
    )

    # --- requests and latency: the audit log's rows, read directly --------------------------
    data = [row for row in entries if row.purpose is not None]
    counted: defaultdict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    latencies: defaultdict[tuple[Any, ...], list[float]] = defaultdict(list)
    for row in data:
        counted[(row.department, row.purpose, row.dataset)][row.decision] += 1
        latencies[(row.department, row.purpose, row.dataset)].append(row.latency_ms)
    assert {
        (r.department, r.purpose, r.dataset): (r.served, r.refused) for r in found.requests
    } == {k: (v["allow"], v["deny"]) for k, v in counted.items()}
    assert sum(r.served for r in found.requests) == 3
    assert sum(r.refused for r in found.requests) == 2
    for r in found.requests:
        values = latencies[(r.department, r.purpose, r.dataset)]
        assert r.latency_p50_ms == nearest_rank(values, 50)
        assert r.latency_p95_ms == nearest_rank(values, 95)
    assert all(row.latency_ms is not None and row.latency_ms >= 0 for row in entries)
    overall = found.latency[0]
    every = [row.latency_ms for row in data]
    assert (overall.action, overall.requests, overall.without_latency) == (None, len(data), 0)
    assert (overall.p50_ms, overall.p95_ms) == (nearest_rank(every, 50), nearest_rank(every, 95))

    # --- day by day: the same sources, counted by UTC day --------------------------------
    assert [x.day for x in found.daily] == [
        period.start.date() + timedelta(days=n)
        for n in range((period.end.date() - period.start.date()).days + 1)
    ]
    assert {x.day: x.applied for x in found.daily if x.applied} == dict(
        Counter(v[3].date() for v in versions)
    )
    assert {x.day: (x.served, x.refused) for x in found.daily if x.served or x.refused} == {
        day: (
            sum(1 for r in data if r.at.date() == day and r.decision == "allow"),
            sum(1 for r in data if r.at.date() == day and r.decision == "deny"),
        )
        for day in {r.at.date() for r in data}
    }
    assert sum(x.rejected for x in found.daily) == len(hh_dlq) + len(ca_dlq)
    assert sum(x.registry_rejected for x in found.daily) == len(registry_dlq)

    # --- turnaround: the requests as inserted -------------------------------------------------
    [turn] = found.turnaround
    assert (turn.department, turn.dataset) == (hh, "person")
    assert (turn.decided, turn.approved, turn.narrowed, turn.refused, turn.open) == (2, 1, 0, 1, 1)
    assert (turn.p50_s, turn.p95_s) == (2 * 3600, 10 * 3600)

    # --- the command line prints the same figures -------------------------------------------
    printed = CliRunner().invoke(
        cli_app,
        ["indicators", "--from", span["from"], "--to", span["to"], "--format", "json"],
        obj=CliContext(settings),
    )
    assert printed.exit_code == 0, printed.output
    shown = json.loads(printed.stdout)
    assert shown["publishing"] == mine["publishing"]
    assert shown["linkage"] == mine["linkage"]
    report = tmp_path / "report.html"
    month = f"{now:%Y-%m}"
    written = CliRunner().invoke(
        cli_app,
        ["indicators", "report", "--month", month, "--out", str(report), "--department", hh],
        obj=CliContext(settings),
    )
    assert written.exit_code == 0, written.output
    page = report.read_text(encoding="utf-8")
    assert f"Sharing indicators, {now:%B %Y}" in page
    assert page.count("<svg") == 10
    assert "<script" not in page
    assert "src=" not in page
    assert f'<td>{hh}</td><td class="l">person</td>' in page
    # One department's report: not another's publishing (its requests for hh's data, yes).
    assert f'<td>{ca}</td><td class="l">benefit_payment</td>' not in page
