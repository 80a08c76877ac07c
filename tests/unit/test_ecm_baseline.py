"""bench.baseline: the ECM baseline's scoring on hand-made examples."""

from __future__ import annotations

from datetime import date

import pytest

from bench.baseline import (
    closure,
    ecm_baseline,
    frame_of_payloads,
    frame_of_records,
    pairwise_score,
    true_pairs,
)
from exchange.registry.linkage import person_record

TRUTH = {"a": "1", "b": "1", "c": "1", "d": "2", "e": "2", "f": "3"}


def test_pairwise_precision_and_recall_by_hand() -> None:
    # True pairs: ab, ac, bc (entity 1) and de (entity 2): 4. Predicted: ab (right),
    # ad (wrong), de (right), ba (the same as ab): 3 distinct, 2 right.
    result = pairwise_score([("a", "b"), ("a", "d"), ("d", "e"), ("b", "a")], TRUTH)
    assert result["predicted_pairs"] == 3
    assert result["true_pairs"] == 4
    assert result["correct_pairs"] == 2
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 4)
    assert result["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))


def test_no_prediction_is_precise_and_recalls_nothing() -> None:
    result = pairwise_score([], TRUTH)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 0.0, 0.0)


def test_true_pairs_and_closure() -> None:
    assert true_pairs(TRUTH) == {("a", "b"), ("a", "c"), ("b", "c"), ("d", "e")}
    clusters = closure(TRUTH, [("a", "b"), ("c", "b"), ("e", "f")])
    assert clusters["a"] == clusters["b"] == clusters["c"] == "a"
    assert clusters["e"] == clusters["f"] == "e"
    assert clusters["d"] == "d"


def _payload(family: str, given: str, born: str, address: str, postcode: str) -> dict[str, str]:
    return {
        "family_name": family,
        "given_name": given,
        "birth_date": born,
        "address_line": address,
        "postcode": postcode,
        "phone": "",
    }


PEOPLE = [
    ("white", "joshua", "1970-03-04", "7 wallaby place, cleveland", "2119"),
    ("clarke", "emily", "1982-11-23", "54 hoseason street, granville", "4881"),
    ("green", "jack", "1991-07-14", "23 gundulu place, utakarra", "2193"),
    ("campbell", "thomas", "1965-01-30", "6 kent street, towradgi", "3107"),
    ("ryan", "isabella", "2001-09-09", "177 pridham street, marsden", "3165"),
    ("webb", "lachlan", "1958-06-12", "32 mckillop circuit, corio", "4670"),
    ("reid", "jessica", "1977-12-01", "14 forbes street, frankston", "3199"),
    ("nguyen", "james", "1988-04-17", "90 badimara street, bundaberg", "4670"),
    ("matthews", "nicholas", "1995-02-28", "3 paul coe crescent, preston", "3072"),
    ("mason", "madeline", "1949-08-19", "61 may maxwell crescent, taringa", "4068"),
    ("morrison", "harley", "1972-10-05", "8 guthridge crescent, toowoomba", "4350"),
    ("bishop", "taylor", "1999-05-21", "12 yuranigh court, brentwood", "4220"),
]


def test_ecm_finds_the_duplicates_of_a_small_clean_population() -> None:
    # Each person twice (the copy with a typo in the given name) or once: ECM must find
    # exactly the duplicated pairs, and the score must say so.
    rows = []
    truth = {}
    for i, (family, given, born, address, postcode) in enumerate(PEOPLE):
        rows.append((f"p{i}-a", _payload(family, given, born, address, postcode)))
        truth[f"p{i}-a"] = str(i)
        if i % 3:
            typo = given[:-1] + ("x" if given[-1] != "x" else "y")
            rows.append((f"p{i}-b", _payload(family, typo, born, address, postcode)))
            truth[f"p{i}-b"] = str(i)
    result = ecm_baseline(frame_of_payloads(rows), truth)
    assert result["true_pairs"] == 8
    assert result["precision"] == 1.0
    assert result["recall"] == 1.0
    assert result["f1"] == 1.0
    assert result["blocking_recall"] == 1.0
    assert result["pairs_compared"] >= 8


def test_link_records_and_payloads_give_the_same_columns() -> None:
    payload = _payload("White", "Joshua", "1970-03-04", "7 Wallaby Place", "2119")
    record = person_record("r1", "dept", payload)
    from_payload = frame_of_payloads([("r1", payload)])
    from_record = frame_of_records([record])
    for column in ("family", "given", "birth"):
        assert from_payload.at["r1", column] == from_record.at["r1", column]
    assert from_payload.at["r1", "birth"] == date(1970, 3, 4).strftime("%Y%m%d")
    assert from_payload.at["r1", "address"] == "7 wallaby place"


def test_records_without_truth_are_refused() -> None:
    rows = [("x", _payload("white", "joshua", "1970-03-04", "7 wallaby place", "2119"))]
    with pytest.raises(ValueError, match="no truth"):
        ecm_baseline(frame_of_payloads(rows), {})
