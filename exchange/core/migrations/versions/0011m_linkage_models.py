"""versioned linkage models, and which version of each kind links

``linkage_models``: every fitted (or imported) model of a record kind, numbered from 1
per kind, its JSON, description, author and time; never changed once stored.
``linkage_active_models``: the version each kind links with (no row: the shipped
model). Neither is emptied by ``exchange registry rebuild``.

Revision ID: 0011m
Revises: 0010u
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0011m"
down_revision = "0010u"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "version", name="uq_linkage_models_kind_version"),
    )
    op.create_table(
        "linkage_active_models",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("activated_by", sa.String(255), nullable=False),
        sa.Column("activated_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("linkage_active_models")
    op.drop_table("linkage_models")
