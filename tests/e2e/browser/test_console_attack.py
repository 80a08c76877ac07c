"""The console attacked in a real browser (issue 21's review): where a browser really goes
when an address says ``next=/ui/..//evil.example``, and where it comes back to after a
form was sent with an ended session."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import sign_in
from tests.support.console import ConsoleStack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "target", ["/ui/..//evil.example", "/ui/%2e%2e//evil.example", "/ui/audit/../../v1/"]
)
def test_the_language_switch_never_takes_the_browser_out_of_the_console(
    page: Page, target: str
) -> None:
    """The browser resolves the dot segments of a redirect: each of these took it to a path
    of the gateway outside /ui/ (``//evil.example`` on the gateway's own host)."""
    page.goto(f"/ui/language/en?next={quote(target, safe='')}")
    assert urlsplit(page.url).path.startswith("/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_form_sent_after_the_session_ended_comes_back_to_its_page(
    page: Page, stack: ConsoleStack
) -> None:
    """An auditor's session ends (here: ended in the database, as 30 minutes idle would)
    while the search results are open; the export is refused with the sign-in page, and
    signing in again comes back to the search, not to the export's address (which answers
    POST only: "Method Not Allowed")."""
    sign_in(page, stack.keys["auditor"], next_path="/ui/audit/log?decision=deny")
    expect(page.locator("form[action='/ui/audit/export']")).to_be_visible()
    with sqlite3.connect(stack.db) as conn:
        conn.execute(
            "UPDATE console_sessions SET ended_at = created_at"
            " WHERE ended_at IS NULL AND actor = 'audit.office'"
        )
    page.locator("form[action='/ui/audit/export'] button[type=submit]").click()
    expect(page.locator("input[name=next]")).to_have_value("/ui/audit/log?decision=deny")
    page.locator("input[name=api_key]").fill(stack.keys["auditor"])
    page.locator("form[action='/ui/sign-in'] button[type=submit]").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/ui/audit/log"
    assert "405" not in page.title()
