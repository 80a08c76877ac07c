"""Tests for connector sources (connectors/sources.py) and the [source] section of definitions."""

from __future__ import annotations

import json
import os
import tomllib
import types
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from connectors.csvsource import SourceRow
from connectors.definition import (
    ConnectorDefinition,
    CsvSourceSpec,
    JsonLinesSourceSpec,
    PushSourceSpec,
    SqlSourceSpec,
    load_definition,
)
from connectors.sources import CsvSource, JsonLinesSource, SqlSource, open_source, to_text
from exchange.core.errors import ConfigError, SourceError
from tests.support.examples import household_toml, write_toml


def _load(tmp_path: Path, source: str) -> ConnectorDefinition:
    """The household example with ``source`` (TOML) as its whole ``[source]`` section."""
    text = household_toml(connector_id="test-connector", source=tomllib.loads(source))
    return load_definition(write_toml(tmp_path, text))


def _jsonl(tmp_path: Path, content: bytes | str, *, encoding: str = "utf-8") -> ConnectorDefinition:
    data = content.encode(encoding) if isinstance(content, str) else content
    (tmp_path / "people.jsonl").write_bytes(data)
    return _load(
        tmp_path, f'type = "jsonl"\npath = "people.jsonl"\nkey = "id"\nencoding = "{encoding}"'
    )


def _codes(row: SourceRow) -> list[str]:
    return [code for _, code, _ in row.problems]


# --- definitions: the [source] section -----------------------------------------------------


def test_a_source_without_type_is_csv(tmp_path: Path) -> None:
    definition = _load(tmp_path, 'path = "people.csv"\nkey = "id"')

    assert isinstance(definition.source, CsvSourceSpec)
    assert definition.source.type == "csv"
    assert definition.source.encoding == "utf-8-sig"
    assert (definition.source.delimiter, definition.source.quotechar) == (",", '"')
    assert definition.source_path == tmp_path.resolve() / "people.csv"


def test_a_csv_source_keeps_its_options(tmp_path: Path) -> None:
    definition = _load(
        tmp_path,
        'type = "csv"\npath = "p.csv"\nencoding = "gb18030"\ndelimiter = ";"\n'
        'quotechar = "\'"\nkey = "id"',
    )

    assert definition.source == CsvSourceSpec(
        path=Path("p.csv"), encoding="gb18030", delimiter=";", quotechar="'", key="id"
    )


def test_a_jsonl_source_validates(tmp_path: Path) -> None:
    definition = _load(tmp_path, 'type = "jsonl"\npath = "/data/people.jsonl"\nkey = "id"')

    assert isinstance(definition.source, JsonLinesSourceSpec)
    assert definition.source.encoding == "utf-8"
    assert definition.source_path == Path("/data/people.jsonl")


def test_a_sql_table_source_validates(tmp_path: Path) -> None:
    definition = _load(tmp_path, 'type = "sql"\nurl_env = "HR_DB"\ntable = "residents"\nkey = "id"')

    assert definition.source == SqlSourceSpec(
        type="sql", url_env="HR_DB", table="residents", key="id"
    )
    assert definition.source.query is None
    assert definition.source.watermark is None
    assert definition.source.batch_size == 5000


def test_a_sql_query_source_validates(tmp_path: Path) -> None:
    definition = _load(
        tmp_path,
        'type = "sql"\nurl_env = "HR_DB"\nquery = "SELECT * FROM r WHERE live = 1"\n'
        'key = "id"\nwatermark = "updated_at"\nbatch_size = 100',
    )

    source = definition.source
    assert isinstance(source, SqlSourceSpec)
    assert (source.query, source.watermark, source.batch_size) == (
        "SELECT * FROM r WHERE live = 1",
        "updated_at",
        100,
    )


def test_a_push_source_validates(tmp_path: Path) -> None:
    definition = _load(tmp_path, 'type = "push"\nkey = "id"')

    assert definition.source == PushSourceSpec(type="push", key="id")


@pytest.mark.parametrize(
    "source", ['type = "push"\nkey = "id"', 'type = "sql"\nurl_env = "X"\ntable = "t"\nkey = "id"']
)
def test_source_path_is_refused_for_sources_without_a_file(tmp_path: Path, source: str) -> None:
    definition = _load(tmp_path, source)

    with pytest.raises(ConfigError, match="source has no file path"):
        _ = definition.source_path


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'type = "sql"\nurl_env = "X"\ntable = "t"\nquery = "SELECT 1"\nkey = "id"',
            r"source: .*give 'table' or 'query', not both",
        ),
        ('type = "sql"\nurl_env = "X"\nkey = "id"', r"source: .*give one of 'table' or 'query'"),
        ('type = "sql"\ntable = "t"\nkey = "id"', r"source\.url_env: Field required"),
        (
            'type = "sql"\nurl_env = "postgresql://u:p@h/db"\ntable = "t"\nkey = "id"',
            r"source\.url_env: String should match",
        ),
        (
            'type = "sql"\nurl_env = "X"\ntable = "t"\nkey = "id"\npassword = "p"',
            r"source\.password: Extra inputs",
        ),
        (
            'type = "sql"\nurl_env = "X"\ntable = "t"\nkey = "id"\nbatch_size = 0',
            r"source\.batch_size",
        ),
        (
            'type = "xml"\npath = "p.xml"\nkey = "id"',
            r"source\.type: unknown source type 'xml'; use one of 'csv'",
        ),
        (
            'type = "jsonl"\npath = "p.jsonl"\nkey = "id"\ndelimiter = ";"',
            r"source\.delimiter: Extra inputs",
        ),
        ('type = "jsonl"\nkey = "id"', r"source\.path: Field required"),
        ('path = "p.csv"\nkey = "id"\nencodng = "gbk"', r"source\.encodng: Extra inputs"),
        ('type = "push"\npath = "p.csv"\nkey = "id"', r"source\.path: Extra inputs"),
        ('type = "push"', r"source\.key: Field required"),
        ('type = "csv"\npath = "p.csv"\nkey = ""', r"source\.key: String should have at least 1"),
    ],
)
def test_a_bad_source_is_refused_naming_the_field(
    tmp_path: Path, source: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        _load(tmp_path, source)

    assert "connector definition" in caught.value.message


def test_a_push_source_is_not_opened(tmp_path: Path) -> None:
    definition = _load(tmp_path, 'type = "push"\nkey = "id"')

    with pytest.raises(SourceError, match=r"push source.*nothing to read locally"):
        open_source(definition)


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (2.5, "2.5"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E+2"), "100"),
        ("王", "王"),
        (date(2024, 2, 29), "2024-02-29"),
        (datetime(2024, 2, 29, 8, 30, 5), "2024-02-29T08:30:05"),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), "2024-02-29T08:30:00+00:00"),
        ({"a": [1, None, True], "b": "李"}, '{"a":[1,null,true],"b":"李"}'),
        ([], "[]"),
        (b"\x00\xff", "00ff"),
    ],
)
def test_values_become_the_mappers_text(value: object, expected: str) -> None:
    assert to_text(value) == expected


# --- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_rows_are_read_with_their_line_numbers(tmp_path: Path) -> None:
    definition = _jsonl(
        tmp_path,
        '{"id": "A1", "surname": "王", "given": "秀英"}\n'
        '{"id": "A2", "surname": "李", "given": "伟", "phone": "13800138000"}\n',
    )

    source = open_source(definition)
    rows = list(source.rows())

    assert isinstance(source, JsonLinesSource)
    assert source.columns() == ["id", "surname", "given"]
    assert [r.line for r in rows] == [1, 2]
    assert rows[0].values == {"id": "A1", "surname": "王", "given": "秀英"}
    assert rows[1].values["phone"] == "13800138000"
    assert rows[0].raw == '{"id": "A1", "surname": "王", "given": "秀英"}'
    assert all(r.problems == [] for r in rows)
    assert source.high_watermark() is None
    assert source.describe() == str(tmp_path.resolve() / "people.jsonl")


def test_jsonl_values_are_converted_to_text(tmp_path: Path) -> None:
    line = {
        "id": 7,
        "score": 2.5,
        "big": 12345678901234567890,
        "none": None,
        "yes": True,
        "no": False,
        "nested": {"k": [1, "二"]},
        "list": [1, 2],
        "text": " spaced ",
    }
    definition = _jsonl(tmp_path, json.dumps(line, ensure_ascii=False) + "\n")

    (row,) = open_source(definition).rows()

    assert row.problems == []
    assert row.values == {
        "id": "7",
        "score": "2.5",
        "big": "12345678901234567890",
        "none": "",
        "yes": "true",
        "no": "false",
        "nested": '{"k":[1,"二"]}',
        "list": "[1,2]",
        "text": " spaced ",
    }


def test_a_line_that_is_not_json_is_a_problem_not_an_error(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, '{"id": "A1"}\n{"id": "A2",\n{"id": NaN}\n{"id": "A4"}\n')

    rows = list(open_source(definition).rows())

    assert [r.line for r in rows] == [1, 2, 3, 4]
    assert [_codes(r) for r in rows] == [[], ["json.invalid"], ["json.invalid"], []]
    assert rows[1].problems[0][0] == "_row"
    assert "is not valid JSON" in rows[1].problems[0][2]
    assert "NaN" in rows[2].problems[0][2]
    assert rows[1].values == {}
    assert rows[1].raw == '{"id": "A2",'
    assert rows[3].values == {"id": "A4"}


@pytest.mark.parametrize(
    ("line", "kind"),
    [("[1, 2]", "an array"), ('"A1"', "a string"), ("42", "a number"), ("null", "null")],
)
def test_a_line_that_is_not_an_object_is_a_problem(tmp_path: Path, line: str, kind: str) -> None:
    definition = _jsonl(tmp_path, f'{line}\n{{"id": "A2"}}\n')

    rows = list(open_source(definition).rows())

    assert _codes(rows[0]) == ["json.invalid"]
    assert rows[0].problems[0][2] == f"line is {kind}, not a JSON object"
    assert rows[0].values == {}
    assert rows[1].values == {"id": "A2"}


def test_deeply_nested_json_is_a_problem(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, "[" * 100_000 + "]" * 100_000 + "\n")

    (row,) = open_source(definition).rows()

    assert _codes(row) == ["json.invalid"]


def test_blank_lines_are_skipped_but_keep_line_numbers(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, '\n{"id": "A1"}\r\n   \n\t\n{"id": "A2"}\n\n')

    rows = list(open_source(definition).rows())

    assert [(r.line, r.values["id"]) for r in rows] == [(2, "A1"), (5, "A2")]
    assert rows[0].raw == '{"id": "A1"}'


def test_invalid_bytes_are_a_problem_with_the_row_still_read(tmp_path: Path) -> None:
    content = b'{"id": "A1", "surname": "\xff\xfe"}\n{"id": "A2"}\n'
    definition = _jsonl(tmp_path, content)

    rows = list(open_source(definition).rows())

    assert _codes(rows[0]) == ["encoding.invalid_bytes"]
    assert "not valid utf-8" in rows[0].problems[0][2]
    assert rows[0].values["id"] == "A1"
    assert "\ufffd" in rows[0].raw
    rows[0].raw.encode("utf-8")  # safe to put in a dead letter
    assert rows[1].problems == []


def test_a_declared_encoding_is_used(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, '{"id": "A1", "surname": "王"}\n', encoding="gb18030")

    (row,) = open_source(definition).rows()

    assert row.problems == []
    assert row.values["surname"] == "王"


def test_a_utf8_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, b'\xef\xbb\xbf{"id": "A1"}\n')

    (row,) = open_source(definition).rows()

    assert row.problems == []
    assert row.values == {"id": "A1"}


def test_jsonl_columns_are_the_keys_of_the_first_valid_object(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, '\nnot json\n[1]\n{"b": 1, "a": 2}\n{"c": 3}\n')

    assert open_source(definition).columns() == ["b", "a"]


def test_an_empty_jsonl_file_has_no_columns_and_no_rows(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, "\n\n")

    source = open_source(definition)

    assert source.columns() == []
    assert list(source.rows()) == []


def test_jsonl_skip_resumes_with_the_same_rows_and_line_numbers(tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"A{i}"}) if i % 4 else "" for i in range(1, 30)]
    lines[10] = "broken {"
    definition = _jsonl(tmp_path, "\n".join(lines) + "\n")
    source = open_source(definition)

    full = list(source.rows())
    for skip in (0, 1, 7, len(full) - 1, len(full), len(full) + 5):
        assert list(source.rows(skip=skip)) == full[skip:]
    assert len(full) == 29 - 7  # blank lines are not rows


def test_rows_is_a_lazy_generator(tmp_path: Path) -> None:
    definition = _jsonl(tmp_path, '{"id": "A1"}\n')
    source = open_source(definition)

    rows = source.rows()
    (tmp_path / "people.jsonl").unlink()  # nothing was opened yet

    assert isinstance(rows, types.GeneratorType)
    with pytest.raises(SourceError, match="cannot open source file"):
        next(rows)


def test_a_negative_skip_is_refused(tmp_path: Path) -> None:
    source = open_source(_jsonl(tmp_path, '{"id": "A1"}\n'))

    with pytest.raises(ValueError, match="skip"):
        list(source.rows(skip=-1))


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_missing_file_is_a_source_error(tmp_path: Path, kind: str) -> None:
    definition = _load(tmp_path, f'type = "{kind}"\npath = "absent.{kind}"\nkey = "id"')

    with pytest.raises(SourceError, match=r"cannot open source file .*absent\.\w+: No such file"):
        open_source(definition)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_an_unknown_encoding_is_a_source_error(tmp_path: Path, kind: str) -> None:
    (tmp_path / f"p.{kind}").write_text("id\n", encoding="utf-8")
    definition = _load(
        tmp_path, f'type = "{kind}"\npath = "p.{kind}"\nkey = "id"\nencoding = "no-such-codec"'
    )

    with pytest.raises(SourceError, match="unknown encoding 'no-such-codec'"):
        open_source(definition)


# --- fingerprints -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_file_fingerprint_changes_when_the_file_changes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"p.{kind}"
    first = "id\nA1\n" if kind == "csv" else '{"id": "A1"}\n'
    path.write_text(first, encoding="utf-8")
    definition = _load(tmp_path, f'type = "{kind}"\npath = "p.{kind}"\nkey = "id"')

    before = open_source(definition).fingerprint()
    again = open_source(definition).fingerprint()
    path.write_text(first * 2 if kind == "jsonl" else first + "A2\n", encoding="utf-8")
    grown = open_source(definition).fingerprint()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched, same size
    touched = open_source(definition).fingerprint()

    assert before == again
    assert len({before, grown, touched}) == 3
    assert len(before) == 64


def test_the_same_content_elsewhere_has_another_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "p.jsonl").write_text('{"id": "A1"}\n', encoding="utf-8")
        os.utime(tmp_path / folder / "p.jsonl", ns=(0, 0))

    a = _load(tmp_path / "a", 'type = "jsonl"\npath = "p.jsonl"\nkey = "id"')
    b = _load(tmp_path / "b", 'type = "jsonl"\npath = "p.jsonl"\nkey = "id"')

    assert open_source(a).fingerprint() != open_source(b).fingerprint()


# --- CSV through open_source --------------------------------------------------------------


def test_csv_is_read_through_open_source(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_bytes(
        "id;name\r\nA1;王\r\n\r\nA2;\xff\r\nA3;李;extra\r\n".encode("gb18030").replace(
            "\xff".encode("gb18030"), b"\xff"
        )
    )
    definition = _load(
        tmp_path, 'path = "p.csv"\nkey = "id"\nencoding = "gb18030"\ndelimiter = ";"'
    )

    source = open_source(definition)
    rows = list(source.rows())

    assert isinstance(source, CsvSource)
    assert source.columns() == ["id", "name"]
    assert [(r.line, r.values.get("id")) for r in rows] == [(2, "A1"), (4, "A2"), (5, "A3")]
    assert rows[0].values == {"id": "A1", "name": "王"}
    assert _codes(rows[1]) == ["encoding.invalid_bytes"]
    assert _codes(rows[2]) == ["columns.count"]
    assert [list(source.rows(skip=n)) for n in range(4)] == [rows, rows[1:], rows[2:], []]
    assert source.high_watermark() is None


def test_a_csv_key_column_missing_from_the_header_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("local_id,name\nA1,x\n", encoding="utf-8")
    definition = _load(tmp_path, 'path = "p.csv"\nkey = "id"')

    with pytest.raises(SourceError, match="the key column 'id' is not in the header of"):
        open_source(definition)


def test_an_empty_csv_file_has_no_columns_and_no_rows(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_bytes(b"")
    definition = _load(tmp_path, 'path = "p.csv"\nkey = "id"')

    source = open_source(definition)

    assert source.columns() == []
    assert list(source.rows()) == []


def test_an_unfinished_csv_read_closes_its_file(tmp_path: Path) -> None:
    # pytest turns ResourceWarning from an unclosed file into an error.
    (tmp_path / "p.csv").write_text("id\nA1\nA2\n", encoding="utf-8")
    source = open_source(_load(tmp_path, 'path = "p.csv"\nkey = "id"'))

    rows = source.rows()
    next(rows)
    rows.close()  # type: ignore[attr-defined]

    assert [r.values["id"] for r in source.rows(skip=1)] == ["A2"]


# --- SQL: what can be checked without a database server ---------------------------------


def _sql(tmp_path: Path, env: str = "TEST_SOURCE_DB", extra: str = "") -> ConnectorDefinition:
    return _load(
        tmp_path, f'type = "sql"\nurl_env = "{env}"\ntable = "people"\nkey = "id"\n{extra}'
    )


def test_an_unset_url_variable_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SOURCE_DB", raising=False)

    with pytest.raises(SourceError, match="environment variable TEST_SOURCE_DB is not set"):
        open_source(_sql(tmp_path))


def test_a_url_variable_that_is_not_a_url_is_a_source_error_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SOURCE_DB", "not a url s3cret")

    with pytest.raises(SourceError, match="does not hold a SQLAlchemy URL") as caught:
        open_source(_sql(tmp_path))

    assert "s3cret" not in caught.value.message


def test_an_unreachable_database_is_a_source_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SOURCE_DB", "postgresql+psycopg://hr:s3cret@127.0.0.1:1/hr")

    with pytest.raises(
        SourceError, match=r"cannot connect to the database .*127\.0\.0\.1"
    ) as caught:
        open_source(_sql(tmp_path))

    assert "s3cret" not in caught.value.message
    assert "TEST_SOURCE_DB" in caught.value.message


def test_an_unknown_database_driver_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SOURCE_DB", "nosuchdb://u:s3cret@h/db")

    with pytest.raises(
        SourceError, match="cannot use the database URL in TEST_SOURCE_DB"
    ) as caught:
        open_source(_sql(tmp_path))

    assert "s3cret" not in caught.value.message


def test_a_missing_sqlite_file_is_a_source_error_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SOURCE_DB", f"sqlite:///{tmp_path / 'absent.db'}")

    with pytest.raises(SourceError, match=r"SQLite database file .*absent\.db .*does not exist"):
        open_source(_sql(tmp_path))

    assert not (tmp_path / "absent.db").exists()


@pytest.fixture
def sqlite_people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hr.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, dob DATE)"))
        conn.execute(
            text("INSERT INTO people VALUES (2, 'b', '1990-01-02'), (1, NULL, '1980-05-17')")
        )
    engine.dispose()
    monkeypatch.setenv("TEST_SOURCE_DB", f"sqlite:///{path}")
    return path


def test_a_sql_table_is_read_in_key_order(tmp_path: Path, sqlite_people: Path) -> None:
    source = open_source(_sql(tmp_path))
    rows = list(source.rows())

    assert isinstance(source, SqlSource)
    assert source.columns() == ["id", "name", "dob"]
    assert [(r.line, r.values) for r in rows] == [
        (1, {"id": "1", "name": "", "dob": "1980-05-17"}),
        (2, {"id": "2", "name": "b", "dob": "1990-01-02"}),
    ]
    assert json.loads(rows[0].raw) == rows[0].values
    assert rows[0].watermark is None
    assert source.high_watermark() is None
    assert list(source.rows(skip=1)) == rows[1:]
    assert source.describe() == f"table people at sqlite:///{sqlite_people}"


def test_sql_key_and_watermark_columns_must_exist(tmp_path: Path, sqlite_people: Path) -> None:
    with pytest.raises(
        SourceError,
        match=r"the key column 'local_id' is not in table 'people' \(its columns: id, name, dob\)",
    ):
        open_source(
            _load(
                tmp_path,
                'type = "sql"\nurl_env = "TEST_SOURCE_DB"\ntable = "people"\nkey = "local_id"',
            )
        )
    with pytest.raises(SourceError, match="the watermark column 'updated_at' is not in"):
        open_source(_sql(tmp_path, extra='watermark = "updated_at"'))


def test_a_sql_missing_table_is_a_source_error(tmp_path: Path, sqlite_people: Path) -> None:
    definition = _load(
        tmp_path, 'type = "sql"\nurl_env = "TEST_SOURCE_DB"\ntable = "absent"\nkey = "id"'
    )

    with pytest.raises(SourceError, match="the table 'absent' does not exist in the database"):
        open_source(definition)


def test_a_broken_sql_query_is_a_source_error(tmp_path: Path, sqlite_people: Path) -> None:
    definition = _load(
        tmp_path, 'type = "sql"\nurl_env = "TEST_SOURCE_DB"\nquery = "SELEKT 1"\nkey = "id"'
    )

    with pytest.raises(SourceError, match=r"the \[source\]\.query cannot be run at .*syntax error"):
        open_source(definition)


def test_a_sql_query_keeps_colons_semicolons_and_comments(
    tmp_path: Path, sqlite_people: Path
) -> None:
    query = "SELECT id, name || ':x' AS name FROM people WHERE name <> ':y' -- a comment;"
    definition = _load(
        tmp_path, f'type = "sql"\nurl_env = "TEST_SOURCE_DB"\nquery = "{query}"\nkey = "id"'
    )

    rows = list(open_source(definition).rows())

    assert [r.values for r in rows] == [{"id": "2", "name": "b:x"}]


def test_since_is_ignored_without_a_watermark(tmp_path: Path, sqlite_people: Path) -> None:
    source = open_source(_sql(tmp_path), since=("2024-01-01", "1"))

    assert len(list(source.rows())) == 2
    assert source.high_watermark() is None


def test_a_sql_fingerprint_names_the_table_watermark_and_key(
    tmp_path: Path, sqlite_people: Path
) -> None:
    plain = open_source(_sql(tmp_path)).fingerprint()
    again = open_source(_sql(tmp_path)).fingerprint()
    marked = open_source(_sql(tmp_path, extra='watermark = "dob"')).fingerprint()
    query = open_source(
        _load(
            tmp_path,
            'type = "sql"\nurl_env = "TEST_SOURCE_DB"\nquery = "SELECT * FROM people"\nkey = "id"',
        )
    ).fingerprint()

    assert plain == again
    assert len({plain, marked, query}) == 3


def test_a_watermark_checkpoint_of_the_wrong_type_is_a_source_error(
    tmp_path: Path, sqlite_people: Path
) -> None:
    definition = _load(
        tmp_path,
        'type = "sql"\nurl_env = "TEST_SOURCE_DB"\ntable = "people"\nkey = "id"\nwatermark = "dob"',
    )
    source = open_source(definition, since=("1985-01-01", "not-a-number"))

    with pytest.raises(
        SourceError, match="the last run's key 'not-a-number' does not fit the column's int values"
    ):
        list(source.rows())


def test_a_sql_watermark_reads_only_newer_rows(tmp_path: Path, sqlite_people: Path) -> None:
    definition = _load(
        tmp_path,
        'type = "sql"\nurl_env = "TEST_SOURCE_DB"\ntable = "people"\nkey = "id"\nwatermark = "dob"',
    )
    first = open_source(definition)
    assert [r.values["id"] for r in first.rows()] == ["1", "2"]
    assert first.high_watermark() == ("1990-01-02", "2")

    later = open_source(definition, since=("1985-01-01", "1"))
    rows = list(later.rows())
    assert [(r.line, r.values["id"], r.watermark) for r in rows] == [(1, "2", "1990-01-02")]

    nothing = open_source(definition, since=first.high_watermark())
    assert list(nothing.rows()) == []
    assert nothing.high_watermark() == first.high_watermark()
