"""bench.batch_check: the benchmark's manifest-verifying consumer accepts exactly what a
valid manifest covers, and its digests are exchange.security.manifest's."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.batch_check import BatchCheck
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.crypto import new_signing_key, sign

TOPIC = "std.person.v1"
SCHEMA_ID = 7
SCHEMA_TEXT = json.dumps(manifest.SCHEMA)
PRIVATE, PUBLIC = new_signing_key()
OTHER_PRIVATE, _ = new_signing_key()


@dataclass
class Message:
    """The part of confluent-kafka's Message that BatchCheck reads."""

    _topic: str
    _partition: int
    _offset: int
    _headers: list[tuple[str, bytes]]
    _value: bytes | None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> None:
        return None


def _headers(source_id: str, content_hash: str, batch: str | None) -> list[tuple[str, bytes]]:
    named = [
        (provenance.DEPARTMENT, b"health"),
        (provenance.DATASET, b"person"),
        (provenance.CONNECTOR_ID, b"bench-health"),
        (provenance.SOURCE_ID, source_id.encode()),
        (provenance.CONTENT_HASH, content_hash.encode()),
    ]
    if batch is not None:
        named.append((manifest.BATCH, batch.encode()))
    return named


def _digest(source_id: str, content_hash: str, value: bytes) -> bytes:
    return manifest.record_digest(
        department="health",
        dataset="person",
        source_id=source_id,
        content_hash=content_hash,
        value=value,
    )


def _batch(
    count: int, *, partition: int = 0, start: int = 0, batch: str = "run/0"
) -> tuple[list[Message], manifest.Manifest]:
    """``count`` records of one batch on one partition, and their (unsigned) manifest."""
    records = [
        Message(
            TOPIC,
            partition,
            start + i,
            _headers(f"s{i}", f"h{i}", batch),
            f"value {i}".encode(),
        )
        for i in range(count)
    ]
    listed = b"".join(_digest(f"s{i}", f"h{i}", f"value {i}".encode()) for i in range(count))
    signed = manifest.Manifest(
        "health", "person", "bench-health", batch, TOPIC, partition, "k1", "2026-12-07", listed
    )
    return records, signed


def _manifest_message(
    signed: manifest.Manifest, offset: int, *, private: bytes = PRIVATE
) -> Message:
    value = AvroSerde(lambda _: SCHEMA_TEXT).encode(SCHEMA_ID, signed.as_record())
    signature = manifest.sign_manifest(signed, private)
    return Message(TOPIC, signed.partition, offset, manifest.headers(signed, signature), value)


def _check() -> BatchCheck:
    return BatchCheck(lambda department: {"k1": PUBLIC}, lambda schema_id: SCHEMA_TEXT)


def test_a_batch_is_held_until_its_manifest_then_accepted() -> None:
    records, signed = _batch(5)
    check = _check()
    check.messages(records)
    assert (check.accepted, check.held, check.resolved) == (0, 5, 0)
    assert check.committable({(TOPIC, 0): 5}) == {(TOPIC, 0): 0}
    check.messages([_manifest_message(signed, 5)])
    assert (check.accepted, check.held, check.manifests, check.signatures) == (5, 0, 1, 1)
    assert not check.refused
    assert check.committable({(TOPIC, 0): 6}) == {(TOPIC, 0): 6}


def test_a_tampered_record_is_refused_and_the_rest_of_its_batch_accepted() -> None:
    records, signed = _batch(4)
    records[2]._value = b"value 2 changed"
    check = _check()
    check.messages([*records, _manifest_message(signed, 4)])
    assert check.accepted == 3
    assert check.refused == {"not_in_manifest": 1}


def test_a_manifest_with_a_wrong_signature_refuses_its_whole_batch() -> None:
    records, signed = _batch(3)
    check = _check()
    check.messages([*records, _manifest_message(signed, 3, private=OTHER_PRIVATE)])
    assert check.accepted == 0
    assert check.refused == {"bad_signature": 3}


def test_a_manifest_read_on_another_partition_covers_nothing() -> None:
    records, signed = _batch(3, partition=1)
    moved = replace(signed, partition=0)  # signed for partition 0, read on partition 1
    message = _manifest_message(moved, 3)
    message._partition = 1
    check = _check()
    check.messages([*records, message])
    assert check.accepted == 0
    assert check.refused == {"malformed_manifest": 3}


def test_batches_on_two_partitions_each_need_their_own_manifest() -> None:
    first, first_manifest = _batch(3, partition=0)
    second, second_manifest = _batch(2, partition=1)
    check = _check()
    check.messages([*first, *second, _manifest_message(first_manifest, 3)])
    assert (check.accepted, check.held) == (3, 2)
    assert check.committable({(TOPIC, 0): 4, (TOPIC, 1): 2}) == {(TOPIC, 0): 4, (TOPIC, 1): 0}
    check.messages([_manifest_message(second_manifest, 2)])
    assert (check.accepted, check.held) == (5, 0)


def test_a_record_listed_once_but_sent_twice_is_accepted_once() -> None:
    records, signed = _batch(2)
    again = replace(records[1], _offset=2)
    check = _check()
    check.messages([*records, again, _manifest_message(signed, 3)])
    assert check.accepted == 2
    assert check.refused == {"not_in_manifest": 1}


def test_records_signed_one_by_one_are_verified_one_by_one() -> None:
    value = b"old record"
    signature = sign(
        PRIVATE,
        provenance.signed_message(
            department="health", dataset="person", source_id="s1", content_hash="h1", value=value
        ),
    )
    signed_headers = [
        *_headers("s1", "h1", None),
        (provenance.SIGNING_KEY_ID, b"k1"),
        (provenance.SIGNATURE, signature),
    ]
    good = Message(TOPIC, 0, 0, signed_headers, value)
    bad = Message(TOPIC, 0, 1, signed_headers, b"old record, altered")
    unsigned = Message(TOPIC, 0, 2, _headers("s2", "h2", None), b"x")
    check = _check()
    check.messages([good, bad, unsigned])
    assert check.accepted == 1
    assert check.refused == {"bad_signature": 1, "unverified_record": 1}
    assert check.signatures == 2


text = st.text(min_size=0, max_size=300)


@settings(max_examples=200, deadline=None)
@given(department=text, dataset=text, source_id=text, content_hash=text, value=st.binary())
def test_the_digest_is_exchange_security_manifests(
    department: str, dataset: str, source_id: str, content_hash: str, value: bytes
) -> None:
    """The fast path builds the digest from header bytes; it must be record_digest's."""
    expected = manifest.record_digest(
        department=department,
        dataset=dataset,
        source_id=source_id,
        content_hash=content_hash,
        value=value,
    )
    headers = [
        (provenance.DEPARTMENT, department.encode()),
        (provenance.DATASET, dataset.encode()),
        (provenance.SOURCE_ID, source_id.encode()),
        (provenance.CONTENT_HASH, content_hash.encode()),
        (manifest.BATCH, b"run/0"),
    ]
    signed = manifest.Manifest(
        department, dataset, "c", "run/0", TOPIC, 0, "k1", "2026-12-07", expected
    )
    check = _check()
    check.messages([Message(TOPIC, 0, 0, headers, value), _manifest_message(signed, 1)])
    assert (check.accepted, dict(check.refused)) == (1, {})


def test_records_carrying_their_source_change_time_are_accepted_and_the_time_is_covered() -> None:
    changed = b"2026-12-01T08:00:00+00:00"
    records = []
    for i in range(3):
        headers = [*_headers(f"s{i}", f"h{i}", "run/0"), (provenance.SOURCE_CHANGED_AT, changed)]
        records.append(Message(TOPIC, 0, i, headers, f"value {i}".encode()))
    listed = b"".join(
        manifest.record_digest(
            department="health",
            dataset="person",
            source_id=f"s{i}",
            content_hash=f"h{i}",
            value=f"value {i}".encode(),
            source_changed_at=changed.decode(),
        )
        for i in range(3)
    )
    signed = manifest.Manifest(
        "health", "person", "bench-health", "run/0", TOPIC, 0, "k1", "2026-12-07", listed
    )
    # A change time altered after signing is not what the manifest lists.
    records[1]._headers = [
        (k, b"2026-12-02T08:00:00+00:00" if k == provenance.SOURCE_CHANGED_AT else v)
        for k, v in records[1]._headers
    ]
    check = _check()
    check.messages([*records, _manifest_message(signed, 3)])
    assert check.accepted == 2
    assert check.refused == {"not_in_manifest": 1}
