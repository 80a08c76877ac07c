"""Tests for exchange.registry.linkage.linker: identifier rules first, the model second."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from exchange.registry.linkage import PERSON, decide, default_model, organisation_record
from exchange.registry.linkage.linker import (
    DIFFERENT_IDENTIFIERS,
    IDENTIFIER_CONFLICT,
    POSSIBLE_SIBLING,
    SAME_IDENTIFIER,
    verdict,
)
from tests.support.linkage import person

MODEL = default_model(PERSON)

LP, RP = "\uff08", "\uff09"  # full-width brackets, as on Chinese licences


def test_the_same_identifier_links_deterministically() -> None:
    a = person("a", identifier="x")
    b = person("b", identifier="x", given_name="秀兰", division_code="310104")
    decision = decide(a, b, MODEL)
    assert decision.kind == "link"
    assert decision.deterministic
    assert decision.explanation.reason == SAME_IDENTIFIER
    assert decision.explanation.decision == "link"


def test_the_same_identifier_links_even_when_the_rest_conflicts_and_says_so() -> None:
    a = person("a", identifier="x")
    b = person("b", identifier="x", given_name="建国", birth_date=date(1990, 7, 21))
    decision = decide(a, b, MODEL)
    assert decision.kind == "link"
    assert decision.deterministic
    assert decision.explanation.reason == IDENTIFIER_CONFLICT
    # a different birth date alone (or a different name alone) is not a conflict
    for other in (
        person("c", identifier="x", birth_date=date(1990, 7, 21)),
        person("d", identifier="x", given_name="建国"),
    ):
        found = decide(a, other, MODEL)
        assert (found.kind, found.explanation.reason) == ("link", SAME_IDENTIFIER)


def test_a_missing_identifier_leaves_it_to_the_model() -> None:
    a = person("a", identifier="x", phone="13800000000")
    b = person("b", phone="13800000000")
    decision = decide(a, b, MODEL)
    assert not decision.deterministic
    assert decision.kind == "link"
    assert decision.weight >= MODEL.link
    stranger = person("c", family_name="李", given_name="建国", birth_date=date(1962, 1, 9))
    assert decide(a, stranger, MODEL).kind == "non-link"


def test_different_identifiers_never_link_automatically() -> None:
    a = person("a", identifier="x", phone="13800000000")
    b = person("b", identifier="y", phone="13800000000")
    without = decide(a, person("b", phone="13800000000"), MODEL)
    decision = decide(a, b, MODEL)
    assert decision.deterministic
    assert decision.weight < without.weight
    assert without.kind == "link"
    # everything else agrees: perhaps a mistyped (but valid) number, so a reviewer looks
    assert (decision.kind, decision.explanation.reason) == ("review", DIFFERENT_IDENTIFIERS)
    sibling = person("s", identifier="y", given_name="秀兰", sex="FEMALE")
    found = decide(a, sibling, MODEL)
    assert (found.kind, found.explanation.reason) == ("non-link", DIFFERENT_IDENTIFIERS)


def test_the_false_merge_of_the_review_is_not_made() -> None:
    # 张秀芳 (ID A) and 张秀英 (ID B, another person, day and month of birth swapped, the
    # same household phone): linked once at weight 20.8 under the old rule
    a = person("a", identifier="A", given_name="秀芳", phone="13800000000")
    b = person("b", identifier="B", given_name="秀英", phone="13800000000",
               birth_date=date(1985, 4, 3))  # fmt: skip
    assert decide(a, b, MODEL).kind != "link"


def test_verdict_matches_decide() -> None:
    a, b = person("a", identifier="x"), person("b")
    full, cheap = decide(a, b, MODEL), verdict(a, b, MODEL)
    assert (full.kind, full.weight, full.deterministic) == (
        cheap.kind,
        cheap.weight,
        cheap.deterministic,
    )


def test_organisations_link_on_the_uscc() -> None:
    model = default_model("organisation")
    a = organisation_record("o/a", "mr", {"uscc": "91X", "legal_name": "北京华信科技有限公司"})
    b = organisation_record(
        "o/b", "tax", {"uscc": "91x", "legal_name": f"华信科技{LP}北京{RP}有限公司"}
    )
    decision = decide(a, b, model)
    assert decision.kind == "link"
    assert decision.deterministic
    json.dumps(decision.explanation.to_dict())


def test_the_sibling_guard_holds_twins_for_review() -> None:
    a = person("a", identifier="x", phone="13800000000")
    twin = person("b", given_name="秀兰", phone="13800000000")  # same household phone
    assert MODEL.sibling_guard
    held = decide(a, twin, MODEL)
    assert held.kind == "review"
    assert held.deterministic
    assert held.explanation.reason == POSSIBLE_SIBLING
    assert held.weight >= MODEL.link  # the weight alone would have linked them
    unguarded = replace(MODEL, sibling_guard=False)
    assert decide(a, twin, unguarded).kind == "link"
    # the same given name in other characters is not a sibling
    assert decide(a, person("c", given_name="秀瑛", phone="13800000000"), MODEL).kind == "link"
