"""Running a connector: read, map, validate, publish or dead-letter, reconcile.

Every row read ends in exactly one place: the standard topic
(``std.<dataset>.v<N>``, Confluent-framed Avro) or the dead-letter topic
(``dlq.<dataset>``, JSON with the original row, its line and machine-readable
reasons). The run report's counts reconcile: read = published + rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka.errors import KafkaError

from connectors.csvsource import SourceRow, read_csv
from connectors.definition import ConnectorDefinition
from connectors.mapping import Problem, map_row
from exchange.clients import close_producer, ensure_topics, producer
from exchange.errors import BrokerError, SourceError, WireFormatError
from exchange.wire import AvroSerde
from schemas import SchemaStore

BATCH = 5_000


@dataclass
class RunReport:
    connector: str
    topic: str
    dlq_topic: str
    read: int = 0
    published: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return self.read == self.published + self.rejected

    def summary(self) -> str:
        verdict = "reconciled" if self.reconciled else "DOES NOT RECONCILE"
        return (
            f"{self.connector}: read {self.read} = published {self.published} "
            f"+ rejected {self.rejected} ({verdict})"
        )


def _headers(
    definition: ConnectorDefinition, source_id: str, body: bytes
) -> list[tuple[str, bytes]]:
    info = definition.connector
    return [
        ("department", info.department.encode()),
        ("dataset", definition.standard.dataset.encode()),
        ("connector-id", info.id.encode()),
        ("connector-version", info.version.encode()),
        ("source-id", source_id.encode()),
        ("content-hash", hashlib.sha256(body).hexdigest().encode()),
        ("ingest-time", datetime.now(UTC).isoformat().encode()),
    ]


def run_connector(
    definition: ConnectorDefinition,
    *,
    bootstrap: str,
    store: SchemaStore,
    on_progress: Callable[[int], None] | None = None,
    keep_rejections: int = 100,
) -> RunReport:
    """Publish a source once; returns the reconciled report. Raises BrokerError on send failure."""
    standard = definition.standard
    dlq_topic = f"dlq.{standard.dataset}"
    report = RunReport(definition.connector.id, standard.topic, dlq_topic)
    schema_id = store.register(standard.subject, standard.schema)
    serde = AvroSerde(store.schema_text)
    ensure_topics(bootstrap, [standard.topic, dlq_topic])
    spec = definition.source
    header, rows = read_csv(
        definition.source_path,
        encoding=spec.encoding,
        delimiter=spec.delimiter,
        quotechar=spec.quotechar,
    )
    if header and spec.key not in header:
        raise SourceError(
            f"the key column {spec.key!r} is not in the header of {definition.source_path}"
        )
    department = definition.connector.department
    seen: set[str] = set()
    kafka = producer(bootstrap)
    pending: list[Any] = []

    def reject(row: SourceRow, key: str, problems: list[Problem]) -> None:
        report.rejected += 1
        reasons = [{"field": f, "code": c, "message": m} for f, c, m in problems]
        report.reasons.update(c for _, c, _ in problems)
        entry = {
            "connector": definition.connector.id,
            "department": department,
            "dataset": standard.dataset,
            "source": str(definition.source_path),
            "line": row.line,
            "source_id": key or None,
            "raw": row.raw,
            "reasons": reasons,
        }
        if len(report.rejections) < keep_rejections:
            report.rejections.append(entry)
        payload = json.dumps(entry, ensure_ascii=False).encode()
        pending.append(
            kafka.send(dlq_topic, key=f"{department}:line:{row.line}".encode(), value=payload)
        )

    try:
        for row in rows:
            report.read += 1
            key = row.values.get(spec.key, "").strip()
            problems = list(row.problems)
            if not key:
                problems.append((spec.key, "key.missing", f"the key column {spec.key!r} is empty"))
            elif key in seen:
                problems.append(
                    (spec.key, "key.duplicate", f"key {key!r} appears earlier in this file")
                )
            record, mapping_problems = map_row(definition, standard, row.values)
            problems += mapping_problems
            if not problems:
                try:
                    value = serde.encode(schema_id, record)
                except WireFormatError as exc:
                    problems.append(("_row", "avro.encode", exc.message))
            if key:
                seen.add(key)
            if problems:
                reject(row, key, problems)
            else:
                body = value[5:]
                pending.append(
                    kafka.send(
                        standard.topic,
                        key=f"{department}:{key}".encode(),
                        value=value,
                        headers=_headers(definition, key, body),
                    )
                )
                report.published += 1
            if len(pending) >= BATCH:
                _settle(kafka, pending)
            if on_progress:
                on_progress(report.read)
        _settle(kafka, pending)
    finally:
        close_producer(kafka)
    return report


def _settle(kafka: Any, pending: list[Any]) -> None:
    """Wait for every pending send; any failure fails the run (nothing is silently lost)."""
    kafka.flush(timeout=120)
    try:
        for future in pending:
            future.get(timeout=120)
    except KafkaError as exc:
        raise BrokerError(f"Kafka did not acknowledge a record: {exc}") from exc
    pending.clear()
