"""schema ids by the whole schema: fingerprints recomputed from each stored text

Ids were given by the Avro Parsing Canonical Form, which drops logical types,
precision and scale, defaults, aliases and doc: schemas that differed in those
shared one id and the first text. From now on the fingerprint is SHA-256 of the
whole schema (keys sorted, no insignificant whitespace), the form
``schemas.store.schema_form`` computes. Each existing id keeps the text it has
always been read with, and a later registration of a different text gets an id of
its own. (Written here rather than imported: a migration does not change with the
code.)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _fingerprint(text: str) -> str:
    form = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(form.encode()).hexdigest()


def upgrade() -> None:
    schemas = sa.table(
        "schemas", sa.column("id", sa.Integer), sa.column("fingerprint", sa.String),
        sa.column("schema_json", sa.Text),
    )  # fmt: skip
    bind = op.get_bind()
    for row in bind.execute(sa.select(schemas.c.id, schemas.c.schema_json)).all():
        bind.execute(
            schemas.update()
            .where(schemas.c.id == row.id)
            .values(fingerprint=_fingerprint(row.schema_json))
        )


def downgrade() -> None:
    raise NotImplementedError("ids by the Parsing Canonical Form would merge schemas again")
