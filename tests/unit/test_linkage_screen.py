"""screen: the verdict of every pair, or None only where the verdict is a non-link.

The shortcut must never change a pair's link / review / non-link outcome. Three
checks: exhaustively, over every comparison vector of both kinds, the bound it
stops on is never below the true weight; on random pairs of records (with
random thresholds) and on every pair of a slice of the synthetic population,
screen gives verdict's very verdict, weight included, or None for a non-link.
"""

from __future__ import annotations

import itertools
import math
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bench import population
from bench.linkage_quality import link_records
from exchange.registry.linkage import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    Model,
    compare,
    default_model,
    fields_of,
    screen,
    verdict,
)
from exchange.registry.linkage.comparators import EVALUATION_ORDER
from exchange.registry.linkage.model import NON_LINK
from tests.unit.test_linkage_comparators import organisation_records, person, person_records


def _agrees(a: LinkRecord, b: LinkRecord, model: Model) -> bool:
    quick, full = screen(a, b, model), verdict(a, b, model)
    return full.kind == NON_LINK if quick is None else quick == full


def test_the_bound_never_falls_below_a_weight() -> None:
    # For every vector and every point where screen may stop, the weight so far plus the
    # most the fields left can add is at least the vector's weight: a pair given up on
    # is below the review threshold, whatever its remaining fields hold.
    for kind in (PERSON, ORGANISATION):
        model = default_model(kind)
        order = EVALUATION_ORDER[kind]
        weights = [f.weights for f in model.fields]
        levels = [range(len(f.levels)) for f in fields_of(kind)]
        checked = 0
        for vector in itertools.product(*levels):
            weight = model.weight(vector)
            partial = 0.0
            for k, i in enumerate(order):
                partial += weights[i][vector[i]]
                assert partial + model._rest[k] >= weight - 1e-9, (kind, vector, k)
            checked += 1
        assert checked == math.prod(len(f.levels) for f in fields_of(kind))


def test_the_names_are_compared_last_and_the_identifier_first() -> None:
    for kind in (PERSON, ORGANISATION):
        names = [fields_of(kind)[i].name for i in EVALUATION_ORDER[kind]]
        assert names[0] == "identifier"
        assert sorted(names) == sorted(f.name for f in fields_of(kind))
    assert [fields_of(PERSON)[i].name for i in EVALUATION_ORDER[PERSON]][-3:] == [
        "family_name",
        "given_name",
        "address",
    ]


def test_a_plain_non_link_is_given_up_on_and_a_link_is_not() -> None:
    model = default_model(PERSON)
    a = person(identifier="x", family_name="张", given_name="伟", birth_date=date(1985, 3, 4))
    other = person(identifier="y", family_name="李", given_name="强", birth_date=date(1961, 9, 1))
    same = person(identifier="x", family_name="张", given_name="伟", birth_date=date(1985, 3, 4))
    assert screen(a, other, model) is None
    assert verdict(a, other, model).kind == NON_LINK
    assert screen(a, same, model) == verdict(a, same, model)


_thresholds = st.tuples(st.floats(-30, 40), st.floats(-30, 40)).map(sorted)


@settings(max_examples=1500, deadline=None)  # a busy machine must not fail it
@given(
    st.tuples(person_records(), person_records())
    | st.tuples(organisation_records(), organisation_records()),
    _thresholds,
)
def test_screen_gives_the_verdict_of_random_pairs(
    pair: tuple[LinkRecord, LinkRecord], thresholds: list[float]
) -> None:
    a, b = pair
    review, link = thresholds
    model = default_model(a.kind).with_thresholds(link, review)
    assert _agrees(a, b, model)
    assert _agrees(b, a, model)


def test_screen_gives_the_verdict_of_every_pair_of_a_population() -> None:
    # 300 persons' records (about 780, some 300,000 pairs): every pair, the
    # shipped thresholds and a lower review threshold (more pairs near the bound).
    records = link_records(population.persons(300, seed=population.SEED))
    shipped = default_model(PERSON)
    models = (shipped, shipped.with_thresholds(shipped.link, 4.0))
    screened = 0
    for a, b in itertools.combinations(records, 2):
        for model in models:
            quick, full = screen(a, b, model), verdict(a, b, model)
            if quick is None:
                assert full.kind == NON_LINK, (a.ref, b.ref)
                screened += 1
            else:
                assert quick == full, (a.ref, b.ref)
    assert screened > 0


def test_compare_computes_each_field_as_its_comparator() -> None:
    records = link_records(population.persons(60, seed=population.SEED))
    for a, b in itertools.combinations(records, 2):
        assert compare(a, b) == tuple(f.level(a, b) for f in fields_of(a.kind))
