"""The mapping transforms of issue 18 (split_name, scale, codes, date writings) and
the optional resident id: declared in a definition, applied by map_row, bad input a
problem and never an exception."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.dates import parse_date
from connectors.definition import ConnectorDefinition, check_against_standard, load_definition
from connectors.mapping import Problem, map_row
from connectors.names import COMPOUND_SURNAMES, split_name
from connectors.numbers import scaled
from exchange.core.errors import ConfigError

ID = "440305199003071236"


def _person(**fields: dict[str, Any]) -> ConnectorDefinition:
    """A Person definition from 姓名 (split), 出生日期, 性别, with ``fields`` changed."""
    mapped: dict[str, Any] = {
        "resident_id": {"from": "身份证号"},
        "family_name": {"from": "姓名", "split_name": "family"},
        "given_name": {"from": "姓名", "split_name": "given"},
        "full_name": {"from": "姓名", "transform": ["strip", "collapse_spaces"]},
        "birth_date": {"from": "出生日期", "date_formats": ["ymd"]},
        "sex": {"from": "性别", "codes": {"1": "MALE", "2": "FEMALE"}},
        "residence_division_code": {"from": "区划"},
    }
    mapped.update(fields)
    return ConnectorDefinition.model_validate(
        {
            "connector": {"id": "t", "department": "health", "standard": "person"},
            "source": {"type": "csv", "path": "x.csv", "key": "编号"},
            "fields": mapped,
        }
    )


def _row(**changes: str) -> dict[str, str]:
    row = {
        "编号": "1",
        "身份证号": ID,
        "姓名": "欧阳娜娜",
        "出生日期": "1990年3月7日",
        "性别": "2",
        "区划": "440305",
    }
    row.update(changes)
    return row


def _codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(f, c) for f, c, _ in problems]


# --- split_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full", "family", "given"),
    [
        ("王小明", "王", "小明"),
        ("李娜", "李", "娜"),
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马光", "司马", "光"),
        ("诸葛亮", "诸葛", "亮"),
        ("上官婉儿", "上官", "婉儿"),
        ("东方明珠", "东方", "明珠"),
        ("皇甫谧", "皇甫", "谧"),
        ("尉迟恭", "尉迟", "恭"),
        ("公孙胜", "公孙", "胜"),
        ("慕容复", "慕容", "复"),
        ("长孙无忌", "长孙", "无忌"),
        ("夏侯惇", "夏侯", "惇"),
        ("轩辕明", "轩辕", "明"),
        ("令狐冲", "令狐", "冲"),
        ("宇文泰", "宇文", "泰"),
        ("澹台灭明", "澹台", "灭明"),
        ("司徒雷登", "司徒", "雷登"),
        ("司空曙", "司空", "曙"),
        ("端木蓉", "端木", "蓉"),
        ("歐陽修", "歐陽", "修"),
        ("爱新觉罗溥仪", "爱新觉罗", "溥仪"),
        (" 王 小明 ", "王", "小明"),
        ("阿依古丽·买买提", "买买提", "阿依古丽"),
        ("John Smith", "Smith", "John"),
        ("Mary Ann Smith", "Smith", "Mary Ann"),
        ("SMITH, John", "SMITH", "John"),
        ("Smith,John", "Smith", "John"),
        ("SMITH John", "SMITH", "John"),
        ("Ludwig van Beethoven", "van Beethoven", "Ludwig"),
    ],
)
def test_split_name(full: str, family: str, given: str) -> None:
    parts = split_name(full)
    assert not isinstance(parts, tuple)
    assert (parts.family, parts.given) == (family, given)


@pytest.mark.parametrize("full", ["王", "Smith", ", John", "Smith,", "·", "  "])
def test_a_name_of_one_part_is_unsplittable(full: str) -> None:
    assert split_name(full) == (
        "name.unsplittable",
        "the full name cannot be split into a family and a given name (it has one "
        "part only); export the family and given names as columns of their own",
    )


_NAMED_IN_THE_BRIEF = "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 夏侯 轩辕 令狐"
_MORE = "宇文 澹台 司徒 司空 端木 钟离 南宫 独孤 万俟 闻人 赫连 呼延 拓跋"


def test_the_compound_surname_list_is_complete_enough() -> None:
    assert set(_NAMED_IN_THE_BRIEF.split()) <= COMPOUND_SURNAMES
    assert set(_MORE.split()) <= COMPOUND_SURNAMES
    assert len(COMPOUND_SURNAMES) >= 80


_han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


@given(st.text(_han, min_size=2, max_size=6))
def test_a_chinese_name_splits_into_parts_that_make_it_whole(name: str) -> None:
    parts = split_name(name)
    assert not isinstance(parts, tuple)
    assert parts.family + parts.given == name
    assert parts.given
    assert len(parts.family) == 1 or parts.family in COMPOUND_SURNAMES


@given(st.text(max_size=30))
def test_split_name_never_raises(name: str) -> None:
    parts = split_name(name)
    if isinstance(parts, tuple):
        assert parts[0] == "name.unsplittable"
    else:
        assert parts.family
        assert parts.given


def test_split_name_in_a_definition_fills_both_fields() -> None:
    record, problems = map_row(_person(), _person().standard, _row(姓名="司马相如"))
    assert problems == []
    assert (record["family_name"], record["given_name"], record["full_name"]) == (
        "司马",
        "相如",
        "司马相如",
    )


def test_an_unsplittable_name_is_a_problem_of_each_part() -> None:
    _, problems = map_row(_person(), _person().standard, _row(姓名="王"))
    assert _codes(problems) == [
        ("family_name", "name.unsplittable"),
        ("given_name", "name.unsplittable"),
    ]


# --- scale --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "factor", "avro_type", "expected"),
    [
        ("1120.00", "100", "long", 112000),
        ("12.34", "100", "long", 1234),  # 12.34 * 100 is 1233.9999999999998 in binary floats
        ("0.01", "100", "long", 1),
        ("-5.5", "100", "long", -550),
        ("1,234.56", "100", "long", 123456),
        ("7", "100", "int", 700),
        ("1.5", "0.5", "double", 0.75),
        ("3", "1000", "long", 3000),
    ],
)
def test_scale(text: str, factor: str, avro_type: str, expected: float) -> None:
    assert scaled(text, Decimal(factor), avro_type) == expected


@pytest.mark.parametrize(
    ("text", "avro_type", "code"),
    [
        ("12.345", "long", "scale.not_integral"),
        ("0.001", "int", "scale.not_integral"),
        ("12,34", "long", "type.number"),
        ("1e3", "long", "type.number"),
        ("十二", "long", "type.number"),
        ("", "long", "type.number"),
        ("NaN", "double", "type.number"),
        ("30000000", "int", "type.range"),
        ("99999999999999999999", "long", "type.range"),
    ],
)
def test_scale_refuses(text: str, avro_type: str, code: str) -> None:
    result = scaled(text, Decimal(100), avro_type)
    assert isinstance(result, tuple)
    assert result[0] == code
    assert result[1]


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2))
def test_yuan_with_two_decimals_scale_exactly_to_fen(yuan: Decimal) -> None:
    assert scaled(f"{yuan:f}", Decimal(100), "long") == int(yuan * 100)


@given(st.decimals(min_value=0, max_value=10**6, places=3))
def test_a_third_decimal_of_a_yuan_is_never_rounded_away(yuan: Decimal) -> None:
    result = scaled(f"{yuan:f}", Decimal(100), "long")
    if (yuan * 1000) % 10:
        assert isinstance(result, tuple)
        assert result[0] == "scale.not_integral"
    else:
        assert result == int(yuan * 100)


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["2024-03-05", "2024-3-5", "2024/3/5", "2024/03/05", "20240305", "2024年3月5日",
             "2024年03月05日", "2024.03.05", "2024.3.5"],
)  # fmt: skip
def test_every_common_year_first_writing_reads(text: str) -> None:
    assert parse_date(text, ["ymd"]) == date(2024, 3, 5)


@pytest.mark.parametrize(
    "text", ["2024-02-30", "2024/13/01", "2024-03/05", "24-03-05", "05/03/2024"]
)
def test_impossible_or_foreign_writings_do_not_read_as_ymd(text: str) -> None:
    assert parse_date(text, ["ymd"]) is None


def test_day_first_and_month_first_only_as_declared() -> None:
    assert parse_date("05/03/2024", ["dmy"]) == date(2024, 3, 5)
    assert parse_date("05/03/2024", ["mdy"]) == date(2024, 5, 3)
    assert parse_date("5.3.2024", ["dmy"]) == date(2024, 3, 5)
    assert parse_date("13/03/2024", ["mdy"]) is None
    assert parse_date("2024-03-05", ["dmy"]) is None
    # strptime formats and named writings mix, tried in order.
    assert parse_date("05 Mar 2024", ["ymd", "%d %b %Y"]) == date(2024, 3, 5)


@given(st.dates(min_value=date(1000, 1, 1)))
def test_every_date_reads_back_from_each_year_first_writing(day: date) -> None:
    for text in (
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year:04d}{day.month:02d}{day.day:02d}",
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.year}.{day.month:02d}.{day.day:02d}",
    ):
        assert parse_date(text, ["ymd"]) == day, text


def test_a_bad_date_is_a_problem_naming_the_writings() -> None:
    _, problems = map_row(_person(), _person().standard, _row(出生日期="1990年2月30日"))
    assert _codes(problems) == [("birth_date", "date.invalid")]
    assert "ymd" in problems[0][2]


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        (["dmy", "mdy"], "ambiguous"),
        (["yyyy-mm-dd"], "neither a strptime format"),
        ([], "at least one format"),
    ],
)
def test_unusable_date_formats_are_refused_in_the_definition(
    formats: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _person(birth_date={"from": "出生日期", "date_formats": formats})


# --- codes --------------------------------------------------------------------------------


def test_sex_codes_map_and_an_unknown_code_is_refused_with_the_known_ones() -> None:
    definition = _person()
    assert map_row(definition, definition.standard, _row(性别="1"))[0]["sex"] == "MALE"
    assert map_row(definition, definition.standard, _row(性别="2"))[0]["sex"] == "FEMALE"
    _, problems = map_row(definition, definition.standard, _row(性别="9"))
    assert _codes(problems) == [("sex", "code.unknown")]
    assert "1, 2" in problems[0][2]


# --- scale in a definition ----------------------------------------------------------------


def _benefit(**amount: Any) -> ConnectorDefinition:
    return ConnectorDefinition.model_validate(
        {
            "connector": {"id": "b", "department": "civil_affairs", "standard": "benefit_payment"},
            "source": {"type": "csv", "path": "x.csv", "key": "no"},
            "fields": {
                "resident_id": {"from": "id"},
                "payment_id": {"from": "no"},
                "benefit_type": {"default": "OTHER"},
                "amount_fen": {"from": "yuan", **amount},
                "period_start": {"default": "2024-03-01"},
                "period_end": {"default": "2024-03-31"},
                "paid_on": {"default": "2024-03-05"},
                "case_reference": {"default": "C-1"},
                "division_code": {"default": "330105"},
            },
        }
    )


def test_yuan_scale_to_fen_in_a_definition() -> None:
    definition = _benefit(scale="100")
    assert check_against_standard(definition) == []
    row = {"id": ID, "no": "P-1", "yuan": "1,120.50"}
    record, problems = map_row(definition, definition.standard, row)
    assert problems == []
    assert record["amount_fen"] == 112050
    _, problems = map_row(definition, definition.standard, {**row, "yuan": "12.345"})
    assert _codes(problems) == [("amount_fen", "scale.not_integral")]


def test_a_transform_that_does_not_fit_the_field_is_refused() -> None:
    definition = _person(full_name={"from": "姓名", "scale": "100"})
    assert check_against_standard(definition) == [
        "fields.full_name: scale applies to numbers, and full_name is string"
    ]
    definition = _benefit(split_name="family")
    assert check_against_standard(definition) == [
        "fields.amount_fen: split_name gives text, and amount_fen is long"
    ]
    with pytest.raises(ValueError, match="finite, non-zero"):
        _benefit(scale="0")


# --- the optional resident id -------------------------------------------------------------


def test_an_unmapped_resident_id_is_refused_unless_declared_optional() -> None:
    undeclared = _person()
    del undeclared.fields["resident_id"]
    problems = check_against_standard(undeclared)
    assert len(problems) == 1
    assert problems[0].startswith("fields.resident_id: Person requires it unless")
    assert "optional = true" in problems[0]

    declared = _person(resident_id={"optional": True})
    assert check_against_standard(declared) == []
    record, problems = map_row(declared, declared.standard, _row())
    assert problems == []
    assert record["resident_id"] is None


def test_a_mapped_resident_id_may_be_empty_only_where_declared() -> None:
    strict = _person()
    _, problems = map_row(strict, strict.standard, _row(身份证号=""))
    assert _codes(problems) == [("resident_id", "required.missing")]
    assert "optional = true" in problems[0][2]

    lenient = _person(resident_id={"from": "身份证号", "optional": True})
    record, problems = map_row(lenient, lenient.standard, _row(身份证号=" "))
    assert problems == []
    assert record["resident_id"] is None
    record, problems = map_row(lenient, lenient.standard, _row())
    assert problems == []
    assert record["resident_id"] == ID
    # Optional is not lenient about a wrong number.
    _, problems = map_row(lenient, lenient.standard, _row(身份证号=ID[:-1] + "5"))
    assert _codes(problems) == [("resident_id", "resident_id.check_character")]


def test_optional_on_a_required_field_is_refused() -> None:
    definition = _person(birth_date={"from": "出生日期", "optional": True})
    assert check_against_standard(definition) == [
        "fields.birth_date: optional = true, but Person.birth_date is required "
        "(it has no default and is not nullable)"
    ]


def test_a_definition_file_forgetting_the_id_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "persons.toml"
    path.write_text(
        """
[connector]
id = "no-ids"
department = "health"
standard = "person"

[source]
path = "persons.csv"
key = "编号"

[fields.family_name]
from = "姓名"
split_name = "family"

[fields.given_name]
from = "姓名"
split_name = "given"

[fields.full_name]
from = "姓名"

[fields.birth_date]
from = "出生日期"

[fields.sex]
from = "性别"
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"fields\.resident_id: Person requires it unless"):
        load_definition(path)
    path.write_text(
        path.read_text(encoding="utf-8") + "\n[fields.resident_id]\noptional = true\n",
        encoding="utf-8",
    )
    assert load_definition(path).fields["resident_id"].optional


# --- flags --------------------------------------------------------------------------------


def test_a_retired_division_code_is_published_and_flagged() -> None:
    definition = _person()
    flags: list[Problem] = []
    record, problems = map_row(definition, definition.standard, _row(区划="330103"), flags)
    assert problems == []
    assert record["residence_division_code"] == "330103"
    assert _codes(flags) == [("residence_division_code", "division_code.retired")]
    assert "330105 拱墅区" in flags[0][2]
    flags.clear()
    map_row(definition, definition.standard, _row(区划="330105"), flags)
    assert flags == []


# --- every row is published or refused, never an exception ---------------------------------

_COLUMNS = ("编号", "身份证号", "姓名", "出生日期", "性别", "区划")
_cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "王", "欧阳娜娜", "SMITH, John", "1", "2", "330103", ID]),
    st.sampled_from(["2024年2月30日", "2024/3/5", "20240305", "12.345", "1,120.50"]),
)
_PROPERTY_DEFINITIONS = (
    _person(),
    _person(resident_id={"from": "身份证号", "optional": True}),
    _person(birth_date={"from": "出生日期", "date_formats": ["ymd", "dmy", "%Y.%m"]}),
)


@given(
    st.sampled_from(_PROPERTY_DEFINITIONS),
    st.fixed_dictionaries(dict.fromkeys(_COLUMNS, _cells)),
)
def test_map_row_settles_every_mapped_field_and_never_raises(
    definition: ConnectorDefinition, row: dict[str, str]
) -> None:
    flags: list[Problem] = []
    record, problems = map_row(definition, definition.standard, row, flags)
    reported = {f for f, _, _ in problems}
    for name, mapping in definition.fields.items():
        spec = definition.standard.field(name)
        must = spec.required or (spec.optional_declared and not mapping.optional)
        if must:
            # Exactly one of: a value, or a reason why not.
            assert (record.get(name) is not None) != (name in reported), name
        else:
            assert name in record or name in reported, name
    assert {f for f, _, _ in flags} <= {"residence_division_code"}
