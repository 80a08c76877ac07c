"""Bad input a connector must survive: one bad row never stops a run, nothing is lost.

Each case runs a real connector (``run_connector``) against the session's Kafka
broker on a small CSV that mixes one bad row with valid rows, then checks that
the run reconciles, that exactly the valid rows reached ``std.<dataset>.v1``
(matched by message key ``<department>:<id>``), and that the bad row was
dead-lettered to ``dlq.<department>.<dataset>`` with the expected reason, its line and its
original content. Every test uses its own department: topics are shared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connectors import load_definition
from connectors.mapping import MAX_STRING
from connectors.pipeline import open_dead_letter
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import ConfigError, DecryptionError
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from exchange.security.keystore import FieldCipher, LocalKeyStore
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.deadletters import dead_letters
from tests.support.examples import CONTACT_FIELDS, benefits_toml, household_toml, write_toml
from tests.support.kafka import read_topic
from tests.support.publishing import publish

pytestmark = pytest.mark.integration

PERSON_HEADER = "local_id,id_number,surname,given,dob,sex"
BENEFIT_HEADER = "payment_no,id_number,benefit,amount,start,end,paid,case_ref,division"


def rid(first17: str) -> str:
    """A valid 18-character resident identity number from its first 17 characters."""
    return first17 + resident_id_check_character(first17)


ID_1 = rid("11010519491231002")
ID_2 = rid("11010519800517001")
ID_3 = rid("44010619900709002")
ID_B = rid("31010419750301001")
WRONG_CHECK = ID_B[:-1] + ("0" if ID_B[-1] != "0" else "1")

PERSON_VALID = [
    f"A1,{ID_1},王,秀英,1949-12-31,2",
    f"A2,{ID_2},李,伟,1980/05/17,1",
    f"A3,{ID_3},陈,芳,19900709,2",
]
BENEFIT_VALID = [
    f"P1,{ID_1},1,112000,2024-03-01,2024-03-31,2024-03-05,MZ-2024-001,110105",
    f"P2,{ID_2},3,50000,2024-03-01,2024-03-01,2024-03-02,MZ-2024-002,110105",
    f"P3,{ID_3},1,-112000,2024-02-01,2024-02-29,2024-03-06,MZ-2024-003,440106",
]


@dataclass(frozen=True)
class Standard:
    dataset: str
    header: str
    valid: tuple[str, ...]
    toml: Callable[..., str]  # the example department's definition, with changes
    without: tuple[str, ...] = ()  # the example's fields whose columns the header lacks


PERSON = Standard("person", PERSON_HEADER, tuple(PERSON_VALID), household_toml, CONTACT_FIELDS)
BENEFIT = Standard("benefit_payment", BENEFIT_HEADER, tuple(BENEFIT_VALID), benefits_toml)


@dataclass
class World:
    """A fresh registry database, the broker, and a department of its own."""

    kafka: LocalKafka
    sessions: sessionmaker[Session]
    folder: Path
    department: str = field(default_factory=lambda: f"bad_{uuid.uuid4().hex[:10]}")

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def connector_id(self) -> str:
        return f"bad-input-{self.department}"

    def write(
        self,
        standard: Standard,
        content: bytes,
        *,
        encoding: str = "utf-8",
        fields: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Path:
        (self.folder / "export.csv").write_bytes(content)
        text = standard.toml(
            connector_id=self.connector_id,
            department=self.department,
            csv="export.csv",
            encoding=encoding,
            fields=fields,
            without=standard.without,
        )
        return write_toml(self.folder, text)

    def run(self, definition: Path) -> Any:
        return publish(self.bootstrap, self.sessions, definition)

    def published(self, dataset: str) -> list[Any]:
        return read_topic(self.bootstrap, f"std.{dataset}.v1", f"{self.department}:".encode())

    def dead_letters(self, dataset: str) -> list[dict[str, Any]]:
        entries = dead_letters(self.bootstrap, self.sessions, self.department, dataset)
        assert all(e["department"] == self.department for e in entries)
        return entries


@pytest.fixture
def world(kafka: LocalKafka, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    yield World(kafka, session_factory(engine), tmp_path)
    engine.dispose()


@dataclass
class Case:
    """One bad row among valid rows: its bytes, where it goes, and what must be said of it."""

    id: str
    bad: bytes
    codes: set[str]
    standard: Standard = PERSON
    last: bool = False  # the bad row is the last line, without a trailing newline
    raw: str | None = None  # the expected dead letter "raw", if not the line decoded as UTF-8


def _u(text: str) -> bytes:
    return text.encode("utf-8")


CASES = [
    Case(
        "missing-required-field",
        _u(f"B1,{ID_B},,丽,1980-05-17,2"),  # empty surname: family_name is required
        {"required.missing"},
    ),
    Case(
        "missing-required-identifier",
        _u("B1,  ,孙,丽,1980-05-17,2"),  # spaces only: empty after the strip transform
        {"required.missing"},
    ),
    Case(
        "wrong-type-long",
        _u(f"PB,{ID_B},1,1120.50,2024-03-01,2024-03-31,2024-03-05,MZ-2024-009,110105"),
        {"type.integer"},
        standard=BENEFIT,
    ),
    Case(
        "wrong-type-text-in-long",
        _u(f"PB,{ID_B},1,一千元,2024-03-01,2024-03-31,2024-03-05,MZ-2024-009,110105"),
        {"type.integer"},
        standard=BENEFIT,
    ),
    Case(
        "bad-identifier-check-character",
        _u(f"B1,{WRONG_CHECK},孙,丽,1980-05-17,2"),
        {"resident_id.check_character"},
    ),
    Case(
        "impossible-date",
        _u(f"B1,{ID_B},钱,刚,1975-02-30,1"),
        {"date.invalid"},
    ),
    Case(
        "impossible-date-in-long-standard",
        _u(f"PB,{ID_B},1,112000,2024-02-30,2024-03-31,2024-03-05,MZ-2024-009,110105"),
        {"date.invalid"},
        standard=BENEFIT,
    ),
    Case(
        "unknown-code",
        _u(f"B1,{ID_B},周,梅,1990-07-09,X"),
        {"code.unknown"},
    ),
    Case(
        "duplicate-source-key",
        _u(f"A1,{ID_B},孙,丽,1980-05-17,2"),  # A1 is the first valid row's key
        {"key.duplicate"},
    ),
    Case(
        "oversized-field",
        _u(f"B1,{ID_B},孙,{'丽' * (MAX_STRING + 1)},1980-05-17,2"),
        {"size.too_long"},  # given_name and full_name
    ),
    Case(
        "invalid-bytes-0xff",
        b"B1," + ID_B.encode() + b",\xe5\xad\x99,\xff\xfe,1980-05-17,2",
        {"encoding.invalid_bytes"},
    ),
    Case(
        "gb18030-row-in-utf8-file",
        f"B1,{ID_B},孙,丽娟,1980-05-17,2".encode("gb18030"),
        {"encoding.invalid_bytes"},
    ),
    Case(
        "extra-columns",
        _u(f"B1,{ID_B},孙,丽,1980-05-17,2,unexpected"),
        {"columns.count"},
    ),
    Case(
        "missing-columns",
        _u(f"B1,{ID_B},孙,丽,1980-05-17"),
        {"columns.count", "column.missing"},  # the short row, and the field (sex) it leaves out
    ),
    Case(
        "missing-key-value",
        _u(f",{ID_B},孙,丽,1980-05-17,2"),
        {"key.missing"},
    ),
    Case(
        "truncated-last-line",
        _u(f"B9,{ID_B},孙"),
        {"columns.count", "column.missing"},
        last=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_row_is_dead_lettered_and_the_valid_rows_are_published(
    world: World, case: Case
) -> None:
    standard = case.standard
    valid = [_u(v) for v in standard.valid]
    if case.last:
        lines = [_u(standard.header), *valid, case.bad]
        content = b"\n".join(lines)  # no trailing newline: the file was cut short
    else:
        lines = [_u(standard.header), valid[0], valid[1], case.bad, valid[2]]
        content = b"\n".join(lines) + b"\n"
    bad_line = lines.index(case.bad) + 1  # the header is line 1
    valid_ids = {v.split(",", 1)[0] for v in standard.valid}

    report = world.run(world.write(standard, content))

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (4, 3, 1)
    assert set(report.reasons) == case.codes
    [rejection] = report.rejections
    assert rejection["line"] == bad_line

    published = world.published(standard.dataset)
    assert {m.key.decode() for m in published} == {f"{world.department}:{i}" for i in valid_ids}
    assert len(published) == 3
    for message in published:
        assert dict(message.headers)["source-id"].decode() in valid_ids

    [dead] = world.dead_letters(standard.dataset)
    assert dead["line"] == bad_line
    assert dead["connector"] == world.connector_id
    assert dead["dataset"] == standard.dataset
    assert {r["code"] for r in dead["reasons"]} == case.codes
    for reason in dead["reasons"]:
        assert reason["message"]
        assert reason["field"]
    expected_raw = case.raw if case.raw is not None else case.bad.decode("utf-8", "replace")
    assert dead["raw"] == expected_raw


def test_missing_cells_also_name_the_fields_that_need_them(world: World) -> None:
    bad = f"B1,{ID_B},孙,丽"  # dob and sex cells are missing
    content = "\n".join([PERSON_HEADER, *PERSON_VALID, bad]) + "\n"

    report = world.run(world.write(PERSON, content.encode()))

    assert report.reconciled
    assert report.published == 3
    [dead] = world.dead_letters("person")
    assert {(r["field"], r["code"]) for r in dead["reasons"]} == {
        ("_row", "columns.count"),
        ("birth_date", "column.missing"),
        ("sex", "column.missing"),
    }


def test_oversized_field_names_each_field_and_keeps_the_whole_row(world: World) -> None:
    long_given = "丽" * (MAX_STRING + 1)
    bad = f"B1,{ID_B},孙,{long_given},1980-05-17,2"
    content = "\n".join([PERSON_HEADER, *PERSON_VALID, bad]) + "\n"

    report = world.run(world.write(PERSON, content.encode()))

    assert report.reconciled
    assert report.reasons == {"size.too_long": 2}  # given_name, and full_name built from it
    [dead] = world.dead_letters("person")
    assert {(r["field"], r["code"]) for r in dead["reasons"]} == {
        ("given_name", "size.too_long"),
        ("full_name", "size.too_long"),
    }
    assert dead["raw"] == bad
    assert dead["source_id"] == "B1"
    assert len(world.published("person")) == 3


def _oversized_cell_run(world: World) -> tuple[Any, dict[str, Any], str]:
    huge = "x" * 140_000  # beyond the csv module's default field limit of 131072
    bad = f'B1,{ID_B},孙,"{huge}",1980-05-17,2'
    lines = [PERSON_HEADER, PERSON_VALID[0], bad, PERSON_VALID[1], PERSON_VALID[2]]
    report = world.run(world.write(PERSON, ("\n".join(lines) + "\n").encode()))
    [dead] = world.dead_letters("person")
    return report, dead, bad


def test_a_cell_beyond_the_csv_modules_default_limit_is_read_and_rejected_whole(
    world: World,
) -> None:
    report, dead, _ = _oversized_cell_run(world)

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (4, 3, 1)
    assert report.reasons == {"size.too_long": 2}  # given_name, and full_name built from it
    assert {m.key.decode() for m in world.published("person")} == {
        f"{world.department}:{i}" for i in ("A1", "A2", "A3")
    }
    assert dead["line"] == 3
    assert dead["raw"].startswith(f"B1,{ID_B},孙,")
    assert dead["source_id"] == "B1"


def test_an_unparsable_row_is_rejected_alone_for_what_it_is(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.csvsource

    # A cell beyond the parser's limit cannot be read at all: make the limit small to see it.
    monkeypatch.setattr(connectors.csvsource, "FIELD_LIMIT", 100_000)
    try:
        report, dead, _ = _oversized_cell_run(world)
    finally:
        import csv

        csv.field_size_limit(connectors.csvsource.FIELD_LIMIT)
    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (4, 3, 1)
    assert report.reasons == {"csv.malformed": 1}  # and not also a false key.missing
    assert dead["line"] == 3
    [malformed] = dead["reasons"]
    assert "field larger than field limit" in malformed["message"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="zero-bytes"),
        pytest.param(_u(PERSON_HEADER + "\n"), id="header-only"),
        pytest.param(_u(PERSON_HEADER), id="header-only-no-newline"),
        pytest.param(_u(PERSON_HEADER + "\n\n\n"), id="header-and-blank-lines"),
    ],
)
def test_an_empty_file_publishes_nothing_and_reconciles(world: World, content: bytes) -> None:
    report = world.run(world.write(PERSON, content))

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (0, 0, 0)
    assert report.reasons == {}
    assert report.rejections == []
    assert world.published("person") == []
    assert world.dead_letters("person") == []


def test_a_definition_mapping_a_field_the_standard_lacks_is_refused_before_publishing(
    world: World,
) -> None:
    content = "\n".join([PERSON_HEADER, *PERSON_VALID]) + "\n"
    nickname = {"nickname": {"from": "given"}}
    definition = world.write(PERSON, content.encode(), fields=nickname)

    with pytest.raises(ConfigError) as raised:
        load_definition(definition)

    assert "fields.nickname" in raised.value.message
    assert "has no field 'nickname'" in raised.value.message
    assert world.published("person") == []
    assert world.dead_letters("person") == []
    # Nothing was registered either: load_definition refused before any run began.
    assert SchemaStore(world.sessions).subjects() == []


def test_a_gb18030_file_declared_gb18030_keeps_its_chinese_names(world: World) -> None:
    people = [
        ("G1", ID_1, "王", "秀英", "1949-12-31", "2"),
        ("G2", ID_2, "欧阳", "娜娜", "1980-05-17", "2"),
        ("G3", ID_3, "龚", "𠮷祥", "1990-07-09", "1"),  # 𠮷: a four-byte GB18030 sequence
        ("G4", rid("31010419750301001"), "喆", "堃", "1975-03-01", "9"),
    ]
    text = "\n".join([PERSON_HEADER, *(",".join(p) for p in people)]) + "\n"
    content = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")  # really not UTF-8

    report = world.run(world.write(PERSON, content, encoding="gb18030"))

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (4, 4, 0)
    serde = AvroSerde(SchemaStore(world.sessions).schema_text)
    decoded = {}
    for message in world.published("person"):
        _, record = serde.decode(message.value)
        decoded[message.key.decode()] = record
    assert set(decoded) == {f"{world.department}:{p[0]}" for p in people}
    for local_id, _, surname, given, _, _ in people:
        record = decoded[f"{world.department}:{local_id}"]
        assert record["family_name"] == surname
        assert record["given_name"] == given
        assert record["full_name"] == surname + given
    assert world.dead_letters("person") == []


def test_a_rejected_rows_sensitive_values_are_sealed_and_kept_for_its_department(
    world: World,
) -> None:
    # Finding 8 of issue 17: a rejected row went to dlq.<dataset> as read, its resident
    # ID in plain text, on a topic every department publishing the dataset shares.
    bad = f"B1,{WRONG_CHECK},孙,丽,1980-05-17,2"
    content = "\n".join([PERSON_HEADER, *PERSON_VALID, bad]) + "\n"
    report = world.run(world.write(PERSON, content.encode()))
    assert report.reconciled
    assert report.dlq_topic == f"dlq.{world.department}.person"

    [message] = read_topic(world.bootstrap, report.dlq_topic, f"{world.department}:".encode())
    on_the_wire = message.value.decode()
    for secret in (WRONG_CHECK, WRONG_CHECK[:17], bad):
        assert secret not in on_the_wire, secret
    sealed = json.loads(on_the_wire)
    # Sealed as the standard seals a published record's fields: the sensitive ones (and
    # any column that feeds no field); the others are shown, so a clerk sees what to fix.
    assert sealed["sealed"] == ["id_number"]
    assert sealed["values"]["local_id"] == "B1"
    assert sealed["values"]["surname"] == "孙"
    assert {r["code"] for r in sealed["reasons"]} == {"resident_id.check_character"}
    # The department's keys open it; the values are the row as read.
    [opened] = world.dead_letters("person")
    assert opened["raw"] == bad
    assert opened["values"]["id_number"] == WRONG_CHECK
    assert opened["values"]["surname"] == "孙"
    assert all("(sealed" not in r["message"] for r in opened["reasons"])
    # Keys under another master key (another exchange, or an attacker's copy) open nothing.
    other_keys = FieldCipher(LocalKeyStore(world.sessions, bytes(range(1, 33))))
    with pytest.raises(DecryptionError):
        open_dead_letter(other_keys, sealed)
    # Nothing of it is on the shared topic of old, nor on another department's.
    assert read_topic(world.bootstrap, "dlq.person", f"{world.department}:".encode()) == []
    other = f"other_{world.department}"
    assert read_topic(world.bootstrap, f"dlq.{other}.person", f"{world.department}:".encode()) == []
