"""Real-looking department exports through the real connector path (issue 18, point 3).

A health department's GB18030 CSV of persons (Chinese header, 姓名 as one column
split by the mapping, birth dates in two writings, sex codes 1/2, addresses, some
rows without an ID number, which its definition allows), a civil affairs export of
benefit payments in yuan scaled to fen, and a JSON Lines export of persons: each is
run by ``run_connector`` against the session's Kafka broker, and the test checks
what reached ``std.<dataset>.v1`` (decoded, the resident id opened with the
department's keys) and what was dead-lettered, with reasons, and that the counts
reconcile. Every test uses its own department: topics are shared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.publisher import RunReport
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import SourceRecord
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.deadletters import dead_letters
from tests.support.kafka import end_offsets, read_topic
from tests.support.keys import keys_for
from tests.support.publishing import publish
from tests.support.registry import build_department

pytestmark = pytest.mark.integration


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


ID_1 = rid("33010519900307002")
ID_2 = rid("33010319800517001")
ID_3 = rid("44030519990101003")
WRONG_CHECK = ID_3[:-1] + ("0" if ID_3[-1] != "0" else "1")

PERSONS_TOML = """
# The health department's persons export: GB18030, Chinese header, one name column.
[connector]
id = "{connector}"
department = "{department}"
standard = "person"

[source]
path = "{path}"
encoding = "gb18030"
key = "编号"

[fields.resident_id]
from = "身份证号"
transform = ["strip", "halfwidth", "upper"]
{optional}

[fields.family_name]
from = "姓名"
split_name = "family"

[fields.given_name]
from = "姓名"
split_name = "given"

[fields.full_name]
from = "姓名"
transform = ["strip", "collapse_spaces"]

[fields.birth_date]
from = "出生日期"
date_formats = ["ymd"]

[fields.sex]
from = "性别"
codes = {{ "1" = "MALE", "2" = "FEMALE" }}

[fields.residence_division_code]
from = "户籍区划"

[fields.address_line]
from = "户籍地址"

[fields.postcode]
from = "邮编"
transform = ["strip", "halfwidth", "upper"]

[fields.current_division_code]
from = "现居区划"

[fields.current_address_line]
from = "现居地址"

[fields.phone]
from = "联系电话"
"""

PERSONS_HEADER = (
    "编号,身份证号,姓名,性别,出生日期,户籍区划,户籍地址,邮编,现居区划,现居地址,联系电话"
)
PERSONS_ROWS = [
    # published, with an ID
    f"W1,{ID_1},欧阳娜娜,2,1990-03-07,330105,莫干山路100号3幢2单元501,310011,330106,文三路1号,13800138000",
    # published, a retired division code (flagged, not refused), the Chinese date writing
    f"W2,{ID_2},司马光,1,1980年5月17日,330103,延安路2号,310003,,,",
    # published without an ID (the definition declares it optional)
    "W3,,王小明,1,2001年2月3日,440305,科技南路18号,518057,,,",
    "W4,  ,诸葛亮,1,1999-01-01,,,,,,",
    # dead-lettered
    f"W5,{WRONG_CHECK},李娜,2,1999-01-01,440305,,,,,",  # resident_id.check_character
    f"W6,{ID_3},王,1,1999-01-01,440305,,,,,",  # one character: name.unsplittable (x2)
    f"W7,{ID_3},张伟,9,1999-01-01,440305,,,,,",  # code.unknown
    f"W8,{ID_3},张伟,1,1999年2月30日,440305,,,,,",  # date.invalid
    f"W9,{ID_3},张伟,1,1999-01-01,440305,,ABC,,,",  # postcode.format
]
PERSONS_REJECTED = {
    "W5": {("resident_id", "resident_id.check_character")},
    "W6": {("family_name", "name.unsplittable"), ("given_name", "name.unsplittable")},
    "W7": {("sex", "code.unknown")},
    "W8": {("birth_date", "date.invalid")},
    "W9": {("postcode", "postcode.format")},
}

BENEFITS_TOML = """
# The civil affairs bureau's payments export: amounts in yuan, dates in two writings.
[connector]
id = "{connector}"
department = "{department}"
standard = "benefit_payment"

[source]
path = "{path}"
encoding = "gb18030"
key = "支付单号"

[fields.resident_id]
from = "身份证号"

[fields.payment_id]
from = "支付单号"

[fields.benefit_type]
from = "救助类别"
codes = {{ "1" = "MINIMUM_LIVING_ALLOWANCE", "2" = "TEMPORARY_ASSISTANCE", "3" = "OTHER" }}

[fields.amount_fen]
from = "{amount}"
scale = "100"

[fields.period_start]
from = "起始日期"
date_formats = ["ymd"]

[fields.period_end]
from = "截止日期"
date_formats = ["ymd"]

[fields.paid_on]
from = "发放日期"
date_formats = ["ymd"]

[fields.case_reference]
from = "案件编号"

[fields.division_code]
from = "区划"
"""

AMOUNT = "金额\uff08元\uff09"  # the full-width brackets Chinese exports use
BENEFITS_HEADER = f"支付单号,身份证号,救助类别,{AMOUNT},起始日期,截止日期,发放日期,案件编号,区划"
BENEFITS_ROWS = [
    f"P1,{ID_1},1,1120.00,2024-03-01,2024年3月31日,20240305,MZ-2024-001,330105",
    f"P2,{ID_2},3,500.5,2024/3/1,2024/3/1,2024.03.02,MZ-2024-002,330105",
    f'P3,{ID_1},1,"1,120.00",2024-04-01,2024-04-30,2024-05-06,MZ-2024-003,330105',
    f"P4,{ID_2},1,12.345,2024-04-01,2024-04-30,2024-05-06,MZ-2024-004,330105",  # not fen
    f"P5,{ID_2},2,一百,2024-04-01,2024-04-30,2024-05-06,MZ-2024-005,330105",  # not a number
]

JSONL_TOML = """
[connector]
id = "{connector}"
department = "{department}"
standard = "person"

[source]
type = "jsonl"
path = "{path}"
key = "id"

[fields.resident_id]
from = "idcard"
optional = true

[fields.family_name]
from = "name"
split_name = "family"

[fields.given_name]
from = "name"
split_name = "given"

[fields.full_name]
from = "name"

[fields.birth_date]
from = "born"
date_formats = ["ymd", "dmy"]

[fields.sex]
from = "sex"
codes = {{ "1" = "MALE", "2" = "FEMALE" }}

[fields.current_division_code]
from = "lives_in"
optional = true

[fields.postcode]
from = "postcode"
optional = true
"""

JSONL_LINES = [
    {"id": "J1", "idcard": ID_1, "name": "上官婉儿", "born": "1990.03.07", "sex": 2,
     "lives_in": "330105", "postcode": 310011},
    {"id": "J2", "name": "John Smith", "born": "17/05/1980", "sex": 1},  # no idcard member
    {"id": "J3", "idcard": None, "name": "SMITH, Mary", "born": "20010203", "sex": 2,
     "postcode": "SW1A 1AA"},
    {"id": "J4", "idcard": ID_3, "name": "Cher", "born": "1999-01-01", "sex": 2},  # one part
    {"id": "J5", "idcard": ID_3, "name": "慕容复", "born": "1999-13-01", "sex": 1},  # no month 13
]  # fmt: skip


@dataclass
class World:
    kafka: LocalKafka
    sessions: sessionmaker[Session]
    folder: Path
    department: str = field(default_factory=lambda: f"exp_{uuid.uuid4().hex[:10]}")

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def run(
        self, template: str, export: str, content: bytes, workers: int = 1, **extra: str
    ) -> RunReport:
        (self.folder / export).write_bytes(content)
        definition = self.folder / f"{export}.toml"
        definition.write_text(
            template.format(
                connector=f"exports-{self.department}-{export}",
                department=self.department,
                path=export,
                **extra,
            ),
            encoding="utf-8",
        )
        return publish(self.bootstrap, self.sessions, definition, workers=workers)

    def published(self, dataset: str) -> dict[str, dict[str, Any]]:
        """The department's records on std.<dataset>.v1 by source id, decoded, with their
        encrypted fields opened (None where the record has none)."""
        serde = AvroSerde(SchemaStore(self.sessions).schema_text)
        cipher = keys_for(self.sessions).cipher
        records: dict[str, dict[str, Any]] = {}
        topic = f"std.{dataset}.v1"
        for message in read_topic(self.bootstrap, topic, f"{self.department}:".encode()):
            _, record = serde.decode(message.value)
            key = message.key.decode()
            for name in ("resident_id", "amount_fen", "benefit_type"):
                token = record.get(name)
                if isinstance(token, bytes):
                    record[name] = json.loads(cipher.decrypt(dataset, name, key, token))
            records[key.split(":", 1)[1]] = record
        return records

    def rejected(self, dataset: str) -> dict[str, set[tuple[str, str]]]:
        return {
            entry["source_id"]: {(r["field"], r["code"]) for r in entry["reasons"]}
            for entry in dead_letters(self.bootstrap, self.sessions, self.department, dataset)
        }


@pytest.fixture
def world(kafka: LocalKafka, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    yield World(kafka, session_factory(engine), tmp_path)
    engine.dispose()


def _gb18030(header: str, rows: list[str]) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("gb18030")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_gb18030_persons_export_with_and_without_ids(world: World, workers: int) -> None:
    content = _gb18030(PERSONS_HEADER, PERSONS_ROWS)
    assert content.decode("gb18030").encode("gb18030") == content
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")  # really GB18030, not UTF-8

    report = world.run(
        PERSONS_TOML, "persons.csv", content, workers=workers, optional="optional = true"
    )

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (9, 4, 5)
    assert report.reasons == {
        "resident_id.check_character": 1,
        "name.unsplittable": 2,
        "code.unknown": 1,
        "date.invalid": 1,
        "postcode.format": 1,
    }
    # W2's 330103 (下城区, merged into 拱墅区 in 2021) is published and flagged.
    assert report.flags == {"division_code.retired": 1}
    assert "flagged 1 division_code.retired" in report.summary()
    published = world.published("person")
    assert set(published) == {"W1", "W2", "W3", "W4"}
    w1, w2, w3, w4 = (published[k] for k in ("W1", "W2", "W3", "W4"))
    assert (w1["family_name"], w1["given_name"], w1["full_name"]) == ("欧阳", "娜娜", "欧阳娜娜")
    assert (w1["birth_date"], w1["sex"], w1["resident_id"]) == (date(1990, 3, 7), "FEMALE", ID_1)
    assert w1["resident_id_bidx"]
    assert (w1["address_line"], w1["postcode"]) == ("莫干山路100号3幢2单元501", "310011")
    assert (w1["current_division_code"], w1["current_address_line"]) == ("330106", "文三路1号")
    assert (w2["family_name"], w2["given_name"]) == ("司马", "光")
    assert (w2["birth_date"], w2["sex"]) == (date(1980, 5, 17), "MALE")
    assert w2["residence_division_code"] == "330103"  # retired in 2021: accepted
    assert w2["current_division_code"] is None
    for ideless in (w3, w4):
        assert ideless["resident_id"] is None
        assert ideless["resident_id_bidx"] is None
    assert (w3["family_name"], w3["given_name"], w3["birth_date"]) == (
        "王",
        "小明",
        date(2001, 2, 3),
    )
    assert (w4["family_name"], w4["given_name"]) == ("诸葛", "亮")

    assert world.rejected("person") == PERSONS_REJECTED


def test_persons_without_ids_and_with_addresses_reach_the_registry(world: World) -> None:
    start = end_offsets(world.bootstrap, "std.person.v1")
    content = _gb18030(PERSONS_HEADER, PERSONS_ROWS)
    report = world.run(PERSONS_TOML, "persons.csv", content, optional="optional = true")
    assert report.published == 4

    build_department(world.bootstrap, world.sessions, world.department, 4, start)

    with world.sessions() as session:
        rows = session.scalars(
            select(SourceRecord).where(SourceRecord.department == world.department)
        ).all()
        stored = {r.source_id: (r.lookup_key, dict(r.payload)) for r in rows}
    assert set(stored) == {"W1", "W2", "W3", "W4"}
    assert stored["W1"][0]
    assert stored["W2"][0]
    assert stored["W1"][0] != stored["W2"][0]
    assert stored["W3"][0] is None
    assert stored["W4"][0] is None
    assert stored["W3"][1]["resident_id"] is None
    assert stored["W1"][1]["address_line"] == "莫干山路100号3幢2单元501"
    assert stored["W1"][1]["current_division_code"] == "330106"
    assert stored["W3"][1]["postcode"] == "518057"


def test_without_the_declaration_rows_without_ids_are_dead_lettered(world: World) -> None:
    content = _gb18030(PERSONS_HEADER, PERSONS_ROWS)

    report = world.run(PERSONS_TOML, "persons.csv", content, optional="")

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (9, 2, 7)
    assert set(world.published("person")) == {"W1", "W2"}
    rejected = world.rejected("person")
    assert rejected["W3"] == rejected["W4"] == {("resident_id", "required.missing")}
    assert {k: v for k, v in rejected.items() if k not in {"W3", "W4"}} == PERSONS_REJECTED


def test_a_gb18030_benefits_export_in_yuan_is_published_in_fen(world: World) -> None:
    content = _gb18030(BENEFITS_HEADER, BENEFITS_ROWS)

    report = world.run(BENEFITS_TOML, "payments.csv", content, amount=AMOUNT)

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (5, 3, 2)
    published = world.published("benefit_payment")
    assert {k: v["amount_fen"] for k, v in published.items()} == {
        "P1": 112000,
        "P2": 50050,
        "P3": 112000,
    }
    assert published["P1"]["period_end"] == date(2024, 3, 31)
    assert published["P1"]["paid_on"] == date(2024, 3, 5)
    assert published["P2"]["paid_on"] == date(2024, 3, 2)
    assert published["P2"]["benefit_type"] == "OTHER"
    assert world.rejected("benefit_payment") == {
        "P4": {("amount_fen", "scale.not_integral")},
        "P5": {("amount_fen", "type.number")},
    }


def test_a_jsonl_export_with_latin_names_and_missing_ids(world: World) -> None:
    lines = [json.dumps(line, ensure_ascii=False) for line in JSONL_LINES]
    lines.insert(3, '{"id": "J9", "name": ')  # a cut-off line
    content = ("\n".join(lines) + "\n").encode("utf-8")

    report = world.run(JSONL_TOML, "persons.jsonl", content)

    assert report.reconciled
    assert (report.read, report.published, report.rejected) == (6, 3, 3)
    published = world.published("person")
    assert set(published) == {"J1", "J2", "J3"}
    j1, j2, j3 = published["J1"], published["J2"], published["J3"]
    assert (j1["family_name"], j1["given_name"], j1["resident_id"]) == ("上官", "婉儿", ID_1)
    assert (j1["birth_date"], j1["postcode"], j1["current_division_code"]) == (
        date(1990, 3, 7),
        "310011",
        "330105",
    )
    assert (j2["family_name"], j2["given_name"], j2["birth_date"]) == (
        "Smith",
        "John",
        date(1980, 5, 17),
    )
    assert (j3["family_name"], j3["given_name"], j3["postcode"]) == ("SMITH", "Mary", "SW1A 1AA")
    for ideless in (j2, j3):
        assert ideless["resident_id"] is None
        assert ideless["resident_id_bidx"] is None
    rejected = world.rejected("person")
    assert rejected["J4"] == {
        ("family_name", "name.unsplittable"),
        ("given_name", "name.unsplittable"),
    }
    assert rejected["J5"] == {("birth_date", "date.invalid")}
    [cut] = [codes for key, codes in rejected.items() if key not in {"J4", "J5"}]
    assert {code for _, code in cut} == {"json.invalid"}
