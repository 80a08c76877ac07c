"""purposes say whether a request needs a case reference, and its pattern

``purposes.case_ref_required`` (a request stating the purpose must name its case)
and ``purposes.case_ref_pattern`` (a regular expression the whole case reference
must match, or null for any reference that is not an identity or phone number).
Existing purposes need no case reference, as before.

Revision ID: 0010p
Revises: 0010a
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010p"
down_revision = "0010a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("purposes") as batch:
        batch.add_column(
            sa.Column("case_ref_required", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("case_ref_pattern", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("case_ref_pattern")
        batch.drop_column("case_ref_required")
