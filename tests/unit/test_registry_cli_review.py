"""`exchange registry status / review list / entity find / entity show` on a SQLite registry.

The registry is filled as the builder fills it (``records.apply`` then the entity
resolver), without Kafka: two departments' people, one with two records joined by their
identity number, one alone, and an organisation. The cases are the reviewer's findings
of issue 18: a pair counted by ``status`` and not listed by ``review list``; no way to
find an entity by identity number or source record; ``entity show`` printing the blind
index; a golden record quietly choosing between two people's identity numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from exchange.cli.main import app
from exchange.core.db import transaction
from exchange.core.models import AuditEntry, LinkEdge, SourceRecord
from exchange.registry.review import awaiting_review, awaiting_review_count
from tests.support.cli import WIDE, cli_database, isolate
from tests.support.records import HEALTH, HR, LI, MARKET, NOBODY, USCC, ZHANG, Registry

runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "250")
    with cli_database() as (settings, sessions):
        reg = Registry(settings.linkage_key.get_secret_value().encode(), sessions)
        reg.apply(
            reg.person(HR, "H1", ZHANG),
            reg.person(HEALTH, "M7", ZHANG, given_name="秀瑛", phone="13900000002"),
            reg.person(HR, "H2", LI, family_name="李", given_name="建国", full_name="李建国",
                       birth_date="1975-03-01", sex="MALE", phone=None),
            reg.organisation("R1"),
        )  # fmt: skip
        yield reg


def run(*args: str) -> Any:
    return runner.invoke(app, ["registry", *args], env=WIDE)


def entity_of(reg: Registry, department: str, source_id: str) -> str:
    entity = reg.record(department, source_id).entity_id
    assert entity is not None
    return entity


# -- 1. review counts -----------------------------------------------------------------------


def test_status_and_review_list_count_the_same_pairs(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exchange.registry.rebuild as rebuild

    def no_kafka(*_: Any) -> Any:
        raise RuntimeError("no broker in this test")

    monkeypatch.setattr(rebuild, "consumer_lag", no_kafka)
    h1, m7, h2 = (registry.record(*r) for r in ((HR, "H1"), (HEALTH, "M7"), (HR, "H2")))
    assert h1.entity_id == m7.entity_id != h2.entity_id
    # What the reviewer found: a review edge inside one entity (other links joined the
    # pair: nothing to decide) beside one real pair, and one whose record is withdrawn.
    registry.review_edge(h1, m7, 3.0)
    registry.review_edge(h1, h2, 2.0)
    registry.apply(registry.person(HEALTH, "M9", NOBODY, given_name="某", birth_date="1990-07-09"))
    m9 = registry.record(HEALTH, "M9")
    registry.withdraw("person", HEALTH, "M9")
    registry.review_edge(h2, m9, 1.0)  # (the builder deletes a withdrawn record's edges)
    with registry.sessions() as session:
        # The old count (every review edge) would have said 3; one pair awaits a decision.
        every = select(func.count()).where(LinkEdge.status == "review")
        assert session.scalar(every) == 3
        assert awaiting_review_count(session) == 1
        [pair] = awaiting_review(session)
    assert {pair.a, pair.b} == {f"person/{HR}/H1", f"person/{HR}/H2"}

    status = run("status")
    listed = run("review", "list")
    assert status.exit_code == 0, status.output
    assert listed.exit_code == 0, listed.output
    assert re.search(r"awaiting review\s*│\s*1\b", status.output), status.output
    assert "awaiting review: 1 pair" in listed.output
    assert listed.output.count(f"person/{HR}/H1") == 1
    assert f"person/{HEALTH}/M7" not in listed.output
    assert f"person/{HEALTH}/M9" not in listed.output


def test_review_list_says_how_many_it_leaves_out(registry: Registry) -> None:
    h1, h2, r1 = (registry.record(*r) for r in ((HR, "H1"), (HR, "H2"), (MARKET, "R1")))
    registry.review_edge(h1, h2, 2.0)
    registry.review_edge(h2, r1, 5.0)  # (nonsense across kinds, but a pair all the same)
    result = run("review", "list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "awaiting review: 2 pairs, the first 1 shown" in result.output
    assert f"person/{HR}/H2" in result.output
    assert "5.0" in result.output
    assert f"person/{HR}/H1" not in result.output  # the lighter pair is not shown


# -- 2. entity find -------------------------------------------------------------------------


def test_find_by_resident_id_never_prints_the_number(registry: Registry) -> None:
    result = run("entity", "find", "--resident-id", ZHANG)
    assert result.exit_code == 0, result.output
    entity = entity_of(registry, HR, "H1")
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"{entity} person: 2 records (person x2) from {HEALTH}, {HR}")
    assert ZHANG not in result.output
    assert registry.bidx(ZHANG) not in result.output


def test_find_by_resident_id_typed_at_the_prompt(registry: Registry) -> None:
    result = runner.invoke(
        app, ["registry", "entity", "find", "--resident-id", "-"], input=ZHANG + "\n", env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert entity_of(registry, HR, "H1") in result.output
    assert ZHANG not in result.output


def test_nothing_found_is_an_error_that_does_not_repeat_the_number(registry: Registry) -> None:
    missing = run("entity", "find", "--resident-id", NOBODY)
    assert missing.exit_code == 2
    assert "no live record carries this resident identity number" in missing.output
    assert NOBODY not in missing.output
    wrong = NOBODY[:-1] + ("0" if NOBODY[-1] != "0" else "1")  # a wrong check character
    invalid = run("entity", "find", "--resident-id", wrong)
    assert invalid.exit_code == 2
    assert "not a valid resident identity number" in invalid.output
    assert wrong not in invalid.output


def test_find_by_source_record_and_dataset(registry: Registry) -> None:
    entity = entity_of(registry, HEALTH, "M7")
    found = run("entity", "find", "--source", f"{HEALTH}:M7")
    assert found.exit_code == 0, found.output
    assert found.output.startswith(entity)
    assert f"matched person/{HEALTH}/M7" in found.output
    narrowed = run("entity", "find", "--source", f"{HEALTH}:M7", "--dataset", "organisation")
    assert narrowed.exit_code == 2
    assert f"no record {HEALTH}:M7 in organisation" in narrowed.output
    registry.withdraw("person", HEALTH, "M7")
    gone = run("entity", "find", "--source", f"{HEALTH}:M7")
    assert gone.exit_code == 2
    assert "was withdrawn" in gone.output
    malformed = run("entity", "find", "--source", "M7")
    assert malformed.exit_code == 2
    assert "DEPARTMENT:SOURCE_ID" in malformed.output


def test_find_by_credit_code(registry: Registry) -> None:
    result = run("entity", "find", "--uscc", USCC.lower())
    assert result.exit_code == 0, result.output
    entity = entity_of(registry, MARKET, "R1")
    assert result.output.startswith(f"{entity} organisation: 1 record (organisation x1)")


def test_exactly_one_key_is_given(registry: Registry) -> None:
    result = run("entity", "find", "--uscc", USCC, "--source", f"{HR}:H1")
    assert result.exit_code == 2
    assert "exactly one of" in result.output


# -- 3. entity show -------------------------------------------------------------------------


def _internal_values(registry: Registry) -> list[str]:
    with registry.sessions() as session:
        rows = session.scalars(select(SourceRecord)).all()
        return [v for r in rows for v in (r.content_hash, r.lookup_key) if v]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def test_show_is_a_readable_table_without_internal_fields(registry: Registry) -> None:
    entity = entity_of(registry, HR, "H1")
    result = run("entity", "show", entity)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{entity} person: golden record (masked)" in out
    assert "2 member records" in out
    assert "identifier" in out  # how each record joined
    assert "_bidx" not in out
    assert "ciphertext" not in out
    assert not [v for v in _internal_values(registry) if v in out]
    assert "秀英" not in out  # names and phone masked
    assert "13800000001" not in out
    assert re.search(r"\*{7}000[12]", out)
    assert "1985-**-**" in out
    assert len(out.splitlines()) < 40


def test_show_json_has_no_internal_field_and_unmask_shows_personal_fields(
    registry: Registry,
) -> None:
    entity = entity_of(registry, HR, "H1")
    masked = run("entity", "show", entity, "--json")
    assert masked.exit_code == 0, masked.output
    view = json.loads(masked.output)
    keys = set(_keys(view))
    assert not {k for k in keys if k.endswith("_bidx")}
    assert not keys & {"content_hash", "id", "a_id", "b_id", "lookup_key"}
    assert not [v for v in _internal_values(registry) if v in masked.output]
    assert view["golden_record"]["resident_id"]["value"] == "<encrypted>"
    assert view["golden_record"]["given_name"]["source"] == f"person/{HR}/H1"  # authoritative
    assert view["golden_record"]["given_name"]["rule"] == "authoritative"
    assert view["golden_record"]["given_name"]["value"] == "**"
    assert {r["fields"]["resident_id"] for r in view["records"]} == {"<encrypted>"}
    assert view["masked"] is True

    clear = json.loads(run("entity", "show", entity, "--json", "--unmask").output)
    assert clear["golden_record"]["given_name"]["value"] == "秀英"
    assert clear["golden_record"]["resident_id"]["value"] == "<encrypted>"  # never decrypted
    assert {r["fields"]["resident_id"] for r in clear["records"]} == {"<encrypted>"}
    assert clear["masked"] is False


def test_show_flags_two_identity_numbers_in_one_entity_without_choosing(
    registry: Registry,
) -> None:
    # A reviewer joins Li's record with Zhang's: two valid, different numbers in one entity.
    with transaction(registry.sessions) as session:
        registry.resolver.decide(
            session, f"person/{HR}/H2", f"person/{HEALTH}/M7", "confirmed", by="reviewer-1"
        )
    entity = entity_of(registry, HR, "H2")
    view = json.loads(run("entity", "show", entity, "--json").output)
    assert view["flags"] == ["identifier"]
    chosen = view["golden_record"]["resident_id"]
    assert chosen["value"] is None
    assert chosen["source"] is None
    assert chosen["conflict"] == [
        [f"person/{HEALTH}/M7", f"person/{HR}/H1"],
        [f"person/{HR}/H2"],
    ]
    joined = {r["ref"]: r["joined"] for r in view["records"]}
    assert joined[f"person/{HR}/H2"].startswith("reviewer: reviewer-1 at ")
    table = run("entity", "show", entity)
    assert "conflict: identifier" in table.output
    assert registry.bidx(LI) not in table.output
    assert registry.bidx(ZHANG) not in table.output


def test_show_an_unknown_entity_is_an_error(registry: Registry) -> None:
    result = run("entity", "show", "P" + "0" * 20)
    assert result.exit_code == 2
    assert "no entity" in result.output


def test_registry_settings_authorities_reach_the_golden_record(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_REGISTRY__AUTHORITATIVE_DEPARTMENTS", '{"given_name": ["health"]}')
    entity = entity_of(registry, HR, "H1")
    view = json.loads(run("entity", "show", entity, "--json", "--unmask").output)
    assert view["golden_record"]["given_name"]["value"] == "秀瑛"
    assert view["golden_record"]["given_name"]["source"] == f"person/{HEALTH}/M7"


def test_the_golden_record_of_the_registry_ignores_withdrawn_records(registry: Registry) -> None:
    entity = entity_of(registry, HR, "H1")
    registry.withdraw("person", HR, "H1")
    view = json.loads(run("entity", "show", entity, "--json", "--unmask").output)
    assert [r["ref"] for r in view["records"]] == [f"person/{HEALTH}/M7"]
    assert view["golden_record"]["given_name"]["value"] == "秀瑛"


# -- the operator's reads are audited --------------------------------------------------------


def test_finds_and_shows_are_audited_by_blind_index_never_by_number(registry: Registry) -> None:
    entity = entity_of(registry, HR, "H1")
    assert run("entity", "find", "--resident-id", ZHANG).exit_code == 0
    assert run("entity", "show", entity).exit_code == 0
    assert run("entity", "show", entity, "--unmask").exit_code == 0
    with registry.sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        rows = [(e.action, e.actor, e.role, e.subjects, e.fields, e.reason) for e in entries]
    assert [r[0] for r in rows] == [
        "registry.entity.find",
        "registry.entity.show",
        "registry.entity.show",
    ]
    assert all(r[1].startswith("cli") and r[2] == "operator" for r in rows)
    find, masked, unmasked = rows
    assert find[3] == [registry.bidx(ZHANG), entity]
    assert masked[3][0] == entity
    assert registry.bidx(ZHANG) in masked[3]  # a data subject's report finds the view
    assert masked[4] == []
    assert "person.given_name" in unmasked[4]
    assert "unmasked" in unmasked[5]
    assert ZHANG not in repr(rows)
    verified = runner.invoke(app, ["audit", "verify"], env=WIDE)
    assert verified.exit_code == 0, verified.output  # the chain is intact
