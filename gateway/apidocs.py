"""The API documentation: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from local assets.

FastAPI's own pages load their scripts and styles from a CDN, which leaves them blank
on an isolated network and lets a third party serve script to whoever opens them. These
pages load the copies that the ``fastapi-offline`` package ships, served by the gateway
under :data:`STATIC`, and nothing else: no CDN, no fonts, no online validator.

Whether the documentation (these pages and ``/openapi.json``) is served at all is
``Settings.api_docs_open``: ``gateway.api_docs``, or else development only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
STATIC = "/static/apidocs"
PAGES = frozenset({"/docs", "/redoc"})

# Swagger UI sends the document to validator.swagger.io unless told not to.
_SWAGGER_PARAMETERS = {"validatorUrl": None}
# ReDoc's sidebar always loads its maker's logo from their CDN (found by the console's
# browser test of the network log): served a copy whose logo is the gateway's own.
REDOC = f"{STATIC}/redoc.offline.js"
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _redoc_offline() -> bytes:
    bundle = (ASSETS / "redoc.standalone.js").read_bytes()
    return bundle.replace(_REDOC_LOGO, f"{STATIC}/favicon.png".encode())


def install(app: FastAPI) -> None:
    """Serve the pages and their assets (call only when the documentation is open)."""

    @app.get(REDOC, include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(_redoc_offline(), media_type="text/javascript")

    app.mount(STATIC, StaticFiles(directory=ASSETS), name="apidocs")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=REDOC,
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )
