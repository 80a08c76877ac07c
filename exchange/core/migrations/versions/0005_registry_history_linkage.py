"""registry: version history, tombstones, entities and links

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("deleted", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("valid_from", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("entity_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_source_records_entity_id", ["entity_id"])
    op.create_table(
        "record_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("valid_from", UTCDateTime(timezone=True), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["source_records.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "version"),
    )
    op.create_table(
        "entities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "link_keys",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["source_records.id"]),
        sa.PrimaryKeyConstraint("key", "record_id"),
    )
    op.create_index("ix_link_keys_record_id", "link_keys", ["record_id"])
    op.create_table(
        "link_edges",
        sa.Column("a_id", sa.Integer(), nullable=False),
        sa.Column("b_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("deterministic", sa.Boolean(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["a_id"], ["source_records.id"]),
        sa.ForeignKeyConstraint(["b_id"], ["source_records.id"]),
        sa.PrimaryKeyConstraint("a_id", "b_id"),
    )
    op.create_index("ix_link_edges_b_id", "link_edges", ["b_id"])
    op.create_index("ix_link_edges_status", "link_edges", ["status"])
    op.create_table(
        "link_decisions",
        sa.Column("a_ref", sa.String(length=400), nullable=False),
        sa.Column("b_ref", sa.String(length=400), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("a_ref", "b_ref"),
    )


def downgrade() -> None:
    op.drop_table("link_decisions")
    op.drop_table("link_edges")
    op.drop_table("link_keys")
    op.drop_table("entities")
    op.drop_table("record_versions")
    with op.batch_alter_table("source_records") as batch:
        batch.drop_index("ix_source_records_entity_id")
        batch.drop_column("entity_id")
        batch.drop_column("valid_from")
        batch.drop_column("deleted")
