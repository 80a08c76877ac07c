"""Signing in and out of the console in a real browser: API key and single sign-on, the
language, CSRF, expiry. Every page the tests open is checked with axe-core, and every
request the browser made must have gone to the gateway (tests/e2e/browser/conftest.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.browser import Traffic, assert_accessible, sign_in
from tests.support.console import OIDC_SUBJECT, ConsoleStack

pytestmark = pytest.mark.e2e


def _audit(stack: ConsoleStack, action: str) -> list[tuple[str, str, int, str | None]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT action, decision, status, actor FROM audit_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()


def test_sign_in_with_a_key_in_chinese_then_english_then_sign_out(
    page: Page, stack: ConsoleStack
) -> None:
    page.goto("/ui/")
    # Not signed in: the sign-in page, in Chinese by default, answered 401 and audited.
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    assert_accessible(page)
    sign_in(page, stack.keys["caseworker"])
    expect(page.get_by_role("heading", name="欢迎，demo.caseworker")).to_be_visible()
    assert_accessible(page)
    # The session cookie cannot be read by a script and is never sent to another site.
    [cookie] = [c for c in page.context.cookies() if c["name"] == "dx_session"]
    assert cookie["httpOnly"]
    assert (cookie["sameSite"], cookie["path"]) == ("Strict", "/ui")
    assert cookie["value"] not in page.content()

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Welcome, demo.caseworker")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    signed_out = _audit(stack, "console.sign_out")
    assert ("console.sign_out", "allow", 303, "demo.caseworker") in signed_out
    signed_in = _audit(stack, "console.sign_in")
    assert ("console.sign_in", "allow", 303, "demo.caseworker") in signed_in


def test_a_wrong_key_is_refused_with_its_reason_and_audited(
    page: Page, stack: ConsoleStack
) -> None:
    before = len(_audit(stack, "console.sign_in"))
    sign_in(page, "dx_nothere_wrongsecretwrongsecret")
    expect(page.get_by_role("alert")).to_contain_text("invalid API key")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    after = _audit(stack, "console.sign_in")
    assert after[before:] == [("console.sign_in", "deny", 401, None)]


def test_a_form_with_a_wrong_csrf_token_is_refused_and_audited(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, stack.keys["caseworker"])
    page.locator("form[action='/ui/sign-out'] input[name=csrf_token]").evaluate(
        "input => input.value = 'forged'"
    )
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("heading", name="为保护您的安全，此表单被拒绝")).to_be_visible()
    assert _audit(stack, "console.sign_out")[-1] == (
        "console.sign_out",
        "deny",
        403,
        "demo.caseworker",
    )
    # Still signed in: the forged form ended nothing.
    page.goto("/ui/")
    expect(page.get_by_role("heading", name="欢迎，demo.caseworker")).to_be_visible()


def test_an_idle_session_is_sent_to_sign_in_and_comes_back_after(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, stack.keys["caseworker"])
    # Thirty-one minutes without use (console.idle_minutes is 30): moved back in the database.
    past = (datetime.now(UTC) - timedelta(minutes=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(stack.db) as conn:
        conn.execute(
            "UPDATE console_sessions SET last_seen_at = ? WHERE actor = 'demo.caseworker' "
            "AND ended_at IS NULL",
            (past,),
        )
    page.goto("/ui/?from=idle")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("30 minutes without use")
    sign_in_again = page.locator("input[name=next]")
    assert sign_in_again.input_value() == "/ui/?from=idle"


def test_single_sign_on_through_a_real_oidc_provider(
    context: BrowserContext, page: Page, stack: ConsoleStack, traffic: Traffic
) -> None:
    assert stack.oidc_url is not None, "the OIDC provider's npm packages are not installed"
    provider = stack.oidc_url.split("://", 1)[1]
    traffic.allowed_hosts.add(provider)  # where the console sends the browser to sign in
    traffic.other_parties.add(provider)  # what the provider's own pages load is its business
    page.goto("/ui/sign-in")
    page.get_by_role("link", name="统一身份认证登录").click()
    # The provider's own (development) sign-in page: any login name is its subject.
    page.locator("input[name=login]").fill(OIDC_SUBJECT)
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]")
    if consent.count() and "/ui/" not in page.url:
        consent.first.click()
    expect(page.get_by_role("heading", name="欢迎，sso.caseworker")).to_be_visible()
    assert ("console.sign_in", "allow", 200, "sso.caseworker") in _audit(stack, "console.sign_in")
    # The code and state travelled in URLs; no secret did: the session is in the cookie only.
    assert all("dx_" not in url for url in traffic.urls())


def test_the_api_documentation_renders_from_the_gateway_alone(page: Page) -> None:
    # Swagger UI and ReDoc: every script and style from the gateway (the network log of
    # this context is checked after the test), and they render the gateway's operations.
    page.goto("/docs")
    expect(page.get_by_text("/v1/persons/lookup").first).to_be_visible()
    page.goto("/redoc")
    expect(page.get_by_text("Data Exchange gateway").first).to_be_visible()


def test_sign_in_works_from_the_keyboard_alone(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/sign-in")
    # The first Tab reaches the skip link, which moves the focus to the main content.
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown when focused
    page.keyboard.press("Enter")
    # From the main content, Tab reaches the key field; Enter sends the form.
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "api_key":
            break
    assert page.evaluate("document.activeElement.name") == "api_key"
    page.keyboard.type(stack.keys["caseworker"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="欢迎，demo.caseworker")).to_be_visible()
    # Every control of the page can be reached with Tab, and each shows its focus.
    reached: set[str] = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement === document.body"):
            continue  # past the last control, the focus goes round through the page
        reached.add(page.evaluate("document.activeElement.textContent.trim()"))
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", reached
    assert {"English", "退出登录"} <= reached
