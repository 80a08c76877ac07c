"""Records published and rejected, by department and dataset.

From what the exchange keeps: ``connector_runs`` (each run's reconciled counts and
its rejections by reason; a run counts in the period it started in),
``registry_rejections`` (each record the registry builder dead-lettered, by when it
decided) and ``record_versions`` (each version the builder applied, by ``applied_at``).
Batches pushed over HTTP keep no run row: they are not in ``read``/``published``.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.core.models import ConnectorRun, RecordVersion, RegistryRejection, SourceRecord
from exchange.indicators.figures import Publishing
from exchange.indicators.period import Period, Scope

Key = tuple[str, str]  # (department, dataset)


def publishing(session: Session, period: Period, scope: Scope) -> list[Publishing]:
    """One row per (department, dataset) with anything in the period, in that order."""
    found: dict[Key, Publishing] = {}

    def row(key: Key) -> Publishing:
        if key not in found:
            found[key] = Publishing(
                department=key[0],
                dataset=key[1],
                runs=0,
                read=0,
                published=0,
                rejected=0,
                rejected_by_reason={},
                registry_rejected=0,
                registry_rejected_by_reason={},
                applied=0,
            )
        return found[key]

    runs = select(
        ConnectorRun.department,
        ConnectorRun.dataset,
        ConnectorRun.read,
        ConnectorRun.published,
        ConnectorRun.rejected,
        ConnectorRun.reasons,
    ).where(ConnectorRun.started_at >= period.start, ConnectorRun.started_at < period.end)
    if scope.department is not None:
        runs = runs.where(ConnectorRun.department == scope.department)
    if scope.dataset is not None:
        runs = runs.where(ConnectorRun.dataset == scope.dataset)
    reasons: dict[Key, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for department, dataset, read, published, rejected, by_reason in session.execute(runs):
        figure = row((department, dataset))
        figure.runs += 1
        figure.read += int(read)
        figure.published += int(published)
        figure.rejected += int(rejected)
        for code, count in (by_reason or {}).items():
            reasons[(department, dataset)][str(code)] += int(count)
    for key, counts in reasons.items():
        found[key].rejected_by_reason = dict(sorted(counts.items()))

    refused = select(
        RegistryRejection.department,
        RegistryRejection.dataset,
        RegistryRejection.reason,
        func.count(),
    ).where(RegistryRejection.at >= period.start, RegistryRejection.at < period.end)
    if scope.department is not None:
        refused = refused.where(RegistryRejection.department == scope.department)
    if scope.dataset is not None:
        refused = refused.where(RegistryRejection.dataset == scope.dataset)
    refused = refused.group_by(
        RegistryRejection.department, RegistryRejection.dataset, RegistryRejection.reason
    )
    for department, dataset, reason, count in session.execute(refused):
        figure = row((department, dataset))
        figure.registry_rejected += int(count)
        figure.registry_rejected_by_reason = dict(
            sorted({**figure.registry_rejected_by_reason, reason: int(count)}.items())
        )

    applied = (
        select(SourceRecord.department, SourceRecord.dataset, func.count())
        .select_from(RecordVersion)
        .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
        .where(RecordVersion.applied_at >= period.start, RecordVersion.applied_at < period.end)
    )
    if scope.department is not None:
        applied = applied.where(SourceRecord.department == scope.department)
    if scope.dataset is not None:
        applied = applied.where(SourceRecord.dataset == scope.dataset)
    applied = applied.group_by(SourceRecord.department, SourceRecord.dataset)
    for department, dataset, count in session.execute(applied):
        row((department, dataset)).applied = int(count)
    return [found[key] for key in sorted(found)]
