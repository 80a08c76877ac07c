"""Tests for connector definitions, CSV sources and row mapping (connectors/)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.csvsource import SourceRow, read_csv
from connectors.definition import ConnectorDefinition, load_definition
from connectors.mapping import MAX_STRING, Problem, json_safe, map_row
from exchange.core.errors import ConfigError, SourceError
from tests.support.examples import household_toml

HEADER = "local_id,id_number,surname,given,dob,sex,division,phone"


def _definition_text(encoding: str) -> str:
    """The household example, read in ``encoding``, with more date formats and phone transforms."""
    return household_toml(
        connector_id="household-registry-persons",
        encoding=encoding,
        fields={
            "birth_date": {
                "from": "dob",
                "date_formats": ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日"],
            },
            "phone": {"from": "phone", "transform": ["strip", "halfwidth"]},
        },
    )


GOOD_ROW = {
    "local_id": "R-001",
    "id_number": "440305199003071236",
    "surname": "王",
    "given": "小明",
    "dob": "1990-03-07",
    "sex": "1",
    "division": "440305",
    "phone": "13800138000",
}

EXPECTED_RECORD = {
    "resident_id": "440305199003071236",
    "family_name": "王",
    "given_name": "小明",
    "full_name": "王小明",
    "birth_date": date(1990, 3, 7),
    "sex": "MALE",
    "nationality": "CHN",
    "residence_division_code": "440305",
    "phone": "13800138000",
    # Unmapped optional fields get their default.
    "address_line": None,
    "postcode": None,
    "current_division_code": None,
    "current_address_line": None,
}


def _full_width(text: str) -> str:
    """The full-width form of printable ASCII, as typed with a Chinese IME."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _write_definition(tmp_path: Path, text: str, name: str = "connector.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def definition(tmp_path: Path) -> ConnectorDefinition:
    return load_definition(_write_definition(tmp_path, _definition_text("utf-8-sig")))


def _map(definition: ConnectorDefinition, **changes: str) -> tuple[dict[str, Any], list[Problem]]:
    return map_row(definition, definition.standard, {**GOOD_ROW, **changes})


def _codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(field, code) for field, code, _ in problems]


# --- load_definition -----------------------------------------------------------------------


def test_load_definition_reads_every_section(
    definition: ConnectorDefinition, tmp_path: Path
) -> None:
    assert definition.connector.id == "household-registry-persons"
    assert definition.connector.department == "household_registry"
    assert definition.standard.name == "Person"
    assert definition.source.key == "local_id"
    assert definition.source_path == tmp_path.resolve() / "residents.csv"
    assert definition.fields["full_name"].columns == ["surname", "given"]
    assert definition.fields["resident_id"].columns == ["id_number"]
    # A field mapping without 'transform' strips by default.
    assert definition.fields["family_name"].transform == ["strip"]


def test_a_field_the_standard_lacks_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8") + '\n[fields.nickname]\nfrom = "nick"\n'

    with pytest.raises(ConfigError, match=r"fields\.nickname: the standard Person has no field"):
        load_definition(_write_definition(tmp_path, text))


def test_an_unmapped_required_field_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace('[fields.given_name]\nfrom = "given"\n', "")

    with pytest.raises(ConfigError, match=r"fields\.given_name: required by Person but not mapped"):
        load_definition(_write_definition(tmp_path, text))


def test_unmapped_optional_fields_are_allowed(tmp_path: Path) -> None:
    text = _definition_text("utf-8").split("[fields.residence_division_code]")[0]

    loaded = load_definition(_write_definition(tmp_path, text))

    record, problems = map_row(loaded, loaded.standard, GOOD_ROW)
    assert problems == []
    assert record["nationality"] == "CHN"  # the standard's default
    assert record["residence_division_code"] is None  # nullable, default null
    assert record["phone"] is None


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    path = _write_definition(tmp_path, '[connector]\nid = "unterminated\n')

    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_definition(path)


def test_a_missing_definition_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read connector definition"):
        load_definition(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("old", "new", "location"),
    [
        ('key = "local_id"', 'key = "local_id"\nencodng = "gbk"', r"source\.encodng"),
        ('version = "1"', 'version = "1"\nowner = "x"', r"connector\.owner"),
        (
            'transform = ["strip", "halfwidth", "upper"]',
            'transfrom = ["strip"]',
            r"fields\.resident_id\.transfrom",
        ),
    ],
)
def test_an_unknown_key_in_a_section_is_refused(
    tmp_path: Path, old: str, new: str, location: str
) -> None:
    text = _definition_text("utf-8").replace(old, new, 1)

    with pytest.raises(ConfigError, match=location):
        load_definition(_write_definition(tmp_path, text))


def test_an_unknown_transform_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace('"upper"]', '"title"]', 1)

    with pytest.raises(ConfigError, match=r"fields\.resident_id\.transform"):
        load_definition(_write_definition(tmp_path, text))


def test_a_field_with_neither_from_nor_join_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace('from = "surname"', 'separator = " "', 1)

    with pytest.raises(ConfigError, match=r"fields\.family_name.*give one of 'from' or 'join'"):
        load_definition(_write_definition(tmp_path, text))


def test_a_field_with_both_from_and_join_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace(
        'from = "surname"', 'from = "surname"\njoin = ["surname", "given"]', 1
    )

    with pytest.raises(ConfigError, match=r"fields\.family_name"):
        load_definition(_write_definition(tmp_path, text))


def test_a_field_with_from_join_and_default_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace(
        'from = "surname"', 'from = "surname"\njoin = ["surname", "given"]\ndefault = "?"', 1
    )

    with pytest.raises(ConfigError, match=r"fields\.family_name"):
        load_definition(_write_definition(tmp_path, text))


def test_an_unknown_standard_is_refused_with_config_error(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace('standard = "person"', 'standard = "persn"')

    with pytest.raises(ConfigError, match="persn"):
        load_definition(_write_definition(tmp_path, text))


def test_a_bad_department_name_is_refused(tmp_path: Path) -> None:
    text = _definition_text("utf-8").replace(
        'department = "household_registry"', 'department = "Household Registry"'
    )

    with pytest.raises(ConfigError, match=r"connector\.department"):
        load_definition(_write_definition(tmp_path, text))


# --- map_row: valid rows -------------------------------------------------------------------


def test_a_valid_row_maps_to_the_expected_record(definition: ConnectorDefinition) -> None:
    record, problems = _map(definition)

    assert problems == []
    assert record == EXPECTED_RECORD


@pytest.mark.parametrize(
    "dob", ["1990-03-07", "19900307", "1990/03/07", "1990年03月07日", "  1990-03-07 "]
)
def test_dates_are_parsed_from_every_declared_format(
    definition: ConnectorDefinition, dob: str
) -> None:
    record, problems = _map(definition, dob=dob)

    assert problems == []
    assert record["birth_date"] == date(1990, 3, 7)


@pytest.mark.parametrize(("code", "symbol"), [("1", "MALE"), ("2", "FEMALE"), ("9", "UNKNOWN")])
def test_sex_goes_through_the_code_table(
    definition: ConnectorDefinition, code: str, symbol: str
) -> None:
    record, problems = _map(definition, sex=code)

    assert problems == []
    assert record["sex"] == symbol


def test_full_width_id_is_normalised_by_halfwidth(definition: ConnectorDefinition) -> None:
    typed = "\u3000" + _full_width("11010519491231002x") + " "

    record, problems = _map(definition, id_number=typed)

    assert problems == []
    assert record["resident_id"] == "11010519491231002X"


def test_empty_optional_values_become_none(definition: ConnectorDefinition) -> None:
    record, problems = _map(definition, division="", phone="   ")

    assert problems == []
    assert record["residence_division_code"] is None
    assert record["phone"] is None


def test_json_safe_writes_dates_as_iso_strings(definition: ConnectorDefinition) -> None:
    record, _ = _map(definition)

    safe = json_safe(record)

    assert safe["birth_date"] == "1990-03-07"
    assert safe["full_name"] == "王小明"


# --- map_row: bad input gives reasons, never raises ----------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"given": "  "}, "given_name", "required.missing"),
        ({"dob": ""}, "birth_date", "required.missing"),
        ({"dob": "1990-02-30"}, "birth_date", "date.invalid"),
        ({"dob": "19901307"}, "birth_date", "date.invalid"),
        ({"dob": "not a date"}, "birth_date", "date.invalid"),
        ({"sex": "3"}, "sex", "code.unknown"),
        ({"sex": "MALE"}, "sex", "code.unknown"),
        ({"id_number": "440305199003071235"}, "resident_id", "resident_id.check_character"),
        ({"id_number": "44030519900307123"}, "resident_id", "resident_id.length"),
        ({"division": "999999"}, "residence_division_code", "division_code.unknown"),
        ({"phone": "12345"}, "phone", "phone.format"),
        ({"given": "明" * (MAX_STRING + 1)}, "given_name", "size.too_long"),
    ],
)
def test_bad_values_give_their_reason_code(
    definition: ConnectorDefinition, changes: dict[str, str], field: str, code: str
) -> None:
    record, problems = _map(definition, **changes)

    assert (field, code) in _codes(problems)
    assert field not in record
    assert all(message for _, _, message in problems)


def test_a_value_of_exactly_the_maximum_size_is_accepted(definition: ConnectorDefinition) -> None:
    given = "明" * (MAX_STRING - 1)  # full_name joins it to the one-character surname

    record, problems = _map(definition, given=given)

    assert problems == []
    assert len(record["full_name"]) == MAX_STRING
    assert record["given_name"] == given


def test_an_oversized_identifier_is_too_long_before_it_is_validated(
    definition: ConnectorDefinition,
) -> None:
    _, problems = _map(definition, id_number="4" * (MAX_STRING + 1))

    assert _codes(problems) == [("resident_id", "size.too_long")]


def test_a_missing_column_is_reported(definition: ConnectorDefinition) -> None:
    values = {k: v for k, v in GOOD_ROW.items() if k != "given"}

    record, problems = map_row(definition, definition.standard, values)

    # 'given' feeds given_name and, through the join, full_name.
    assert _codes(problems) == [("given_name", "column.missing"), ("full_name", "column.missing")]
    assert "given_name" not in record
    assert "full_name" not in record


def test_every_problem_of_a_row_is_collected(definition: ConnectorDefinition) -> None:
    _, problems = _map(definition, dob="1990-02-30", sex="7", id_number="")

    assert sorted(_codes(problems)) == [
        ("birth_date", "date.invalid"),
        ("resident_id", "required.missing"),
        ("sex", "code.unknown"),
    ]


def _load_once() -> ConnectorDefinition:
    # A module-level definition: hypothesis reruns the test body, a fixture would not.
    with tempfile.TemporaryDirectory() as folder:
        text = _definition_text("utf-8-sig")
        return load_definition(_write_definition(Path(folder), text))


PROPERTY_DEFINITION = _load_once()

# Each column holds either its good value or arbitrary text, so both paths are exercised.
rows = st.fixed_dictionaries(
    {},
    optional={column: st.just(good) | st.text(max_size=30) for column, good in GOOD_ROW.items()},
)


@given(row=rows)
def test_map_row_never_raises_and_settles_every_required_field(row: dict[str, str]) -> None:
    definition = PROPERTY_DEFINITION

    record, problems = map_row(definition, definition.standard, row)

    reported = {field for field, _, _ in problems}
    assert reported <= {spec.name for spec in definition.standard.fields}
    for spec in definition.standard.fields:
        if spec.required:
            # Exactly one of: a value in the record, or a reason why not.
            assert (spec.name in record) != (spec.name in reported)
    if row == GOOD_ROW:
        assert record == EXPECTED_RECORD


# --- csvsource -----------------------------------------------------------------------------


def _rows(path: Path, **kwargs: str) -> tuple[list[str], list[SourceRow]]:
    header, rows = read_csv(path, **kwargs)
    return header, list(rows)


def test_utf8_with_bom_header_is_read_without_the_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\nR-1,X,王,小明,1990-03-07,1,440305,\n".encode())

    header, rows = _rows(path)

    assert header == HEADER.split(",")
    assert rows[0].values["local_id"] == "R-1"
    assert rows[0].values["surname"] == "王"
    assert rows[0].problems == []


def test_gb18030_file_is_read_with_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "gb.csv"
    path.write_bytes("编号,姓名\r\n1,王小明\r\n2,欧阳娜娜\r\n".encode("gb18030"))

    header, rows = _rows(path, encoding="gb18030")

    assert header == ["编号", "姓名"]
    assert [r.values for r in rows] == [
        {"编号": "1", "姓名": "王小明"},
        {"编号": "2", "姓名": "欧阳娜娜"},
    ]
    assert all(r.problems == [] for r in rows)


@pytest.mark.parametrize(
    ("encoding", "bad"),
    [
        ("utf-8-sig", b"\xff\xfe"),  # never valid in UTF-8
        ("utf-8-sig", b"\xe4\xb8"),  # a 3-byte sequence cut short
        ("gb18030", b"\x81"),  # a lead byte with no trail byte
    ],
)
def test_invalid_bytes_are_a_row_problem_and_other_rows_still_come_through(
    tmp_path: Path, encoding: str, bad: bytes
) -> None:
    codec = "utf-8" if encoding == "utf-8-sig" else encoding  # no BOM in mid-file
    path = tmp_path / "bad.csv"
    path.write_bytes("id,name\n1,王\n".encode(codec) + b"2," + bad + b"\n" + "3,李\n".encode(codec))

    _, rows = _rows(path, encoding=encoding)

    assert [r.line for r in rows] == [2, 3, 4]
    assert [r.values["id"] for r in rows] == ["1", "2", "3"]
    assert _codes(rows[1].problems) == [("_row", "encoding.invalid_bytes")]
    assert rows[0].problems == rows[2].problems == []
    assert rows[0].values["name"] == "王"
    assert rows[2].values["name"] == "李"
    # The raw text shown to a clerk is printable (no lone surrogates).
    rows[1].raw.encode("utf-8")


def test_wrong_column_counts_are_row_problems(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("id,name\n1,a,extra\n2\n3,c\n", encoding="utf-8")

    _, rows = _rows(path)

    assert [_codes(r.problems) for r in rows] == [
        [("_row", "columns.count")],
        [("_row", "columns.count")],
        [],
    ]
    assert rows[0].values == {"id": "1", "name": "a"}
    assert rows[1].values == {"id": "2"}
    assert "3 columns, the header has 2" in rows[0].problems[0][2]


def test_an_empty_file_has_no_header_and_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    header, rows = _rows(path)

    assert header == []
    assert rows == []


def test_a_truncated_last_line_is_yielded_with_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "truncated.csv"
    path.write_bytes(b"id,name,dob\n1,a,1990-01-01\n2,b")

    _, rows = _rows(path)

    assert [r.line for r in rows] == [2, 3]
    assert rows[1].values == {"id": "2", "name": "b"}
    assert _codes(rows[1].problems) == [("_row", "columns.count")]


def test_line_numbers_count_the_header_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_bytes(b'id,note\n1,a\n\n2,"two\nlines"\n3,c\r\n')

    _, rows = _rows(path)

    assert [(r.line, r.values["id"]) for r in rows] == [(2, "1"), (4, "2"), (6, "3")]
    assert rows[1].values["note"] == "two\nlines"


def test_a_cell_beyond_the_parser_limit_is_a_malformed_row_and_reading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    import connectors.csvsource

    monkeypatch.setattr(connectors.csvsource, "FIELD_LIMIT", 100_000)
    path = tmp_path / "huge.csv"
    path.write_bytes(b'id,note\n1,"' + b"a" * 200_000 + b'"\n2,b\n')

    try:
        _, rows = _rows(path)
    finally:
        csv.field_size_limit(16 * 1024 * 1024)

    assert _codes(rows[0].problems) == [("_row", "csv.malformed")]
    assert (rows[1].line, rows[1].values) == (3, {"id": "2", "note": "b"})


def test_a_cell_of_200k_characters_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_bytes(b'id,note\n1,"' + b"a" * 200_000 + b'"\n2,b\n')

    _, rows = _rows(path)

    assert rows[0].problems == []
    assert len(rows[0].values["note"]) == 200_000


def test_header_names_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "spaces.csv"
    path.write_text(" id , name \n1,a\n", encoding="utf-8")

    header, rows = _rows(path)

    assert header == ["id", "name"]
    assert rows[0].values == {"id": "1", "name": "a"}


def test_unknown_encoding_and_missing_file_raise_source_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id\n1\n", encoding="utf-8")

    with pytest.raises(SourceError, match="unknown encoding"):
        read_csv(path, encoding="no-such-codec")
    with pytest.raises(SourceError, match="cannot open source file"):
        read_csv(tmp_path / "absent.csv")


def test_definition_source_and_mapping_together(tmp_path: Path) -> None:
    """A GB18030 export with full-width IDs, read through its definition, end to end."""
    definition = load_definition(_write_definition(tmp_path, _definition_text("gb18030")))
    lines = [
        HEADER,
        f"R-1,{_full_width('440305199003071236')},王,小明,1990年03月07日,1,440305,",
        "R-2,440305199003071235,李,娜,19900307,2,,",
        "R-3,440305199003071236,赵",
    ]
    definition.source_path.write_bytes("\r\n".join(lines).encode("gb18030"))

    header, rows = read_csv(definition.source_path, encoding=definition.source.encoding)
    mapped = [(row, *map_row(definition, definition.standard, row.values)) for row in rows]

    assert header == HEADER.split(",")
    (_, record1, problems1), (_, _, problems2), (row3, _, problems3) = mapped
    assert problems1 == []
    assert record1 == {**EXPECTED_RECORD, "phone": None}
    assert _codes(problems2) == [("resident_id", "resident_id.check_character")]
    assert row3.line == 4
    assert _codes(row3.problems) == [("_row", "columns.count")]
    assert ("birth_date", "column.missing") in _codes(problems3)


def test_a_list_field_splits_translates_each_item_and_keeps_each_once(tmp_path: Path) -> None:
    from exchange.local import examples

    definition = load_definition(examples.HUMAN_RESOURCES_INSURANCE)
    row = {
        "记录编号": "SI-1",
        "公民身份号码": "11010519491231002X",
        "单位统一社会信用代码": "",
        "险种": "110|310、310; 510",
        "人员状态": "1",
        "缴费基数": "1.00",
        "申报工资": "",
        "参保地": "110105",
        "开始日期": "20240101",
        "终止日期": "",
    }

    record, problems = map_row(definition, definition.standard, row)
    _, refused = map_row(definition, definition.standard, {**row, "险种": "110|999"})

    assert problems == []
    assert record["insurance_types"] == ["PENSION", "MEDICAL", "MATERNITY"]
    assert [code for _, code, _ in refused] == ["code.unknown"]


_BRANCHES = {"110": "PENSION", "210": "UNEMPLOYMENT", "310": "MEDICAL", "410": "WORK_INJURY"}


@given(
    codes=st.lists(st.sampled_from(sorted(_BRANCHES)), min_size=1, max_size=8),
    separators=st.lists(st.sampled_from(["|", ",", ";", "、", " | ", "、 "]), min_size=8),
)
def test_a_list_cell_maps_to_its_items_translated_in_first_order_each_once(
    codes: list[str], separators: list[str]
) -> None:
    from exchange.local import examples

    definition = load_definition(examples.HUMAN_RESOURCES_INSURANCE)
    cell = codes[0] + "".join(sep + code for sep, code in zip(separators, codes[1:], strict=False))
    row = {
        "记录编号": "SI-1",
        "公民身份号码": "11010519491231002X",
        "单位统一社会信用代码": "",
        "险种": cell,
        "人员状态": "1",
        "缴费基数": "1.00",
        "申报工资": "",
        "参保地": "110105",
        "开始日期": "20240101",
        "终止日期": "",
    }

    record, problems = map_row(definition, definition.standard, row)

    assert problems == []
    assert record["insurance_types"] == list(dict.fromkeys(_BRANCHES[c] for c in codes))
