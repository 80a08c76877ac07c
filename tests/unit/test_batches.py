"""A batch in one transaction with its signed manifests (connectors.batches), no broker.

The producer is tests.support.producers.RecordingProducer: transactional, it puts each
record on the partition asked for or its key's, and keeps what each transaction held.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.batches import BatchPublisher, by_partition
from exchange.core.errors import BrokerError, SignatureError
from exchange.kafka.producer import Producer
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.crypto import new_signing_key
from tests.support.producers import RecordingProducer, is_manifest

SCHEMA_ID = 7
TOPIC = "std.person.v1"
PRIVATE, PUBLIC = new_signing_key()
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _serde() -> AvroSerde:
    return AvroSerde(lambda schema_id: json.dumps(manifest.SCHEMA))


def _publisher(kafka: Producer, run_id: str = "run") -> BatchPublisher:
    return BatchPublisher(
        kafka,
        department="dept",
        dataset="person",
        connector_id="conn",
        signing_key=("key-1", PRIVATE),
        schema_id=SCHEMA_ID,
        serde=_serde(),
        run_id=run_id,
        clock=lambda: NOW,
    )


def _digest(source_id: str) -> bytes:
    return hashlib.sha256(source_id.encode()).digest()


def _send(publisher: BatchPublisher, source_id: str, *, partition_key: str | None = None) -> None:
    publisher.send(
        TOPIC,
        f"value {source_id}".encode(),
        key=(partition_key or f"dept:{source_id}").encode(),
        headers=[(manifest.BATCH, publisher.batch_id.encode())],
        digest=_digest(source_id),
    )


sends = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(0, 5),
        st.binary(min_size=manifest.DIGEST_SIZE, max_size=manifest.DIGEST_SIZE),
    ),
    max_size=60,
)


@given(sends)
def test_grouping_keeps_every_digest_once_in_send_order_per_partition(
    sent: list[tuple[str, int, bytes]],
) -> None:
    grouped = by_partition(sent)
    assert set(grouped) == {(t, p) for t, p, _ in sent}
    # Partitions in the order of their first record.
    first_seen = list(dict.fromkeys((t, p) for t, p, _ in sent))
    assert list(grouped) == first_seen
    for (topic, partition), digests in grouped.items():
        assert digests == b"".join(d for t, p, d in sent if (t, p) == (topic, partition))
    assert sum(len(d) for d in grouped.values()) == manifest.DIGEST_SIZE * len(sent)


def test_grouping_of_a_small_batch() -> None:
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    assert by_partition([("t", 1, a), ("t", 0, b), ("t", 1, c)]) == {
        ("t", 1): a + c,
        ("t", 0): b,
    }


def test_a_batch_commits_with_one_signed_manifest_after_its_records_on_each_partition() -> None:
    kafka = RecordingProducer(partitions=3)
    publisher = _publisher(kafka)
    ids = [f"S{n}" for n in range(40)]
    for source_id in ids:
        _send(publisher, source_id)
    publisher.send("dlq.dept.person", b"{}", key=b"dept:line:9", headers=(), digest=None)
    assert publisher.size == 41
    manifests = publisher.commit()

    [transaction] = kafka.transactions
    assert transaction.outcome == "committed"
    records = [(s, p) for s, p in transaction.sent if not is_manifest(s[3])]
    tail = transaction.sent[len(records) :]
    assert len(records) == 41
    assert all(is_manifest(s[3]) for s, _ in tail)  # the manifests close the transaction
    written = {p for (topic, *_), p in records if topic == TOPIC}
    assert len(written) > 1  # the keys spread over several partitions
    assert {m.partition for m in manifests} == {p for _, p in tail} == written
    serde = _serde()
    for (topic, key, value, headers), partition in tail:
        assert (topic, key) == (TOPIC, None)
        assert value is not None
        item = manifest.Manifest.from_record(serde.decode(value)[1])
        named = provenance.headers_dict(headers)
        manifest.verify_manifest(item, named[provenance.SIGNATURE], {"key-1": PUBLIC})
        assert named[manifest.BATCH] == b"run/0"
        assert (item.batch, item.topic, item.partition) == ("run/0", TOPIC, partition)
        assert (item.department, item.dataset, item.connector_id) == ("dept", "person", "conn")
        assert item.signed_at == NOW.isoformat()
        # Exactly this partition's records, in the order they were sent (the dead letter: none).
        expected = [
            _digest(k.decode().split(":", 1)[1])
            for (t, k, _, _), p in records
            if t == TOPIC and p == partition and k is not None
        ]
        assert item.digests == b"".join(expected)
    assert publisher.size == 0
    assert publisher.batch_id == "run/1"


def test_a_manifest_signed_by_another_key_does_not_verify() -> None:
    kafka = RecordingProducer(partitions=1)
    publisher = _publisher(kafka)
    _send(publisher, "S1")
    [item] = publisher.commit()
    [(_, _, _, headers)] = [s for s, _ in kafka.transactions[0].sent if is_manifest(s[3])]
    signature = provenance.headers_dict(headers)[provenance.SIGNATURE]
    other = new_signing_key()[1]
    with pytest.raises(SignatureError):
        manifest.verify_manifest(item, signature, {"key-1": other})


def test_a_failed_commit_aborts_the_batch_and_the_next_batch_is_named_anew() -> None:
    kafka = RecordingProducer()
    publisher = _publisher(kafka)
    _send(publisher, "S1")
    kafka.fail_commit = True
    with pytest.raises(BrokerError, match="aborted"):
        publisher.commit()
    assert [t.outcome for t in kafka.transactions] == ["aborted"]
    assert kafka.sent == []  # nothing read_committed would see
    assert publisher.size == 0
    _send(publisher, "S2")
    assert publisher.batch_id == "run/1"
    publisher.commit()
    assert [t.outcome for t in kafka.transactions] == ["aborted", "committed"]
    assert [k for _, k, _, h in kafka.sent if not is_manifest(h)] == [b"dept:S2"]


class _Undelivered(RecordingProducer):
    """Kafka did not acknowledge a record: settle raises, as the real producer's does."""

    def settle(self, deliveries: object, timeout: float = 120.0) -> None:
        raise BrokerError("Kafka did not acknowledge 1 record(s): std.person.v1[0]: timed out")


def test_a_record_kafka_did_not_take_aborts_the_batch_before_any_manifest() -> None:
    kafka = _Undelivered()
    publisher = _publisher(kafka)
    _send(publisher, "S1")
    with pytest.raises(BrokerError, match="did not acknowledge"):
        publisher.commit()
    [transaction] = kafka.transactions
    assert transaction.outcome == "aborted"
    assert not [s for s, _ in transaction.sent if is_manifest(s[3])]


def test_abort_drops_the_open_batch_and_commit_of_nothing_is_nothing() -> None:
    kafka = RecordingProducer()
    publisher = _publisher(kafka)
    assert publisher.commit() == []
    assert kafka.transactions == []
    _send(publisher, "S1")
    publisher.abort()
    assert [t.outcome for t in kafka.transactions] == ["aborted"]
    assert publisher.commit() == []
    assert publisher.batch_id == "run/1"


def test_a_batch_needs_a_transactional_producer() -> None:
    class Plain(RecordingProducer):
        transactional_id = None

    plain = Plain()
    plain.transactional_id = None
    with pytest.raises(ValueError, match="transactional"):
        _publisher(plain)
