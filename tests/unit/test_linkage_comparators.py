"""Tests for exchange.registry.linkage.comparators: every level of every field, and symmetry."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.registry.linkage import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    block_keys,
    compare,
    fields_of,
)
from exchange.registry.linkage.comparators import swapped_order

LP, RP = "\uff08", "\uff09"  # full-width brackets, as on Chinese licences


def person(**fields: Any) -> LinkRecord:
    return LinkRecord(ref=str(fields.pop("ref", "p")), kind=PERSON, department="d", **fields)


def organisation(**fields: Any) -> LinkRecord:
    return LinkRecord(ref="o", kind=ORGANISATION, department="d", **fields)


def level(field: str, a: LinkRecord, b: LinkRecord) -> str:
    fields = fields_of(a.kind)
    names = [f.name for f in fields]
    index = names.index(field)
    return fields[index].levels[compare(a, b)[index]]


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [(None, "a", "null"), ("a", "a", "agree"), ("a", "b", "disagree")],
)
def test_identifier(x: str | None, y: str, expected: str) -> None:
    assert level("identifier", person(identifier=x), person(identifier=y)) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("张", "张", "exact"),
        ("张", "章", "homophone"),
        ("欧阳", "欧", "similar"),  # one contains the other
        ("王", "汪", "homophone"),
        ("张", "李", "different"),
    ],
)
def test_family_name(x: str, y: str, expected: str) -> None:
    a, b = person(family_name=x, given_name="伟"), person(family_name=y, given_name="伟")
    assert level("family_name", a, b) == expected


def test_family_name_pinyin_one_letter_apart_is_similar() -> None:
    a, b = person(family_name="林", given_name="伟"), person(family_name="凌", given_name="伟")
    assert level("family_name", a, b) == "similar"  # lin / ling


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("秀英", "秀英", "exact"),
        ("秀英", "秀瑛", "homophone"),
        ("伟", "玮", "homophone"),
        ("秀英", "秀兰", "one_char"),  # a character changed
        ("秀英", "英", "one_char"),  # a character dropped
        ("明", "宁", "similar"),  # ming / ning: one key apart
        ("伟", "芳", "different"),
        ("秀英", "建国", "different"),
    ],
)
def test_given_name(x: str, y: str, expected: str) -> None:
    a, b = person(family_name="张", given_name=x), person(family_name="张", given_name=y)
    assert level("given_name", a, b) == expected


def test_missing_name_is_null() -> None:
    assert level("given_name", person(family_name="张"), person(full_name="张伟")) == "null"


def test_family_and_given_name_in_the_other_order() -> None:
    a = person(family_name="张", given_name="秀英")
    b = person(family_name="秀英", given_name="张", full_name="秀英张")
    assert swapped_order(a, b) is True
    assert level("family_name", a, b) == "exact"
    assert level("given_name", a, b) == "exact"
    c = person(family_name="秀瑛", given_name="章")  # other order and homophones
    assert swapped_order(a, c) is False
    assert level("given_name", a, c) == "homophone"
    # a full name written given name first, split the ordinary way
    d = person(full_name="秀英张")
    assert swapped_order(a, d) is True


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (date(1985, 3, 4), date(1985, 3, 4), "exact"),
        (date(1985, 3, 4), date(1985, 4, 3), "swapped"),
        (date(1985, 3, 4), date(1985, 3, 7), "typo"),  # one digit
        (date(1985, 3, 4), date(1958, 3, 4), "typo"),  # two digits transposed
        (date(1985, 3, 4), date(1986, 3, 4), "typo"),  # year one off
        (date(1985, 3, 31), date(1985, 4, 1), "typo"),  # one day apart
        (date(1985, 3, 4), date(1979, 3, 4), "close"),  # same month and day
        (date(1985, 3, 4), date(1985, 3, 28), "close"),  # same year and month
        (date(1985, 3, 4), date(1990, 7, 21), "different"),
        (None, date(1990, 7, 21), "null"),
    ],
)
def test_birth_date(x: date | None, y: date, expected: str) -> None:
    assert level("birth_date", person(birth_date=x), person(birth_date=y)) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [("MALE", "MALE", "agree"), ("MALE", "FEMALE", "disagree"), ("UNKNOWN", "MALE", "null")],
)
def test_sex(x: str, y: str, expected: str) -> None:
    assert level("sex", person(sex=x), person(sex=y)) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("13800000000", "138 0000 0000", "agree"),
        ("01065123456", "65123456", "agree"),  # with and without the area code
        ("13800000000", "13800000001", "typo"),
        ("13800000000", "13800000000"[::-1], "disagree"),
        (None, "13800000000", "null"),
    ],
)
def test_phone(x: str | None, y: str, expected: str) -> None:
    assert level("phone", person(phone=x), person(phone=y)) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("110105", "110105", "same"),
        ("110105", "110108", "same_city"),
        ("110105", "310104", "different"),
        ("1101", "110105", "null"),  # not a 6-digit code
    ],
)
def test_division(x: str, y: str, expected: str) -> None:
    assert level("division_code", person(division_code=x), person(division_code=y)) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("北京华信科技有限公司", "北京华信科技有限公司", "exact"),
        ("北京华信科技有限公司", f"华信科技{LP}北京{RP}有限公司", "same_core"),
        ("华信科技有限公司", "华鑫科技有限公司", "same_core"),  # same pinyin
        ("华信电子科技有限公司", "华信电子技术有限公司", "similar"),
        ("华信科技有限公司", "宏达贸易有限公司", "different"),
    ],
)
def test_organisation_name(x: str, y: str, expected: str) -> None:
    a, b = organisation(full_name=x), organisation(full_name=y)
    assert level("legal_name", a, b) == expected


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("王芳", "王芳", "exact"),
        ("王芳", "汪芳", "homophone"),
        ("王芳", "王芳芳", "similar"),
        ("王芳", "李建国", "different"),
    ],
)
def test_representative(x: str, y: str, expected: str) -> None:
    a, b = organisation(representative=x), organisation(representative=y)
    assert level("legal_representative_name", a, b) == expected


def test_kinds_do_not_mix() -> None:
    with pytest.raises(ValueError, match="cannot compare"):
        compare(person(), organisation())
    with pytest.raises(ValueError, match="no comparators"):
        fields_of("vehicle")


# A small alphabet, so that random records often agree, nearly agree or swap.
_CHARS = "张章李王汪伟玮秀英瑛欧阳芳"
_names = st.text(alphabet=_CHARS, min_size=1, max_size=3)
_dates = st.dates(date(1980, 1, 1), date(1980, 12, 31)) | st.none()
_digits = st.sampled_from(["13800000000", "13800000001", "01065123456", "65123456"])


@st.composite
def person_records(draw: st.DrawFn) -> LinkRecord:
    return person(
        identifier=draw(st.sampled_from(["a", "b", None])),
        family_name=draw(_names | st.none()),
        given_name=draw(_names | st.none()),
        full_name=draw(_names | st.none()),
        birth_date=draw(_dates),
        sex=draw(st.sampled_from(["MALE", "FEMALE", "UNKNOWN", None])),
        phone=draw(_digits | st.none()),
        division_code=draw(st.sampled_from(["110105", "110108", "310104", None])),
    )


@st.composite
def organisation_records(draw: st.DrawFn) -> LinkRecord:
    return organisation(
        identifier=draw(st.sampled_from(["91A", "91B", None])),
        full_name=draw(
            st.sampled_from(["北京华信科技有限公司", f"华信科技{LP}北京{RP}有限公司"]) | _names
        ),
        birth_date=draw(_dates),
        division_code=draw(st.sampled_from(["110105", "110108", None])),
        representative=draw(_names | st.none()),
    )


@settings(max_examples=400)
@given(st.tuples(person_records(), person_records()) | st.tuples(
    organisation_records(), organisation_records()))  # fmt: skip
def test_comparators_are_symmetric(pair: tuple[LinkRecord, LinkRecord]) -> None:
    a, b = pair
    assert compare(a, b) == compare(b, a)
    assert all(
        0 <= lv < len(f.levels) for f, lv in zip(fields_of(a.kind), compare(a, b), strict=True)
    )


@given(person_records())
def test_a_record_agrees_with_itself(rec: LinkRecord) -> None:
    fields = fields_of(PERSON)
    for f, lv in zip(fields, compare(rec, rec), strict=True):
        assert f.levels[lv] in {"null", "exact", "agree", "same"}


@given(person_records() | organisation_records())
def test_block_keys_are_few_short_and_prefixed_by_kind(rec: LinkRecord) -> None:
    keys = block_keys(rec)
    assert len(keys) <= 10
    assert all(len(k) <= 32 for k in keys)
    assert {k[:2] for k in keys} <= (
        {"i:", "d:", "g:", "n:", "f:", "w:", "b:", "z:", "a:", "p:"}
        if rec.kind == PERSON
        else {"u:", "o:", "r:", "l:"}
    )


def test_a_date_and_its_swapped_form_share_a_key() -> None:
    a = person(birth_date=date(1985, 3, 4), family_name="张", given_name="伟")
    b = person(birth_date=date(1985, 4, 3), given_name="张", family_name="伟")  # and other order
    assert block_keys(a) & block_keys(b) == {"n:wei.zhang:1985"}  # names in the other order
    c = person(birth_date=date(1985, 4, 3), family_name="张", given_name="伟")
    assert block_keys(a) & block_keys(c) == {
        "d:19850304zhang",
        "g:19850304wei",
        "n:wei.zhang:1985",
        "f:zhang.wei:0304",
    }


def test_a_typo_in_one_name_keeps_a_date_key() -> None:
    # No identifier or phone: only the date keys can bring these together.
    a = person(birth_date=date(1985, 3, 4), family_name="张", given_name="伟")
    family_typo = person(birth_date=date(1985, 3, 4), family_name="冰", given_name="伟")
    given_typo = person(birth_date=date(1985, 4, 3), family_name="张", given_name="强")
    assert block_keys(a) & block_keys(family_typo) == {"g:19850304wei"}
    assert block_keys(a) & block_keys(given_typo) == {"d:19850304zhang"}


def test_a_shared_birth_date_alone_is_no_key() -> None:
    # Blocks of a date alone hold some 30 records in a million: too many pairs.
    a = person(birth_date=date(1985, 3, 4), family_name="张", given_name="伟")
    b = person(birth_date=date(1985, 3, 4), family_name="李", given_name="强")
    assert not block_keys(a) & block_keys(b)
