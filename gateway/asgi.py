"""ASGI entry point for uvicorn: ``uvicorn --factory gateway.asgi:app``."""

from __future__ import annotations

from fastapi import FastAPI

from exchange.core import logs
from exchange.core.config import load_settings
from gateway.app import create_app


def app() -> FastAPI:
    settings = load_settings()
    logs.configure(settings.log)  # after uvicorn's own set-up: one format for every line
    return create_app(settings)
