"""Tests for schemas.validators: examples, shared test vectors and properties."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import validators
from schemas.validators import (
    VALIDATORS,
    Invalid,
    division_code,
    division_name,
    get_validator,
    iso_date,
    normalise_resident_id,
    phone,
    register_validator,
    resident_id,
    resident_id_check_character,
    unified_social_credit_code,
    uscc_check_character,
)

VECTORS_FILE = Path(__file__).parent / "data" / "identifier_vectors.csv"

# Independent of the shipped list: the 34 province-level divisions of GB/T 2260.
PROVINCE_PREFIXES = (
    *("11", "12", "13", "14", "15"),
    *("21", "22", "23"),
    *("31", "32", "33", "34", "35", "36", "37"),
    *("41", "42", "43", "44", "45", "46"),
    *("50", "51", "52", "53", "54"),
    *("61", "62", "63", "64", "65"),
    *("71", "81", "82"),
)
TODAY = date(2025, 6, 1)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RESIDENT_ID_CHECK_CHARS = "0123456789X"

ALL_CODES = {
    "resident_id.length",
    "resident_id.charset",
    "resident_id.check_character",
    "resident_id.birth_date",
    "resident_id.division",
    "uscc.length",
    "uscc.charset",
    "uscc.check_character",
    "division_code.format",
    "division_code.unknown",
    "postcode.format",
    "date.format",
    "date.impossible",
    "phone.format",
}


def _full_width(text: str) -> str:
    """The full-width form of printable ASCII text, as typed with a Chinese IME."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _code(result: Invalid | None) -> str | None:
    return None if result is None else result.code


def _load_vectors() -> list[tuple[str, str, str]]:
    with VECTORS_FILE.open(encoding="utf-8", newline="") as f:
        return [(row["kind"], row["value"], row["expected_code"]) for row in csv.DictReader(f)]


VECTORS = _load_vectors()


# --------------------------------------------------------------------------
# Shared test vectors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected_code"),
    VECTORS,
    ids=[f"{kind}:{value!r}" for kind, value, _ in VECTORS],
)
def test_vector(kind: str, value: str, expected_code: str) -> None:
    result = get_validator(kind)(value)
    assert _code(result) == (expected_code or None)
    if result is not None:
        assert result.message


def test_vectors_cover_every_kind_and_reason() -> None:
    assert {kind for kind, _, _ in VECTORS} == set(VALIDATORS)
    assert {code for _, _, code in VECTORS if code} == ALL_CODES
    assert all(any(k == kind and not c for k, _, c in VECTORS) for kind in VALIDATORS)


# --------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------


def test_invalid_is_frozen_value_object() -> None:
    result = Invalid("date.format", "use YYYY-MM-DD")
    assert result == Invalid("date.format", "use YYYY-MM-DD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.code = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------
# Resident identity number
# --------------------------------------------------------------------------


def test_resident_id_standard_example_is_valid() -> None:
    # The example number printed in GB 11643-1999.
    assert resident_id("11010519491231002X") is None
    assert resident_id_check_character("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("11010519491231002", "X"),
        ("44030519900307123", "6"),
        ("31010420000229456", "8"),
        ("11010119000101000", "6"),
    ],
)
def test_resident_id_check_character(first17: str, check: str) -> None:
    assert resident_id_check_character(first17) == check


@pytest.mark.parametrize("bad", ["", "1101051949123100", "110105194912310021", "1101051949123100A"])
def test_resident_id_check_character_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="17 ASCII digits"):
        resident_id_check_character(bad)


def test_resident_id_check_character_message_is_actionable() -> None:
    result = resident_id("110105194912310025")
    assert result == Invalid(
        "resident_id.check_character",
        "check character is '5' but the first 17 characters require 'X'; "
        "re-type the number from the ID card",
    )


def test_resident_id_messages_do_not_repeat_the_number() -> None:
    for value in ["110105194912310021", "110105299901010014", "11010519491231002x"]:
        result = resident_id(value)
        assert result is not None
        assert value not in result.message
        assert value[6:14] not in result.message


def test_resident_id_fifteen_digit_hint() -> None:
    result = resident_id("110105491231002")
    assert result is not None
    assert result.code == "resident_id.length"
    assert "15-digit" in result.message


def test_resident_id_lower_case_x_hint() -> None:
    result = resident_id("11010519491231002x")
    assert result is not None
    assert result.code == "resident_id.charset"
    assert "upper-case 'X'" in result.message


def test_resident_id_full_width_hint() -> None:
    result = resident_id(_full_width("11010519491231002X"))
    assert result is not None
    assert result.code == "resident_id.charset"
    assert "half-width" in result.message


def test_resident_id_birth_date_relative_to_today() -> None:
    born = date(2024, 3, 1)
    number = f"440305{born:%Y%m%d}123"
    number += resident_id_check_character(number)
    assert resident_id(number, today=born) is None
    assert resident_id(number, today=born + timedelta(days=365)) is None
    result = resident_id(number, today=born - timedelta(days=1))
    assert result is not None
    assert result.code == "resident_id.birth_date"
    assert "future" in result.message


def test_resident_id_earliest_birth_date() -> None:
    assert resident_id("110101190001010006") is None
    result = resident_id("110105189912310015")
    assert result is not None
    assert result.code == "resident_id.birth_date"
    assert "1900-01-01" in result.message


def test_resident_id_structure_checked_before_check_character() -> None:
    # A wrong check character does not hide a more specific problem.
    assert _code(resident_id("990105194912310020")) == "resident_id.division"
    assert _code(resident_id("110105194902300000")) == "resident_id.birth_date"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("  11010519491231002x\n", "11010519491231002X"),
        (_full_width("11010519491231002x"), "11010519491231002X"),
        (_full_width("11010519491231002X"), "11010519491231002X"),
        ("\u3000110105 19491231 002X\u3000", "11010519491231002X"),
    ],
)
def test_normalise_resident_id(raw: str, expected: str) -> None:
    assert normalise_resident_id(raw) == expected
    assert resident_id(normalise_resident_id(raw)) is None


# --------------------------------------------------------------------------
# Unified social credit code
# --------------------------------------------------------------------------


def test_uscc_example_is_valid() -> None:
    assert unified_social_credit_code("91350100M000100Y43") is None
    assert uscc_check_character("91350100M000100Y4") == "3"


@pytest.mark.parametrize("bad", ["", "91350100M000100Y", "91350100M000100Y43", "91350100M000100I4"])
def test_uscc_check_character_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_character(bad)


def test_uscc_check_character_zero_maps_to_zero() -> None:
    # (31 - 0 % 31) % 31 == 0: an all-zero body has check character '0'.
    assert uscc_check_character("0" * 17) == "0"


def test_uscc_messages() -> None:
    result = unified_social_credit_code("91350100M000100Y42")
    assert result is not None
    assert result.code == "uscc.check_character"
    assert "'2'" in result.message
    assert "'3'" in result.message
    result = unified_social_credit_code("91350100MO00100Y43")
    assert result is not None
    assert result.code == "uscc.charset"
    assert "character 10" in result.message
    assert "never used" in result.message


# --------------------------------------------------------------------------
# Division codes
# --------------------------------------------------------------------------


def test_division_list_has_all_provinces() -> None:
    for prefix in PROVINCE_PREFIXES:
        assert division_code(prefix + "0000") is None
        assert division_name(prefix + "0000")


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("110000", "北京市"),
        ("440000", "广东省"),
        ("710000", "台湾省"),
        ("810000", "香港特别行政区"),
        ("820000", "澳门特别行政区"),
        ("110100", "市辖区"),
        ("440100", "广州市"),
        ("440300", "深圳市"),
        ("510100", "成都市"),
        ("110105", "朝阳区"),
        ("310115", "浦东新区"),
        ("440305", "南山区"),
        ("330106", "西湖区"),
    ],
)
def test_division_name(code: str, name: str) -> None:
    assert division_name(code) == name
    assert division_code(code) is None


def test_division_name_unknown() -> None:
    assert division_name("440399") is None
    assert division_name("not a code") is None


def test_division_list_is_consistent() -> None:
    table = validators._divisions()
    assert 3000 <= len(table) <= 3500  # the complete county-level list, not a sample
    provinces = {c for c, d in table.items() if d.level == "province"}
    assert provinces == {p + "0000" for p in PROVINCE_PREFIXES}
    for code, division in table.items():
        assert division.code == code
        assert division.name
        assert code[:2] + "0000" in table, code
        if division.level == "prefecture":
            assert code[2:4] != "00", code
            assert code[4:] == "00", code
        if division.level == "county":
            assert code[4:] != "00", code


def test_division_list_loaded_once() -> None:
    assert validators._divisions() is validators._divisions()


# --------------------------------------------------------------------------
# Dates and phone numbers
# --------------------------------------------------------------------------


def test_iso_date_messages_name_the_value() -> None:
    result = iso_date("2023-02-30")
    assert result is not None
    assert result.code == "date.impossible"
    assert "2023-02-30" in result.message


def test_phone_message_does_not_repeat_number() -> None:
    result = phone("12800138000")
    assert result is not None
    assert result.code == "phone.format"
    assert "12800138000" not in result.message


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(VALIDATORS)
    yield
    VALIDATORS.clear()
    VALIDATORS.update(saved)


def test_registry_defaults() -> None:
    assert get_validator("cn.resident_id") is resident_id
    assert get_validator("cn.uscc") is unified_social_credit_code
    assert get_validator("cn.division_code") is division_code
    assert get_validator("iso.date") is iso_date
    assert get_validator("cn.phone") is phone


def test_get_validator_unknown_lists_known_names() -> None:
    with pytest.raises(KeyError, match=r"hk\.identity_card.*cn\.division_code.*iso\.date"):
        get_validator("hk.identity_card")


@pytest.mark.usefixtures("restore_registry")
def test_register_validator_other_jurisdiction() -> None:
    def hk_identity_card(value: str) -> Invalid | None:
        return None if value.startswith("A") else Invalid("hk_id.format", "starts with A")

    register_validator("hk.identity_card", hk_identity_card)
    assert get_validator("hk.identity_card") is hk_identity_card
    assert get_validator("hk.identity_card")("B123") == Invalid("hk_id.format", "starts with A")
    assert get_validator("cn.resident_id") is resident_id


@pytest.mark.usefixtures("restore_registry")
def test_register_validator_refuses_silent_replacement() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_validator("cn.phone", iso_date)
    assert get_validator("cn.phone") is phone
    register_validator("cn.phone", iso_date, replace=True)
    assert get_validator("cn.phone") is iso_date


@pytest.mark.parametrize("name", ["phone", "CN.phone", "cn.", ".phone", "cn phone", "cn.1phone"])
def test_register_validator_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="dotted lower-case"):
        register_validator(name, phone)
    assert name not in VALIDATORS


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

resident_bodies = st.builds(
    lambda prefix, rest, born, seq: f"{prefix}{rest}{born:%Y%m%d}{seq}",
    st.sampled_from(PROVINCE_PREFIXES),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
uscc_bodies = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(resident_bodies)
def test_resident_id_check_character_property(body: str) -> None:
    check = resident_id_check_character(body)
    assert resident_id(body + check, today=TODAY) is None
    for other in RESIDENT_ID_CHECK_CHARS.replace(check, ""):
        assert _code(resident_id(body + other, today=TODAY)) == "resident_id.check_character"


@given(resident_bodies, st.sampled_from([2, 3, 4, 5, 14, 15, 16]), st.integers(1, 9))
def test_resident_id_detects_single_digit_errors(body: str, position: int, shift: int) -> None:
    # Positions outside the province prefix and birth date, so only the check fails.
    number = body + resident_id_check_character(body)
    wrong_digit = str((int(number[position]) + shift) % 10)
    mistyped = number[:position] + wrong_digit + number[position + 1 :]
    assert _code(resident_id(mistyped, today=TODAY)) == "resident_id.check_character"


@given(uscc_bodies)
def test_uscc_check_character_property(body: str) -> None:
    check = uscc_check_character(body)
    assert check in USCC_ALPHABET
    assert unified_social_credit_code(body + check) is None
    for other in USCC_ALPHABET.replace(check, ""):
        assert _code(unified_social_credit_code(body + other)) == "uscc.check_character"


@given(st.text())
def test_normalise_resident_id_is_idempotent(value: str) -> None:
    once = normalise_resident_id(value)
    assert normalise_resident_id(once) == once


@given(resident_bodies, st.booleans(), st.booleans())
def test_normalise_recovers_valid_numbers(body: str, full_width: bool, padded: bool) -> None:
    number = body + resident_id_check_character(body)
    typed = number.lower()
    if full_width:
        typed = _full_width(typed)
    if padded:
        typed = f" {typed[:6]} {typed[6:14]}\u3000{typed[14:]}\t"
    assert normalise_resident_id(typed) == number
    assert resident_id(normalise_resident_id(typed), today=TODAY) is None


@given(st.dates())
def test_iso_date_accepts_every_real_date(day: date) -> None:
    assert iso_date(day.isoformat()) is None


@given(st.sampled_from(sorted(VALIDATORS)), st.text())
def test_validators_never_raise(name: str, value: str) -> None:
    result = get_validator(name)(value)
    assert result is None or (result.code in ALL_CODES and result.message)
