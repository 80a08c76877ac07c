"""The console's browser tests: headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright) against the real stack of :mod:`tests.support.console`.

Every test's browser context records every request the pages make; after the test, each
must have gone to the gateway (or, for single sign-on, to the test's own OIDC provider):
nothing the console serves may load from a CDN or any other host. Console errors (a
script error, a Content-Security-Policy violation) fail the test as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.browser import CHROMIUM, Traffic, watch
from tests.support.console import ConsoleStack, running_console


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with running_console(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # As root (CI containers) Chromium refuses to start without --no-sandbox.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def traffic(stack: ConsoleStack) -> Traffic:
    return Traffic(allowed_hosts={stack.host})


def _new_context(
    browser: Browser, stack: ConsoleStack, traffic: Traffic, locale: str
) -> BrowserContext:
    context = browser.new_context(base_url=stack.url, locale=locale)
    context.on("request", traffic.record)
    context.route("**/*", traffic.fence)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def context(browser: Browser, stack: ConsoleStack, traffic: Traffic) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test; its traffic is checked after."""
    made = _new_context(browser, stack, traffic, "zh-CN")
    try:
        yield made
    finally:
        made.close()
    assert traffic.foreign() == [], "requests to hosts other than the gateway"
    assert traffic.errors == [], "errors in the browser's console"


@pytest.fixture
def page(context: BrowserContext, traffic: Traffic) -> Page:
    opened = context.new_page()
    watch(opened, traffic)
    return opened
