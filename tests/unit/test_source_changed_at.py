"""The source's change time: read by the connector, sent signed, checked by the builder.

A connector whose definition names ``changed_at`` sends each row's change time, in UTC,
in the header ``source_changed_at``; the record's digest (what its batch's manifest
lists, and what a record signed on its own was signed over) covers it, so it cannot be
altered after signing; a record without one has exactly the digest it had before the
header existed. Kafka is a recording producer here; the database is SQLite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import connectors.publisher as publisher
from connectors import load_definition, run_connector
from connectors.pipeline import PreparerSpec, RecordPreparer
from connectors.workers import prepare_items
from exchange.core.errors import ConfigError, SignatureError
from exchange.kafka.wire import AvroSerde
from exchange.registry.builder import Read, RegistryBuilder
from exchange.security import manifest, provenance
from exchange.security.crypto import sign
from exchange.security.keystore import FieldCipher
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.database import migrated
from tests.support.examples import household_definition
from tests.support.keys import keys_for
from tests.support.producers import RecordingProducer

HEADER = "local_id,id_number,surname,given,dob,sex,division,phone,updated"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path / 'registry.db'}") as factory:
        yield factory


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[RecordingProducer]:
    made: list[RecordingProducer] = []

    def producer(bootstrap: str, **_: Any) -> RecordingProducer:
        made.append(RecordingProducer())
        return made[-1]

    monkeypatch.setattr(publisher, "Producer", producer)
    monkeypatch.setattr(publisher, "ensure_topics", lambda *_args, **_kw: None)
    return made


def _definition(folder: Path, **source: Any) -> Path:
    spec = {"type": "csv", "path": "people.csv", "encoding": "utf-8", "key": "local_id"}
    return household_definition(
        folder, connector_id="changed", department="dept_c", source={**spec, **source}
    )


def test_the_change_time_is_sent_in_utc_and_covered_by_the_manifest(
    tmp_path: Path, sessions: sessionmaker[Session], producers: list[RecordingProducer]
) -> None:
    rows = [
        HEADER,
        f"A,{rid('11010519800101001')},王,芳,1980-01-01,2,110105,,2026-12-01 08:00:00",
        f"B,{rid('11010519800101002')},李,伟,1980-01-01,1,110105,,2026-12-01T08:00:00Z",
        f"C,{rid('11010519800101003')},张,强,1980-01-01,1,110105,,2026-12-01",
        f"D,{rid('11010519800101004')},陈,敏,1980-01-01,2,110105,,",
        f"E,{rid('11010519800101005')},赵,娜,1980-01-01,2,110105,,the first of December",
    ]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    definition = _definition(tmp_path, changed_at="updated", changed_at_zone="Asia/Shanghai")
    report = run_connector(
        load_definition(definition),
        bootstrap="unused:9092",
        store=SchemaStore(sessions),
        keys=keys_for(sessions),
        sessions=sessions,
    )
    assert (report.read, report.published, report.rejected) == (5, 4, 1)
    assert report.reasons == {"changed_at.invalid": 1}
    serde = AvroSerde(SchemaStore(sessions).schema_text)
    sent = producers[-1].sent
    covered: dict[bytes, int] = {}  # what the batches' manifests list
    for _, _, value, headers in sent:
        if manifest.is_manifest(provenance.headers_dict(headers)):
            found = manifest.Manifest.from_record(serde.decode(value or b"")[1])
            for digest, count in found.covered().items():
                covered[digest] = covered.get(digest, 0) + count
    assert covered
    changed: dict[str, str | None] = {}
    for topic, _, value, headers in sent:
        named = provenance.headers_dict(headers)
        if not topic.startswith("std.") or manifest.is_manifest(named):
            continue
        source_id = named[provenance.SOURCE_ID].decode()
        stamp = named.get(provenance.SOURCE_CHANGED_AT)
        changed[source_id] = None if stamp is None else stamp.decode()
        fields = {
            "department": "dept_c",
            "dataset": "person",
            "source_id": source_id,
            "content_hash": named[provenance.CONTENT_HASH].decode(),
            "value": value or b"",
        }
        signed = manifest.record_digest(**fields, source_changed_at=changed[source_id])
        assert covered.get(signed) == 1
        if stamp is not None:  # without its change time, or with another, it is not covered
            assert manifest.record_digest(**fields) not in covered
            altered = manifest.record_digest(**fields, source_changed_at="2000-01-01T00:00:00Z")
            assert altered not in covered
    assert changed == {
        "A": "2026-12-01T00:00:00+00:00",  # Shanghai's 08:00
        "B": "2026-12-01T08:00:00+00:00",
        "C": "2026-11-30T16:00:00+00:00",  # a date alone: its midnight, in Shanghai
        "D": None,  # empty: unknown, and said so
    }


def test_a_record_without_a_change_time_keeps_the_digest_it_always_had() -> None:
    parts = {"department": "d", "dataset": "person", "source_id": "1", "content_hash": "h"}
    before = b"exchange-record-v1\x00" + b"".join(
        len(v.encode()).to_bytes(4, "big") + v.encode() for v in parts.values()
    )
    old = hashlib.sha256(before + hashlib.sha256(b"value").digest()).digest()
    assert manifest.record_digest(**parts, value=b"value") == old
    assert manifest.record_digest(**parts, value=b"value", source_changed_at="x") != old


def test_a_record_signed_on_its_own_signs_its_change_time(
    sessions: sessionmaker[Session],
) -> None:
    keystore = keys_for(sessions).keystore
    key_id, private = keystore.signing_key("d")
    stamp = "2026-12-01T00:00:00+00:00"
    message = provenance.signed_message(
        department="d", dataset="person", source_id="1", content_hash="h", value=b"v",
        source_changed_at=stamp,
    )  # fmt: skip
    headers = {
        provenance.DEPARTMENT: b"d",
        provenance.DATASET: b"person",
        provenance.SOURCE_ID: b"1",
        provenance.CONTENT_HASH: b"h",
        provenance.SIGNING_KEY_ID: key_id.encode(),
        provenance.SIGNATURE: sign(private, message),
        provenance.SOURCE_CHANGED_AT: stamp.encode(),
    }
    public = keystore.public_keys("d")
    provenance.verify_record(headers, b"v", public)
    altered = {**headers, provenance.SOURCE_CHANGED_AT: b"2020-01-01T00:00:00+00:00"}
    with pytest.raises(SignatureError):
        provenance.verify_record(altered, b"v", public)
    stripped = {k: v for k, v in headers.items() if k != provenance.SOURCE_CHANGED_AT}
    with pytest.raises(SignatureError):
        provenance.verify_record(stripped, b"v", public)


def test_the_builder_digests_what_the_connector_signed() -> None:
    stamp = "2026-12-01T00:00:00+00:00"
    named = {
        provenance.DEPARTMENT: b"d",
        provenance.DATASET: b"person",
        provenance.SOURCE_ID: b"1",
        provenance.CONTENT_HASH: b"h",
        manifest.BATCH: b"run/1",
        provenance.SOURCE_CHANGED_AT: stamp.encode(),
    }
    found = manifest.Manifest("d", "person", "c", "run/1", "std.person.v1", 0, "k", "t", b"")
    read = Read("std.person.v1", 0, 7, b"d:1", b"v", named)
    expected = manifest.record_digest(
        department="d", dataset="person", source_id="1", content_hash="h", value=b"v",
        source_changed_at=stamp,
    )  # fmt: skip
    assert RegistryBuilder._digest(read, named, found) == expected
    altered = {**named, provenance.SOURCE_CHANGED_AT: b"2020-01-01T00:00:00+00:00"}
    assert RegistryBuilder._digest(read, altered, found) != expected


def test_workers_hand_the_change_time_back(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    (tmp_path / "people.csv").write_text(HEADER + "\n", encoding="utf-8")
    definition = load_definition(_definition(tmp_path, changed_at="updated"))
    store = SchemaStore(sessions)
    schema_id = store.register(definition.standard.wire.subject, definition.standard.wire.schema)
    keys = keys_for(sessions)
    preparer = RecordPreparer(
        PreparerSpec(definition, schema_id, store.schema_text(schema_id), keys.linkage_key),
        FieldCipher(keys.keystore),
    )
    values = {
        "local_id": "A", "id_number": rid("11010519800101001"), "surname": "王", "given": "芳",
        "dob": "1980-01-01", "sex": "2", "division": "110105", "phone": "",
        "updated": "2026-12-01T08:00:00+08:00",
    }  # fmt: skip
    [outcome] = prepare_items(preparer, [(values, "A")], "2026-12")
    assert isinstance(outcome, tuple)
    assert outcome[4] == "2026-12-01T00:00:00+00:00"


def test_an_unknown_time_zone_is_refused_by_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="changed_at_zone"):
        load_definition(_definition(tmp_path, changed_at="updated", changed_at_zone="Mars/Base"))
