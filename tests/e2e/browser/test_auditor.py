"""The auditor's journey in a real browser, against the demo's stack: find the caseworker's
access to the applicant's records (the demo's household lookup), open it, see who
accessed the applicant, verify the log, prove the entry's inclusion and the heads'
consistency, export, and print the citizen's report. A caseworker is refused the
auditor's pages, and that refusal is audited. The applicant's resident ID is typed into
forms only: no address the browser asked for holds it."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Page, expect

from exchange.local import population
from tests.support.browser import Traffic, assert_accessible, sign_in
from tests.support.console import ConsoleStack

pytestmark = pytest.mark.e2e

APPLICANT = population.population().applicant


def _entries(stack: ConsoleStack, action: str) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(stack.db) as conn:
        return conn.execute(
            "SELECT decision, status, actor FROM audit_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()


def test_the_auditor_finds_the_caseworkers_access_verifies_the_log_and_prints_the_report(
    page: Page, stack: ConsoleStack, traffic: Traffic
) -> None:
    sign_in(page, stack.keys["auditor"])
    nav = page.get_by_role("navigation", name="主导航")

    # Search the log by actor and by the applicant's ID (typed into a POST form).
    nav.get_by_role("link", name="检索审计日志").click()
    expect(page.get_by_role("heading", name="检索审计日志", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("操作人").fill("demo.caseworker")
    page.get_by_label("人员（居民身份证号码）").fill(APPLICANT.resident_id)
    page.get_by_role("button", name="检索", exact=True).click()
    rows = page.locator("table.audit-entries tbody tr")
    lookup = rows.filter(has_text="household.lookup").filter(has_text="MZ-2026-0417").first
    expect(lookup).to_contain_text("minimum-living-allowance")
    expect(lookup).to_contain_text("允许")
    expect(rows.filter(has_text="tax-assessment").first).to_contain_text("拒绝")
    assert_accessible(page)

    # The export of the search: a download, itself audited.
    with page.expect_download() as download:
        page.get_by_role("button", name="下载").click()
    exported = download.value
    assert exported.suggested_filename == "audit-log.csv"
    text = exported.path().read_text(encoding="utf-8")
    assert "household.lookup" in text
    assert "demo.caseworker" in text
    assert _entries(stack, "audit.export")[-1] == ("allow", 200, "audit.office")

    # Open the entry.
    lookup.get_by_role("link").first.click()
    heading = page.get_by_role("heading", name=re.compile(r"^审计记录 \d+$"))
    expect(heading).to_be_visible()
    seq = int(heading.inner_text().split()[-1])
    expect(page.locator("main")).to_contain_text("civil_affairs")
    entry_url = page.url
    assert_accessible(page)

    # Who accessed the applicant.
    nav.get_by_role("link", name="谁访问过某人").click()
    page.get_by_label("人员（居民身份证号码）").fill(APPLICANT.resident_id)
    page.get_by_role("button", name="显示访问记录").click()
    accesses = page.locator("table.audit-entries tbody tr")
    expect(accesses.filter(has_text="demo.caseworker").first).to_contain_text("household.lookup")
    assert_accessible(page)

    # The log's integrity: sign a head over the entries so far, verify the whole log.
    nav.get_by_role("link", name="日志完整性与证明").click()
    page.get_by_role("button", name="立即签署树头").click()
    expect(page.get_by_role("status")).to_contain_text("已对")
    page.get_by_role("button", name="验证日志").click()
    expect(page.locator(".verdict")).to_contain_text("审计日志完好无损。")
    heads = page.locator("table.heads tbody tr")
    expect(heads.first).to_contain_text("已验证")
    assert heads.count() >= 1
    assert_accessible(page)

    # The entry's inclusion proof in the latest signed head, checked.
    page.goto(entry_url)
    page.get_by_role("button", name="获取包含证明").click()
    expect(page.locator(".verdict")).to_contain_text(f"记录 {seq - 1} 包含在已签署的")
    expect(page.locator("table.checks")).not_to_contain_text("未通过")
    assert_accessible(page)

    # A consistency proof between the first signed head and the latest (signed just now).
    page.goto("/ui/audit/integrity")
    page.get_by_role("button", name="立即签署树头").click()
    page.get_by_role("button", name="获取一致性证明").click()
    expect(page.get_by_role("heading", name="一致性证明", exact=True)).to_be_visible()
    expect(page.locator(".verdict")).to_contain_text("已验证")
    expect(page.locator("table.checks")).not_to_contain_text("未通过")
    assert_accessible(page)
    proofs = _entries(stack, "audit.proof")
    assert proofs[-2:] == [("allow", 200, "audit.office")] * 2

    # The anomalies of the last 30 days.
    nav.get_by_role("link", name="异常").click()
    expect(page.get_by_role("heading", name="异常", exact=True)).to_be_visible()
    assert_accessible(page)

    # The citizen's report: who, which department, for which purpose; printable.
    nav.get_by_role("link", name="公民访问报告").click()
    assert_accessible(page)
    page.get_by_label("人员（居民身份证号码）").fill(APPLICANT.resident_id)
    page.get_by_role("button", name="生成报告").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(APPLICANT.resident_id[-4:])
    lines = page.locator("table.report-lines tbody tr")
    caseworker = lines.filter(has_text="demo.caseworker").first
    expect(caseworker).to_contain_text("Civil affairs bureau")
    expect(caseworker).to_contain_text("minimum-living-allowance")
    expect(caseworker).to_contain_text("查询了此人的户籍家庭")
    expect(page.get_by_role("button", name="打印")).to_be_visible()
    assert APPLICANT.resident_id not in page.content()
    assert_accessible(page)
    assert _entries(stack, "audit.report")[-1] == ("allow", 200, "audit.office")

    # The applicant's ID never travelled in an address.
    assert all(APPLICANT.resident_id not in url for url in traffic.urls())


def test_a_caseworker_opening_an_auditor_page_is_refused_and_the_refusal_is_audited(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, stack.keys["caseworker"])
    answer = page.goto("/ui/audit/log")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", name="不允许")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("role 'caseworker' may not audit.search")
    assert_accessible(page)
    # No auditor link in the caseworker's navigation.
    expect(page.get_by_role("link", name="检索审计日志")).to_have_count(0)
    assert _entries(stack, "audit.search")[-1] == ("deny", 403, "demo.caseworker")
