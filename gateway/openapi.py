"""The gateway's OpenAPI document: FastAPI's, completed once by the gateway's own steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Step = Callable[[dict[str, Any]], None]

# The keys of a path item that are operations (the others: parameters, summary...).
METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def complete(app: FastAPI, *steps: Step) -> None:
    """Have ``app`` serve FastAPI's document as changed by each of ``steps``, in turn;
    the document is built on its first request and kept."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()  # FastAPI keeps it as app.openapi_schema
            for step in steps:
                step(doc)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
