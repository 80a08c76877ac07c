"""The central administrator's pages in a real browser: a direct grant refused by the
catalogue first (the problem shown against its field, the form kept, audited as a denial),
then made; a new API key shown once; a caseworker refused the administrators' pages. Every
page is checked with axe-core, and every request the browser made went to the gateway
(tests/e2e/browser/conftest.py)."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Traffic, assert_accessible, sign_in
from tests.support.console import ConsoleStack

pytestmark = pytest.mark.e2e

PURPOSE = "minimum-living-allowance"


def _audit(stack: ConsoleStack, action: str) -> list[tuple[str, int, str | None, str]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT decision, status, actor, reason FROM audit_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()


def _english(page: Page, path: str) -> None:
    page.goto(f"/ui/language/en?next={path}")


def test_the_administrator_creates_a_grant_with_an_error_first(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, stack.keys["admin"])
    expect(page.get_by_role("heading", name="欢迎，central.admin")).to_be_visible()
    page.goto("/ui/admin/grants")
    expect(page.get_by_role("heading", name="授权", exact=True)).to_be_visible()
    assert_accessible(page)

    _english(page, "/ui/admin/grants")
    page.get_by_role("link", name="Add a direct grant").click()
    page.get_by_label("Dataset").select_option("household_membership")
    page.get_by_role("button", name="Show its fields").click()
    expect(page.get_by_role("heading", name="Grant on household_membership")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Consuming department").select_option("health_insurance")
    page.get_by_label("relationship_to_head").select_option("full")
    page.get_by_label("since").select_option("full")
    page.get_by_label(re.compile(PURPOSE)).check()
    # A row constraint on the division code: this dataset has none, the catalogue says so.
    page.get_by_label("Division code prefix").fill("3301")
    page.get_by_label("Note").fill("bootstrapping the health insurance review")
    page.get_by_role("button", name="Add the grant").click()

    expect(page.get_by_role("alert")).to_contain_text("Some of what you entered cannot be used")
    problem = page.locator("#f-row_constraints\\.division_prefix-error")
    expect(problem).to_contain_text("has no division code field")
    # The form as it was filled in.
    expect(page.get_by_label("Division code prefix")).to_have_value("3301")
    expect(page.get_by_label("Division code prefix")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("relationship_to_head")).to_have_value("full")
    expect(page.get_by_label("Consuming department")).to_have_value("health_insurance")
    expect(page.get_by_label(re.compile(PURPOSE))).to_be_checked()
    expect(page.get_by_label("Note")).to_have_value("bootstrapping the health insurance review")
    assert_accessible(page)
    refused = _audit(stack, "catalogue.grant.add")[-1]
    assert refused[:3] == ("deny", 400, "central.admin")
    assert "has no division code field" in refused[3]

    page.get_by_label("Division code prefix").fill("")
    page.get_by_role("button", name="Add the grant").click()
    expect(page.get_by_role("status")).to_contain_text("added")
    row = page.locator("tr", has_text="household_membership").filter(has_text="health_insurance")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("relationship_to_head")
    assert_accessible(page)
    made = _audit(stack, "catalogue.grant.add")[-1]
    assert made[:3] == ("allow", 303, "central.admin")
    assert made[3].startswith("direct (bootstrapping) grant ")


def test_a_new_api_key_is_shown_once(page: Page, stack: ConsoleStack, traffic: Traffic) -> None:
    sign_in(page, stack.keys["admin"])
    _english(page, "/ui/admin/departments")
    expect(page.get_by_role("heading", name="Departments")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Users and keys").click()
    expect(page.get_by_role("heading", name="Users and keys")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Keys hr.console.steward").click()
    expect(page.get_by_role("heading", name="API keys of hr.console.steward")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Label").fill("steward's laptop")
    page.get_by_role("button", name="Make a key").click()

    shown = page.get_by_label("API key")
    expect(shown).to_have_value(re.compile(r"^dx_"))
    key = shown.input_value()
    assert_accessible(page)
    # It works, and it travelled in no address.
    answer = httpx.get(f"{stack.url}/v1/catalogue/resources", headers={"X-API-Key": key})
    assert answer.status_code == 200
    assert all(key not in url for url in traffic.urls())
    assert _audit(stack, "admin.key.create")[-1][:3] == ("allow", 303, "central.admin")

    page.reload()
    expect(page.get_by_role("status")).to_contain_text("cannot be shown again")
    expect(page.get_by_label("API key")).to_have_count(0)
    assert key not in page.content()
    expect(page.locator("tr", has_text="steward's laptop")).to_have_count(1)


def test_the_purposes_and_catalogue_pages(page: Page, stack: ConsoleStack) -> None:
    sign_in(page, stack.keys["admin"])
    _english(page, "/ui/admin/purposes")
    expect(page.get_by_role("heading", name="Purposes")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=PURPOSE).click()
    expect(page.get_by_role("heading", name=f"Purpose {PURPOSE}")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Resource catalogue").click()
    expect(page.get_by_role("heading", name="Resource catalogue")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="social_insurance").click()
    expect(page.get_by_role("heading", name=re.compile("social_insurance"))).to_be_visible()
    assert_accessible(page)


def test_a_caseworker_is_refused_the_administrators_pages(page: Page, stack: ConsoleStack) -> None:
    sign_in(page, stack.keys["caseworker"])
    answer = page.goto("/ui/admin/grants")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", name="不允许")).to_be_visible()
    assert_accessible(page)
    assert _audit(stack, "catalogue.grant.list")[-1][:3] == ("deny", 403, "demo.caseworker")
