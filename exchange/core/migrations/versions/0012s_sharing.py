"""catalogue-driven sharing: the resource catalogue, sharing requests, and what indicators read

``catalogue_resources``: each dataset's owner department, description, update frequency,
sharing type and contact. ``sharing_requests`` and ``sharing_request_events``: a consuming
department's requests, the owner's decisions and their history. ``grants`` gain ``origin``
(``direct`` or ``request``) and the request that created them. For the sharing indicators:
the source's own change time on records and record versions, when a version was applied,
and each audited request's latency.

Revision ID: 0012s
Revises: 0011m
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.core.db import UTCDateTime

revision = "0012s"
down_revision = "0011m"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_resources",
        sa.Column("dataset", sa.String(100), primary_key=True),
        sa.Column(
            "owner_department", sa.String(100), sa.ForeignKey("departments.code"), nullable=False
        ),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("update_frequency", sa.String(20), nullable=False),
        sa.Column("sharing_type", sa.String(20), nullable=False),
        sa.Column("contact", sa.String(255), nullable=False),
        sa.Column("field_notes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_index(
        "ix_catalogue_resources_owner_department", "catalogue_resources", ["owner_department"]
    )
    op.create_table(
        "sharing_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("owner_department", sa.String(100), nullable=False),
        sa.Column("requester_department", sa.String(100), nullable=False),
        sa.Column("grantee_role", sa.String(50), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("row_constraints", sa.JSON(), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True)),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("decision_reason", sa.Text()),
        sa.Column("granted_fields", sa.JSON()),
        sa.Column("granted_row_constraints", sa.JSON()),
        sa.Column("granted_days", sa.Integer()),
        sa.Column("grant_id", sa.Integer()),
        sa.Column("renewal_of", sa.Integer()),
    )
    op.create_index("ix_sharing_requests_owner", "sharing_requests", ["owner_department", "status"])
    op.create_index(
        "ix_sharing_requests_requester", "sharing_requests", ["requester_department", "status"]
    )
    op.create_table(
        "sharing_request_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("sharing_requests.id"), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_sharing_request_events_request_id", "sharing_request_events", ["request_id"]
    )
    with op.batch_alter_table("grants") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(20), nullable=False, server_default="direct")
        )
        batch.add_column(sa.Column("sharing_request_id", sa.Integer()))
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("source_changed_at", UTCDateTime(timezone=True)))
    with op.batch_alter_table("record_versions") as batch:
        batch.add_column(sa.Column("source_changed_at", UTCDateTime(timezone=True)))
        batch.add_column(sa.Column("applied_at", UTCDateTime(timezone=True)))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("latency_ms", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("latency_ms")
    with op.batch_alter_table("record_versions") as batch:
        batch.drop_column("applied_at")
        batch.drop_column("source_changed_at")
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("source_changed_at")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("sharing_request_id")
        batch.drop_column("origin")
    op.drop_table("sharing_request_events")
    op.drop_table("sharing_requests")
    op.drop_table("catalogue_resources")
