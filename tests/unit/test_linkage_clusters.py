"""Tests for exchange.registry.linkage.clusters: components and stable entity ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from exchange.registry.linkage import assign, components
from exchange.registry.linkage.clusters import constrained_components


def counter(prefix: str = "N") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def test_components_are_sorted_and_ignore_outside_edges() -> None:
    parts = components(["d", "a", "c", "b"], [("a", "c"), ("b", "z")])
    assert parts == [["a", "c"], ["b"], ["d"]]


def test_an_unchanged_entity_keeps_its_id() -> None:
    members = {"a": "E1", "b": "E1", "c": "E2"}
    got = assign(members, [("a", "b")], ["a", "b", "c"], counter())
    assert got == {"a": "E1", "b": "E1", "c": "E2"}


def test_a_new_record_joining_an_entity_keeps_the_entity_id() -> None:
    got = assign({"a": "E1", "b": "E1"}, [("a", "b"), ("b", "n")], ["a", "b", "n"], counter())
    assert got == {"a": "E1", "b": "E1", "n": "E1"}


def test_a_new_record_alone_gets_a_new_id() -> None:
    assert assign({}, [], ["n"], counter()) == {"n": "N1"}


def test_a_merge_keeps_the_id_that_brought_most_members() -> None:
    members = {"a": "E9", "b": "E9", "c": "E1"}
    got = assign(members, [("a", "b"), ("b", "c")], ["a", "b", "c"], counter())
    assert set(got.values()) == {"E9"}


def test_a_merge_of_equal_entities_keeps_the_smallest_id() -> None:
    members = {"a": "E2", "b": "E1"}
    assert set(assign(members, [("a", "b")], ["a", "b"], counter()).values()) == {"E1"}


def test_a_split_leaves_the_id_with_the_largest_part() -> None:
    members = {"a": "E1", "b": "E1", "c": "E1"}
    got = assign(members, [("b", "c")], ["a", "b", "c"], counter())
    assert got == {"a": "N1", "b": "E1", "c": "E1"}


def test_a_split_into_equal_parts_leaves_the_id_with_the_smallest_ref() -> None:
    members = {"a": "E1", "b": "E1", "c": "E1", "d": "E1"}
    got = assign(members, [("a", "d"), ("b", "c")], ["a", "b", "c", "d"], counter())
    assert got == {"a": "E1", "d": "E1", "b": "N1", "c": "N1"}


def test_new_ids_are_handed_out_in_order_of_smallest_ref() -> None:
    members = dict.fromkeys("abcde", "E1")
    got = assign(members, [("a", "b"), ("a", "c")], list("edcba"), counter())
    assert got == {"a": "E1", "b": "E1", "c": "E1", "d": "N1", "e": "N2"}


def test_constraints_cut_the_weakest_link() -> None:
    edges = [("a", "b", 10.0), ("b", "c", 3.0), ("c", "d", 8.0)]
    parts = constrained_components("abcd", edges, [("a", "d")])
    assert parts == [["a", "b"], ["c", "d"]]
    assert constrained_components("abcd", edges, []) == components("abcd", [e[:2] for e in edges])


def test_labels_keep_groups_apart_unless_an_edge_is_forced() -> None:
    # a (label 1) - c (no label) - b (label 2): c joins the stronger side only
    edges = [("a", "c", 9.0), ("b", "c", 5.0)]
    labels = {"a": "1", "b": "2"}
    assert constrained_components("abc", edges, [], labels) == [["a", "c"], ["b"]]
    forced = constrained_components("abc", [*edges, ("a", "b", 1.0)], [], labels, {("a", "b")})
    assert forced == [["a", "b", "c"]]
    # a rejection still wins over a forced edge
    assert constrained_components("ab", [("a", "b", 1.0)], [("a", "b")], labels, {("a", "b")}) == [
        ["a"],
        ["b"],
    ]


_refs = st.sampled_from("abcdefgh")


@given(
    members=st.dictionaries(_refs, st.sampled_from(["E1", "E2", "E3"])),
    edges=st.lists(st.tuples(_refs, _refs), max_size=12),
    extra=st.sets(_refs),
)
def test_assign_gives_each_component_one_id_and_no_two_the_same(
    members: dict[str, str], edges: list[tuple[str, str]], extra: set[str]
) -> None:
    records = set(members) | extra
    got = assign(members, edges, records, counter())
    assert set(got) == records
    parts = components(records, edges)
    ids = [{got[r] for r in part} for part in parts]
    assert all(len(i) == 1 for i in ids)  # one id per component
    assert len({next(iter(i)) for i in ids}) == len(parts)  # never shared
    old: dict[str, set[str]] = {}
    for ref, entity in members.items():
        old.setdefault(entity, set()).add(ref)
    for part in parts:
        for entity, refs in old.items():
            if refs == set(part):  # unchanged membership: unchanged id
                assert got[part[0]] == entity
