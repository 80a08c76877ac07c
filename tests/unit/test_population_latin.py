"""The Latin mode of bench.population: deterministic, realistic, corrupted as configured."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import fields
from datetime import date

import jellyfish
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import latin_names, population
from bench.population import LINKAGE_KEY, RESIDENT_ID_DOMAIN, GeneratedRecord
from bench.population_latin import (
    LATIN_DEPARTMENTS,
    LatinCorruption,
    LatinPerson,
    digit_error,
    keyboard_typo,
    latin_persons,
    latin_population,
    latin_records,
    ocr_error,
    phonetic_error,
    swapped_day_month,
    year_off,
)
from exchange.security.blindindex import blind_index
from schemas.validators import get_validator

PERSONS = 3000
CLEAN = LatinCorruption(**{f.name: 0.0 for f in fields(LatinCorruption)})


@pytest.fixture(scope="module")
def population_3000() -> tuple[list[LatinPerson], list[GeneratedRecord]]:
    return latin_population(PERSONS, seed=11)


def _fingerprint(records: list[GeneratedRecord]) -> str:
    digest = hashlib.sha256()
    for g in records:
        row = [g.ref, g.department, g.truth, g.payload, g.updated_at.isoformat(), g.errors]
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def test_the_chinese_mode_is_unchanged() -> None:
    # The reference of the existing benchmarks: the same seed gives the same records as
    # before the Latin mode existed (hash taken from the generator before the change).
    digest = hashlib.sha256()
    for g in population.persons(200, seed=3):
        row = [g.ref, g.department, g.truth, g.payload, g.updated_at.isoformat()]
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    assert digest.hexdigest() == "ad362c8f2f402be7f569b50552ffb6c13f3019f30411deaaecb46ddaf300ecf9"
    assert _fingerprint(population.persons(50, mode="chinese")) == _fingerprint(
        population.persons(50)
    )


def test_the_frozen_division_codes_are_valid_division_codes() -> None:
    # Frozen so that a fuller division list does not move the Chinese mode's output.
    from bench import population_data

    valid = get_validator("cn.division_code")
    assert len(population_data.DIVISIONS) == 85
    assert all(valid(code) is None for code in population_data.DIVISIONS)


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    first = latin_persons(400, seed=5)
    assert _fingerprint(first) == _fingerprint(latin_persons(400, seed=5))
    assert _fingerprint(first) == _fingerprint(population.persons(400, seed=5, mode="latin"))
    assert _fingerprint(first) != _fingerprint(latin_persons(400, seed=6))


def test_the_trust_order_follows_the_mode() -> None:
    assert population.trust_order(mode="latin")[0] == "civil_registry"
    assert population.trust_order() == population.trust_order("person", "chinese")
    assert population.trust_order()[0] == "household_registry"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        population.persons(10, mode="cyrillic")


def test_records_hold_latin_names_addresses_and_the_truth(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]],
) -> None:
    people, records = population_3000
    assert len(people) == PERSONS
    keys = {p.key for p in people}
    assert {g.truth for g in records} <= keys
    assert len({g.ref for g in records}) == len(records)
    assert {g.department for g in records} == {d.name for d in LATIN_DEPARTMENTS[:4]}
    for g in records[:200]:
        assert g.kind == "person"
        assert "resident_id" not in g.payload  # only its blind index, as the registry stores it
        assert g.payload["nationality"] == "AUS"
        assert (g.payload["full_name"] or "").isascii()
    valid = get_validator("cn.resident_id")
    assert all(valid(p.resident_id) is None for p in people)
    assert len({p.resident_id for p in people}) == PERSONS
    with_address = [g for g in records if g.payload["address_line"]]
    assert len(with_address) > 0.9 * len(records)
    clean = [g for g in with_address if not {"ocr", "address_typo"} & set(g.errors)]
    assert all(g.payload["address_line"][0].isdigit() for g in clean)


def test_common_surnames_are_common_and_households_share_an_address(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]],
) -> None:
    people, _ = population_3000
    surnames = Counter(p.family for p in people)
    top, top_count = surnames.most_common(1)[0]
    assert top in latin_names.surnames()[0][:10]
    assert top_count / PERSONS > 0.01  # the commonest surname: over 1% of people
    assert sum(1 for n in surnames.values() if n >= 5) > 50  # many same-surname strangers
    households: dict[int, list[LatinPerson]] = defaultdict(list)
    for person in people:
        households[person.household].append(person)
    assert max(len(h) for h in households.values()) >= 4
    for members in households.values():
        assert len({m.address for m in members}) == 1
    assert sum(len(h) > 1 for h in households.values()) > 0.6 * len(households)


def test_there_are_twins_and_siblings_sharing_surname_birth_date_address_and_phone(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]],
) -> None:
    people, _ = population_3000
    by_key = {p.key: p for p in people}
    twins = [(by_key[p.twin_of], p) for p in people if p.twin_of is not None]
    assert len(twins) >= 10
    for first, second in twins:
        assert first.family == second.family
        assert first.birth == second.birth
        assert first.address == second.address
        assert first.phone == second.phone
        assert first.household == second.household
        assert first.given != second.given
        assert first.resident_id != second.resident_id
    siblings = Counter((p.household, p.family) for p in people if p.birth.year >= 1954)
    assert sum(n >= 2 for n in siblings.values()) > 100


def _expected(records: list[GeneratedRecord], rate_of: str, *, ids_only: bool = False) -> float:
    quality = {d.name: d.quality for d in LATIN_DEPARTMENTS}
    has_ids = {d.name: d.has_ids for d in LATIN_DEPARTMENTS}
    base: float = getattr(LatinCorruption(), rate_of)
    return sum(
        min(1.0, base * quality[g.department])
        for g in records
        if has_ids[g.department] or not ids_only
    )


@pytest.mark.parametrize(
    "kind",
    [
        "name_typo", "address_typo", "names_swapped", "date_typo", "year_off", "given_missing",
        "birth_missing", "address_missing", "postcode_missing", "moved",
    ],
)  # fmt: skip
def test_each_unconditional_error_occurs_at_about_its_rate(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]], kind: str
) -> None:
    _, records = population_3000
    seen = sum(kind in g.errors for g in records)
    expected = _expected(records, kind)
    # 3 standard deviations of a binomial count, at least 15.
    slack = max(15.0, 3 * expected**0.5)
    assert abs(seen - expected) <= slack, (kind, seen, expected)


@pytest.mark.parametrize("kind", ["ocr", "phonetic", "street_abbreviated", "date_swap"])
def test_errors_that_need_a_pattern_occur_at_most_at_their_rate_and_often(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]], kind: str
) -> None:
    _, records = population_3000
    seen = sum(kind in g.errors for g in records)
    expected = _expected(records, kind)
    # Applied only where it changes something (a day/month swap needs a day <= 12).
    floor = 0.25 if kind == "date_swap" else 0.6
    assert floor * expected <= seen <= expected + max(15.0, 3 * expected**0.5), (kind, seen)


def test_identifiers_missing_by_department_and_rarely_wrong(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]],
) -> None:
    people, records = population_3000
    by_key = {p.key: p for p in people}
    has_ids = {d.name: d.has_ids for d in LATIN_DEPARTMENTS}
    for g in records:
        if not has_ids[g.department]:
            assert "resident_id_bidx" not in g.payload
            assert g.source["resident_id"] is None
    with_ids = [g for g in records if has_ids[g.department]]
    missing = sum("resident_id_bidx" not in g.payload for g in with_ids)
    assert missing == sum("id_missing" in g.errors for g in with_ids)
    expected = _expected(records, "id_missing", ids_only=True)
    assert abs(missing - expected) <= max(15.0, 3 * expected**0.5)
    without = sum("resident_id_bidx" not in g.payload for g in records)
    assert without / len(records) > 0.3  # a large share of records carry no identifier
    wrong = [g for g in with_ids if "id_wrong" in g.errors]
    assert len(wrong) < 0.01 * len(with_ids)
    for g in wrong:
        number = g.source["resident_id"]
        assert get_validator("cn.resident_id")(number) is None  # valid ...
        assert number != by_key[g.truth].resident_id  # ... but not this person's
        assert g.payload["resident_id_bidx"] == blind_index(LINKAGE_KEY, RESIDENT_ID_DOMAIN, number)


def test_boosted_errors_change_what_they_say(
    population_3000: tuple[list[LatinPerson], list[GeneratedRecord]],
) -> None:
    boosted = LatinCorruption(
        names_swapped=0.5, date_swap=0.5, id_wrong=0.5, id_missing=0.0, phone_missing=0.0
    )
    people, records = latin_population(600, seed=3, corruption=boosted)
    by_key = {p.key: p for p in people}
    name_errors = {"name_typo", "ocr", "phonetic", "given_missing"}
    date_errors = {"date_typo", "year_off", "birth_missing"}
    checked = Counter[str]()
    for g in records:
        person = by_key[g.truth]
        errors = set(g.errors)
        if "names_swapped" in errors and not errors & name_errors:
            assert g.payload["family_name"].lower() == person.given
            assert g.payload["given_name"].lower() == person.family
            checked["names_swapped"] += 1
        if "date_swap" in errors and not errors & date_errors:
            swapped = date.fromisoformat(g.payload["birth_date"])
            assert (swapped.day, swapped.month) == (person.birth.month, person.birth.day)
            checked["date_swap"] += 1
        if "id_wrong" in errors:
            assert g.source["resident_id"] != person.resident_id
            checked["id_wrong"] += 1
    assert min(checked.values()) > 30, checked
    assert set(checked) == {"names_swapped", "date_swap", "id_wrong"}


def test_without_corruption_every_record_is_its_person() -> None:
    people, records = latin_population(300, seed=2, corruption=CLEAN)
    by_key = {p.key: p for p in people}
    for g in records:
        person = by_key[g.truth]
        assert g.errors == ()
        assert g.payload["family_name"].lower() == person.family
        assert g.payload["given_name"].lower() == person.given
        assert g.payload["birth_date"] == person.birth.isoformat()
        assert g.payload["address_line"].lower() == person.address.line
        assert g.payload["postcode"] == person.address.postcode
        if {d.name: d.has_ids for d in LATIN_DEPARTMENTS}[g.department]:
            assert g.payload["resident_id_bidx"] == blind_index(
                LINKAGE_KEY, RESIDENT_ID_DOMAIN, person.resident_id
            )


def test_latin_records_gives_link_records_and_their_truth() -> None:
    records, truth = latin_records(200, seed=4)
    assert len(records) == len(truth) > 200
    assert {r.ref for r in records} == set(truth)
    assert all(r.kind == "person" for r in records)
    no_ids = {d.name for d in LATIN_DEPARTMENTS if not d.has_ids}
    assert all(r.identifier is None for r in records if r.department in no_ids)
    assert any(r.identifier for r in records if r.department not in no_ids)
    assert sum(r.family is not None for r in records) == len(records)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz' ", min_size=1, max_size=20), st.randoms())
def test_a_keyboard_typo_is_one_edit_away(text: str, rng: object) -> None:
    import random

    assert isinstance(rng, random.Random)
    typo = keyboard_typo(text, rng)
    assert jellyfish.damerau_levenshtein_distance(text, typo) == 1


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", max_size=20), st.randoms())
def test_ocr_and_phonetic_errors_change_the_text_or_say_they_cannot(text: str, rng: object) -> None:
    import random

    assert isinstance(rng, random.Random)
    for error, table in ((ocr_error, latin_names.OCR_CONFUSIONS),
                         (phonetic_error, latin_names.PHONETIC_VARIANTS)):  # fmt: skip
        changed = error(text, rng)
        applicable = any(old in text for old, _ in table)
        assert (changed is not None) == applicable
        if changed is not None:
            assert changed != text


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2024, 12, 31)), st.randoms())
def test_date_errors_are_real_dates_near_the_truth(day: date, rng: object) -> None:
    import random

    assert isinstance(rng, random.Random)
    swapped = swapped_day_month(day)
    if swapped is not None:
        assert (swapped.day, swapped.month, swapped.year) == (day.month, day.day, day.year)
    else:
        assert day.day > 12 or day.day == day.month
    typo = digit_error(day, rng)
    if typo is not None:
        a, b = f"{day:%Y%m%d}", f"{typo:%Y%m%d}"
        assert sum(x != y for x, y in zip(a, b, strict=True)) == 1
    off = year_off(day, rng)
    assert abs(off.year - day.year) == 1
    assert (off.month, off.day) == (day.month, day.day) or (day.month, day.day) == (2, 29)
