"""The registry's linkage of a poll decides what its record-by-record predecessor decided.

The builder links each poll (up to 5,000 records) at once
(:meth:`exchange.registry.entities.EntityResolver.link`). Issue 19 made that work
cheaper (bounded memory, explanations serialised once, fewer statements); the
decisions must not move. The resolver as it was before
(:mod:`tests.support.linkage_reference`) and today's run here on the same polls of a
generated population (corrupted duplicates, twins and siblings, mistyped identity
numbers, corrections that move a record to another entity, withdrawals and
re-publications, payments joining by identifier) into two databases of one
backend, SQLite and PostgreSQL; the edges (status, weight, the deterministic flag,
the explanation) and the entities (as sets of records) must be the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange.registry.entities import EntityResolver
from exchange.registry.linkage.recordcache import RecordCache
from tests.support import linkage_reference
from tests.support.database import migrated
from tests.support.linkage_batches import apply_polls, edges, partition, workload

pytestmark = pytest.mark.integration

PEOPLE = 1_500  # about 3,900 person records, then 1,200 changes and 400 payments


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(
    request: pytest.FixtureRequest, tmp_path: Any
) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    """Two fresh registries of one backend: for the reference and for the resolver."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name}.db" for name in ("reference", "tested")]
    else:
        server = request.getfixturevalue("postgres")
        urls = [server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    with migrated(urls[0]) as reference, migrated(urls[1]) as tested:
        yield reference, tested


def test_a_poll_at_once_decides_as_the_record_by_record_resolver(databases: Any) -> None:
    reference, tested = databases
    polls = workload(PEOPLE, seed=19, poll=700)
    expected = apply_polls(reference, linkage_reference.EntityResolver(), polls)
    # A cache far smaller than the registry: most candidates are read back or unpacked.
    resolver = EntityResolver()
    resolver._cache = RecordCache(hot=300, packed_bytes=400_000)
    assert apply_polls(tested, resolver, polls) == expected
    stored = edges(tested)
    assert stored == edges(reference)
    statuses = {found[0] for found in stored.values()}
    assert {"link", "review"} <= statuses  # the input made the model decide both ways
    found = partition(tested)
    assert found == partition(reference)
    assert sum(len(group) > 1 for group in found) > 200  # and linked records into entities
    # records were found in the cache, and read back (evicted, or never held)
    assert resolver._cache.hits > 0
    assert resolver._cache.misses > 0
