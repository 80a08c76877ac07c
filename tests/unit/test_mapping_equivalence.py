"""The faster mapping of issue 19 gives what the mapping it replaced gave.

:func:`connectors.mapping.map_row` now compiles a definition once (``RowMapper``), reads
``%Y``/``%m``/``%d`` dates without ``strptime`` and checks resident ids and phone numbers
partly in C; :mod:`tests.support.legacy_mapping` keeps the code it replaced. Every test
here compares the two on many generated rows and definitions (records, problems, flags),
or a fast path with what it stands for (``strptime``, the per-character checks).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.csvsource import has_undecodable_bytes, printable
from connectors.dates import _date_pattern, parse_date
from connectors.definition import ConnectorDefinition, load_definition
from connectors.mapping import map_row
from exchange.local.demo import resident_number
from schemas import Standard
from schemas import validators as current
from schemas.standards import standard_from_schema
from tests.support import legacy_mapping as legacy
from tests.support.examples import household_toml, write_toml

# --- values -------------------------------------------------------------------------------

_DIVISIONS = ["110105", "310104", "440305", "330106", "110100", "130225", "999999", "11010"]
_DIGITS = "0123456789"
# Digits strptime's \d reads (full-width, Arabic-Indic), spaces, separators, letters, Han.
_NOISE = _DIGITS + "０１２９٣ \t\u3000-/.,:+%年月日XxabYZ王欧阳·"


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """Valid numbers, and numbers with one thing wrong (check, date, prefix, a character)."""
    born = date(1900, 1, 1) + timedelta(days=draw(st.integers(-400, 365 * 130)))
    number = resident_number(
        draw(st.sampled_from(_DIVISIONS[:6])), born, draw(st.integers(0, 499)), "1"
    )
    kind = draw(st.integers(0, 5))
    if kind == 1:
        number = number[:-1] + draw(st.sampled_from("0123456789Xx"))
    elif kind == 2:
        at = draw(st.integers(0, 17))
        number = number[:at] + draw(st.sampled_from(_NOISE)) + number[at + 1 :]
    elif kind == 3:
        number = draw(st.sampled_from(["00", "99", "11", "44"])) + number[2:]
    elif kind == 4:
        number = number[: draw(st.integers(0, 18))]
    return number


def dates_written() -> st.SearchStrategy[str]:
    day = st.dates(date(1890, 1, 1), date(2060, 12, 31))
    formats = st.sampled_from(
        ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y", "%m/%d/%Y", "%Y年%m月%d日", "%y-%m-%d"]
    )
    written = st.builds(lambda d, f: d.strftime(f), day, formats)
    unpadded = st.builds(lambda d: f"{d.year}-{d.month}-{d.day}", day)
    impossible = st.builds(
        lambda y, m, d: f"{y}-{m:02d}-{d:02d}",
        st.integers(1890, 2060),
        st.integers(0, 13),
        st.integers(0, 32),
    )
    return st.one_of(written, unpadded, impossible, st.text(_NOISE, max_size=12))


def values_for(name: str) -> st.SearchStrategy[str]:
    """What a source column feeding field ``name`` may hold."""
    anything = st.text(_NOISE, max_size=14)
    by_field: dict[str, st.SearchStrategy[str]] = {
        "rid": resident_ids(),
        "div": st.sampled_from(_DIVISIONS),
        "tel": st.sampled_from(
            [
                "13912345678",
                "+86 139 1234 5678",
                "0755-12345678",
                "010 1234567",
                "0086 10 12345678",
                "12345",
            ]
        ),
        "uscc": st.sampled_from(
            ["91350100M000100Y43", "91350100M000100Y42", "91350100m000100Y43", "9135"]
        ),
        "post": st.sampled_from(["518057", "SW1A 1AA", "12", "ab-1"]),
        "day": dates_written(),
        "n": st.sampled_from(["12", "-3", "1,234.50", "12.345", "9" * 12, "1e3"]),
        "big": st.sampled_from(["12", "1,234.50", "0.01", "9" * 20]),
        "x": st.sampled_from(["1.5", "nan", "-0", "1,000.25", "inf"]),
        "f": st.sampled_from(["2", "1.25", "x"]),
        "ok": st.sampled_from(["true", "Y", "否", "0", "maybe", "TRUE"]),
        "kind": st.sampled_from(["A", "B", "1", "2", "9", "D", "a"]),
        "name": st.sampled_from(
            [
                "欧阳娜娜",
                "王小明",
                "SMITH John",
                "Ludwig van Beethoven",
                "阿依古丽·买买提",
                "王",
                "Doe, Jane",
            ]
        ),
        "given": st.sampled_from(["伟", "Jane", "x" * 600, "  ", "\uff2a\uff41\uff4e\uff45"]),
    }
    return st.one_of(by_field.get(name, anything), anything, st.just(""))


# --- definitions --------------------------------------------------------------------------

# One field of every kind the mapping converts to, each kind with and without a default,
# required and nullable, and a validator of each jurisdiction's kind.
KINDS: Standard = standard_from_schema(
    {
        "type": "record",
        "name": "Kinds",
        "dataset": "kinds",
        "fields": [
            {
                "name": "rid",
                "type": ["null", "string"],
                "default": None,
                "validator": "cn.resident_id",
                "optional": "declared",
            },
            {"name": "div", "type": "string", "validator": "cn.division_code"},
            {"name": "tel", "type": ["null", "string"], "default": None, "validator": "cn.phone"},
            {"name": "uscc", "type": "string", "validator": "cn.uscc"},
            {
                "name": "post",
                "type": ["null", "string"],
                "default": None,
                "validator": "intl.postcode",
            },
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "n", "type": "int"},
            {"name": "big", "type": ["null", "long"], "default": None},
            {"name": "x", "type": "double"},
            {"name": "f", "type": "float", "default": 1.5},
            {"name": "ok", "type": "boolean", "default": False},
            {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}},
            {"name": "name", "type": "string"},
            {"name": "given", "type": "string"},
            {"name": "notes", "type": ["null", "string", "int"], "default": None},
            {"name": "unmapped", "type": "string", "default": "zz"},
        ],
    }
)
_TRANSFORM_NAMES = ["strip", "halfwidth", "upper", "lower", "collapse_spaces"]
_DATE_FORMATS = [
    ["%Y-%m-%d"],
    ["%Y/%m/%d", "%Y%m%d"],
    ["ymd"],
    ["dmy", "%Y-%m-%d"],
    ["mdy"],
    ["%d.%m.%Y", "ymd"],
    ["%y-%m-%d"],
    ["%Y年%m月%d日"],
    ["%d %b %Y", "%Y-%m-%d"],
]


@st.composite
def mappings(draw: st.DrawFn, name: str) -> dict[str, Any] | None:
    """A definition's ``[fields.<name>]``, or None to leave the field unmapped."""
    if draw(st.integers(0, 9)) == 0:
        return None
    mapping: dict[str, Any] = {}
    if draw(st.integers(0, 5)) == 0:
        mapping["join"] = [name, f"{name}_2"]
        mapping["separator"] = draw(st.sampled_from(["", " ", "-"]))
    elif draw(st.integers(0, 9)) > 0:
        mapping["from"] = name
    if draw(st.booleans()):
        mapping["transform"] = draw(st.lists(st.sampled_from(_TRANSFORM_NAMES), max_size=3))
    if draw(st.integers(0, 3)) == 0:
        mapping["optional"] = True
    if draw(st.integers(0, 3)) == 0 or not ({"from", "join", "optional"} & set(mapping)):
        mapping["default"] = draw(values_for(name))
    if name == "day":
        mapping["date_formats"] = draw(st.sampled_from(_DATE_FORMATS))
    if name == "kind" and draw(st.booleans()):
        mapping["codes"] = {"1": "A", "2": "B", "9": "Q"}
    if name in ("n", "big", "x", "f") and draw(st.booleans()):
        mapping["scale"] = draw(st.sampled_from(["100", "0.01", "3"]))
    if name in ("name", "given") and draw(st.booleans()):
        mapping["split_name"] = draw(st.sampled_from(["family", "given"]))
    return mapping


@st.composite
def definitions(draw: st.DrawFn) -> ConnectorDefinition:
    fields = {}
    for spec in KINDS.fields:
        if spec.name == "unmapped":
            continue
        mapping = draw(mappings(spec.name))
        if mapping is not None:
            fields[spec.name] = mapping
    return ConnectorDefinition.model_validate(
        {
            "connector": {"id": "kinds", "department": "health", "standard": "person"},
            "source": {"type": "csv", "path": "x.csv", "key": "rid"},
            "fields": fields,
        }
    )


def rows() -> st.SearchStrategy[dict[str, str]]:
    """A row: each column present or not, with a value for its field."""
    columns = {
        column: values_for(spec.name)
        for spec in KINDS.fields
        for column in (spec.name, f"{spec.name}_2")
    }
    return st.fixed_dictionaries({}, optional=columns)


def _both(
    definition: ConnectorDefinition, standard: Standard, row: dict[str, str]
) -> tuple[str, str]:
    """What the new and the old mapping give: the record (repr, so a NaN equals a NaN),
    the problems and the flags."""
    new_flags: list[tuple[str, str, str]] = []
    old_flags: list[tuple[str, str, str]] = []
    new = map_row(definition, standard, row, new_flags)
    old = legacy.map_row(definition, standard, row, old_flags)
    return repr((new, new_flags)), repr((old, old_flags))


# --- map_row ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> ConnectorDefinition:
    return load_definition(write_toml(tmp_path_factory.mktemp("household"), household_toml()))


@settings(max_examples=150)
@given(definitions(), st.lists(rows(), min_size=1, max_size=4))
def test_any_definition_maps_any_row_as_before(
    definition: ConnectorDefinition, batch: list[dict[str, str]]
) -> None:
    for row in batch:
        new, old = _both(definition, KINDS, row)
        assert new == old


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {
            "local_id": st.text(_NOISE, max_size=6),
            "id_number": resident_ids(),
            "surname": st.sampled_from(["王", "欧阳", "", " 李 "]),
            "given": st.sampled_from(["秀英", "伟", "", "x" * 520]),
            "dob": dates_written(),
            "sex": st.sampled_from(["1", "2", "9", "X", ""]),
            "division": st.sampled_from([*_DIVISIONS, "110000", "429000"]),
            "phone": values_for("tel"),
        }
    )
)
def test_the_household_export_maps_as_before(
    household: ConnectorDefinition, row: dict[str, str]
) -> None:
    new, old = _both(household, household.standard, row)
    assert new == old


def test_a_changed_definition_is_mapped_as_changed(household: ConnectorDefinition) -> None:
    definition = household.model_copy(deep=True)
    row = {
        "local_id": "1",
        "id_number": resident_number("440305", date(1990, 3, 7), 1, "1"),
        "surname": "王",
        "given": "伟",
        "dob": "1990-03-07",
        "sex": "1",
        "division": "440305",
        "phone": "13912345678",
    }
    record, problems = map_row(definition, definition.standard, row)
    assert problems == []
    assert record["phone"] == "13912345678"
    del definition.fields["phone"]  # the mapper built for the definition must not be reused
    record, problems = map_row(definition, definition.standard, row)
    assert problems == []
    assert record["phone"] is None
    definition.fields["phone"] = definition.fields["family_name"].model_copy(
        update={"source": "sex"}
    )
    _, problems = map_row(definition, definition.standard, row)
    assert [(f, c) for f, c, _ in problems] == [("phone", "phone.format")]


# --- the fast paths against what they stand for ----------------------------------------------


def _strptime(text: str, entry: str) -> date | None:
    return legacy.parse_date(text, [entry])


_FORMATS = [
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%Y",
    "%m/%d/%y",
    "%Y年%m月%d日",
    "%Y %m %d",
    "%y%m%d",
    "%d/%m/%Y.",
    "(%Y)|%m*%d",
    "%Y-%m",
    "%Y%%%m%%%d",
    "T%YT%mT%d",
]


@settings(max_examples=600)
@given(
    st.sampled_from(_FORMATS), st.one_of(dates_written(), st.text(_NOISE + "()|*T%", max_size=14))
)
def test_simple_strptime_formats_read_what_strptime_reads(entry: str, text: str) -> None:
    assert _date_pattern(entry) is not None
    assert parse_date(text, [entry]) == _strptime(text, entry)


@given(st.sampled_from(_FORMATS), st.dates(date(1, 1, 1), date(9999, 12, 31)))
def test_written_dates_read_back_as_strptime_reads_them(entry: str, day: date) -> None:
    text = day.strftime(entry)
    assert parse_date(text, [entry]) == _strptime(text, entry)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("2024-3- 5", "%Y-%m-%d"),  # strptime reads a day as a space and a digit
        ("2024- 3-05", "%Y-%m-%d"),  # but not a month
        ("\uff12\uff10\uff12\uff14-03-05", "%Y-%m-%d"),  # full-width digits are \d to strptime
        ("\u0662\u0660\u0662\u0664-03-05", "%Y-%m-%d"),  # so are Arabic-Indic ones
        ("2024-03-05 ", "%Y-%m-%d"),
        ("2024-03-5x", "%Y-%m-%d"),
        ("68-01-01", "%y-%m-%d"),  # 2068
        ("69-01-01", "%y-%m-%d"),  # 1969
        ("2024-02-29", "%Y-%m-%d"),
        ("2023-02-29", "%Y-%m-%d"),
        ("0000-01-01", "%Y-%m-%d"),
        ("2024 \t 03\u300005", "%Y %m %d"),  # one space in a format is any run of spaces
        ("20241231", "%Y%m%d"),
        ("2024131", "%Y%m%d"),  # 2024-1-31: the month takes one digit when two fail
        ("20241310", "%Y%m%d"),  # the first match decides: 2024-1-31 and a 0 left over
        ("2024-07", "%Y-%m"),
        ("2024年7月5日", "%Y年%m月%d日"),
        ("t2024T07t05", "T%YT%mT%d"),  # literal text is matched ignoring case
    ],
)
def test_what_strptime_reads_oddly_is_read_the_same(text: str, entry: str) -> None:
    assert parse_date(text, [entry]) == _strptime(text, entry)


@pytest.mark.parametrize(
    "entry", ["%d %b %Y", "%Y-%m-%d %H", "%m/%d", "%Y-%Y", "%Y-%m-%", "%Y-%m-%d%", "%Y %y %m"]
)
def test_other_formats_are_left_to_strptime(entry: str) -> None:
    assert _date_pattern(entry) is None


def test_a_month_name_format_still_reads() -> None:
    assert parse_date("07 Mar 1990", ["%d %b %Y"]) == date(1990, 3, 7)


@settings(max_examples=400)
@given(resident_ids(), st.dates(date(1990, 1, 1), date(2040, 1, 1)))
def test_resident_ids_are_judged_as_before(number: str, today: date) -> None:
    assert current.resident_id(number, today=today) == legacy.resident_id(number, today=today)
    assert current.resident_id(number) == legacy.resident_id(number)


@given(st.text(_DIGITS, min_size=17, max_size=17))
def test_the_check_character_is_the_standard_one(first17: str) -> None:
    assert current.resident_id_check_character(first17) == legacy.resident_id_check_character(
        first17
    )


@settings(max_examples=500)
@given(st.one_of(values_for("tel"), st.text("0123456789+- 86", max_size=16)))
def test_phone_numbers_are_judged_as_before(value: str) -> None:
    assert current.phone(value) == legacy.phone(value)


@given(st.one_of(st.sampled_from(_DIVISIONS), st.text(_NOISE, max_size=7)))
def test_division_codes_are_judged_as_before(value: str) -> None:
    assert current.division_code(value) == legacy.division_code(value)


@given(st.binary(max_size=40), st.sampled_from(["utf-8", "gb18030", "latin-1"]))
def test_undecodable_bytes_are_found_and_shown_as_before(data: bytes, encoding: str) -> None:
    text = data.decode(encoding, "surrogateescape")
    assert has_undecodable_bytes(text) == any("\udc80" <= ch <= "\udcff" for ch in text)
    assert printable(text) == text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
