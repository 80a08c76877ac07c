"""One record's way out of a department: map, validate, encrypt, index, encode, produce.

:class:`RecordPipeline` is shared by file and database runs (``connectors.publisher``)
and the gateway's HTTP push API. A row either leaves as a Confluent-framed Avro
record on ``std.<dataset>.v<N>`` (its sensitive fields already encrypted, blind
indexes beside encrypted identifiers) or as a dead letter on
``dlq.<department>.<dataset>`` (:func:`dlq_topic`) with its original content and
reasons, its sensitive values encrypted as a published record's are
(:meth:`RecordPipeline.dead_letter`).

Rows are published in batches (:mod:`connectors.batches`), each in one Kafka
transaction: a record carries its provenance headers and the header ``batch``
(no signature of its own); :meth:`RecordPipeline.settle` publishes the batch's
manifests (the records' digests on each partition, signed once with the
department's key) and commits. Any send Kafka does not acknowledge aborts the
batch and fails the run, so nothing is silently lost, and nothing half-published
is visible to ``read_committed`` readers.

A row goes through three steps, which :meth:`RecordPipeline.handle` runs one after
the other: :meth:`~RecordPipeline.admit` (the key checks, in source order),
:class:`RecordPreparer` (map, validate, hash, encrypt, index, encode, digest: the
costly part, which needs no Kafka, no database and no signing key, so a connector
run can do it in worker processes, see :mod:`connectors.workers`) and
:meth:`~RecordPipeline.conclude` (count the row, then send it or dead-letter it, in
source order).

Rule of this module: no plaintext of a sensitive field is ever logged or sent.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.batches import BatchPublisher
from connectors.csvsource import SourceRow
from connectors.definition import ConnectorDefinition
from connectors.mapping import Problem, json_safe, map_row
from exchange.core.errors import SchemaNotFoundError, WireFormatError
from exchange.kafka.producer import Producer
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.blindindex import blind_index
from exchange.security.crypto import hmac_sha256
from exchange.security.keystore import FieldCipher, KeyStore, period_of
from schemas import SchemaStore
from schemas.standards import Sensitivity

# json.dumps with keyword arguments builds a new encoder for every call; these are the
# same encoders, built once (the output is byte for byte what json.dumps gives).
_HASH_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
_VALUE_JSON = json.JSONEncoder(ensure_ascii=False)


def _replace_undecodable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


DLQ_FIELD_PREFIX = "dlq:"  # dead letters' sealed values are bound to "dlq:<column>"
SEALED_MESSAGE = "(sealed: the message may quote a sensitive value)"


def dlq_topic(department: str, dataset: str) -> str:
    """Where a department's rejected rows of ``dataset`` go: its own topic, read by it alone."""
    return f"dlq.{department}.{dataset}"


def dead_letter_key(entry: dict[str, Any]) -> str:
    """The record key a dead letter is sent (and its values sealed) under."""
    return f"{entry['department']}:{entry.get('source_id') or 'line:' + str(entry['line'])}"


def open_dead_letter(cipher: FieldCipher, entry: dict[str, Any]) -> dict[str, Any]:
    """A dead letter with its sealed values opened: ``raw`` the line as read, ``values``
    every column, each reason's ``message``. Raises DecryptionError if the keys are not
    the department's."""
    key = dead_letter_key(entry)

    def unseal(field_name: str, sealed: str) -> str:
        token = base64.b64decode(sealed)
        return cipher.decrypt(entry["dataset"], field_name, key, token).decode("utf-8", "replace")

    opened = dict(entry)
    if "raw_sealed" in entry:
        opened["raw"] = unseal(f"{DLQ_FIELD_PREFIX}_raw", entry["raw_sealed"])
    values = dict(entry.get("values") or {})
    for column in entry.get("sealed") or []:
        values[column] = unseal(f"{DLQ_FIELD_PREFIX}{column}", values[column])
    opened["values"] = values
    opened["reasons"] = [
        {**r, "message": unseal(f"{DLQ_FIELD_PREFIX}reason:{r['field']}", r["message_sealed"])}
        if "message_sealed" in r else r
        for r in entry.get("reasons") or []
    ]  # fmt: skip
    return opened


@dataclass(frozen=True)
class Keys:
    """What a connector needs to protect what it publishes."""

    keystore: KeyStore
    linkage_key: bytes

    @property
    def cipher(self) -> FieldCipher:
        return FieldCipher(self.keystore)


@dataclass(frozen=True)
class Prepared:
    """A record ready to send: its framed value, keyed content hash and digest (what its
    batch's manifest lists, :func:`exchange.security.manifest.record_digest`), and the
    codes of the flags its values raised (accepted, worth a warning:
    ``division_code.retired``)."""

    source_id: str
    value: bytes
    content_hash: str
    digest: bytes
    flags: tuple[str, ...] = ()
    # The source's change time (ISO 8601, UTC) for the header ``source_changed_at``, if
    # the definition names a ``changed_at`` column and the row has a value there.
    source_changed_at: str | None = None


@dataclass
class Admitted:
    """A row whose key was checked: what preparing it needs, and the problems so far.

    ``values`` is None when there is nothing to map (the source could not parse the row).
    """

    row: SourceRow
    source_id: str
    problems: list[Problem]
    values: dict[str, str] | None


@dataclass
class Tally:
    """Counts of one run (or one pushed batch); they reconcile: read = published + rejected."""

    read: int = 0
    published: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # Flags of published records (accepted values worth a warning), by code.
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.read == self.published + self.rejected


@dataclass(frozen=True)
class PreparerSpec:
    """What a :class:`RecordPreparer` is built from (besides its cipher): plain, picklable
    values, so a worker process can build one of its own (see :mod:`connectors.workers`)."""

    definition: ConnectorDefinition
    schema_id: int
    schema_text: str
    linkage_key: bytes = field(repr=False)


class RecordPreparer:
    """A record's own work: map, validate, hash, encrypt, blind-index, encode, digest.

    It needs neither Kafka nor the database nor the department's signing key (a batch
    is signed once, by the run's process): the definition, the registered wire
    schema, the linkage key (``spec``) and a cipher for the sensitive fields.
    """

    def __init__(self, spec: PreparerSpec, cipher: FieldCipher) -> None:
        self.spec = spec
        self.definition = spec.definition
        self.standard = spec.definition.standard
        self.dataset = self.standard.dataset
        self.department = spec.definition.connector.department
        self.schema_id = spec.schema_id
        self.serde = AvroSerde(self._schema)
        self.cipher = cipher
        self.linkage_key = spec.linkage_key
        self._sensitive = [
            (f, self.standard.blind_index_domain(f) if f.identifier else None)
            for f in self.standard.fields
            if f.sensitivity is Sensitivity.SENSITIVE
        ]
        self.needs_data_key = bool(self._sensitive)
        self._changed_at = spec.definition.source.changed_at
        self._changed_zone = ZoneInfo(spec.definition.source.changed_at_zone)

    def changed_at(self, values: dict[str, str]) -> str | Problem | None:
        """The row's source change time as ISO 8601 UTC text: None if the definition names
        no ``changed_at`` column or the row leaves it empty (unknown, never invented); a
        problem if it is not a time."""
        column = self._changed_at
        text = values.get(column, "").strip() if column is not None else ""
        if column is None or not text:
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return (column, "changed_at.invalid", f"{text!r} is not an ISO 8601 time")
        if when.tzinfo is None:
            when = when.replace(tzinfo=self._changed_zone)
        return when.astimezone(UTC).isoformat()

    def _schema(self, schema_id: int) -> str:
        if schema_id != self.schema_id:
            raise SchemaNotFoundError(f"schema {schema_id} is not this connector's")
        return self.spec.schema_text

    def prepare(
        self, values: dict[str, str], source_id: str, *, period: str
    ) -> Prepared | list[Problem]:
        """Map, validate, encrypt (under the data key of ``period``), index, encode and digest
        a row; or say why it cannot go."""
        flags: list[Problem] = []
        record, problems = map_row(self.definition, self.standard, values, flags)
        changed = self.changed_at(values)
        if isinstance(changed, tuple):
            problems = [*problems, changed]
            changed = None
        if problems:
            return problems
        content_hash = hmac_sha256(
            self.linkage_key, _HASH_JSON.encode(json_safe(record)).encode()
        ).hex()
        record_key = f"{self.department}:{source_id}"
        for spec, domain in self._sensitive:
            plain = record.get(spec.name)
            if plain is None:
                continue
            if domain is not None:
                record[spec.name + "_bidx"] = blind_index(self.linkage_key, domain, str(plain))
            record[spec.name] = self.cipher.encrypt(
                self.dataset,
                spec.name,
                record_key,
                _VALUE_JSON.encode(json_safe({"v": plain})["v"]).encode(),
                period=period,
            )
        try:
            value = self.serde.encode(self.schema_id, record)
        except WireFormatError as exc:
            return [("_row", "avro.encode", exc.message)]
        digest = manifest.record_digest(
            department=self.department,
            dataset=self.dataset,
            source_id=source_id,
            content_hash=content_hash,
            value=value,
            source_changed_at=changed,
        )
        return Prepared(
            source_id, value, content_hash, digest, tuple(code for _, code, _ in flags), changed
        )


class RecordPipeline:
    """Publishes rows of one connector definition through one transactional producer.

    ``run_id`` names its batches (``<run id>/<sequence>``); a fresh one if not given.
    """

    def __init__(
        self,
        definition: ConnectorDefinition,
        *,
        store: SchemaStore,
        keys: Keys,
        kafka: Producer,
        period: str | None = None,
        source: str = "",
        run_id: str | None = None,
    ) -> None:
        self.definition = definition
        self.source = source
        self.standard = definition.standard
        self.wire = self.standard.wire
        self.dataset = self.standard.dataset
        self.topic = self.standard.topic
        self.department = definition.connector.department
        self.dlq_topic = dlq_topic(self.department, self.dataset)
        self.schema_id = store.register(self.wire.subject, self.wire.schema)
        self.cipher = keys.cipher
        self.linkage_key = keys.linkage_key
        self.preparer = RecordPreparer(
            PreparerSpec(
                definition,
                schema_id=self.schema_id,
                schema_text=store.schema_text(self.schema_id),
                linkage_key=self.linkage_key,
            ),
            self.cipher,
        )
        self.serde = AvroSerde(store.schema_text)
        sensitive = {f.name for f in self.standard.fields if f.sensitivity is Sensitivity.SENSITIVE}
        self._sensitive_fields = frozenset(sensitive)
        self._known_fields = frozenset(f.name for f in self.standard.fields)
        # Source columns that feed only non-sensitive fields: shown as read in dead letters.
        feeds: dict[str, set[str]] = {}
        for name, mapping in definition.fields.items():
            for column in mapping.columns:
                feeds.setdefault(column, set()).add(name)
        plain = {c for c, names in feeds.items() if not names & sensitive}
        key_column = definition.source.key
        if not feeds.get(key_column, set()) & sensitive:
            plain.add(key_column)  # the record id: in the dead letter's key anyway
        changed_column = definition.source.changed_at
        if changed_column is not None and not feeds.get(changed_column, set()) & sensitive:
            plain.add(changed_column)  # a time of change, nobody's personal data
        self._plain_columns = frozenset(plain)
        self._fixed_period = period
        self.kafka = kafka
        self.batches = BatchPublisher(
            kafka,
            department=self.department,
            dataset=self.dataset,
            connector_id=definition.connector.id,
            signing_key=keys.keystore.signing_key(self.department),
            schema_id=store.register(manifest.SUBJECT, manifest.SCHEMA),
            serde=self.serde,
            run_id=run_id or uuid.uuid4().hex,
        )
        self._static_headers = [
            (provenance.DEPARTMENT, self.department.encode()),
            (provenance.DATASET, self.dataset.encode()),
            (provenance.CONNECTOR_ID, definition.connector.id.encode()),
            (provenance.CONNECTOR_VERSION, definition.connector.version.encode()),
        ]

    @property
    def pending(self) -> int:
        """Records and dead letters of the open batch (sent, not yet committed)."""
        return self.batches.size

    def record_key(self, source_id: str) -> str:
        return f"{self.department}:{source_id}"

    def period(self) -> str:
        """The data-key period to encrypt under now: fixed, or the clock's month (UTC).

        Data keys are per month: a long-running pipeline (the push API) moves on with time.
        """
        return self._fixed_period or period_of(datetime.now(UTC))

    def prepare(self, values: dict[str, str], source_id: str) -> Prepared | list[Problem]:
        """Map, validate, encrypt, index and encode a row; or say why it cannot go."""
        return self.preparer.prepare(values, source_id, period=self.period())

    def _headers(
        self, source_id: str, content_hash: str, changed_at: str | None = None
    ) -> list[tuple[str, bytes]]:
        headers = [
            *self._static_headers,
            (provenance.SOURCE_ID, source_id.encode()),
            (provenance.CONTENT_HASH, content_hash.encode()),
            (provenance.INGEST_TIME, datetime.now(UTC).isoformat().encode()),
            (manifest.BATCH, self.batches.batch_id.encode()),
        ]
        if changed_at is not None:  # covered by the record's digest (its batch's manifest)
            headers.append((provenance.SOURCE_CHANGED_AT, changed_at.encode()))
        return headers

    def publish(self, prepared: Prepared) -> None:
        """Send a prepared record in the open batch, with its provenance headers; its
        batch's manifest will list its digest."""
        source_id = prepared.source_id
        self.batches.send(
            self.topic,
            prepared.value,
            key=f"{self.department}:{source_id}".encode(),
            headers=self._headers(source_id, prepared.content_hash, prepared.source_changed_at),
            digest=prepared.digest,
        )

    def withdraw(self, source_id: str) -> None:
        """Send a tombstone in the open batch: the department withdraws the record
        ``source_id``. Its batch's manifest lists the digest of the withdrawal (content
        hash ``withdrawn``, value b"")."""
        digest = manifest.record_digest(
            department=self.department,
            dataset=self.dataset,
            source_id=source_id,
            content_hash=provenance.WITHDRAWN,
            value=b"",
        )
        self.batches.send(
            self.topic,
            None,
            key=self.record_key(source_id).encode(),
            headers=self._headers(source_id, provenance.WITHDRAWN),
            digest=digest,
        )

    def dead_letter(
        self, row: SourceRow, source_id: str, problems: list[Problem]
    ) -> dict[str, Any]:
        """Send a rejected row to the department's ``dlq.<department>.<dataset>`` with its
        reasons; returns the entry (as sent: sensitive values encrypted).

        A rejected row is kept like a published record: the line as read (``raw_sealed``)
        and the value of every source column that feeds a sensitive field of the
        standard, or feeds no field at all (nothing says it is harmless), are encrypted
        under the dataset's data key, bound to the dead letter's record key and the
        column (:data:`DLQ_FIELD_PREFIX`); so is the message of a problem with a
        sensitive field or with no field of the standard (``_row``, a key column), which
        may quote the value. Columns of non-sensitive fields stay readable in
        ``values``, so a clerk sees what to fix; :func:`open_dead_letter` (``exchange
        connector rejects``) opens the rest with the department's keys.
        """
        key = self.record_key(source_id or f"line:{row.line}")
        period = self.period()
        values: dict[str, Any] = {}
        sealed: list[str] = []
        for column, value in row.values.items():
            if column in self._plain_columns:
                # Bytes the source could not decode (surrogate escapes) shown as U+FFFD.
                values[column] = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            else:
                values[column] = self._seal(f"{DLQ_FIELD_PREFIX}{column}", key, value, period)
                sealed.append(column)
        reasons: list[dict[str, Any]] = []
        for field_name, code, message in problems:
            reason: dict[str, Any] = {"field": field_name, "code": code, "message": message}
            if field_name in self._sensitive_fields or field_name not in self._known_fields:
                reason["message"] = SEALED_MESSAGE
                reason["message_sealed"] = self._seal(
                    f"{DLQ_FIELD_PREFIX}reason:{field_name}", key, message, period
                )
            reasons.append(reason)
        entry = {
            "connector": self.definition.connector.id,
            "department": self.department,
            "dataset": self.dataset,
            "source": self.source,
            "line": row.line,
            "source_id": source_id or None,
            # The line as read holds every value: sealed whole, under "dlq:_raw".
            "raw_sealed": self._seal(f"{DLQ_FIELD_PREFIX}_raw", key, row.raw, period),
            "values": values,
            "sealed": sealed,
            "reasons": reasons,
            "at": datetime.now(UTC).isoformat(),
        }
        payload = json.dumps(entry, ensure_ascii=False).encode()
        self.batches.send(self.dlq_topic, payload, key=key.encode(), headers=(), digest=None)
        return entry

    def _seal(self, field_name: str, record_key: str, text: str, period: str) -> str:
        plain = text.encode("utf-8", "surrogateescape")  # undecodable bytes kept as read
        token = self.cipher.encrypt(self.dataset, field_name, record_key, plain, period=period)
        return base64.b64encode(token).decode()

    def admit(self, row: SourceRow, key_column: str, seen: set[str]) -> Admitted:
        """Check a row's key (in source order): empty, or met before in ``seen``.

        ``seen`` holds the source keys met so far in this run (or pushed batch):
        a key met again is a duplicate, whether its first row was published or not.
        """
        key = row.values.get(key_column, "").strip()
        problems = list(row.problems)
        # A row the source could not parse at all has no values: its own problem says it all.
        if not (row.values or not problems):
            return Admitted(row, key, problems, None)
        if not key:
            problems.append((key_column, "key.missing", f"the key column {key_column!r} is empty"))
        elif key in seen:
            problems.append(
                (key_column, "key.duplicate", f"key {key!r} appears earlier in this source")
            )
        else:
            seen.add(key)
        # Map even a row already known to be bad, so the clerk sees every problem at once;
        # undecodable bytes are mapped as U+FFFD (the row is rejected for them anyway).
        values = row.values
        if any(code == "encoding.invalid_bytes" for _, code, _ in problems):
            values = {k: _replace_undecodable(v) for k, v in values.items()}
        return Admitted(row, key, problems, values)

    def conclude(
        self,
        admitted: Admitted,
        result: Prepared | list[Problem] | None,
        tally: Tally,
    ) -> dict[str, Any] | None:
        """Count a row and publish it, or dead-letter it; returns the dead letter, if any.

        ``result`` is what preparing ``admitted.values`` gave (None if there was nothing
        to prepare).
        """
        tally.read += 1
        problems = admitted.problems
        if isinstance(result, Prepared):
            if not problems:
                self.publish(result)
                tally.published += 1
                for code in result.flags:
                    tally.flags[code] = tally.flags.get(code, 0) + 1
                return None
        elif result is not None:
            problems = problems + result
        tally.rejected += 1
        for _, code, _ in problems:
            tally.reasons[code] = tally.reasons.get(code, 0) + 1
        return self.dead_letter(admitted.row, admitted.source_id, problems)

    def handle(
        self, row: SourceRow, key_column: str, seen: set[str], tally: Tally
    ) -> dict[str, Any] | None:
        """Publish or dead-letter one row, counting it; returns the dead letter, if any.

        ``seen`` holds the source keys met so far in this run (or pushed batch):
        a key met again is a duplicate, whether its first row was published or not.
        """
        admitted = self.admit(row, key_column, seen)
        result = None
        if admitted.values is not None:
            result = self.prepare(admitted.values, admitted.source_id)
        return self.conclude(admitted, result, tally)

    def settle(self, timeout: float = 120.0) -> None:
        """Publish the open batch's manifests and commit it (once Kafka acknowledged every
        record of it); raise BrokerError otherwise, the batch aborted."""
        self.batches.commit(timeout)

    def abort(self) -> None:
        """Abort the open batch: nothing of it becomes visible to ``read_committed`` readers."""
        self.batches.abort()
