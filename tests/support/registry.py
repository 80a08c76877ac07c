"""Building the registry from what a test published: one helper for the tests that need it."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.models import SourceRecord
from exchange.registry.builder import RegistryBuilder
from tests.support.kafka import start_group_at
from tests.support.keys import LINKAGE_KEY, keys_for


def build_department(
    bootstrap: str,
    sessions: sessionmaker[Session],
    department: str,
    count: int,
    start: dict[int, int],
    *,
    topic: str = "std.person.v1",
    timeout_s: float = 90.0,
    drain: bool = False,
) -> None:
    """Run a registry builder over ``topic`` from the offsets ``start`` (where the test began
    publishing, in a new consumer group) until the registry holds ``count`` records of
    ``department``; fail the test if it does not within ``timeout_s``. With ``drain``, the
    builder then reads on until nothing more arrives (records sent twice, which must
    change nothing)."""
    group = f"builder-{uuid.uuid4().hex[:8]}"
    start_group_at(bootstrap, group, topic, start)
    builder = RegistryBuilder(
        bootstrap,
        sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(sessions).keystore,
        group_id=group,
    )
    try:
        deadline = time.monotonic() + timeout_s
        held = 0
        while held < count:
            assert time.monotonic() < deadline, (
                f"the registry holds {held} of {count} records after {timeout_s:.0f}s"
            )
            builder.poll_once(500)
            with sessions() as session:
                held = (
                    session.scalar(
                        select(func.count()).where(SourceRecord.department == department)
                    )
                    or 0
                )
        if drain:
            builder.run_until_idle(idle_s=2.0, timeout_s=max(deadline - time.monotonic(), 10.0))
    finally:
        builder.close()
