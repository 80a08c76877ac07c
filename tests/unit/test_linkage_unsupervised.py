"""fit_unsupervised: u from random pairs, m by EM over the blocking rules, no labels needed.

On synthetic records whose error rates are known it recovers m and u roughly,
with and without identifiers, its share of matches stays inside (0, 1), and a
degenerate input raises LinkageFitError with a clear message.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from datetime import date, timedelta

import pytest

from exchange.core.errors import LinkageFitError
from exchange.registry.linkage import PERSON, FieldModel, LinkRecord, Model, fit_unsupervised
from exchange.registry.linkage.comparators import compare

DATE_ERROR = 0.1  # share of duplicate records whose birth date is one day off
GIVEN_ERROR = 0.15  # share whose given name has two letters transposed


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(5, 8)))


def _population(
    people: int, seed: int, *, identifiers: bool
) -> tuple[list[LinkRecord], dict[str, int]]:
    """Each person seen twice: an original and a duplicate with known error rates."""
    rng = random.Random(seed)
    families = [_name(rng) for _ in range(people // 4)]
    givens = [_name(rng) for _ in range(people // 4)]
    records, truth = [], {}
    for p in range(people):
        family, given = rng.choice(families), rng.choice(givens)
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(25_000))
        street = f"{rng.randint(1, 99)} {_name(rng)} STREET"
        postcode = f"{rng.randint(2000, 7999)}"
        for copy in range(2):
            g, b = given, born
            if copy and rng.random() < GIVEN_ERROR:
                g = g[0] + g[2] + g[1] + g[3:]
            if copy and rng.random() < DATE_ERROR:
                b = born + timedelta(days=1)
            ref = f"r{p}-{copy}"
            records.append(
                LinkRecord(
                    ref=ref,
                    kind=PERSON,
                    department=f"d{copy}",
                    identifier=f"id{p:06d}" if identifiers and rng.random() < 0.7 else None,
                    family_name=family,
                    given_name=g,
                    birth_date=b,
                    address_line=street,
                    postcode=postcode,
                )
            )
            truth[ref] = p
    return records, truth


def _field(model: Model, name: str) -> FieldModel:
    return next(f for f in model.fields if f.name == name)


@pytest.mark.parametrize("identifiers", [False, True])
def test_recovers_m_and_u_roughly(identifiers: bool) -> None:
    records, _ = _population(800, seed=5, identifiers=identifiers)
    model = fit_unsupervised(records, PERSON, seed=1, max_pairs=60_000)
    date_m = dict(
        zip(_field(model, "birth_date").levels, _field(model, "birth_date").m, strict=True)
    )
    # 10% of duplicates are one day off: exact about 0.9, typo about 0.1
    assert date_m["exact"] == pytest.approx(1 - DATE_ERROR, abs=0.06)
    assert date_m["typo"] == pytest.approx(DATE_ERROR, abs=0.06)
    given = _field(model, "given_name")
    given_m = dict(zip(given.levels, given.m, strict=True))
    assert given_m["exact"] == pytest.approx(1 - GIVEN_ERROR, abs=0.08)
    # u of an exact family name: the chance two random records share one (200 names)
    rng = random.Random(2)
    same = Counter(
        records[i].family == records[j].family
        for i, j in (rng.sample(range(len(records)), 2) for _ in range(20_000))
    )
    family = _field(model, "family_name")
    u_exact = dict(zip(family.levels, family.u, strict=True))["exact"]
    assert u_exact == pytest.approx(same[True] / 20_000, rel=0.5)
    assert 0 < model.prior < 1
    assert model.review < model.link
    assert model.sibling_guard is False  # no households in these records
    assert "fit_unsupervised" in model.source
    assert ("identifier bootstrap yes" in model.source) is identifiers


def test_without_identifiers_it_does_not_degenerate_and_links_well() -> None:
    records, truth = _population(400, seed=9, identifiers=False)
    model = fit_unsupervised(records, PERSON, seed=3, max_pairs=40_000)
    assert 0.05 < model.prior < 0.99
    pairs = [(a, b) for i, a in enumerate(records) for b in records[i + 1 : i + 40]]
    linked = [(a, b) for a, b in pairs if model.weight(compare(a, b)) >= model.link]
    correct = sum(truth[a.ref] == truth[b.ref] for a, b in linked)
    assert correct / len(linked) > 0.98
    assert correct > 0.9 * 400


def test_identical_records_raise_a_clear_error() -> None:
    # Every record the same: every pair agrees on everything, random ones too.
    records = [
        LinkRecord(
            ref=f"r{i}",
            kind=PERSON,
            department="d",
            family_name="SMITH",
            given_name="JOHN",
            birth_date=date(1970, 1, 1),
        )
        for i in range(80)
    ]
    with pytest.raises(LinkageFitError, match="degenerate"):
        fit_unsupervised(records, PERSON, max_pairs=10_000)


def test_too_few_records_raise() -> None:
    records, _ = _population(10, seed=1, identifiers=False)
    with pytest.raises(LinkageFitError, match="at least 50"):
        fit_unsupervised(records, PERSON)
