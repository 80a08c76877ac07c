"""Tests for the linkage model: weights, explanations, JSON, EM and the shipped models."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.registry.linkage import (
    ORGANISATION,
    PERSON,
    FieldModel,
    LinkRecord,
    Model,
    default_model,
    estimate,
    fields_of,
    fit_em,
    fit_model,
    m_from_matches,
    posterior_threshold,
    u_from_random,
)


def test_the_shipped_models_load_and_fit_the_comparators() -> None:
    for kind in (PERSON, ORGANISATION):
        model = default_model(kind)
        assert [f.name for f in model.fields] == [f.name for f in fields_of(kind)]
        assert model.review <= model.link
    with pytest.raises(ValueError, match="no default"):
        default_model("vehicle")


def test_json_round_trip() -> None:
    model = default_model(PERSON)
    again = Model.from_json(model.to_json())
    assert again.link == model.link
    assert again.review == model.review
    for a, b in zip(model.fields, again.fields, strict=True):
        assert a.m == pytest.approx(b.m, abs=1e-6)
        assert a.u == pytest.approx(b.u, abs=1e-6)


def test_a_model_for_other_comparators_is_refused() -> None:
    data = default_model(PERSON).to_dict()
    data["fields"][3]["m"].pop("swapped")
    with pytest.raises(ValueError, match="birth_date"):
        Model.from_dict(data)
    data = default_model(PERSON).to_dict()
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        Model.from_dict(data)
    with pytest.raises(ValueError, match="review threshold"):
        default_model(PERSON).with_thresholds(1.0, 2.0)


def test_bad_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        FieldModel("sex", ("null", "agree", "disagree"), (1.0, 1.2, 0.0), (1.0, 0.5, 0.5))


def test_weight_is_the_sum_of_log2_m_over_u_with_nulls_zero() -> None:
    model = default_model(PERSON)
    vector = (0, 1, 1, 1, 1, 0, 3, 0, 0)
    expected = sum(
        math.log2(f.m[lv] / f.u[lv]) for f, lv in zip(model.fields, vector, strict=True) if lv
    )
    assert model.weight(vector) == pytest.approx(expected)
    assert model.weight((0,) * len(model.fields)) == 0.0


def _vectors(kind: str) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(st.integers(0, len(f.levels) - 1) for f in fields_of(kind)))


@given(_vectors(PERSON), _vectors(ORGANISATION))
def test_weights_are_finite(person: tuple[int, ...], organisation: tuple[int, ...]) -> None:
    assert math.isfinite(default_model(PERSON).weight(person))
    assert math.isfinite(default_model(ORGANISATION).weight(organisation))


def test_decisions_follow_the_thresholds() -> None:
    model = default_model(PERSON).with_thresholds(10.0, 2.0)
    assert model.decision(10.0) == "link"
    assert model.decision(9.9) == "review"
    assert model.decision(2.0) == "review"
    assert model.decision(1.9) == "non-link"


def test_explanation_is_json_and_adds_up() -> None:
    a = LinkRecord(
        "a", PERSON, "hr", family_name="张", given_name="伟", birth_date=date(1985, 3, 4)
    )
    b = LinkRecord("b", PERSON, "h", family_name="张", given_name="玮", birth_date=date(1985, 4, 3))
    model = default_model(PERSON)
    explanation = model.explain(a, b)
    data = json.loads(json.dumps(explanation.to_dict()))
    levels = {f["field"]: f["level"] for f in data["fields"]}
    assert levels == {
        "identifier": "null",
        "family_name": "exact",
        "given_name": "homophone",
        "birth_date": "swapped",
        "sex": "null",
        "phone": "null",
        "division_code": "null",
        "address": "null",
        "postcode": "null",
    }
    assert explanation.total == pytest.approx(sum(e.weight for e in explanation.fields))
    assert data["total_weight"] == pytest.approx(explanation.total, abs=1e-3)
    assert data["decision"] == model.decision(explanation.total)
    null = next(f for f in data["fields"] if f["field"] == "identifier")
    assert null == {
        "field": "identifier",
        "level": "null",
        "relationship": "missing on one side or both",
        "weight": 0.0,
        "m": None,
        "u": None,
    }
    assert "张" not in json.dumps(data, ensure_ascii=False)  # levels and weights, no values
    assert explanation.summary().startswith(data["decision"])


def _true_model() -> Model:
    """A person model with known m and u, to sample from."""
    base = default_model(PERSON)
    rng = random.Random(3)
    fields = []
    for f in base.fields:
        k = len(f.levels) - 1
        m = [rng.random() for _ in range(k)]
        m[0] += k  # matches mostly agree
        u = [rng.random() for _ in range(k)]
        u[-1] += k  # non-matches mostly disagree
        fields.append(
            replace(f, m=(1.0, *(x / sum(m) for x in m)), u=(1.0, *(x / sum(u) for x in u)))
        )
    return replace(base, fields=tuple(fields), prior=0.3)


def _sample(model: Model, count: int, seed: int) -> tuple[Counter[tuple[int, ...]], list[bool]]:
    rng = random.Random(seed)
    vectors: Counter[tuple[int, ...]] = Counter()
    labels = []
    for _ in range(count):
        match = rng.random() < model.prior
        probs = [f.m if match else f.u for f in model.fields]
        vector = tuple(rng.choices(range(1, len(p)), p[1:])[0] for p in probs)
        vectors[vector] += 1
        labels.append(match)
    return vectors, labels


def test_em_recovers_known_m_and_u_roughly() -> None:
    truth = _true_model()
    vectors, _ = _sample(truth, 40_000, seed=5)
    start = default_model(PERSON)  # a different, roughly right starting point
    fitted = estimate(vectors, replace(start, prior=0.5), iterations=300, prior_pairs=0)
    assert fitted.prior == pytest.approx(truth.prior, abs=0.02)
    for got, want in zip(fitted.fields, truth.fields, strict=True):
        assert got.m[1:] == pytest.approx(want.m[1:], abs=0.03)
        assert got.u[1:] == pytest.approx(want.u[1:], abs=0.03)
    assert (fitted.link, fitted.review) == (start.link, start.review)


def test_em_can_keep_u_and_fields_fixed() -> None:
    truth = _true_model()
    vectors, _ = _sample(truth, 5_000, seed=6)
    fitted = estimate(vectors, truth, iterations=20, fix_u=True, only=("sex",))
    for got, want in zip(fitted.fields, truth.fields, strict=True):
        assert got.u == want.u
        if got.name != "sex":
            assert got.m == want.m
    with pytest.raises(ValueError, match="no comparison vectors"):
        estimate([], truth)


def test_u_from_random_and_m_from_matches_count_levels() -> None:
    base = default_model(PERSON)
    vectors = Counter({(0, 2, 4, 4, 1, 0, 3, 0, 0): 3, (0, 2, 5, 4, 2, 3, 3, 0, 0): 1})
    model = u_from_random(vectors, base)
    assert model.fields[2].u[4:6] == pytest.approx((0.75, 0.25), abs=1e-5)
    # the identifier is null in every vector: no information, so uniform
    assert model.fields[0].u[1:] == pytest.approx((0.5, 0.5))
    model = m_from_matches(vectors, base, prior_pairs=0)
    assert model.fields[0].m == base.fields[0].m  # kept
    assert model.fields[4].m[1:] == pytest.approx((0.75, 0.25), abs=1e-5)


def test_posterior_threshold() -> None:
    model = replace(default_model(PERSON), prior=0.5)
    assert posterior_threshold(model, 0.5) == pytest.approx(0.0)
    assert posterior_threshold(model, 0.8) == pytest.approx(2.0)
    assert posterior_threshold(replace(model, prior=0.2), 0.5) == pytest.approx(2.0)


def test_fitting_to_a_small_population() -> None:
    from bench import population
    from bench.linkage_quality import link_records

    records = link_records(population.persons(600, seed=3))
    base = default_model(PERSON)
    fitted = fit_model(records, base, random_pairs=20_000)
    assert (fitted.link, fitted.review, fitted.sibling_guard) == (base.link, base.review, True)
    weights = {f.name: f.weights for f in fitted.fields}
    assert weights["birth_date"][1] > 8  # an exact birth date is strong evidence
    assert weights["birth_date"][2] > 5  # and so is a swapped one
    assert weights["identifier"][2] < -3
    assert 0 < fitted.prior < 1
    # u fixed from random pairs: EM no longer takes every candidate pair for a match
    em = fit_em(records, base, iterations=50, random_pairs=20_000)
    assert em.review < em.link
    assert em.link == pytest.approx(posterior_threshold(em, 0.95), abs=0.01)
    assert 0.5 < em.prior < 1 - 1e-4  # nearly all candidate pairs match here (0.97)
