"""Reading a department's dead letters back: ``dlq.<department>.<dataset>``, each opened
with the department's keys (:func:`connectors.pipeline.open_dead_letter`), and grouped by
reason code and field with example rows.

What ``exchange connector rejects`` prints and what ``GET /v1/connectors/rejections``
(and the publisher's page of the web console) shows. Like the command, it gives for each
example row where it came from (connector, line, source id) and the reason's message,
never the row's raw content or its column values (sealed in the dead letter because they
may be anyone's personal data).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as member
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.pipeline import dlq_topic, open_dead_letter
from exchange.core.errors import BrokerError
from exchange.security.keystore import FieldCipher

READ_TIMEOUT_S = 10.0


def read_topic(bootstrap: str, topic: str, *, timeout: float = READ_TIMEOUT_S) -> Iterator[bytes]:
    """The committed values of ``topic`` from its start to its end as it is now (none if the
    topic does not exist); stops after ``timeout`` seconds whatever is left. Raises
    BrokerError if Kafka cannot be reached."""
    try:
        reader = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id="exchange-dead-letters",
            request_timeout_ms=int(timeout * 1000) + 1000,
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap} ({exc})") from exc
    try:
        partitions = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = {tp: int(o) for tp, o in reader.end_offsets(tps).items()}
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                return
            for messages in reader.poll(timeout_ms=200).values():
                for message in messages:
                    if message.value is not None:
                        yield message.value
    except KafkaError as exc:
        raise BrokerError(f"cannot read {topic} ({exc})") from exc
    finally:
        reader.close()


def dead_letters(
    bootstrap: str,
    cipher: FieldCipher,
    department: str,
    dataset: str,
    *,
    connector: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The department's dead letters of ``dataset``, opened, oldest first (of ``connector``
    only, if given). A message that is not a dead letter is skipped; one the keys cannot
    open raises DecryptionError."""
    for value in read_topic(bootstrap, dlq_topic(department, dataset)):
        try:
            entry = json.loads(value)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if connector and entry.get("connector") != connector:
            continue
        yield open_dead_letter(cipher, entry)


@dataclass(frozen=True, slots=True)
class Example:
    """A rejected row, as the command line shows it: where it came from and the message."""

    connector: str
    line: int | None
    source_id: str | None
    message: str
    at: str | None


@dataclass
class ReasonGroup:
    """The rejected rows of one reason code and field."""

    code: str
    field: str
    count: int = 0
    examples: list[Example] = member(default_factory=list)


@dataclass
class Rejections:
    """A topic's dead letters grouped by reason, most frequent first."""

    topic: str
    total: int = 0
    reasons: list[ReasonGroup] = member(default_factory=list)


def summarize(topic: str, entries: Iterable[dict[str, Any]], *, examples: int = 2) -> Rejections:
    """Count opened dead letters by (code, field), keeping ``examples`` rows of each."""
    counts: Counter[tuple[str, str]] = Counter()
    groups: dict[tuple[str, str], ReasonGroup] = {}
    total = 0
    for entry in entries:
        total += 1
        for reason in entry.get("reasons") or []:
            key = (str(reason.get("code", "?")), str(reason.get("field", "?")))
            counts[key] += 1
            group = groups.setdefault(key, ReasonGroup(*key))
            if len(group.examples) < examples:
                line = entry.get("line")
                group.examples.append(
                    Example(
                        connector=str(entry.get("connector", "")),
                        line=line if isinstance(line, int) else None,
                        source_id=entry.get("source_id") or None,
                        message=str(reason.get("message", "")),
                        at=entry.get("at"),
                    )
                )
    found = Rejections(topic, total)
    for key, count in counts.most_common():
        groups[key].count = count
        found.reasons.append(groups[key])
    return found


__all__ = [
    "Example",
    "ReasonGroup",
    "Rejections",
    "dead_letters",
    "read_topic",
    "summarize",
]
