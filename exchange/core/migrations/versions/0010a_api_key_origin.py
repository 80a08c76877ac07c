"""the origin of each API key: demo, development or production

Production refuses keys that the demo or a development-mode exchange created
(``exchange.identity.apikeys``). Keys made before this revision have no recorded
origin (NULL), except the demo's own key (key id ``demo``, whose plaintext
``dx_demo_caseworker_not_secret`` is public), which is marked ``demo`` here.

Revision ID: 0010a
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010a"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("origin", sa.String(20), nullable=True))
    op.execute("UPDATE api_keys SET origin = 'demo' WHERE key_id = 'demo'")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("origin")
