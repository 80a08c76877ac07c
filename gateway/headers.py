"""Security headers on every response the gateway sends (added by the request-id middleware).

- ``X-Content-Type-Options: nosniff``: a browser takes a JSON answer for what it says;
- ``Cache-Control: no-store``: answers hold personal data and audit records, which no
  browser, proxy or shared cache may keep (the documentation's static assets, which
  hold none, may be cached);
- ``X-Frame-Options: DENY`` and ``Content-Security-Policy`` with ``frame-ancestors
  'none'``: no page may frame the gateway's; the API's answers may load nothing
  (``default-src 'none'``), the documentation pages only the gateway's own assets;
- ``Referrer-Policy: no-referrer``: no URL of the gateway leaves in a Referer header;
- the web console (``/ui/``) may load the gateway's own scripts, styles and images only,
  and its forms post only to the gateway.

A header a route set itself is kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders

from gateway.apidocs import PAGES, STATIC

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc: their scripts and styles from the gateway, their inline start-up
# script and styles, ReDoc's worker from a blob: URL; nothing from anywhere else.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
ASSET_CACHE = "public, max-age=86400"
# The web console (/ui/): its own scripts, styles and images only, no inline script; forms
# post to the gateway; charts are inline SVG (data: images allowed for them).
CONSOLE = "/ui/"
CONSOLE_STATIC = "/ui/static/"
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def secure(headers: MutableHeaders, path: str) -> None:
    """Add the security headers to a response to ``path``, keeping any already set."""
    for name, value in _COMMON:
        headers.setdefault(name, value)
    if path.startswith(STATIC):
        headers.setdefault("Cache-Control", ASSET_CACHE)
        headers.setdefault("Content-Security-Policy", DOCS_CSP)
        return
    if path.startswith(CONSOLE):
        # The console's forms are checked by their Origin; under no-referrer a browser
        # sends "Origin: null". same-origin still sends nothing to another site.
        headers["Referrer-Policy"] = "same-origin"
        headers.setdefault(
            "Cache-Control", ASSET_CACHE if path.startswith(CONSOLE_STATIC) else "no-store"
        )
        headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
        return
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Content-Security-Policy", DOCS_CSP if path in PAGES else API_CSP)
