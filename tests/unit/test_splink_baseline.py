"""bench.splink_baseline: Splink on a tiny hand-made population, and its scoring by hand."""

from __future__ import annotations

from datetime import date

import pytest

from bench.splink_baseline import (
    cluster_score,
    comparisons,
    frame_of_records,
    match_weights,
    splink_baseline,
    trained_linker,
    weights_table,
)
from exchange.registry.linkage import LinkRecord, person_record

TRUTH = {"a": "1", "b": "1", "c": "1", "d": "2", "e": "2", "f": "3"}

PEOPLE = [
    ("white", "joshua", "1970-03-04", "7 wallaby place, cleveland", "2119", "0412345001"),
    ("clarke", "emily", "1982-11-23", "54 hoseason street, granville", "4881", "0412345002"),
    ("green", "jack", "1991-07-14", "23 gundulu place, utakarra", "2193", "0412345003"),
    ("campbell", "thomas", "1965-01-30", "6 kent street, towradgi", "3107", "0412345004"),
    ("ryan", "isabella", "2001-09-09", "177 pridham street, marsden", "3165", "0412345005"),
    ("webb", "lachlan", "1958-06-12", "32 mckillop circuit, corio", "4670", "0412345006"),
    ("reid", "jessica", "1977-12-01", "14 forbes street, frankston", "3199", "0412345007"),
    ("nguyen", "james", "1988-04-17", "90 badimara street, bundaberg", "4670", "0412345008"),
    ("matthews", "nicholas", "1995-02-28", "3 paul coe crescent, preston", "3072", "0412345009"),
    ("mason", "madeline", "1949-08-19", "61 may maxwell crescent, taringa", "4068", "0412345010"),
    ("morrison", "harley", "1972-10-05", "8 guthridge crescent, toowoomba", "4350", "0412345011"),
    ("bishop", "taylor", "1999-05-21", "12 yuranigh court, brentwood", "4220", "0412345012"),
    ("fraser", "olivia", "1984-06-02", "19 jubilee avenue, ashfield", "2131", "0412345013"),
    ("hughes", "william", "1963-10-11", "4 kiewa street, albury", "2640", "0412345014"),
    ("palmer", "charlotte", "1979-01-15", "88 rowe street, eastwood", "2122", "0412345015"),
    ("kennedy", "samuel", "1990-12-24", "2 orr street, yarralumla", "2600", "0412345016"),
    ("porter", "grace", "1956-04-08", "71 ross street, toorak", "3142", "0412345017"),
    ("dunn", "benjamin", "1968-08-30", "5 alma road, padstow", "2211", "0412345018"),
    ("lawson", "chloe", "2003-03-19", "40 nile street, orange", "2800", "0412345019"),
    ("ward", "ethan", "1975-07-07", "16 bell street, coburg", "3058", "0412345020"),
]


def _typo(text: str) -> str:
    """One letter changed near the end (a typo Jaro-Winkler forgives)."""
    i = len(text) - 2
    return text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1 :]


def _record(
    ref: str, row: tuple[str, str, str, str, str, str]
) -> tuple[LinkRecord, dict[str, str]]:
    family, given, born, address, postcode, phone = row
    payload = {"family_name": family, "given_name": given, "birth_date": born, "phone": phone}
    return person_record(ref, ref.split("-")[0], payload), {
        "address_line": address,
        "postcode": postcode,
    }


def _population() -> tuple[list[LinkRecord], dict[str, str], dict[str, dict[str, str]]]:
    """Each person once in department A; every other one again in department B, half of
    them with a typo in the given name: 10 true pairs among 30 records."""
    records, truth, payloads = [], {}, {}
    for i, row in enumerate(PEOPLE):
        rec, extra = _record(f"a-{i}", row)
        records.append(rec)
        payloads[rec.ref], truth[rec.ref] = extra, str(i)
        if i % 2 == 0:
            family, given, *rest = row
            given = _typo(given) if i % 4 else given
            rec, extra = _record(f"b-{i}", (family, given, *rest))  # type: ignore[arg-type]
            records.append(rec)
            payloads[rec.ref], truth[rec.ref] = extra, str(i)
    return records, truth, payloads


def test_cluster_score_by_hand() -> None:
    # Clusters {a, b, d} and {c}, {e}, {f}: predicted pairs ab, ad, bd (3), correct ab only;
    # true pairs ab, ac, bc, de (4).
    result = cluster_score({"a": "x", "b": "x", "d": "x", "c": "y", "e": "z", "f": "w"}, TRUTH)
    assert result["predicted_pairs"] == 3
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 4)
    assert result["f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))


def test_cluster_score_of_the_truth_itself_is_perfect() -> None:
    result = cluster_score(TRUTH, TRUTH)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert result["predicted_pairs"] == 4


def test_frame_reads_addresses_from_payloads_and_drops_empty_comparisons() -> None:
    records, _truth, payloads = _population()
    frame = frame_of_records(records, payloads)
    assert len(frame) == 30
    first = frame.set_index("unique_id").loc["a-0"]
    assert (first["family_py"], first["birth"]) == ("white", "1970-03-04")
    assert (first["address"], first["postcode"]) == ("7 wallaby place, cleveland", "2119")
    names = {c.create_output_column_name() for c in comparisons(frame)}
    # No sex nor identifier in these records: no comparison of them.
    assert "sex" not in names
    assert "identifier" not in names
    assert {"family_py", "given_py", "names_swapped", "birth", "household"} <= names


def test_a_latin_name_without_given_name_is_not_split_after_its_first_letter() -> None:
    payload = {"family_name": "Morcom", "full_name": "Morcom", "birth_date": "1970-01-01"}
    frame = frame_of_records([person_record("a-1", "a", payload)])
    assert (frame.loc[0, "family_py"], frame.loc[0, "given_py"]) == ("morcom", None)


def test_chinese_names_get_an_exact_level_on_the_characters() -> None:
    rec = person_record(
        "a-1", "a", {"family_name": "张", "given_name": "伟", "birth_date": date(1985, 3, 4)}
    )
    frame = frame_of_records([rec])
    assert (frame.loc[0, "family_py"], frame.loc[0, "given_py"]) == ("zhang", "wei")
    names = {c.create_output_column_name() for c in comparisons(frame)}
    assert {"family", "given"} <= names


def test_refs_must_be_unique_and_have_a_truth() -> None:
    records, truth, _ = _population()
    with pytest.raises(ValueError, match="unique"):
        frame_of_records([records[0], records[0]])
    with pytest.raises(ValueError, match="no truth"):
        splink_baseline(records, {k: v for k, v in truth.items() if k != "a-0"})


def test_splink_finds_exactly_the_duplicates_of_a_tiny_population() -> None:
    records, truth, payloads = _population()
    result = splink_baseline(records, truth, payloads=payloads, seed=1)
    assert result["true_pairs"] == 10
    assert result["blocking_recall"] == 1.0
    assert result["correct_pairs"] == 10
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert (result["cluster_precision"], result["cluster_recall"]) == (1.0, 1.0)
    # A lower threshold predicts a superset of the pairs: recall cannot drop.
    assert result["recall_at_0.5"] >= result["recall"] >= result["recall_at_0.99"]
    assert 10 <= result["pairs_compared"] < 30 * 29 / 2
    assert result["seconds"] > 0


def test_the_fitted_model_favours_agreement_on_the_birth_date() -> None:
    records, _truth, payloads = _population()
    linker, connection = trained_linker(frame_of_records(records, payloads), seed=1)
    try:
        levels = {(name, level): (m, u) for name, level, m, u in match_weights(linker)}
        table = weights_table(linker)
    finally:
        connection.close()
    m, u = levels[("birth", "Exact match on date of birth")]
    assert m is not None
    assert u is not None
    assert m > u
    # No null level is listed; every listed level is a row of the table.
    assert not any("NULL" in level for _name, level in levels)
    assert table.count("\n") == len(levels) + 1
