"""The caseworker's eligibility check (journey 1), end to end in a real browser against the
demo stack: the case, the search by resident ID and by name and birth date, the person view
(records of several departments, a masked field, how each record joined), the household, and
the refusal for a purpose no grant serves.

Each page that discloses records must have written exactly one audit entry, with the API's
action, purpose, case reference and the status the page was answered with; no resident ID
may appear in any URL the browser asked for."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Response, expect

from exchange.local import population
from tests.support.browser import Traffic, assert_accessible, sign_in
from tests.support.console import ConsoleStack

pytestmark = pytest.mark.e2e

PURPOSE = "minimum-living-allowance"
CASE_REF = "MZ-2026-0417"
UNGRANTED = "tax-assessment"


def _entries(stack: ConsoleStack, request_id: str) -> list[tuple[str, str, int, str, str]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT action, decision, status, purpose, case_ref FROM audit_log "
            "WHERE request_id = ? ORDER BY seq",
            (request_id,),
        ).fetchall()


def _navigate(page: Page, act: Callable[[], None]) -> Response:
    """What the page was answered with when ``act`` (a click) navigated it."""
    with page.expect_navigation() as navigation:
        act()
    answer = navigation.value
    assert answer is not None
    return answer


def _audited_once(
    stack: ConsoleStack,
    answer: Response,
    action: str,
    *,
    decision: str = "allow",
    purpose: str = PURPOSE,
    case_ref: str | None = CASE_REF,
) -> None:
    request_id = answer.headers["x-request-id"]
    assert _entries(stack, request_id) == [(action, decision, answer.status, purpose, case_ref)]


def test_the_eligibility_check_of_the_applicant(
    page: Page, stack: ConsoleStack, traffic: Traffic
) -> None:
    applicant = population.population().applicant
    sign_in(page, stack.keys["caseworker"])

    # Without a case, the search sends the caseworker to choose one.
    page.locator("nav.main-nav").get_by_role("link", name="查询人员").click()
    expect(page.get_by_role("heading", name="案件", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("combobox", name="用途").select_option(PURPOSE)
    page.get_by_role("textbox", name="案件编号").fill(CASE_REF)
    chosen = _navigate(page, lambda: page.get_by_role("button", name="使用此案件").click())
    assert chosen.status == 200  # after the 303 to the search
    expect(page.get_by_role("heading", name="查询人员")).to_be_visible()
    expect(page.get_by_role("complementary", name="当前案件")).to_contain_text(CASE_REF)
    assert_accessible(page)

    # By resident ID: the same work and entry as POST /v1/persons/lookup.
    page.get_by_role("textbox", name="居民身份证号").fill(applicant.resident_id)
    found = _navigate(page, lambda: page.get_by_role("button", name="查询", exact=True).click())
    assert found.status == 200
    expect(page.get_by_role("heading", name="查询结果")).to_be_visible()
    _audited_once(stack, found, "person.lookup")
    assert_accessible(page)
    departments = page.locator("section.department h3")
    assert departments.count() >= 3, departments.all_inner_texts()

    # The person view: GET /v1/entities/{id} with the session's purpose and case.
    person = _navigate(page, lambda: page.get_by_role("link", name="打开人员视图").first.click())
    assert person.status == 200
    assert "/ui/persons/P" in page.url
    expect(page.get_by_role("heading", name="人员视图")).to_be_visible()
    _audited_once(stack, person, "entity.view")
    expect(page.get_by_role("heading", name="主记录")).to_be_visible()
    expect(page.locator("main")).to_contain_text(applicant.name)
    # Records of several departments, a masked field shown masked, how each record joined.
    assert page.locator("section.department").count() >= 3
    masked = page.locator("main .masked").first
    expect(masked).to_be_visible()
    assert masked.get_attribute("title")  # the marker's label says why it is masked
    expect(page.locator("main")).to_contain_text("相同证件号")
    assert_accessible(page)

    # By name and birth date: the same work and entry as POST /v1/search/persons.
    page.goto("/ui/search")
    page.get_by_role("textbox", name="姓名").fill(applicant.name)
    page.locator("#f-birth_date").fill(applicant.born.isoformat())
    named = _navigate(page, lambda: page.get_by_role("button", name="搜索", exact=True).click())
    assert named.status == 200
    _audited_once(stack, named, "person.search")
    expect(page.locator("main table")).to_contain_text(applicant.name)
    assert_accessible(page)

    # The household: POST /v1/households/lookup, from the lookup by resident ID.
    page.goto("/ui/search")
    page.get_by_role("textbox", name="居民身份证号").fill(applicant.resident_id)
    _navigate(page, lambda: page.get_by_role("button", name="查询", exact=True).click())
    home = _navigate(page, lambda: page.get_by_role("button", name="打开家庭视图").click())
    assert home.status == 200
    expect(page.get_by_role("heading", name="家庭视图")).to_be_visible()
    _audited_once(stack, home, "household.lookup")
    members = page.locator("main h3")
    assert members.count() == len(population.population().household(applicant.household))
    expect(page.locator("main")).to_contain_text("HEAD")
    # A member's record joined by a model's link says so, with its weight and probability.
    expect(page.locator("main")).to_contain_text("概率关联")
    expect(page.locator("main")).to_contain_text("比特")
    assert_accessible(page)

    # A purpose no grant serves: the refusal in plain words, 403 as audited.
    page.get_by_role("link", name="更换案件").first.click()
    page.get_by_role("combobox", name="用途").select_option(UNGRANTED)
    page.get_by_role("textbox", name="案件编号").fill(CASE_REF)
    _navigate(page, lambda: page.get_by_role("button", name="使用此案件").click())
    page.goto("/ui/search")
    page.get_by_role("textbox", name="居民身份证号").fill(applicant.resident_id)
    refused = _navigate(page, lambda: page.get_by_role("button", name="查询", exact=True).click())
    assert refused.status == 403
    expect(page.get_by_role("heading", name="不允许")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("本部门没有以“Tax assessment”为用途")
    _audited_once(stack, refused, "person.lookup", decision="deny", purpose=UNGRANTED)
    assert_accessible(page)

    # No identifier ever travelled in a URL.
    assert applicant.resident_id not in " ".join(traffic.urls())
    assert all(applicant.name not in url for url in traffic.urls())
