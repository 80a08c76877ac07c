"""ASGI entry point for uvicorn: ``uvicorn --factory gateway.asgi:app``."""

from __future__ import annotations

from fastapi import FastAPI

from exchange.core.config import load_settings
from gateway.app import create_app


def app() -> FastAPI:
    return create_app(load_settings())
