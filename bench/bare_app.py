"""The baseline of ``bench.gateway_lookup``: a bare FastAPI endpoint, nothing behind it.

``POST /v1/persons/lookup`` (the identifier in a JSON body) answers every request with
the JSON body read at start-up from the file named by ``BENCH_BARE_BODY`` (the benchmark writes
there a real lookup response of the gateway, so both sides send the same bytes
through the same ``JSONResponse``). No authentication, policy, database,
decryption or audit: what is left is uvicorn, Starlette routing, FastAPI's
parameter handling and JSON encoding. Served exactly as the gateway is::

    BENCH_BARE_BODY=body.json python -m uvicorn --factory bench.bare_app:app \
        --host 127.0.0.1 --port 18081 --log-level warning
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

BODY_ENV = "BENCH_BARE_BODY"


class Lookup(BaseModel):
    resident_id: str = Field(min_length=1, max_length=64)


def app() -> FastAPI:
    """The bare application (a factory, like ``gateway.asgi:app``)."""
    with open(os.environ[BODY_ENV], encoding="utf-8") as handle:
        body: dict[str, Any] = json.load(handle)
    bare = FastAPI(title="bare baseline", openapi_url=None, docs_url=None, redoc_url=None)

    @bare.post("/v1/persons/lookup")
    def person(lookup: Lookup, purpose: str | None = None) -> dict[str, Any]:
        # A sync route, like the gateway's: it runs in the same threadpool; the body is
        # parsed into a model, as the gateway's is.
        del lookup, purpose
        return body

    return bare
