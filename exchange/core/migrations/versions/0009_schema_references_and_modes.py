"""schema references, registry modes, and fingerprints that may repeat (IMPORT)

Schema references (a named type taken from another subject's version) get a table
of their own, ``schema_references``, in the order given; a schema's identity is its
text and its references. Modes (READWRITE, READONLY, IMPORT), global or per subject,
get ``registry_modes``. The fingerprint stops being unique and becomes an index: in
IMPORT mode Confluent's registry lets the same schema arrive under a second id, and
an import must keep the ids it copies.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The unique constraint on schemas.fingerprint was created without a name (0001):
# PostgreSQL named it schemas_fingerprint_key; SQLite's batch mode names the reflected
# constraint with this convention so that it can be dropped.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("schemas", naming_convention=_CONVENTION) as batch:
            batch.drop_constraint("uq_schemas_fingerprint", type_="unique")
            batch.create_index("ix_schemas_fingerprint", ["fingerprint"])
    else:
        op.drop_constraint("schemas_fingerprint_key", "schemas", type_="unique")
        op.create_index("ix_schemas_fingerprint", "schemas", ["fingerprint"])
    op.create_table(
        "schema_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["schema_id"], ["schemas.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schema_id", "position"),
    )
    op.create_index("ix_schema_references_target", "schema_references", ["subject", "version"])
    op.create_table(
        "registry_modes",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )


def downgrade() -> None:
    op.drop_table("registry_modes")
    op.drop_index("ix_schema_references_target", table_name="schema_references")
    op.drop_table("schema_references")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("schemas") as batch:
            batch.drop_index("ix_schemas_fingerprint")
            batch.create_unique_constraint("uq_schemas_fingerprint", ["fingerprint"])
    else:
        op.drop_index("ix_schemas_fingerprint", table_name="schemas")
        op.create_unique_constraint("schemas_fingerprint_key", "schemas", ["fingerprint"])
