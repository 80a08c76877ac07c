"""Verifying the audit log: recompute every hash from storage and check every signed head.

Entries are read once, in order, and checked in three ways:

1. **sequence**: entry ``seq`` sits at index ``seq - 1``; a gap is a deleted entry;
2. **chain and leaf**: each entry links to the one before (``prev_hash``), and its
   ``entry_hash`` and ``leaf_hash`` match its canonical encoding: an edited,
   deleted, inserted or reordered entry breaks this at the first index it touched
   (an inserted entry whose own hashes were forged correctly at the entry after it);
3. **signed heads**: at each head's tree size the Merkle root recomputed from the
   entries must equal the signed root, and the signature must verify under the
   audit log's public key. This catches an attacker who rewrote the entries *and*
   recomputed every stored hash, which steps 1 and 2 cannot: the head's frontier
   (authenticated by its root) names the first perfect subtree that differs, so the
   report gives the range of indexes holding the first altered entry.

The first problem found is reported with the index it proves bad (0-based; the
entry's ``seq`` is ``index + 1``) and how it was localised. Public keys come from
the database unless the auditor pins them (``--public-key``): a key read from the
database being audited proves less than one exported earlier.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.audit import heads
from exchange.audit.heads import Frontier, TreeHead
from exchange.audit.log import GENESIS, canonical_time, chain_hex, encode
from exchange.core.models import AuditEntry, AuditTip
from exchange.security import merkle

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 100_000
PARALLEL_MIN = 200_000  # entries from which a log is checked by several processes

_CONTENT = [
    AuditEntry.seq, AuditEntry.request_id, AuditEntry.actor, AuditEntry.department,
    AuditEntry.role, AuditEntry.purpose, AuditEntry.case_ref, AuditEntry.action,
    AuditEntry.dataset, AuditEntry.decision, AuditEntry.reason, AuditEntry.status,
    AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.leaf_hash, AuditEntry.key_id,
    AuditEntry.latency_ms,
]  # fmt: skip
_NAMES = [c.key for c in _CONTENT]
_SQLITE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def _rows(
    session: Session, first: int = 1, last: int | None = None
) -> Generator[dict[str, Any], None, None]:
    """The columns of entries ``first..last`` (seq; ``last`` None: to the end), in log
    order, with ``at`` in its canonical form."""
    if session.get_bind().dialect.name == "sqlite":
        yield from _sqlite_rows(session, first, last)
        return
    names = [*_NAMES, "at", "subjects", "fields"]
    stmt = (
        select(*_CONTENT, AuditEntry.at, AuditEntry.subjects, AuditEntry.fields)
        .where(AuditEntry.seq >= first)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=20_000)
    )
    if last is not None:
        stmt = stmt.where(AuditEntry.seq <= last)
    result = session.execute(stmt)
    try:
        for values in result:
            row = dict(zip(names, values, strict=True))
            row["at"] = canonical_time(row["at"])
            yield row
    finally:
        result.close()  # a server-side cursor on PostgreSQL, even if the caller stopped early


def _sqlite_rows(
    session: Session, first: int = 1, last: int | None = None
) -> Generator[dict[str, Any], None, None]:
    """The same from SQLite, through the driver's own cursor: SQLite stores what
    UTCDateTime and JSON wrote as text, and converting that text here costs a third of
    what SQLAlchemy's result processing of a million rows does."""
    names = [*_NAMES, "at", "subjects", "fields"]
    where = "seq >= ?" + ("" if last is None else " AND seq <= ?")
    sql = f"SELECT {', '.join(names)} FROM audit_log WHERE {where} ORDER BY seq"
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, (first,) if last is None else (first, last))
        while batch := cursor.fetchmany(20_000):
            for values in batch:
                row = dict(zip(names, values, strict=True))
                row["at"] = _sqlite_time(row["at"])
                row["subjects"] = _json_list(row["subjects"])
                row["fields"] = _json_list(row["fields"])
                yield row
    finally:
        cursor.close()


def _checked(
    session: Session, workers: int | None, parallel_min: int, total: int
) -> Iterator[tuple[Problem | None, bytes]]:
    """``(problem, leaf hash)`` of each entry in log order, up to the first problem."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if workers > 1 and total >= parallel_min:
        url = session.connection().engine.url.render_as_string(hide_password=False)
        yield from _checked_in_parallel(url, workers, total)
        return
    rows = _rows(session)
    prev_hash = GENESIS
    try:
        for index, row in enumerate(rows):
            problem, leaf = _check_row(row, index, prev_hash)
            yield problem, leaf
            if problem is not None:
                return
            prev_hash = row["entry_hash"]
    finally:
        rows.close()


def _checked_in_parallel(
    url: str, workers: int, total: int
) -> Iterator[tuple[Problem | None, bytes]]:
    step = -(-total // workers)
    ranges: list[tuple[int, int | None]] = [
        (first, first + step - 1) for first in range(1, total + 1, step)
    ]
    ranges[-1] = (ranges[-1][0], None)  # the last worker also reads any row past the tip
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, no inherited handles
    with ProcessPoolExecutor(max_workers=len(ranges), mp_context=context) as pool:
        futures = [pool.submit(_check_range, url, first, last) for first, last in ranges]
        for (_, last), future in zip(ranges, futures, strict=True):
            leaves, problem, checked = future.result()
            for offset in range(0, len(leaves), 32):
                yield None, leaves[offset : offset + 32]
            if problem is not None:
                yield problem, b""
                return
            if last is not None and checked < last:  # the range's newest entries are gone
                index = checked
                message = f"entry {index} (seq {index + 1}) is missing"
                yield Problem(index, "sequence", message), b""
                return


def _check_range(url: str, first: int, last: int | None) -> tuple[bytes, Problem | None, int]:
    """In a worker process: check entries ``first..last`` (seq); their leaf hashes
    concatenated, the first problem, and how many entries (from index 0) were checked."""
    from exchange.core.db import make_engine, session_factory

    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            prev_hash = GENESIS
            if first > 1:
                stored = session.scalar(
                    select(AuditEntry.entry_hash).where(AuditEntry.seq == first - 1)
                )
                prev_hash = stored or GENESIS  # missing: the range before says so first
            leaves = bytearray()
            index = first - 1
            for row in _rows(session, first, last):
                problem, leaf = _check_row(row, index, prev_hash)
                if problem is not None:
                    return bytes(leaves), problem, index
                leaves += leaf
                prev_hash = row["entry_hash"]
                index += 1
            return bytes(leaves), None, index
    finally:
        engine.dispose()


def _sqlite_time(text: str | None) -> str:
    if text is None:
        return ""
    if _SQLITE_TIME.fullmatch(text):
        return f"{text[:10]}T{text[11:]}+00:00"
    try:  # not as UTCDateTime writes it: parsed, so the hash check decides
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return canonical_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _json_list(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else []
    except ValueError:
        return text  # altered into something else: the hash check will fail on it


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong.

    ``index``: the first entry proven bad (0-based), or None if only a tree head is bad.
    ``localised_by``: ``sequence``, ``chain``, ``entry hash``, ``leaf hash``, ``tip``,
    ``signed head`` or ``head signature``. With ``signed head``, the first altered entry
    lies in ``[index, range_end)``.
    """

    index: int | None
    localised_by: str
    message: str
    range_end: int | None = None

    @property
    def seq(self) -> int | None:
        return None if self.index is None else self.index + 1


@dataclass
class VerifyReport:
    size: int = 0
    heads_checked: int = 0
    latest_head: int | None = None
    keys_from: str = "database"  # or "pinned key"
    problem: Problem | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def unsigned(self) -> int:
        """Entries after the latest signed head: protected by the chain only, for now."""
        return self.size - (self.latest_head or 0)


def check(
    session: Session,
    *,
    public_keys: dict[str, bytes] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN,
) -> VerifyReport:
    """Verify the whole log; see the module docstring.

    A log of at least ``parallel_min`` entries has its entries read and hashed
    by ``workers`` processes (default: the usable cores), each a contiguous range; the
    tree and the heads are then checked here, in order, so the report is the same.
    """
    report = VerifyReport()
    if public_keys is None:
        public_keys = heads.public_keys(session)
    else:
        report.keys_from = "pinned key"
    tip_size = session.scalar(select(AuditTip.size).where(AuditTip.id == 1))
    head_list = heads.all_heads(session)
    if head_list:
        report.latest_head = head_list[-1][0].tree_size
    pending = list(reversed(head_list))  # popped from the end, smallest first
    frontier = Frontier()
    last_good_head = 0
    total = int(tip_size or 0)
    for problem, leaf in _checked(session, workers, parallel_min, total):
        if problem is not None:
            report.problem = problem
            break
        frontier.append(leaf)
        while pending and pending[-1][0].tree_size == frontier.size:
            head, signed_frontier = pending.pop()
            report.heads_checked += 1
            problem = _check_head(head, signed_frontier, frontier, last_good_head, public_keys)
            if problem is not None:
                report.problem = problem
                break
            last_good_head = head.tree_size
        if report.problem is not None:
            break
        if progress is not None and frontier.size % PROGRESS_EVERY == 0:
            progress(frontier.size, total)
    report.size = frontier.size
    if report.problem is None:
        report.problem = _check_end(frontier.size, tip_size, pending)
    if report.problem is None and progress is not None:
        progress(frontier.size, total)
    if report.problem is None and report.unsigned:
        report.warnings.append(
            f"{report.unsigned} entries after the latest signed head are covered by the hash "
            "chain only until the next head is signed (`exchange audit head --sign`)"
        )
    return report


def _check_row(r: dict[str, Any], index: int, prev_hash: str) -> tuple[Problem | None, bytes]:
    """The problem with the entry at ``index``, if any, and its leaf hash."""
    seq = r["seq"]
    if seq != index + 1:
        message = f"entry {index} (seq {index + 1}) is missing: the next stored entry has seq {seq}"
        return Problem(index, "sequence", message), b""
    if r["prev_hash"] != prev_hash:
        message = (
            f"entry {index} does not link to the entry before it (deleted, inserted or "
            "reordered entries)"
        )
        return Problem(index, "chain", message), b""
    encoding = encode(r, r["at"])
    if chain_hex(prev_hash, encoding) != r["entry_hash"]:
        message = f"entry {index} was altered: its hash does not match"
        return Problem(index, "entry hash", message), b""
    leaf = merkle.leaf_hash(encoding)
    if leaf.hex() != r["leaf_hash"]:
        message = f"entry {index} was altered: its leaf hash does not match"
        return Problem(index, "leaf hash", message), b""
    return None, leaf


def _check_head(
    head: TreeHead,
    signed_frontier: list[bytes],
    computed: Frontier,
    last_good: int,
    public_keys: dict[str, bytes],
) -> Problem | None:
    if not head.verify(public_keys):
        return Problem(
            None,
            "head signature",
            f"the tree head of size {head.tree_size} is not signed by the audit log's key "
            f"(key id {head.key_id}): the heads table was altered",
        )
    if computed.root().hex() == head.root:
        return None
    start, end = last_good, head.tree_size
    try:
        signed = Frontier(head.tree_size, signed_frontier)
    except ValueError:
        signed = None
    if signed is not None and signed.root().hex() == head.root:
        # The stored frontier hashes to the signed root, so it is authentic: the first
        # subtree that differs holds the first altered entry.
        for (first, count, ours), (_, _, theirs) in zip(
            computed.subtrees(), signed.subtrees(), strict=True
        ):
            if ours != theirs:
                start, end = max(first, last_good), min(first + count, end)
                break
    return Problem(
        start,
        "signed head",
        f"the entries do not match the tree head signed at size {head.tree_size}: an entry "
        f"in indexes {start} to {end - 1} was altered and every stored hash after it "
        "recomputed",
        range_end=end,
    )


def _check_end(
    size: int, tip_size: int | None, pending: list[tuple[TreeHead, list[bytes]]]
) -> Problem | None:
    if pending:
        head = pending[-1][0]
        return Problem(
            size,
            "signed head",
            f"a tree head was signed at size {head.tree_size} but the log holds {size} "
            f"entries: entries from index {size} were deleted",
            range_end=head.tree_size,
        )
    if tip_size is None:
        return Problem(size, "tip", "the audit log's tip row is missing")
    if tip_size != size:
        return Problem(
            min(size, tip_size),
            "tip",
            f"the log's tip says {tip_size} entries but the table holds {size}",
        )
    return None


def verify(session: Session) -> int | None:
    """The first bad entry's ``seq`` (1-based), or None if the log verifies.

    A problem with a tree head alone (no entry index) is reported as 0; :func:`check` says
    more.
    """
    problem = check(session).problem
    if problem is None:
        return None
    return problem.seq if problem.seq is not None else 0
