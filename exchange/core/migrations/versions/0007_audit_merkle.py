"""the audit log as a Merkle tree: leaf hashes, tip, signed tree heads, subject index, mirror

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("leaf_hash", sa.String(length=64), nullable=True))
        batch.create_index("ix_audit_log_actor", ["actor", "seq"])
        batch.create_index("ix_audit_log_at", ["at"])
    op.create_table(
        "audit_subjects",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "seq"),
    )
    op.create_table(
        "audit_tip",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_tree_heads",
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    op.create_table(
        "audit_mirror",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("heads", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _backfill()
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("leaf_hash", existing_type=sa.String(length=64), nullable=False)


def _backfill() -> None:
    """Leaf hashes and the subject index of the entries written before this revision; the
    tip and the mirror watermark (existing entries count as not yet mirrored)."""
    # The canonical encoding is a stable contract of exchange.audit (it is what the chain
    # hashes already cover), so the migration uses it rather than a copy.
    from exchange.audit.log import leaf_hex, row_content

    conn = op.get_bind()
    log = sa.table(
        "audit_log",
        *(
            sa.column(c)
            for c in (
                "seq", "at", "request_id", "actor", "department", "role", "purpose",
                "case_ref", "action", "dataset", "subjects", "fields", "decision", "reason",
                "status", "entry_hash", "leaf_hash",
            )
        ),
    )  # fmt: skip
    size, last_hash = 0, "0" * 64
    rows = conn.execute(sa.select(log).order_by(log.c.seq)).mappings().all()
    for row in rows:
        values = dict(row)
        for key in ("subjects", "fields"):
            if isinstance(values[key], str):
                values[key] = json.loads(values[key])
        at = values["at"]
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        values["at"] = at
        conn.execute(
            log.update()
            .where(log.c.seq == row["seq"])
            .values(leaf_hash=leaf_hex(row_content(values)))
        )
        for subject in dict.fromkeys(values["subjects"]):
            conn.execute(
                sa.text("INSERT INTO audit_subjects (subject, seq) VALUES (:s, :q)"),
                {"s": subject, "q": row["seq"]},
            )
        size, last_hash = row["seq"], row["entry_hash"]
    conn.execute(
        sa.text("INSERT INTO audit_tip (id, size, entry_hash) VALUES (1, :n, :h)"),
        {"n": size, "h": last_hash},
    )
    mirror = sa.table(
        "audit_mirror",
        sa.column("id", sa.Integer()),
        sa.column("entries", sa.BigInteger()),
        sa.column("heads", sa.BigInteger()),
        sa.column("updated_at", UTCDateTime()),
    )
    conn.execute(mirror.insert().values(id=1, entries=0, heads=0, updated_at=datetime.now(UTC)))


def downgrade() -> None:
    op.drop_table("audit_mirror")
    op.drop_table("audit_tree_heads")
    op.drop_table("audit_tip")
    op.drop_table("audit_subjects")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_at")
        batch.drop_index("ix_audit_log_actor")
        batch.drop_column("leaf_hash")
