"""Finding entities from what an operator holds: an identity number, a credit code, or a
department's source record id.

An identity number is never compared, stored or reported in the clear: it is turned
into its blind index (HMAC under the linkage key, as connectors and the gateway's
lookups do) and the registry is searched for that index. Nothing here puts the
number, or a validator's message quoting it, into an error or a log line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.core.errors import NotFoundError, ValidationError
from exchange.core.models import Entity, LinkKey, SourceRecord
from exchange.registry.records import record_ref
from exchange.security.blindindex import blind_index
from schemas.validators import normalise_resident_id, resident_id, unified_social_credit_code

PERSON_DOMAIN = "cn.resident_id"  # the blind-index domains: the validators' names
ORGANISATION_DOMAIN = "cn.uscc"


@dataclass(frozen=True, slots=True)
class Found:
    """An entity an operator's key leads to (``entity_id`` None: records in no entity).

    ``matched`` are the refs of the records the key matched; ``datasets`` counts the
    entity's live records per dataset, ``departments`` names their departments."""

    entity_id: str | None
    kind: str | None
    matched: tuple[str, ...]
    datasets: dict[str, int]
    departments: tuple[str, ...]

    def summary(self) -> str:
        """One line: the entity, its kind, how many records of which datasets, from whom."""
        held = ", ".join(f"{name} x{count}" for name, count in sorted(self.datasets.items()))
        total = sum(self.datasets.values())
        head = self.entity_id or "(no entity)"
        kind = f" {self.kind}" if self.kind else ""
        return (
            f"{head}{kind}: {total} record{'s' if total != 1 else ''} ({held}) "
            f"from {', '.join(self.departments)}; matched {', '.join(self.matched)}"
        )


def person_key(linkage_key: bytes, number: str) -> str:
    """The blind index of a resident identity number; a malformed number is refused with
    its reason code only (the validators' messages quote the number)."""
    clear = normalise_resident_id(number)
    invalid = resident_id(clear)
    if invalid is not None:
        raise ValidationError(
            [
                (
                    "resident_id",
                    invalid.code,
                    f"not a valid resident identity number ({invalid.code})",
                )
            ]
        )
    return blind_index(linkage_key, PERSON_DOMAIN, clear)


def organisation_code(code: str) -> str:
    """A unified social credit code tidied (spaces, full width, case) and checked."""
    clear = normalise_resident_id(code).upper()
    invalid = unified_social_credit_code(clear)
    if invalid is not None:
        raise ValidationError(
            [("uscc", invalid.code, f"not a valid unified social credit code ({invalid.code})")]
        )
    return clear


def by_person(session: Session, linkage_key: bytes, number: str) -> list[Found]:
    """The entities of the live records carrying this identity number (by blind index)."""
    key = person_key(linkage_key, number)
    found = _summarise(session, _live(session, SourceRecord.lookup_key == key))
    if not found:
        raise NotFoundError("no live record carries this resident identity number")
    return found


def by_organisation(session: Session, linkage_key: bytes, code: str) -> list[Found]:
    """The entities of the live records carrying this credit code (by its blind index, or
    the linkage key of organisation records, which hold the code in the clear)."""
    clear = organisation_code(code)
    key = blind_index(linkage_key, ORGANISATION_DOMAIN, clear)
    keyed = select(LinkKey.record_id).where(LinkKey.key == "u:" + clear)
    rows = _live(session, or_(SourceRecord.lookup_key == key, SourceRecord.id.in_(keyed)))
    found = _summarise(session, rows)
    if not found:
        raise NotFoundError(f"no live record carries the unified social credit code {clear}")
    return found


def by_source(
    session: Session, department: str, source_id: str, dataset: str | None = None
) -> list[Found]:
    """The entity of a department's source record (in any dataset, or in ``dataset``)."""
    query = select(SourceRecord).where(
        SourceRecord.department == department, SourceRecord.source_id == source_id
    )
    if dataset is not None:
        query = query.where(SourceRecord.dataset == dataset)
    rows = session.scalars(query).all()
    what = f"{department}:{source_id}" + (f" in {dataset}" if dataset else "")
    if not rows:
        raise NotFoundError(f"no record {what}")
    live = [r for r in rows if not r.deleted]
    if not live:
        refs = ", ".join(record_ref(r.dataset, r.department, r.source_id) for r in rows)
        raise NotFoundError(f"record {what} was withdrawn ({refs}): it is in no entity")
    return _summarise(session, live)


def _live(session: Session, condition: ColumnElement[bool]) -> list[SourceRecord]:
    # Naming the datasets lets the (dataset, lookup_key) index serve the search.
    query = select(SourceRecord).where(
        SourceRecord.dataset.in_(catalogue.available_datasets()),
        SourceRecord.deleted.is_(False),
        condition,
    )
    return list(session.scalars(query))


def _summarise(session: Session, rows: Sequence[SourceRecord]) -> list[Found]:
    matched: dict[str | None, list[str]] = {}
    for r in sorted(rows, key=lambda r: (r.dataset, r.department, r.source_id)):
        matched.setdefault(r.entity_id, []).append(record_ref(r.dataset, r.department, r.source_id))
    ids = [e for e in matched if e is not None]
    kinds = dict(session.execute(select(Entity.id, Entity.kind).where(Entity.id.in_(ids))).all())
    members = session.execute(
        select(SourceRecord.entity_id, SourceRecord.dataset, SourceRecord.department).where(
            SourceRecord.entity_id.in_(ids), SourceRecord.deleted.is_(False)
        )
    ).all()
    out = []
    for entity_id, refs in sorted(matched.items(), key=lambda kv: kv[0] or ""):
        if entity_id is None:
            loose = [r for r in rows if r.entity_id is None]
            out.append(_found(None, None, refs, ((r.dataset, r.department) for r in loose)))
        else:
            mine = ((d, dep) for e, d, dep in members if e == entity_id)
            out.append(_found(entity_id, kinds.get(entity_id), refs, mine))
    return out


def _found(
    entity_id: str | None, kind: str | None, refs: list[str], held: Iterable[tuple[str, str]]
) -> Found:
    pairs = list(held)
    return Found(
        entity_id,
        kind,
        tuple(refs),
        dict(Counter(d for d, _ in pairs)),
        tuple(sorted({dep for _, dep in pairs})),
    )
