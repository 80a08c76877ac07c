"""Helpers of the console's browser tests (tests/e2e/browser): what a page asked for and
complained of, signing in as a person does, axe-core's accessibility check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Request, Route

from tests.support.console import NODE_MODULES

CHROMIUM = "/usr/bin/chromium"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"


@dataclass
class Traffic:
    """What a browser context asked for, and what its pages complained of.

    ``requests``: (URL, host of the page that asked). A request to a host not in
    ``allowed_hosts`` is foreign, unless a page of an ``other_parties`` host asked for it
    (the OIDC provider's own sign-in page is the provider's business, not the console's).
    """

    requests: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed_hosts: set[str] = field(default_factory=set)
    other_parties: set[str] = field(default_factory=set)

    def record(self, request: Request) -> None:
        try:
            asker = urlsplit(request.frame.url).netloc
        except Exception:  # a frame already gone: count the request as the console's
            asker = ""
        self.requests.append((request.url, asker))

    def urls(self) -> list[str]:
        return [url for url, _ in self.requests]

    def foreign(self) -> list[str]:
        return [
            url
            for url, asker in self.requests
            if not url.startswith(("data:", "blob:", "about:"))
            and urlsplit(url).netloc not in self.allowed_hosts
            and asker not in self.other_parties
        ]

    def fence(self, route: Route) -> None:
        """Let requests to the allowed hosts through; abort the rest (the test runs
        offline, and a foreign request is still recorded, so it fails the test)."""
        host = urlsplit(route.request.url).netloc
        if host in self.allowed_hosts or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            route.abort()


def watch(page: Page, traffic: Traffic) -> None:
    """Record the page's script errors and console errors (CSP violations among them)."""
    page.on("pageerror", lambda error: traffic.errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            traffic.errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )


def sign_in(page: Page, key: str, *, next_path: str = "/ui/") -> None:
    """Sign in with an API key through the sign-in form, as a person would."""
    page.goto(f"/ui/sign-in?next={next_path}")
    page.get_by_label("API 密钥").or_(page.get_by_label("API key")).fill(key)
    page.locator("form[action='/ui/sign-in'] button[type=submit]").click()
    page.wait_for_load_state()


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is (WCAG 2 A and AA).
    axe runs in the page through the driver (the console's CSP rightly refuses an injected
    script tag)."""
    source = Path(AXE).read_text(encoding="utf-8")
    page.evaluate(source)
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page) -> None:
    violations = accessibility_violations(page)
    assert violations == [], f"{page.url}: {violations}"
