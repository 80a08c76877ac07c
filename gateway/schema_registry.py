"""The schema registry's Confluent-compatible REST API, under ``/registry``.

Confluent's clients (``SchemaRegistryClient``, ``AvroSerializer``,
``AvroDeserializer``) work against it unchanged with
``{"url": "http://<gateway>/registry", "basic.auth.user.info": "any:<api key>"}``.
Errors use Confluent's bodies, ``{"error_code": 40401, "message": "..."}``.
Reads need any valid key; registering, deleting and configuring need the
publisher or admin role. Every decision is audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from exchange.core.errors import InvalidSchemaError
from gateway.access import authorize
from gateway.confluent import MEDIA_TYPE
from gateway.deps import AppState, StateDep
from schemas.references import Reference, parse_references
from schemas.store import RegisteredVersion, SchemaStore, incompatibility_error

CONTENT_TYPE = MEDIA_TYPE
READERS = frozenset({"caseworker", "publisher", "auditor", "admin"})
WRITERS = frozenset({"publisher", "admin"})
ADMINS = frozenset({"admin"})


class RegistryJSONResponse(JSONResponse):
    """JSON in Confluent's media type (what the routes send, so what the document says)."""

    media_type = CONTENT_TYPE


# Error bodies are Confluent's (gateway.confluent; gateway.problems answers and documents them).
router = APIRouter(
    prefix="/registry",
    tags=["schema registry"],
    default_response_class=RegistryJSONResponse,
    responses={
        401: {"description": "Missing, malformed, wrong, revoked or expired API key (40101)"},
        403: {"description": "The key's role may not do this (40301)"},
        422: {"description": "Invalid schema, version, compatibility level or request"},
        503: {"description": "The audit log could not be written; nothing was done"},
    },
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such subject, version, schema or configuration (404xx)"}
}
REGISTER_ERRORS = {
    **NOT_FOUND,
    409: {"description": "Incompatible with the subject's earlier versions (409)"},
}


class SchemaRequest(BaseModel):
    """A schema as Confluent's clients send it: ``schema``, ``schemaType``, ``references``,
    and (for imports) ``id`` and ``version``."""

    model_config = ConfigDict(extra="allow")

    schema_: str | None = None
    schemaType: str | None = None
    references: list[Any] | None = None
    id: int | None = None
    version: int | None = None

    def avro(self) -> str:
        if self.schemaType not in (None, "AVRO"):
            raise InvalidSchemaError(
                f"Invalid schema type {self.schemaType}: only AVRO schemas are supported"
            )
        if not self.schema_:
            raise InvalidSchemaError("Invalid schema: the request has no 'schema'")
        return self.schema_

    def refs(self) -> list[Reference]:
        return parse_references(self.references)


def _schema_body(body: dict[str, Any]) -> SchemaRequest:
    data = dict(body)
    if "schema" in data:
        data["schema_"] = data.pop("schema")
    try:
        return SchemaRequest.model_validate(data)
    except PydanticValidationError as exc:
        raise InvalidSchemaError(f"Invalid request: {exc.errors()[0]['msg']}") from exc


def _version_body(found: RegisteredVersion) -> dict[str, Any]:
    """A subject version as Confluent answers it (``references`` only when there are any)."""
    answer: dict[str, Any] = {
        "subject": found.subject,
        "version": found.version,
        "id": found.schema_id,
        "schema": found.schema,
    }
    if found.references:
        answer["references"] = [r.to_json() for r in found.references]
    return answer


class ConfigRequest(BaseModel):
    compatibility: str


class ModeRequest(BaseModel):
    mode: str


def reply(content: Any, status: int = 200) -> JSONResponse:
    return RegistryJSONResponse(content, status_code=status)


def _store(state: StateDep) -> SchemaStore:
    store: SchemaStore = state.schema_store
    return store


SchemaBody = Annotated[dict[str, Any], Body()]
Deleted = Annotated[bool, Query(description="Include soft-deleted subjects or versions.")]
# Confluent's schema ids are 32-bit; a larger number is refused (422), not sent to the database.
SchemaId = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="The schema's global id.")]
DeletedOnly = Annotated[
    bool, Query(alias="deletedOnly", description="Only soft-deleted subjects or versions.")
]
FetchMaxId = Annotated[
    bool, Query(alias="fetchMaxId", description="Also answer the largest id given (maxId).")
]
Permanent = Annotated[bool, Query(description="Hard delete (only after a soft delete).")]
Normalize = Annotated[
    bool, Query(description="Use Confluent's normal form of the schema (schemas.normalize).")
]
SubjectPrefix = Annotated[
    str, Query(alias="subjectPrefix", max_length=255, description="Only subjects starting so.")
]
Force = Annotated[bool, Query(description="Set IMPORT even where schemas are registered.")]


@router.get("/subjects", summary="List subjects")
def list_subjects(
    state: StateDep,
    request: Request,
    deleted: Deleted = False,
    deleted_only: DeletedOnly = False,
    subject_prefix: SubjectPrefix = "",
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    found = _store(state).subjects(include_deleted=deleted, deleted_only=deleted_only)
    return reply([s for s in found if s.startswith(subject_prefix)])


@router.get(
    "/subjects/{subject}/versions", summary="List a subject's versions", responses=NOT_FOUND
)
def list_versions(
    state: StateDep,
    request: Request,
    subject: str,
    deleted: Deleted = False,
    deleted_only: DeletedOnly = False,
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    store = _store(state)
    return reply(store.versions(subject, include_deleted=deleted, deleted_only=deleted_only))


@router.get(
    "/subjects/{subject}/versions/{version}", summary="Get one version", responses=NOT_FOUND
)
def get_version(
    state: StateDep, request: Request, subject: str, version: str, deleted: Deleted = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    found = _store(state).get_version(subject, version, include_deleted=deleted)
    return reply(_version_body(found))


@router.get(
    "/subjects/{subject}/versions/{version}/schema",
    summary="Get one version's schema",
    responses=NOT_FOUND,
)
def get_version_schema(
    state: StateDep, request: Request, subject: str, version: str, deleted: Deleted = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    found = _store(state).get_version(subject, version, include_deleted=deleted)
    return reply(json.loads(found.schema))


@router.post(
    "/subjects/{subject}/versions",
    summary="Register a schema under a subject",
    responses=REGISTER_ERRORS,
)
def register(
    state: StateDep, request: Request, subject: str, body: SchemaBody, normalize: Normalize = False
) -> JSONResponse:
    authorize(state, request, action="registry.register", roles=WRITERS, dataset=subject)
    asked = _schema_body(body)
    schema_id = _store(state).register(
        subject,
        asked.avro(),
        references=asked.refs(),
        schema_id=asked.id,
        version=asked.version,
        normalize=normalize,
    )
    return reply({"id": schema_id})


@router.post(
    "/subjects/{subject}",
    summary="Is this schema registered under the subject?",
    responses=NOT_FOUND,
)
def lookup(
    state: StateDep,
    request: Request,
    subject: str,
    body: SchemaBody,
    deleted: Deleted = False,
    normalize: Normalize = False,
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    asked = _schema_body(body)
    found = _store(state).lookup(
        subject,
        asked.avro(),
        references=asked.refs(),
        include_deleted=deleted,
        normalize=normalize,
    )
    return reply(_version_body(found))


@router.delete(
    "/subjects/{subject}", summary="Delete a subject (soft, or permanent)", responses=NOT_FOUND
)
def delete_subject(
    state: StateDep, request: Request, subject: str, permanent: Permanent = False
) -> JSONResponse:
    authorize(state, request, action="registry.delete", roles=WRITERS, dataset=subject)
    return reply(_store(state).delete_subject(subject, permanent=permanent))


@router.delete(
    "/subjects/{subject}/versions/{version}", summary="Delete a version", responses=NOT_FOUND
)
def delete_version(
    state: StateDep, request: Request, subject: str, version: str, permanent: Permanent = False
) -> JSONResponse:
    authorize(state, request, action="registry.delete", roles=WRITERS, dataset=subject)
    return reply(_store(state).delete_version(subject, version, permanent=permanent))


@router.get(
    "/schemas/ids/{schema_id}", summary="Get a schema by its global id", responses=NOT_FOUND
)
def get_schema(
    state: StateDep, request: Request, schema_id: SchemaId, fetch_max_id: FetchMaxId = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    store = _store(state)
    schema, references = store.schema_of(schema_id)
    answer: dict[str, Any] = {"schema": schema}
    if references:
        answer["references"] = [r.to_json() for r in references]
    if fetch_max_id:
        answer["maxId"] = store.max_id()
    return reply(answer)


@router.get("/schemas/ids/{schema_id}/schema", summary="A schema by its id, unwrapped",
            responses=NOT_FOUND)  # fmt: skip
def get_schema_only(state: StateDep, request: Request, schema_id: SchemaId) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply(json.loads(_store(state).schema_of(schema_id)[0]))


@router.get("/schemas/ids/{schema_id}/subjects", summary="The subjects holding a schema id",
            responses=NOT_FOUND)  # fmt: skip
def get_schema_subjects(
    state: StateDep, request: Request, schema_id: SchemaId, deleted: Deleted = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    uses = _store(state).uses_of(schema_id, include_deleted=deleted)
    return reply(sorted({subject for subject, _ in uses}))


@router.get("/schemas/ids/{schema_id}/versions",
            summary="The subject versions holding a schema id", responses=NOT_FOUND)  # fmt: skip
def get_schema_versions(
    state: StateDep, request: Request, schema_id: SchemaId, deleted: Deleted = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    uses = _store(state).uses_of(schema_id, include_deleted=deleted)
    return reply([{"subject": subject, "version": version} for subject, version in uses])


@router.get("/schemas", summary="Every version of every subject, with its schema")
def list_schemas(
    state: StateDep,
    request: Request,
    subject_prefix: SubjectPrefix = "",
    deleted: Deleted = False,
    latest_only: Annotated[bool, Query(alias="latestOnly")] = False,
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    found = _store(state).all_versions(
        subject_prefix=subject_prefix, include_deleted=deleted, latest_only=latest_only
    )
    return reply([_version_body(v) for v in found])


@router.get("/schemas/types", summary="The schema types this registry accepts")
def schema_types(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply(["AVRO"])


@router.get("/contexts", summary="The registry's contexts (only the default one)")
def contexts(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply(["."])


@router.get("/", summary="The registry's root (Confluent clients probe it)")
def root(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply({})


@router.post(
    "/compatibility/subjects/{subject}/versions",
    summary="Would registering a schema under the subject be accepted?",
    description="Checked against every version the subject's level names, exactly as "
    "registration checks; a subject with no versions accepts any schema.",
)
def check_registration(
    state: StateDep,
    request: Request,
    subject: str,
    body: SchemaBody,
    verbose: bool = False,
    normalize: Normalize = False,
) -> JSONResponse:
    return _compatibility(state, request, subject, None, body, verbose, normalize)


@router.post(
    "/compatibility/subjects/{subject}/versions/{version}",
    summary="Is a schema compatible with one version (or the latest) of the subject?",
    responses=NOT_FOUND,
)
def check_compatibility(
    state: StateDep,
    request: Request,
    subject: str,
    version: str,
    body: SchemaBody,
    verbose: bool = False,
    normalize: Normalize = False,
) -> JSONResponse:
    return _compatibility(state, request, subject, version, body, verbose, normalize)


def _compatibility(
    state: AppState,
    request: Request,
    subject: str,
    version: str | None,
    body: SchemaBody,
    verbose: bool,
    normalize: bool,
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    asked = _schema_body(body)
    problems = _store(state).check(
        subject, asked.avro(), version, references=asked.refs(), normalize=normalize
    )
    result: dict[str, Any] = {"is_compatible": not problems}
    if verbose:
        result["messages"] = incompatibility_error(problems).details if problems else []
    return reply(result)


@router.get("/config", summary="Global compatibility level")
def get_global_config(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply({"compatibilityLevel": _store(state).get_config()})


@router.put("/config", summary="Set the global compatibility level")
def put_global_config(state: StateDep, request: Request, body: ConfigRequest) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS)
    return reply({"compatibility": _store(state).set_config(body.compatibility)})


@router.delete("/config", summary="Reset the global compatibility level to BACKWARD")
def delete_global_config(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS)
    return reply({"compatibilityLevel": _store(state).reset_global_config()})


@router.get("/config/{subject}", summary="A subject's compatibility level", responses=NOT_FOUND)
def get_subject_config(
    state: StateDep,
    request: Request,
    subject: str,
    defaultToGlobal: bool = False,
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    level = _store(state).get_config(subject, default_to_global=defaultToGlobal)
    return reply({"compatibilityLevel": level})


@router.put("/config/{subject}", summary="Set a subject's compatibility level", responses=NOT_FOUND)
def put_subject_config(
    state: StateDep, request: Request, subject: str, body: ConfigRequest
) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS, dataset=subject)
    return reply({"compatibility": _store(state).set_config(body.compatibility, subject)})


@router.delete(
    "/config/{subject}",
    summary="Remove a subject's level (fall back to global)",
    responses=NOT_FOUND,
)
def delete_subject_config(state: StateDep, request: Request, subject: str) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS, dataset=subject)
    return reply({"compatibilityLevel": _store(state).delete_config(subject)})


@router.get(
    "/subjects/{subject}/versions/{version}/referencedby",
    summary="The ids of the schemas that reference this version",
    responses=NOT_FOUND,
)
def referenced_by(state: StateDep, request: Request, subject: str, version: str) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    return reply(_store(state).referenced_by(subject, version))


@router.get("/mode", summary="The global mode (READWRITE, READONLY or IMPORT)")
def get_global_mode(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS)
    return reply({"mode": _store(state).get_mode()})


@router.put("/mode", summary="Set the global mode (IMPORT only on an empty registry, or force)")
def put_global_mode(
    state: StateDep, request: Request, body: ModeRequest, force: Force = False
) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=ADMINS)
    return reply({"mode": _store(state).set_mode(body.mode, force=force)})


@router.delete("/mode", summary="Reset the global mode to READWRITE")
def delete_global_mode(state: StateDep, request: Request) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=ADMINS)
    return reply({"mode": _store(state).delete_mode()})


@router.get("/mode/{subject}", summary="A subject's mode", responses=NOT_FOUND)
def get_subject_mode(
    state: StateDep, request: Request, subject: str, defaultToGlobal: bool = False
) -> JSONResponse:
    authorize(state, request, action="registry.read", roles=READERS, dataset=subject)
    return reply({"mode": _store(state).get_mode(subject, default_to_global=defaultToGlobal)})


@router.put("/mode/{subject}", summary="Set a subject's mode")
def put_subject_mode(
    state: StateDep, request: Request, subject: str, body: ModeRequest, force: Force = False
) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS, dataset=subject)
    return reply({"mode": _store(state).set_mode(body.mode, subject, force=force)})


@router.delete(
    "/mode/{subject}",
    summary="Remove a subject's mode (the global one applies)",
    responses=NOT_FOUND,
)
def delete_subject_mode(state: StateDep, request: Request, subject: str) -> JSONResponse:
    authorize(state, request, action="registry.configure", roles=WRITERS, dataset=subject)
    return reply({"mode": _store(state).delete_mode(subject)})
