"""One linkage engine, one suite, every storage it runs on.

The same scenarios run on the in-memory linker and on the registry's tables
(SQLite and PostgreSQL, through the registry's record store and the entity
resolver), and each SQL run is compared with the in-memory result on the same
input: the same entities, the same review queue. The scenarios are the ones a
review found or that follow from the cannot-link rule: two people with
different valid identity numbers are never put in one entity by the model,
whatever chain of records lies between them; a reviewer can still join them;
a split holds against later records.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bench.population import persons
from exchange.core.db import make_engine, migrate, session_factory
from tests.support.engine import MemoryStore, SqlStore, Store, ref_of

pytestmark = pytest.mark.integration

PHONE = "13800000000"
HH, HEALTH, CIVIL, BENEFITS = "household", "health", "civil_affairs", "civil_affairs_mlsa"


def _person(identifier: str | None, given: str, born: str, **more: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "family_name": "张",
        "given_name": given,
        "full_name": "张" + given,
        "birth_date": born,
        "sex": "FEMALE",
        "phone": PHONE,
        "residence_division_code": "110105",
        **more,
    }
    if identifier is not None:
        payload["resident_id_bidx"] = identifier
    return payload


def _payment(identifier: str) -> dict[str, Any]:
    return {"resident_id_bidx": identifier, "amount_fen": 61000, "programme": "MLSA"}


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Store, Store]]:
    """The store under test, and the in-memory store to compare it with."""
    engine: Engine | None = None
    if request.param == "memory":
        store: Store = MemoryStore()
    else:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'registry.db'}"
        else:
            server = request.getfixturevalue("postgres")
            url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        engine = make_engine(url)
        migrate(engine)
        store = SqlStore(session_factory(engine))
    yield store, MemoryStore()
    if engine is not None:
        engine.dispose()


def _both(stores: tuple[Store, Store], method: str, *args: Any) -> None:
    for store in stores:
        getattr(store, method)(*args)


def _same(stores: tuple[Store, Store]) -> set[frozenset[str]]:
    tested, reference = stores
    assert tested.partition() == reference.partition()
    assert tested.review() == reference.review()
    return tested.partition()


def _together(partition: set[frozenset[str]], *refs: str) -> bool:
    return any(set(refs) <= group for group in partition)


A = ref_of("person", HH, "A")
B = ref_of("person", HEALTH, "B")
PAY_A = ref_of("benefit_payment", BENEFITS, "pay-A")
PAY_B = ref_of("benefit_payment", BENEFITS, "pay-B")


def test_the_false_merge_of_the_review_stays_apart_until_a_reviewer_joins(stores: Any) -> None:
    # 张秀芳 (valid ID A) and 张秀英 (valid ID B, day and month swapped, the same phone)
    _both(stores, "put", "person", HH, "A", _person("idA", "秀芳", "1985-03-04"))
    _both(stores, "put", "person", HEALTH, "B", _person("idB", "秀英", "1985-04-03"))
    _both(stores, "put", "benefit_payment", BENEFITS, "pay-A", _payment("idA"))
    _both(stores, "put", "benefit_payment", BENEFITS, "pay-B", _payment("idB"))
    found = _same(stores)
    assert not _together(found, A, B)
    assert _together(found, A, PAY_A)
    assert _together(found, B, PAY_B)
    assert not _together(found, A, PAY_B)
    assert not _together(found, B, PAY_A)
    # a reviewer may still join them (a mistyped but valid number)
    _both(stores, "confirm", A, B)
    assert _together(_same(stores), A, B, PAY_A, PAY_B)


def test_no_chain_of_records_joins_two_identifiers(stores: Any) -> None:
    # The same fields under two identity numbers, and a third record without one that
    # links to both as strongly: it joins one of them, never both.
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    _both(stores, "put", "person", HEALTH, "B", _person("idB", "秀英", "1985-03-04"))
    _both(stores, "put", "person", CIVIL, "C", _person(None, "秀英", "1985-03-04"))
    _both(stores, "put", "benefit_payment", BENEFITS, "pay-A", _payment("idA"))
    found = _same(stores)
    c = ref_of("person", CIVIL, "C")
    assert not _together(found, A, B)
    assert _together(found, A, c) or _together(found, B, c)
    assert _together(found, A, PAY_A)
    # A and B agree on everything but the number: a reviewer is asked
    assert (A, B) in stores[0].review() or (B, A) in stores[0].review()


def test_a_cut_link_holds_again_once_the_record_in_the_way_goes(stores: Any) -> None:
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    _both(stores, "put", "person", CIVIL, "C", _person(None, "秀英", "1985-03-04"))
    _both(stores, "put", "person", HEALTH, "B", _person("idB", "秀英", "1985-03-04"))
    c = ref_of("person", CIVIL, "C")
    assert not _together(_same(stores), A, B)
    _both(stores, "withdraw", "person", HH, "A")
    assert _together(_same(stores), B, c)
    # and an identifier removed by a correction no longer keeps its record apart
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    _both(stores, "put", "person", HEALTH, "B", _person(None, "秀英", "1985-03-04"))
    assert _together(_same(stores), A, B, c)


def test_a_split_holds_against_a_record_that_links_both_sides(stores: Any) -> None:
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    _both(stores, "put", "person", CIVIL, "C", _person(None, "秀英", "1985-03-04"))
    c = ref_of("person", CIVIL, "C")
    tested, reference = stores
    assert _together(_same(stores), A, c)
    tested.split(tested.entity_of(A), [c])
    reference.split(reference.entity_of(A), [c])
    assert not _together(_same(stores), A, c)
    _both(stores, "put", "person", HEALTH, "D", _person(None, "秀英", "1985-03-04"))
    found = _same(stores)
    assert not _together(found, A, c)
    assert _together(found, A, ref_of("person", HEALTH, "D")) or _together(
        found, c, ref_of("person", HEALTH, "D")
    )


def test_a_rejection_keeps_a_pair_apart_through_other_links(stores: Any) -> None:
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    _both(stores, "put", "person", CIVIL, "C", _person(None, "秀英", "1985-03-04"))
    _both(stores, "put", "person", HEALTH, "D", _person(None, "秀英", "1985-03-04"))
    c, d = ref_of("person", CIVIL, "C"), ref_of("person", HEALTH, "D")
    assert _together(_same(stores), A, c, d)
    _both(stores, "reject", A, c)
    found = _same(stores)
    assert not _together(found, A, c)


@pytest.mark.parametrize("seed", [5, 11])
def test_a_generated_population_gives_the_same_entities_in_any_order(
    stores: Any, seed: int
) -> None:
    records = persons(30, seed=seed)
    order = list(records)
    random.Random(seed).shuffle(order)
    tested, reference = stores
    other = MemoryStore()
    for rec in order:
        _, department, source_id = rec.ref.split("/", 2)
        tested.put("person", department, source_id, rec.payload)
        reference.put("person", department, source_id, rec.payload)
    for rec in records:  # the generator's order
        _, department, source_id = rec.ref.split("/", 2)
        other.put("person", department, source_id, rec.payload)
    found = _same(stores)
    assert found == other.partition()
    assert len(found) < len(records)  # something linked
    payloads = {rec.ref: rec.payload for rec in records}
    for group in found:
        held = {payloads[ref].get("resident_id_bidx") for ref in group} - {None}
        assert len(held) <= 1, "an entity holds two identity numbers"


def test_a_reviewers_link_holds_when_the_pair_shares_no_blocking_key(stores: Any) -> None:
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04"))
    stranger = _person(None, "建国", "1962-11-20", family_name="李", phone="13911112222")
    _both(stores, "put", "person", CIVIL, "X", stranger)
    x = ref_of("person", CIVIL, "X")
    assert not _together(_same(stores), A, x)
    _both(stores, "confirm", A, x)
    assert _together(_same(stores), A, x)
    # either record changes: the pair is compared again although no key joins them
    _both(stores, "put", "person", CIVIL, "X", {**stranger, "phone": "13911113333"})
    assert _together(_same(stores), A, x)
    _both(stores, "put", "person", HH, "A", _person("idA", "秀英", "1985-03-04", phone=None))
    assert _together(_same(stores), A, x)
