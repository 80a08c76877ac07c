"""The web console at ``/ui/``: server-rendered pages (Jinja2) for caseworkers, auditors,
administrators, data stewards and publishers, in Chinese and English.

On the gateway's own authentication, grants, masking and audit: a page that shows or
changes anything is one audited request, made exactly as the API call it mirrors
(:mod:`gateway.console.web`). Every script, style and image is served from
``/ui/static/`` (no CDN, no web font). See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import problems
from gateway.console import (
    admin,
    admin_catalogue,
    admin_grants,
    auditor,
    auth,
    caseworker,
    indicators,
    publisher,
    sharing,
    web,
)

# Each area of the console: its router, imported in the order of the navigation.
AREAS = [
    auth.router,
    caseworker.router,
    admin.router,
    admin_grants.router,
    admin_catalogue.router,
    sharing.router,
    indicators.router,
    auditor.router,
    publisher.router,
]


def install(app: FastAPI) -> None:
    """Serve the console's pages and assets, and answer errors on its paths as pages."""
    app.mount(f"{web.PREFIX}/static", StaticFiles(directory=web.STATIC), name="console-static")
    for router in AREAS:
        app.include_router(router)
    problems.PAGES = web.error_page
