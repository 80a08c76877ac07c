"""How each record joined its entity: the weakest link of its strongest path from the anchors."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from exchange.registry.joins import (
    IDENTIFIER,
    PROBABILISTIC,
    REVIEWER,
    StoredLink,
    joins_of,
    probability,
)

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def link(a: int, b: int, weight: float = 20.0, *, same_id: bool = False) -> StoredLink:
    return StoredLink(a, b, "link", weight, same_id, None, None)


def confirmed(a: int, b: int) -> StoredLink:
    return StoredLink(a, b, "confirmed", 3.0, True, "reviewer-7", WHEN)


def test_identifier_links_all_the_way_say_identifier() -> None:
    found = joins_of({1, 2, 3}, [link(1, 2, same_id=True), link(2, 3, same_id=True)], {1}, 0.5)
    assert {r: j.how for r, j in found.items()} == {1: IDENTIFIER, 2: IDENTIFIER, 3: IDENTIFIER}


def test_a_probabilistic_link_on_the_way_is_what_a_record_says() -> None:
    # 3 carries the same number as 2, but 2 joined the anchor by probability
    links = [link(1, 2, 24.5), link(2, 3, same_id=True)]
    found = joins_of({1, 2, 3}, links, {1}, 0.5)
    assert found[1].how == IDENTIFIER
    for ref in (2, 3):
        assert found[ref].how == PROBABILISTIC
        assert found[ref].weight == 24.5
        assert found[ref].probability == probability(24.5, 0.5)
    assert found[3].via == 2


def test_the_strongest_path_wins_and_a_reviewer_is_named() -> None:
    # 4 is reachable by a weak probabilistic link directly, or through a reviewer
    links = [link(1, 4, 19.0), confirmed(1, 2), link(2, 4, same_id=True)]
    found = joins_of({1, 2, 4}, links, {1}, 0.5)
    assert found[4].how == REVIEWER
    assert found[4].decided_by == "reviewer-7"
    assert found[4].to_dict() == {
        "how": REVIEWER,
        "decided_by": "reviewer-7",
        "decided_at": WHEN.isoformat(),
    }


def test_without_anchors_a_record_says_its_strongest_own_link() -> None:
    found = joins_of({1, 2, 3}, [link(1, 2, 19.0), link(2, 3, 30.0)], set(), 0.5)
    assert found[1].weight == 19.0
    assert found[2].weight == 30.0
    assert found[3].weight == 30.0


def test_review_and_rejected_edges_never_join() -> None:
    links = [StoredLink(1, 2, "review", 15.0, False, None, None),
             StoredLink(1, 3, "rejected", 25.0, False, "r", WHEN)]  # fmt: skip
    assert joins_of({1, 2, 3}, links, {1}, 0.5) == {1: joins_of({1}, [], {1}, 0.5)[1]}


@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.floats(-5, 60), st.booleans()),
        max_size=20,
    ),
    st.sets(st.integers(0, 7), max_size=3),
)
def test_a_join_is_never_stronger_than_every_path_allows(
    edges: list[tuple[int, int, float, bool]], anchors: set[int]
) -> None:
    links = [link(a, b, w, same_id=s) for a, b, w, s in edges if a != b]
    members = set(range(8))
    found = joins_of(members, links, anchors, 0.5)
    for ref, join in found.items():
        if ref in anchors:
            assert join.how == IDENTIFIER
            continue
        if join.how == IDENTIFIER:
            # from an anchor by same-identifier links, or (no anchor reaching it) its own
            # same-identifier link
            assert any(lk.deterministic and ref in (lk.a, lk.b) for lk in links)
        if join.how == PROBABILISTIC:
            assert join.weight is not None
            assert 0.0 <= (join.probability or 0.0) <= 1.0
            assert any(lk.weight == join.weight and not lk.deterministic for lk in links)


def test_probability_grows_with_the_weight_and_the_prior() -> None:
    assert probability(0.0, 0.5) == 0.5
    assert probability(10.0, 0.5) > probability(5.0, 0.5)
    assert probability(10.0, 0.9) > probability(10.0, 0.1)
    assert probability(200.0, 0.5) == 1.0
