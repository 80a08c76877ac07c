"""Sharing requests from both sides in a real browser: the civil affairs bureau's department
administrator asks human resources for a dataset (refused by the catalogue first, the
problem against its field and the form kept; then submitted), human resources' data
steward narrows it (a narrowing wider than asked refused first), the requester reads the
history, and the indicators dashboard counts the decision. axe-core on every page."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import assert_accessible, sign_in
from tests.support.console import ROLES, ConsoleStack

pytestmark = pytest.mark.e2e

PURPOSE = "minimum-living-allowance"
STEWARD = ROLES["data_steward"][0]


def _audit(stack: ConsoleStack, action: str) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT decision, status, actor FROM audit_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()


def _sign_in_english(page: Page, key: str, path: str) -> None:
    sign_in(page, key)
    page.goto(f"/ui/language/en?next={path}")


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("Sign out|退出登录")).click()


def test_a_request_submitted_with_an_error_first_narrowed_and_its_history(
    page: Page, stack: ConsoleStack
) -> None:
    # The requesting side: civil affairs' department administrator.
    sign_in(page, stack.keys["department_admin"])
    page.goto("/ui/sharing")
    expect(page.get_by_role("heading", name="共享申请")).to_be_visible()
    assert_accessible(page)
    page.goto("/ui/language/en?next=/ui/sharing")
    page.get_by_role("link", name="Request a dataset").click()
    page.get_by_label("Dataset").select_option("social_insurance")
    page.get_by_role("button", name="Show its fields").click()
    expect(page.get_by_role("heading", name=re.compile("owned by human_resources"))).to_be_visible()
    assert_accessible(page)
    page.get_by_label("employment_status").select_option("full")
    page.get_by_label("insurance_types").select_option("full")
    page.get_by_label("monthly_wage_fen").select_option("full")
    page.get_by_label(re.compile(PURPOSE)).check()
    page.get_by_label("Legal basis").fill("Measures for the minimum living allowance, art. 12")
    page.get_by_label("Justification").fill("employment status of applicants' households")
    page.get_by_label("Division code prefix").fill("33-01")
    page.get_by_label("Days").fill("365")
    page.get_by_role("button", name="Submit the request").click()

    expect(page.get_by_role("alert")).to_contain_text("Some of what you entered cannot be used")
    expect(page.locator("#f-row_constraints\\.division_prefix-error")).to_contain_text(
        "division_prefix is 2 to 6 digits"
    )
    expect(page.get_by_label("Division code prefix")).to_have_value("33-01")
    expect(page.get_by_label("monthly_wage_fen")).to_have_value("full")
    expect(page.get_by_label("Justification")).to_have_value(
        "employment status of applicants' households"
    )
    assert_accessible(page)
    assert _audit(stack, "sharing.request.submit")[-1] == ("deny", 400, "ca.console.admin")

    page.get_by_label("Division code prefix").fill("3301")
    page.get_by_role("button", name="Submit the request").click()
    expect(
        page.get_by_role("heading", name=re.compile(r"Request \d+: social_insurance"))
    ).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("submitted"))).to_be_visible()
    assert_accessible(page)
    number = page.url.split("/requests/", 1)[1].split("?", 1)[0]
    assert _audit(stack, "sharing.request.submit")[-1] == ("allow", 303, "ca.console.admin")
    _sign_out(page)

    # The owning side: human resources' data steward narrows it.
    _sign_in_english(page, stack.keys["data_steward"], "/ui/sharing")
    expect(page.get_by_role("heading", name="Sharing requests")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=f"Request {number}", exact=True).click()
    assert_accessible(page)
    page.get_by_role("link", name="Narrow").click()
    expect(page.get_by_role("heading", name=f"Narrow request {number}")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("monthly_wage_fen").select_option("")
    page.get_by_label("Days").fill("400")  # more than asked: refused
    page.get_by_label("Reason (shown to the requester)").fill("the wage is not needed")
    page.get_by_role("button", name="Grant these terms").click()
    expect(page.locator("#f-days-error")).to_contain_text("1 to 365 days")
    expect(page.get_by_label("monthly_wage_fen")).to_have_value("")
    assert_accessible(page)
    assert _audit(stack, "sharing.request.narrow")[-1] == ("deny", 400, STEWARD)

    page.get_by_label("Days").fill("90")
    page.get_by_role("button", name="Grant these terms").click()
    expect(page.get_by_role("heading", name=re.compile("narrowed"))).to_be_visible()
    assert _audit(stack, "sharing.request.narrow")[-1] == ("allow", 303, STEWARD)

    # The indicators count the decision on human resources' dataset.
    page.get_by_role("link", name="Sharing indicators").click()
    expect(page.get_by_role("heading", name="Sharing indicators")).to_be_visible()
    turnaround = page.locator("table", has_text="Sharing-request turnaround")
    expect(turnaround.locator("tr", has_text="social_insurance")).to_have_count(1)
    expect(page.locator("svg[role=img]").first).to_be_visible()
    assert_accessible(page)
    _sign_out(page)

    # The requester sees what was granted and the history.
    _sign_in_english(page, stack.keys["department_admin"], f"/ui/sharing/requests/{number}")
    expect(page.get_by_role("heading", name=re.compile("narrowed"))).to_be_visible()
    history = page.locator("table", has_text="History")
    expect(history.locator("tr", has_text="ca.console.admin")).to_have_count(1)
    expect(history.locator("tr", has_text=STEWARD)).to_contain_text("the wage is not needed")
    terms = page.locator("table", has_text="Terms asked and granted")
    expect(terms.locator("tr", has_text="monthly_wage_fen")).to_contain_text("not granted")
    assert_accessible(page)
