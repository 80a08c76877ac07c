"""The HTTP push API: a department posts batches of records to one of its push connectors.

``POST /v1/publish/{connector_id}`` with a publisher's key. The connector's
definition (``<connectors_dir>/<connector_id>.toml``, ``[source] type = "push"``)
says how the department's fields map to the standard. Each record of the batch
goes through the same pipeline as a file run: published (mapped, validated,
encrypted) or dead-lettered with its reasons; the response reconciles the batch:
received = published + rejected. A publisher can push only to its own
department's connectors; the decision is audited.

Each HTTP batch is one Kafka transaction (:mod:`connectors.batches`): its records,
its dead letters and, on each partition it wrote to, a manifest signed with the
department's key; the response is sent once it committed. If Kafka does not take
it, the transaction is aborted (nothing of the batch is visible to the registry
builder) and the answer is 503: the caller sends the batch again. A gateway process
has one transactional producer (a transactional id of its own), used by one
request at a time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from connectors.csvsource import SourceRow
from connectors.definition import ConnectorDefinition, PushSourceSpec, load_definition
from connectors.pipeline import Keys, RecordPipeline, Tally, dlq_topic
from connectors.sources import stringify
from exchange.core.errors import BrokerError, ConfigError, NotFoundError
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from gateway.access import authorize
from gateway.deps import AppState, StateDep
from schemas.store import SchemaStore

router = APIRouter(prefix="/v1", tags=["publishing"])
MAX_BATCH = 1000


class Batch(BaseModel):
    """Records as the department keeps them: its own field names, values as JSON."""

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class Rejection(BaseModel):
    index: int = Field(description="0-based position of the record in the batch.")
    source_id: str | None
    reasons: list[dict[str, str]]


class BatchResult(BaseModel):
    connector: str
    received: int
    published: int
    rejected: int
    rejections: list[Rejection]


def push_transactional_id() -> str:
    """A transactional id no other gateway process uses (so none fences another)."""
    return f"exchange-push-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class Publishers:
    """One transactional producer per gateway process, and one pipeline per push connector.

    ``lock`` serialises the batches: one transaction at a time is open on the producer.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kafka: Producer | None = None
        self.pipelines: dict[str, RecordPipeline] = {}

    def close(self) -> None:
        if self.kafka is not None:
            self.kafka.close()

    def reset(self) -> None:
        """Let go of the producer (and the pipelines on it) after a failed batch: a
        transactional producer may be unusable after some failures (e.g. fenced); the
        next batch makes a new one."""
        self.close()
        self.kafka = None
        self.pipelines.clear()

    def pipeline(self, state: AppState, definition: ConnectorDefinition) -> RecordPipeline:
        connector_id = definition.connector.id
        found = self.pipelines.get(connector_id)
        if found is None or found.definition != definition:
            bootstrap = state.settings.kafka.bootstrap
            if self.kafka is None:
                self.kafka = Producer(bootstrap, transactional_id=push_transactional_id())
            standard = definition.standard
            dead = dlq_topic(definition.connector.department, standard.dataset)
            ensure_topics(bootstrap, [standard.topic, dead])
            keys = Keys(state.keystore, state.settings.linkage_key.get_secret_value().encode())
            found = RecordPipeline(
                definition,
                store=SchemaStore(state.sessions),
                keys=keys,
                kafka=self.kafka,
                source="HTTP push API",
            )
            self.pipelines[connector_id] = found
        return found


def _definition(state: AppState, connector_id: str) -> ConnectorDefinition:
    path = state.settings.connectors_path / f"{connector_id}.toml"
    if not path.is_file():
        raise NotFoundError(f"no push connector {connector_id!r} is defined on this gateway")
    definition = load_definition(path)
    if not isinstance(definition.source, PushSourceSpec):
        # A file or SQL connector of that id exists, but there is no push connector to post to.
        raise NotFoundError(f"connector {connector_id!r} is not a push connector")
    return definition


@router.post(
    "/publish/{connector_id}",
    response_model=BatchResult,
    summary="Publish a batch of a department's records through one of its push connectors",
    responses={
        401: {"description": "Missing or invalid API key"},
        403: {"description": "Not a publisher of the connector's department"},
        404: {"description": "No such push connector"},
        503: {"description": "Kafka did not acknowledge the batch; send it again"},
    },
)
def publish_batch(
    state: StateDep,
    request: Request,
    connector_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")],
    body: Annotated[Any, Body(description='A Batch: {"records": [...]}, 1 to 1,000 records.')],
) -> BatchResult:
    try:
        definition = _definition(state, connector_id)
    except (NotFoundError, ConfigError):
        # Authenticate (and audit) first, so an anonymous caller learns nothing of connectors.
        authorize(state, request, action="publish.batch", roles=frozenset({"publisher"}))
        raise
    department = definition.connector.department
    authorize(
        state,
        request,
        action="publish.batch",
        roles=frozenset({"publisher"}),
        dataset=definition.standard.dataset,
        department=department,
    )
    # The body is checked after the decision is audited, so a malformed batch is audited too.
    try:
        batch = Batch.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    publishers: Publishers = state.publishers
    tally = Tally()
    rejections: list[Rejection] = []
    seen: set[str] = set()
    with publishers.lock:
        pipeline = publishers.pipeline(state, definition)
        try:
            for index, record in enumerate(batch.records):
                row = SourceRow(
                    index + 1,
                    stringify(record),
                    json.dumps(record, ensure_ascii=False, default=str),
                )
                entry = pipeline.handle(row, definition.source.key, seen, tally)
                if entry is not None:
                    rejections.append(
                        Rejection(
                            index=index, source_id=entry["source_id"], reasons=entry["reasons"]
                        )
                    )
            pipeline.settle()  # the manifests, then the commit
        except BrokerError:
            publishers.reset()  # the batch was aborted; the next one gets a fresh producer
            raise
        except BaseException:
            # Not Kafka's fault (e.g. the keystore failed): abort the batch, keep the producer.
            try:
                pipeline.abort()
            except BrokerError:
                publishers.reset()
            raise
    return BatchResult(
        connector=connector_id,
        received=tally.read,
        published=tally.published,
        rejected=tally.rejected,
        rejections=rejections,
    )
