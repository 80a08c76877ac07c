"""The publisher's journey in a real browser (issue 21, point 5): the medical insurance
bureau's publisher reads its connector runs (read = published + rejected), opens the
rejected rows and finds the row, the field and the reason in Chinese, then in English;
sees who used its data and for what; and cannot read another department's runs (403,
audited). Every page is checked with axe-core."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import assert_accessible, sign_in
from tests.support.console import ConsoleStack

pytestmark = pytest.mark.e2e

CODE_UNKNOWN_ZH = "该值不在字段的代码表中：请更正该值，或将此代码加入代码表。"
CODE_UNKNOWN_EN = (
    "The value is not in the field's code table: correct the value, or add the code to the table."
)


def _audit(stack: ConsoleStack, action: str) -> list[tuple[str, int, str | None, str]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT decision, status, actor, reason FROM audit_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()


def test_the_publisher_reads_a_rejected_rows_reason(page: Page, stack: ConsoleStack) -> None:
    sign_in(page, stack.keys["publisher"], next_path="/ui/publisher/runs")
    expect(page.get_by_role("heading", name="接入运行记录")).to_be_visible()
    runs = page.locator("table.runs tbody tr")
    row = runs.filter(has_text="health-insurance-enrolments").first
    expect(row).to_contain_text("health_insurance_enrolment")
    reconciliation = row.locator("td.reconciliation")
    expect(reconciliation).to_contain_text("对账一致")
    read, published, rejected = (
        int(n.replace(",", ""))
        for n in reconciliation.locator(".sum").inner_text().replace("=", "+").split("+")
    )
    assert (read, rejected) == (published + 2, 2)
    expect(row).to_contain_text("code.unknown")
    assert_accessible(page)
    assert ("allow", 200, "hi.publisher") in [a[:3] for a in _audit(stack, "connectors.runs")]

    # The rejected rows, read from the department's own dead-letter topic.
    row.get_by_role("link", name="查看 health_insurance_enrolment 被拒绝的行").click()
    expect(page.get_by_role("heading", name="被拒绝的行", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=CODE_UNKNOWN_ZH)).to_be_visible()
    rejected_row = page.locator("table.rejected tbody tr").filter(has_text="YB33010699002")
    expect(rejected_row).to_have_count(1)
    expect(rejected_row).to_contain_text("scheme")
    expect(rejected_row).to_contain_text(CODE_UNKNOWN_ZH)
    expect(rejected_row).to_contain_text("商业补充")  # the connector's message names the value
    check = page.locator("table.rejected tbody tr").filter(has_text="YB33010699001")
    expect(check).to_contain_text("resident_id")
    expect(check).to_contain_text("公民身份号码的校验码与前 17 位不符")
    assert_accessible(page)
    [(decision, status, actor, reason)] = _audit(stack, "connectors.rejections")
    assert (decision, status, actor) == ("allow", 200, "hi.publisher")
    assert "health_insurance_enrolment 2" in reason

    # The same page in English.
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Rejected rows", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=CODE_UNKNOWN_EN)).to_be_visible()
    rejected_row = page.locator("table.rejected tbody tr").filter(has_text="YB33010699002")
    expect(rejected_row).to_contain_text(CODE_UNKNOWN_EN)
    expect(rejected_row).to_contain_text("scheme")

    # Who used the department's data: civil affairs, for the allowance review (the demo's
    # household lookup drew on the enrolments).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Use of our data").click()
    expect(page.get_by_role("heading", name="Use of our data")).to_be_visible()
    use = page.locator("table.usage tbody tr").filter(has_text="civil_affairs")
    expect(use).to_contain_text("minimum-living-allowance")
    expect(use).to_contain_text("health_insurance_enrolment")
    assert_accessible(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Withdrawals").click()
    expect(page.get_by_role("heading", name="Withdrawals")).to_be_visible()
    assert_accessible(page)


def test_a_publisher_cannot_see_another_departments_runs(page: Page, stack: ConsoleStack) -> None:
    sign_in(page, stack.keys["publisher"])
    before = len(_audit(stack, "connectors.runs"))
    answer = page.goto("/ui/publisher/runs?department=human_resources")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", name="不允许")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("human_resources")
    assert_accessible(page)
    refused = _audit(stack, "connectors.runs")[before:]
    assert [(d, s, a) for d, s, a, _ in refused] == [("deny", 403, "hi.publisher")]
    # Its own runs name no other department's connector.
    page.goto("/ui/publisher/runs")
    expect(page.locator("table.runs")).not_to_contain_text("human_resources")
    expect(page.locator("table.runs")).not_to_contain_text("social_insurance")


def test_the_command_line_shows_the_same_rejected_rows(stack: ConsoleStack) -> None:
    """``exchange connector rejects`` reads the dead letters with the same code as the
    page (connectors.deadletters)."""
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange.cli",
            "connector",
            "rejects",
            "health_insurance_enrolment",
            "--department",
            "health_insurance",
        ],
        cwd=stack.data_dir.parent,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "2 rejected records in dlq.health_insurance.health_insurance_enrolment" in shown.stdout
    for expected in ("code.unknown", "scheme", "YB33010699002", "resident_id.check_character"):
        assert expected in shown.stdout
