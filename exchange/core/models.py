"""Tables of the shared registry, the audit log and the API keys.

Stored shapes only: what callers may send or see are separate types in the
gateway, so a stored column cannot leak into a response by accident.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.core.db import Base, UTCDateTime, utcnow


class SchemaRecord(Base):
    """One Avro schema with its references; ``id`` is the global id.

    ``fingerprint`` is SHA-256 of the whole schema and its references
    (``schemas.store.fingerprint_of``). It is indexed, not unique: an import (IMPORT
    mode) may bring the same schema under a second id, as Confluent's registry allows.
    """

    __tablename__ = "schemas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    canonical: Mapped[str] = mapped_column(Text)
    schema_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubjectVersion(Base):
    """A schema registered under a subject at a version."""

    __tablename__ = "subject_versions"
    __table_args__ = (UniqueConstraint("subject", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id"))
    deleted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SchemaReference(Base):
    """A named type a schema takes from another subject's version (Confluent's references).

    ``name`` is the type's name as the schema uses it; ``position`` keeps the order
    the references were given in, which is part of the schema's identity.
    """

    __tablename__ = "schema_references"
    __table_args__ = (
        UniqueConstraint("schema_id", "position"),
        Index("ix_schema_references_target", "subject", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)


class RegistryMode(Base):
    """A mode (READWRITE, READONLY, IMPORT): global (subject ``GLOBAL_CONFIG``) or one subject's."""

    __tablename__ = "registry_modes"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegistryConfig(Base):
    """A compatibility level: global (subject ``GLOBAL_CONFIG``) or for one subject."""

    __tablename__ = "registry_config"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    compatibility: Mapped[str] = mapped_column(String(30))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


GLOBAL_CONFIG = "__global__"


class SourceRecord(Base):
    """The newest version of one department's record, as published to a standard topic."""

    __tablename__ = "source_records"
    __table_args__ = (
        UniqueConstraint("dataset", "department", "source_id"),
        Index("ix_source_records_lookup", "dataset", "lookup_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(255))
    lookup_key: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    schema_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entity_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # When the department's own system last changed the record (the connector's
    # ``changed_at`` column, carried in the ``source_changed_at`` header); null if unknown.
    source_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecordVersion(Base):
    """Every version of a source record, in order; a tombstone is a version with ``deleted``."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("record_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("source_records.id"))
    version: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean)
    content_hash: Mapped[str] = mapped_column(String(64))
    schema_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, object] | None] = mapped_column(JSON)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the registry builder applied this version (freshness: source change to here).
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RegistryRejection(Base):
    """A record the registry builder dead-lettered (to ``dlq.registry``), for the sharing
    indicators: written where the builder decides, once per (topic, partition, offset).
    ``department`` and ``dataset`` are what the record's headers claimed (``unknown`` if
    it claimed none); ``reason`` is the code of the dead letter's reason
    (``uncovered_record``, ``unverified_record``, ``signature_invalid``, ...)."""

    __tablename__ = "registry_rejections"
    __table_args__ = (
        UniqueConstraint("topic", "partition", "offset", name="uq_registry_rejections_at"),
        Index("ix_registry_rejections_period", "at", "department", "dataset"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    department: Mapped[str] = mapped_column(String(100))
    dataset: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(50))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)


class Entity(Base):
    """A person or organisation known to one or more departments; its id is stable."""

    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkKey(Base):
    """A blocking key of a live record: records sharing a key are compared."""

    __tablename__ = "link_keys"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("source_records.id"), primary_key=True, index=True
    )


class LinkEdge(Base):
    """A compared pair of live records (``a_id < b_id``) that is a link or awaits review.

    ``status``: ``link`` (automatic), ``review`` (uncertain: in the review queue),
    ``confirmed`` (a reviewer linked it), ``rejected`` (a reviewer refused it).
    """

    __tablename__ = "link_edges"

    a_id: Mapped[int] = mapped_column(ForeignKey("source_records.id"), primary_key=True)
    b_id: Mapped[int] = mapped_column(ForeignKey("source_records.id"), primary_key=True, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    weight: Mapped[float] = mapped_column(Float)
    deterministic: Mapped[bool] = mapped_column(Boolean)
    explanation: Mapped[dict[str, object]] = mapped_column(JSON)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkDecision(Base):
    """A reviewer's decision on a pair, by record reference, so it outlives a rebuild."""

    __tablename__ = "link_decisions"

    a_ref: Mapped[str] = mapped_column(String(400), primary_key=True)
    b_ref: Mapped[str] = mapped_column(String(400), primary_key=True)
    decision: Mapped[str] = mapped_column(String(20))
    decided_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkageModel(Base):
    """A version of a linkage model of one record kind (``person``, ``organisation``).

    ``version`` counts from 1 per kind (0 is the shipped model, never stored); ``model``
    is the model's JSON (``Model.to_json``). Stored versions are never changed: a new
    fit is a new version. Which version links is :class:`ActiveLinkageModel`.
    """

    __tablename__ = "linkage_models"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_linkage_models_kind_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActiveLinkageModel(Base):
    """The version of each kind that links (one row a kind at most; none: the shipped one).

    Kept apart from the registry's record tables, so a rebuild keeps it."""

    __tablename__ = "linkage_active_models"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    activated_by: Mapped[str] = mapped_column(String(255))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One gateway decision, allowed or denied: a leaf of the audit log's Merkle tree.

    ``seq`` is the 1-based position (the Merkle leaf index is ``seq - 1``);
    ``leaf_hash`` is the RFC 6962 leaf hash of the entry's canonical encoding, and
    ``entry_hash`` links it to the entry before it (``prev_hash``). Holds no plaintext
    personal data: data subjects appear as blind references.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor", "actor", "seq"),
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_key_id", "key_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(50))
    purpose: Mapped[str | None] = mapped_column(String(255))
    case_ref: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    dataset: Mapped[str | None] = mapped_column(String(100))
    subjects: Mapped[list[str]] = mapped_column(JSON, default=list)
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    # The API key id (or OIDC subject) presented, never the secret; in the canonical
    # encoding only when set (entries written before the column keep their hashes).
    key_id: Mapped[str | None] = mapped_column(String(64))
    # Milliseconds from the request's arrival to its answer starting; optional like key_id.
    latency_ms: Mapped[int | None] = mapped_column(Integer)


class AuditSubject(Base):
    """Search index of the audit log by data subject (a blind reference); not authoritative:
    the entry's ``subjects`` is what its hashes cover."""

    __tablename__ = "audit_subjects"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)


class AuditTip(Base):
    """The audit log's one-row tip: its size and last entry hash.

    Every append updates this row first, which serialises appenders across processes
    (a row lock on PostgreSQL, the write lock on SQLite). ``exchange audit verify``
    does not trust it; it only compares it with what the table holds.
    """

    __tablename__ = "audit_tip"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditTreeHead(Base):
    """A signed tree head: the Merkle root over the first ``tree_size`` entries.

    ``frontier`` holds the roots of the perfect subtrees that make up the tree (hex, largest
    first); they hash to ``root``, so the signature covers them too. The next head starts
    from them and needs only the entries appended since.
    """

    __tablename__ = "audit_tree_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[str] = mapped_column(String(64))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
    frontier: Mapped[list[str]] = mapped_column(JSON)


class AuditMirrorState(Base):
    """How far the audit log has been mirrored to Kafka (the outbox watermark).

    ``entries``: entries with ``seq <= entries`` were acknowledged by the broker;
    ``heads``: tree heads with ``tree_size <= heads`` were.
    """

    __tablename__ = "audit_mirror"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    heads: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Department(Base):
    """A department taking part in the exchange, publishing or consuming."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person (or service) acting through the gateway, in one department and one role.

    ``role``: ``caseworker``, ``publisher``, ``auditor``, ``admin``, ``department_admin``
    (requests access for its department) or ``data_steward`` (decides on requests for its
    department's datasets).
    ``oidc_subject`` ties the user to an OIDC provider's ``sub`` claim, when bearer
    tokens are accepted.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    role: Mapped[str] = mapped_column(String(50))
    display_name: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Purpose(Base):
    """A purpose (legal basis) that a request may state and a grant may serve."""

    __tablename__ = "purposes"

    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Whether a request stating the purpose must name its case, and the regular
    # expression the whole case reference must match (null: any reference that does not
    # look like an identity or phone number; exchange.access.catalogue.check_case_ref).
    case_ref_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    case_ref_pattern: Mapped[str | None] = mapped_column(String(200))


class Grant(Base):
    """What a consuming department's role may see of one dataset, for which purposes.

    ``fields`` maps a field name to ``full`` or ``masked``; fields not named are
    never returned. ``purposes`` lists purpose codes. ``row_constraints`` maps a
    constraint name to its value (e.g. ``{"division_prefix": "3301"}``); rows
    outside it are not returned. The grant holds from ``valid_from`` until
    ``valid_until`` (open-ended when null) unless revoked.
    """

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_grantee", "grantee_department", "grantee_role", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grantee_department: Mapped[str] = mapped_column(String(100))
    grantee_role: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(String(100))
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    row_constraints: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    # How the grant came to be: ``direct`` (a central administrator's, for bootstrapping)
    # or ``request`` (the owner department's approval of ``sharing_request_id``).
    origin: Mapped[str] = mapped_column(String(20), default="direct", server_default="direct")
    sharing_request_id: Mapped[int | None] = mapped_column(Integer)


class CatalogueResource(Base):
    """A dataset's entry in the resource catalogue: who owns it and how it is shared.

    The fields, their sensitivity and masking style come from the dataset's standard;
    ``field_notes`` adds the owner's description of a field. ``sharing_type``:
    ``unconditional`` (granted on request), ``conditional`` (the owner decides) or
    ``not_shared`` (cannot be requested). ``update_frequency``: how often the owner
    promises new data (``realtime``, ``daily``, ``weekly``, ``monthly``, ``quarterly``,
    ``yearly``), what timeliness is measured against.
    """

    __tablename__ = "catalogue_resources"

    dataset: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner_department: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    update_frequency: Mapped[str] = mapped_column(String(20))
    sharing_type: Mapped[str] = mapped_column(String(20))
    contact: Mapped[str] = mapped_column(String(255), default="")
    field_notes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class SharingRequest(Base):
    """A consuming department's request for a dataset's fields, and the owner's decision.

    ``status``: ``submitted`` (awaiting the owner), ``approved``, ``narrowed`` (approved
    with less than asked: ``granted_*`` say what), ``refused`` (``decision_reason`` says
    why) or ``withdrawn``. An approval creates ``grant_id``; ``renewal_of`` names the
    request whose grant this one renews.
    """

    __tablename__ = "sharing_requests"
    __table_args__ = (
        Index("ix_sharing_requests_owner", "owner_department", "status"),
        Index("ix_sharing_requests_requester", "requester_department", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(100))
    owner_department: Mapped[str] = mapped_column(String(100))
    requester_department: Mapped[str] = mapped_column(String(100))
    grantee_role: Mapped[str] = mapped_column(String(50))
    requested_by: Mapped[str] = mapped_column(String(255))
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(Text)
    justification: Mapped[str] = mapped_column(Text)
    row_constraints: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    duration_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    granted_fields: Mapped[dict[str, str] | None] = mapped_column(JSON)
    granted_row_constraints: Mapped[dict[str, object] | None] = mapped_column(JSON)
    granted_days: Mapped[int | None] = mapped_column(Integer)
    grant_id: Mapped[int | None] = mapped_column(Integer)
    renewal_of: Mapped[int | None] = mapped_column(Integer)


class SharingRequestEvent(Base):
    """One step in a sharing request's history, seen by both departments."""

    __tablename__ = "sharing_request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("sharing_requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    department: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class ApiKey(Base):
    """An API key, stored only as a salted scrypt hash; shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[bytes]
    key_hash: Mapped[bytes]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(255))
    department: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who made it: "demo", "development" (an exchange in development mode) or "production";
    # NULL for keys made before origins were recorded. Production refuses the first two.
    origin: Mapped[str | None] = mapped_column(String(20))


class KeyEncryptionKey(Base):
    """A key-encryption key (KEK), stored wrapped under the master key.

    Exactly one is current;
    :meth:`exchange.security.keystore.LocalKeyStore.rotate_kek` re-wraps every live key
    under a new one and deletes the old. ``generation`` is unique, so two processes cannot
    both create the next KEK.
    """

    __tablename__ = "key_encryption_keys"

    kek_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, unique=True)
    wrapped: Mapped[bytes] = mapped_column()
    current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataKeyRecord(Base):
    """A data key of one dataset and period, wrapped under a KEK; never stored in the clear.

    The current key of (dataset, period) is its highest generation if that is ``current``.
    Retired keys still decrypt; a destroyed key (crypto-shredded) keeps this row as a
    tombstone with ``wrapped`` and ``kek_id`` erased and ``destroyed_at`` set.
    """

    __tablename__ = "data_keys"
    __table_args__ = (UniqueConstraint("dataset", "period", "generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    dataset: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes | None] = mapped_column()
    kek_id: Mapped[str | None] = mapped_column(ForeignKey("key_encryption_keys.kek_id"))
    current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SigningKeyRecord(Base):
    """A department's Ed25519 key: the public key in the clear, the private key wrapped.

    A retired key keeps its public key (to verify what was already published) but its
    private key is erased. The current key is the department's highest generation.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("department", "generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    department: Mapped[str] = mapped_column(String(100))
    generation: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[bytes] = mapped_column()
    wrapped_private: Mapped[bytes | None] = mapped_column()
    kek_id: Mapped[str | None] = mapped_column(ForeignKey("key_encryption_keys.kek_id"))
    current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConnectorCheckpoint(Base):
    """Where a connector's current or last run stands; a killed run resumes from here."""

    __tablename__ = "connector_checkpoints"

    connector_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))
    read: Mapped[int] = mapped_column(BigInteger, default=0)
    published: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    watermark: Mapped[str | None] = mapped_column(String(100))
    watermark_key: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConnectorRun(Base):
    """One run of a connector and its reconciled counts."""

    __tablename__ = "connector_runs"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(100), index=True)
    department: Mapped[str] = mapped_column(String(100))
    dataset: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))
    read: Mapped[int] = mapped_column(BigInteger, default=0)
    published: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A web console sign-in (``/ui/``), referenced by its cookie.

    ``id`` is the SHA-256 of the cookie's random token (the token itself is never
    stored); ``csrf_token`` is what every form of the session must send back. The
    identity (actor, department, role, key or OIDC subject) is the one the sign-in
    established; the credential behind it is checked again on every request, so a
    revoked key or a disabled user ends the session at once. ``ended_at``: signed out.
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(20))  # api_key or oidc
    key_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    department: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The case the caseworker chose once for the session: purpose code and case reference.
    purpose: Mapped[str | None] = mapped_column(String(100))
    case_ref: Mapped[str | None] = mapped_column(String(100))


class ConsoleLogin(Base):
    """A single sign-on under way: the OIDC ``state`` (stored as its SHA-256), the nonce
    the ID token must carry and the PKCE verifier, kept until the provider calls back
    (at most ten minutes)."""

    __tablename__ = "console_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
