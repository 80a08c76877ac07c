"""the API key id on every audit entry

``audit_log.key_id``: the id of the API key (or OIDC subject) a request presented,
never its secret, set on refused credentials too, so that a replayed revoked key can
be traced; indexed with ``seq`` for a search by key. Entries written before keep
their encoding: the column is in an entry's canonical encoding only when set.

Revision ID: 0010u
Revises: 0010p
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010u"
down_revision = "0010p"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE ... ADD COLUMN on both databases (no table copy).
    op.add_column("audit_log", sa.Column("key_id", sa.String(64), nullable=True))
    op.create_index("ix_audit_log_key_id", "audit_log", ["key_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_key_id", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("key_id")
