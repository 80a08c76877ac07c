"""Tests for the incremental linker: entities kept consistent as records come and go."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.registry.linkage import PERSON, IncrementalLinker, LinkRecord, default_model
from tests.support.linkage import person

MODEL = default_model(PERSON)


def partition(linker: IncrementalLinker) -> set[frozenset[str]]:
    return set(linker.entities().values())


def test_records_link_into_one_entity_and_a_stranger_stays_apart() -> None:
    linker = IncrementalLinker(MODEL)
    first = linker.add(person("a", identifier="x"))
    entity = first["a"]
    assert linker.add(person("b", identifier="x", division_code="110108")) == {"b": entity}
    assert linker.add(person("c", given_name="秀瑛", phone="13800000000")) == {"c": entity}
    stranger = linker.add(
        person("z", family_name="李", given_name="建国", birth_date=date(1962, 1, 9))
    )
    assert stranger["z"] != entity
    assert linker.members(entity) == {"a", "b", "c"}
    assert linker.entity_of("c") == entity
    assert ("a", "b") in linker.links()
    assert linker.explain("a", "b").reason == "same identifier"
    assert len(linker) == 4
    assert "z" in linker


def test_uncertain_pairs_wait_for_review_and_confirm_merges() -> None:
    linker = IncrementalLinker(MODEL)
    linker.add(person("a", identifier="x"))
    linker.add(person("b", given_name="秀兰", division_code="110108"))  # twin or typo?
    assert linker.entity_of("a") != linker.entity_of("b")
    queue = linker.review_queue()
    assert list(queue) == [("a", "b")]
    assert queue[("a", "b")].kind == "review"
    keep = linker.entity_of("a")
    changed = linker.confirm("a", "b")
    assert changed == {"b": keep} or set(changed) == {"a"}
    assert linker.entity_of("a") == linker.entity_of("b")
    assert linker.review_queue(all_pairs=True) == {}
    assert linker.explain("a", "b").reason == "confirmed by a reviewer"


def test_reject_separates_a_pair_for_good() -> None:
    linker = IncrementalLinker(MODEL)
    linker.add(person("a", identifier="x"))
    linker.add(person("b", identifier="x"))
    entity = linker.entity_of("a")
    linker.reject("a", "b")
    assert linker.entity_of("a") != linker.entity_of("b")
    explanation = linker.explain("a", "b")
    assert (explanation.decision, explanation.reason) == ("non-link", "rejected by a reviewer")
    assert entity in {linker.entity_of("a"), linker.entity_of("b")}
    # a third record that links to both cannot bring them back together
    linker.add(person("c", identifier="x"))
    assert linker.entity_of("a") != linker.entity_of("b")
    assert linker.entity_of("c") in {linker.entity_of("a"), linker.entity_of("b")}


def test_split_moves_records_to_a_new_entity_and_keeps_the_rest() -> None:
    linker = IncrementalLinker(MODEL)
    for ref in "abcd":
        linker.add(person(ref, identifier="x"))
    entity = linker.entity_of("a")
    changed = linker.split(entity, ["c", "d"])
    assert linker.members(entity) == {"a", "b"}
    assert set(changed) == {"c", "d"}
    assert linker.entity_of("c") == linker.entity_of("d") != entity
    with pytest.raises(ValueError, match="some, but not all"):
        linker.split(entity, ["a", "b"])


def test_removing_a_bridge_splits_the_entity() -> None:
    linker = IncrementalLinker(MODEL)
    linker.add(person("a", identifier="x"))
    linker.add(person("b", identifier="x", phone="13800000000", given_name="秀瑛"))
    third = {
        "family_name": "章",
        "given_name": "秀瑛",
        "birth_date": date(1985, 4, 3),
        "division_code": "310104",
    }
    linker.add(person("c", phone="13800000000", **third))
    entity = linker.entity_of("a")
    assert linker.members(entity) == {"a", "b", "c"}
    linker.remove("b")
    assert "b" not in linker
    assert linker.entity_of("a") != linker.entity_of("c")
    assert entity in {linker.entity_of("a"), linker.entity_of("c")}


def test_an_update_relinks_the_record() -> None:
    linker = IncrementalLinker(MODEL)
    linker.add(person("a", identifier="x"))
    linker.add(person("b", identifier="y", family_name="李", given_name="建国"))
    assert linker.entity_of("a") != linker.entity_of("b")
    linker.update(person("b", identifier="x"))
    assert linker.entity_of("a") == linker.entity_of("b")
    assert len(linker) == 2


# ---------------------------------------------------------------- properties

_fields = st.fixed_dictionaries(
    {
        "identifier": st.sampled_from(["x", "y", None]),
        "family_name": st.sampled_from(["张", "章", "李"]),
        "given_name": st.sampled_from(["秀英", "秀瑛", "秀兰", "伟"]),
        "birth_date": st.sampled_from([date(1985, 3, 4), date(1985, 4, 3), date(1962, 1, 9)]),
        "sex": st.sampled_from(["FEMALE", "MALE", None]),
        "phone": st.sampled_from(["13800000000", None]),
        "division_code": st.sampled_from(["110105", "110108", "310104"]),
    }
)
_records = st.lists(_fields, min_size=1, max_size=12).map(
    lambda rows: [person(f"r{i:02d}", **row) for i, row in enumerate(rows)]
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(records=_records, data=st.data())
def test_the_partition_does_not_depend_on_arrival_order(
    records: list[LinkRecord], data: st.DataObject
) -> None:
    first = IncrementalLinker(MODEL)
    for rec in records:
        first.add(rec)
    shuffled = data.draw(st.permutations(records))
    second = IncrementalLinker(MODEL)
    for rec in shuffled:
        second.add(rec)
    assert partition(first) == partition(second)
    assert set(first.links()) == set(second.links())
    assert set(first.review_queue(all_pairs=True)) == set(second.review_queue(all_pairs=True))


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _fields, st.integers(0, 15)),
        st.tuples(st.just("remove"), st.integers(0, 15)),
        st.tuples(st.just("confirm"), st.integers(0, 15), st.integers(0, 15)),
        st.tuples(st.just("reject"), st.integers(0, 15), st.integers(0, 15)),
        st.tuples(st.just("split"), st.integers(0, 15)),
    ),
    min_size=1,
    max_size=25,
)


def _apply(linker: IncrementalLinker, op: tuple[Any, ...]) -> None:
    refs = sorted(linker.entities() and {r for m in linker.entities().values() for r in m})
    if op[0] == "add":
        linker.add(person(f"r{op[2]:02d}", **op[1]))  # an existing ref is an update
    elif not refs:
        return
    elif op[0] == "remove":
        linker.remove(refs[op[1] % len(refs)])
    elif op[0] in ("confirm", "reject"):
        a, b = refs[op[1] % len(refs)], refs[op[2] % len(refs)]
        if a != b:
            getattr(linker, op[0])(a, b)
    else:
        entity = linker.entity_of(refs[op[1] % len(refs)])
        members = sorted(linker.members(entity))
        if len(members) > 1:
            linker.split(entity, members[: len(members) // 2])


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(_operations)
def test_an_entity_whose_members_did_not_change_keeps_its_id(ops: list[tuple[Any, ...]]) -> None:
    linker = IncrementalLinker(MODEL)
    for op in ops:
        before = linker.entities()
        _apply(linker, op)
        after = linker.entities()
        by_members = {members: entity for entity, members in after.items()}
        for entity, members in before.items():
            if members in by_members:
                assert by_members[members] == entity
        held = [r for members in after.values() for r in members]
        assert len(held) == len(set(held)) == len(linker)  # every record in exactly one entity
        for entity, members in after.items():
            assert members
            assert all(linker.entity_of(r) == entity for r in members)


def test_a_small_synthetic_population_links_well() -> None:
    from bench import population
    from bench.linkage_quality import link_records, score

    generated = population.persons(400, seed=11)
    linker = IncrementalLinker(MODEL)
    for rec in link_records(generated):
        linker.add(rec)
    truth = {g.ref: g.truth for g in generated}
    result = score({ref: linker.entity_of(ref) for ref in truth}, truth)
    assert result.precision >= 0.98
    assert result.recall >= 0.97
