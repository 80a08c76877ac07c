"""Running a connector: read a source, publish or dead-letter every row, reconcile, resume.

Every row read ends in exactly one place: the standard topic or the dead-letter
topic (see :mod:`connectors.pipeline`). The run's counts reconcile
(read = published + rejected) and are stored with the run.

Every :data:`BATCH` rows are one Kafka transaction (:mod:`connectors.batches`):
the batch's records and dead letters, then on each partition it wrote to a manifest
signed with the department's key, then the commit. Readers with
``read_committed`` (the registry builder) see a batch whole or not at all.

Checkpoints make a run resumable: after each batch was committed, the position
and counts are committed to the database. A run killed at any point and started
again skips what was committed and publishes the rest. The batch it was killed in
is aborted: by the next run, whose producer (the transactional id
``exchange-connector-<connector id>``, the same for every run of a connector)
fences the killed one's and aborts its open transaction, or by the broker at the
transaction timeout. A run killed between a commit and its checkpoint sends that
batch again when resumed, and the registry's de-duplication (same source key and
content hash) keeps each record once. A resumed run names its batches under a new
attempt (``<run id>.<attempt>/<sequence>``), so no two committed batches share a
name. A file that was published completely is not published again unless the run
is restarted; a SQL source with a watermark reads only rows added or changed since
its last complete run.

With ``workers`` above 1, rows are prepared (mapped, validated, encrypted, digested)
in worker processes (:mod:`connectors.workers`); this process still reads the
source, checks keys, and sends, commits and checkpoints every row in source order,
so everything above holds unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.definition import ConnectorDefinition, SqlSourceSpec
from connectors.pipeline import Keys, RecordPipeline, Tally, dlq_topic
from connectors.sources import open_source
from connectors.workers import ParallelPreparation, usable_cores
from exchange.core.db import transaction, utcnow
from exchange.core.models import ConnectorCheckpoint, ConnectorRun
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from schemas import SchemaStore

BATCH = 5_000


def transactional_id(connector_id: str) -> str:
    """The transactional id of every run of a connector: a run fences the one before."""
    return f"exchange-connector-{connector_id}"


@dataclass
class RunReport(Tally):
    connector: str = ""
    topic: str = ""
    dlq_topic: str = ""
    run_id: str = ""
    resumed_from: int = 0
    nothing_new: bool = False
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        if self.nothing_new:
            return f"{self.connector}: nothing new to publish (already published completely)"
        verdict = "reconciled" if self.reconciled else "DOES NOT RECONCILE"
        resumed = f", resumed after row {self.resumed_from}" if self.resumed_from else ""
        flagged = "".join(f"; flagged {n} {code}" for code, n in sorted(self.flags.items()))
        return (
            f"{self.connector}: read {self.read} = published {self.published} "
            f"+ rejected {self.rejected} ({verdict}{resumed}{flagged})"
        )


def _save(
    sessions: sessionmaker[Session],
    report: RunReport,
    definition: ConnectorDefinition,
    *,
    fingerprint: str,
    position: int,
    status: str,
    watermark: tuple[str, str] | None = None,
) -> None:
    connector_id = definition.connector.id
    with transaction(sessions) as session:
        checkpoint = session.get(ConnectorCheckpoint, connector_id)
        if checkpoint is None:
            checkpoint = ConnectorCheckpoint(connector_id=connector_id)
            session.add(checkpoint)
        checkpoint.run_id = report.run_id
        checkpoint.fingerprint = fingerprint
        checkpoint.position = position
        checkpoint.status = status
        checkpoint.read = report.read
        checkpoint.published = report.published
        checkpoint.rejected = report.rejected
        checkpoint.reasons = dict(report.reasons)
        checkpoint.updated_at = utcnow()
        if watermark is not None:
            checkpoint.watermark, checkpoint.watermark_key = watermark
        run = session.get(ConnectorRun, report.run_id)
        if run is None:
            run = ConnectorRun(
                run_id=report.run_id,
                connector_id=connector_id,
                department=definition.connector.department,
                dataset=definition.standard.dataset,
                started_at=utcnow(),
            )
            session.add(run)
        run.status = status
        run.read, run.published, run.rejected = report.read, report.published, report.rejected
        run.reasons = dict(report.reasons)
        if status == "complete":
            run.finished_at = utcnow()


def run_connector(
    definition: ConnectorDefinition,
    *,
    bootstrap: str,
    store: SchemaStore,
    keys: Keys,
    sessions: sessionmaker[Session] | None = None,
    on_progress: Callable[[int], None] | None = None,
    restart: bool = False,
    keep_rejections: int = 100,
    workers: int | None = None,
) -> RunReport:
    """Publish a source; returns the reconciled report. Raises BrokerError on send failure.

    ``workers`` is how many processes prepare the records, this one included (the
    ``connector_workers`` setting); None: one for each core this process may use.
    1 prepares every record in this process. Raises WorkerError if a worker fails.
    """
    processes = usable_cores() if workers is None else workers
    if processes < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    sessions = sessions or store.sessions
    standard = definition.standard
    report = RunReport(
        connector=definition.connector.id,
        topic=standard.topic,
        dlq_topic=dlq_topic(definition.connector.department, standard.dataset),
    )
    connector_id = definition.connector.id
    with sessions() as session:
        checkpoint = session.get(ConnectorCheckpoint, connector_id)
        previous = None
        if checkpoint is not None:
            previous = (
                checkpoint.status,
                checkpoint.fingerprint,
                checkpoint.position,
                checkpoint.run_id,
                checkpoint.read,
                checkpoint.published,
                checkpoint.rejected,
                dict(checkpoint.reasons or {}),
                (checkpoint.watermark, checkpoint.watermark_key),
            )
    is_sql = isinstance(definition.source, SqlSourceSpec)
    source = open_source(definition)
    fingerprint = source.fingerprint()
    same_source = previous is not None and not restart and previous[1] == fingerprint
    if same_source and is_sql and previous is not None and previous[8][0] is not None:
        # Incremental: only rows added or changed since the last complete run of this source.
        source = open_source(definition, since=(str(previous[8][0]), str(previous[8][1] or "")))
    resume_at = 0
    resuming = False
    if same_source and previous is not None:
        status, _, position, run_id, read, published, rejected, reasons, _ = previous
        if status == "running":
            resuming = True
            resume_at = position
            report.run_id, report.resumed_from = run_id, position
            report.read, report.published, report.rejected = read, published, rejected
            report.reasons = dict(reasons)
        elif not is_sql:
            report.nothing_new = True
            return report
    report.run_id = report.run_id or uuid.uuid4().hex
    # A resumed run's batches are named under an attempt of their own (see the module's doc).
    batches_run_id = report.run_id
    if resuming:  # even from row 0: the killed run may have committed a batch unrecorded
        batches_run_id = f"{report.run_id}.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [standard.topic, report.dlq_topic])
    kafka = Producer(bootstrap, transactional_id=transactional_id(connector_id))
    try:
        pipeline = RecordPipeline(
            definition,
            store=store,
            keys=keys,
            kafka=kafka,
            source=source.describe(),
            run_id=batches_run_id,
        )
        _save(
            sessions,
            report,
            definition,
            fingerprint=fingerprint,
            position=resume_at,
            status="running",
        )
        key_column = definition.source.key
        seen: set[str] = set()
        position = 0

        def concluded(at: int, entry: dict[str, Any] | None) -> None:
            """Row ``at`` was sent or dead-lettered (in source order): commit the batch and
            checkpoint if due."""
            if entry is not None and len(report.rejections) < keep_rejections:
                report.rejections.append(entry)
            if pipeline.pending >= BATCH:
                pipeline.settle()
                _save(
                    sessions,
                    report,
                    definition,
                    fingerprint=fingerprint,
                    position=at,
                    status="running",
                )
            if on_progress:
                on_progress(report.read)

        parallel = None
        if processes > 1:
            parallel = ParallelPreparation(pipeline, keys, processes, report, concluded)
        try:
            for position, row in enumerate(source.rows(), 1):
                if position <= resume_at:  # acknowledged before the restart: remember the key
                    if key := row.values.get(key_column, "").strip():
                        seen.add(key)
                    continue
                if parallel is None:
                    concluded(position, pipeline.handle(row, key_column, seen, report))
                else:
                    parallel.put(position, pipeline.admit(row, key_column, seen))
            if parallel is not None:
                parallel.finish()
        finally:
            if parallel is not None:
                parallel.close()
        pipeline.settle()
        high = source.high_watermark()
        _save(
            sessions,
            report,
            definition,
            fingerprint=fingerprint,
            position=position,
            status="complete",
            watermark=high if high is not None else None,
        )
    finally:
        kafka.close()  # aborts a batch left open by a failure: only a commit publishes
    return report
