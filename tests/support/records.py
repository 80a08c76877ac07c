"""A registry filled as the builder fills it (``records.apply``, then the entity resolver),
without Kafka: for tests of what reads the registry (the command line's review and
entity commands, on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction
from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry import records
from exchange.registry.entities import EntityResolver
from exchange.registry.records import Incoming
from exchange.security.blindindex import blind_index
from schemas.validators import resident_id_check_character

HR, HEALTH, MARKET = "household_registry", "health", "market_regulation"
USCC = "91350100M000100Y43"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


ZHANG = rid("11010519850304002")  # household registry and health: one woman
LI = rid("31010419750301001")  # household registry only
NOBODY = rid("44010619900709005")  # valid, in no record


class Registry:
    """Records applied and linked in the database of ``sessions``; ``bidx`` of a number
    under ``linkage_key`` (the one the command line reading the database uses)."""

    def __init__(self, linkage_key: bytes, sessions: sessionmaker[Session]) -> None:
        self.key = linkage_key
        self.sessions = sessions
        self.offset = 0
        self.resolver = EntityResolver()

    def bidx(self, number: str) -> str:
        return blind_index(self.key, "cn.resident_id", number)

    def person(self, department: str, source_id: str, number: str, **fields: Any) -> Incoming:
        payload = {
            "resident_id": "v1:ciphertext-of-the-number",
            "resident_id_bidx": self.bidx(number),
            "family_name": "张",
            "given_name": "秀英",
            "full_name": "张秀英",
            "birth_date": "1985-03-04",
            "sex": "FEMALE",
            "nationality": "CHN",
            "residence_division_code": "110105",
            "phone": "13800000001",
        } | fields
        return self._incoming("person", department, source_id, payload, payload["resident_id_bidx"])

    def organisation(self, source_id: str) -> Incoming:
        payload = {
            "uscc": USCC,
            "legal_name": "福州示例科技有限公司",
            "legal_form": "LLC",
            "registration_date": "2015-06-01",
            "legal_representative_name": "王伟",
            "legal_representative_resident_id": None,
            "registered_address": "福州市鼓楼区示例路1号",
            "registered_division_code": "350102",
            "industry_code": "I65",
            "status": "ACTIVE",
        }
        lookup = blind_index(self.key, "cn.uscc", USCC)
        return self._incoming("organisation", MARKET, source_id, payload, lookup)

    def _incoming(
        self, dataset: str, department: str, source_id: str, payload: dict[str, Any] | None,
        lookup: str | None,
    ) -> Incoming:  # fmt: skip
        self.offset += 1
        return Incoming(
            dataset, department, source_id, f"hash-{self.offset}", 1 if payload else None,
            payload, lookup, f"std.{dataset}.v1", 0, self.offset, datetime.now(UTC),
        )  # fmt: skip

    def apply(self, *items: Incoming) -> None:
        with transaction(self.sessions) as session:
            applied = records.apply(session, list(items))
            self.resolver.link(session, applied.changed)

    def withdraw(self, dataset: str, department: str, source_id: str) -> None:
        self.apply(self._incoming(dataset, department, source_id, None, None))

    def record(self, department: str, source_id: str) -> SourceRecord:
        with self.sessions() as session:
            row = session.scalars(
                select(SourceRecord).where(
                    SourceRecord.department == department, SourceRecord.source_id == source_id
                )
            ).one()
            session.expunge(row)
            return row

    def review_edge(self, a: SourceRecord, b: SourceRecord, weight: float) -> None:
        """A pair left in the queue (as the reviewer found it): status ``review``."""
        lo, hi = sorted((a.id, b.id))
        with transaction(self.sessions) as session:
            session.execute(delete(LinkEdge).where(LinkEdge.a_id == lo, LinkEdge.b_id == hi))
            session.execute(
                insert(LinkEdge).values(
                    a_id=lo, b_id=hi, status="review", weight=weight, deterministic=False,
                    explanation={"total_weight": weight, "fields": []}, decided_by=None,
                )
            )  # fmt: skip
