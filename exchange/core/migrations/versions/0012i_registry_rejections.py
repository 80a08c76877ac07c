"""the registry builder's rejections, one row a record, for the sharing indicators

``registry_rejections``: each record the registry builder dead-lettered (to
``dlq.registry``), written where the builder decides it: when, the department and
dataset the record claimed, the reason's code and where the record is. One row per
(topic, partition, offset): a replay that dead-letters it again adds nothing.

Revision ID: 0012i
Revises: 0012s
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0012i"
down_revision = "0012s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_rejections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_registry_rejections_at"),
    )
    op.create_index(
        "ix_registry_rejections_period", "registry_rejections", ["at", "department", "dataset"]
    )


def downgrade() -> None:
    op.drop_index("ix_registry_rejections_period", "registry_rejections")
    op.drop_table("registry_rejections")
