"""Screenshots of the console's main pages, in Chinese and English, for docs/console.md.

    bash scripts/ensure-browser.sh && .venv/bin/python scripts/console-screenshots.py

Runs the demo on ports of its own in a temporary directory (as the browser tests do),
signs in as each role, opens each page in headless Chromium (Debian's, with the CJK font
fonts-noto-cjk) and writes docs/console/<page>.<language>.png. The tests never write
these files; this script is how they are made again when the pages change.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import CHROMIUM, sign_in  # noqa: E402
from tests.support.console import ConsoleStack, running_console  # noqa: E402

OUT = ROOT / "docs" / "console"
PURPOSE = "minimum-living-allowance"
CASE = "MZ-2026-0417"


@dataclass(frozen=True)
class Shot:
    """One page: its file name, who opens it, and how to get there once signed in."""

    name: str
    role: str | None  # None: not signed in
    open: Callable[[Page, ConsoleStack], None]


def _go(path: str) -> Callable[[Page, ConsoleStack], None]:
    def open_page(page: Page, stack: ConsoleStack) -> None:
        page.goto(path)

    return open_page


def _applicant() -> str:
    from exchange.local import population

    return population.population().applicant.resident_id


def _audit_search(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/audit/log")
    page.locator("#f-actor").fill("demo.caseworker")
    page.locator("form button[type=submit].primary").first.click()
    page.wait_for_load_state()


def _audit_report(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/audit/report")
    page.locator("#f-person").fill(_applicant())
    page.locator("form button[type=submit].primary").first.click()
    page.wait_for_load_state()


def _audit_verified(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/audit/integrity")
    page.locator("form[action$='/audit/verify'] button[type=submit]").click()
    page.wait_for_load_state()


def _case(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/case")
    page.locator("#f-purpose").select_option(PURPOSE)
    page.locator("#f-case_ref").fill(CASE)
    page.locator("form[action$='/case'] button[type=submit]").click()
    page.wait_for_load_state()


def _found(page: Page, stack: ConsoleStack) -> None:
    _case(page, stack)
    page.goto("/ui/search")
    page.locator("#f-resident_id").fill(_applicant())
    page.locator("form[action$='/search/id'] button[type=submit]").click()
    page.wait_for_load_state()


def _person(page: Page, stack: ConsoleStack) -> None:
    _found(page, stack)
    page.locator("a[href*='/ui/persons/']").first.click()
    page.wait_for_load_state()


def _household(page: Page, stack: ConsoleStack) -> None:
    _found(page, stack)
    page.locator("form[action$='/household'] button[type=submit]").first.click()
    page.wait_for_load_state()


def _refused(page: Page, stack: ConsoleStack) -> None:
    page.goto("/ui/case")
    page.locator("#f-purpose").select_option("tax-assessment")
    page.locator("#f-case_ref").fill(CASE)
    page.locator("form[action$='/case'] button[type=submit]").click()
    page.goto("/ui/search")
    page.locator("#f-resident_id").fill(_applicant())
    page.locator("form[action$='/search/id'] button[type=submit]").click()
    page.wait_for_load_state()


SHOTS: list[Shot] = [
    Shot("sign-in", None, _go("/ui/sign-in")),
    Shot("home-caseworker", "caseworker", _go("/ui/")),
    Shot("caseworker-case", "caseworker", _go("/ui/case")),
    Shot("caseworker-results", "caseworker", _found),
    Shot("caseworker-person", "caseworker", _person),
    Shot("caseworker-household", "caseworker", _household),
    Shot("caseworker-refused", "caseworker", _refused),
    Shot("admin-users", "admin", _go("/ui/admin/users")),
    Shot("admin-grants", "admin", _go("/ui/admin/grants")),
    Shot("admin-catalogue", "admin", _go("/ui/catalogue")),
    Shot("sharing-requests", "department_admin", _go("/ui/sharing")),
    Shot("sharing-request", "data_steward", _go("/ui/sharing/requests/1")),
    Shot("indicators", "admin", _go("/ui/indicators")),
    Shot("auditor-log", "auditor", _audit_search),
    Shot("auditor-integrity", "auditor", _audit_verified),
    Shot("auditor-anomalies", "auditor", _go("/ui/audit/anomalies")),
    Shot("auditor-report", "auditor", _audit_report),
    Shot("publisher-runs", "publisher", _go("/ui/publisher/runs")),
    Shot("publisher-rejections", "publisher", _go("/ui/publisher/rejections")),
    Shot("publisher-usage", "publisher", _go("/ui/publisher/usage")),
]


def _language(page: Page, language: str) -> None:
    page.goto(f"/ui/language/{language}?next=/ui/sign-in")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only the pages whose name contains this")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    args_root = Path(tempfile.mkdtemp(prefix="console-shots-"))
    with running_console(args_root) as stack, sync_playwright() as driver:
        launch_args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=launch_args)
        try:
            for language in ("zh", "en"):
                for shot in SHOTS:
                    if args.only and args.only not in shot.name:
                        continue
                    context = browser.new_context(
                        base_url=stack.url,
                        locale="zh-CN" if language == "zh" else "en-GB",
                        viewport={"width": 1280, "height": 800},
                    )
                    page = context.new_page()
                    _language(page, language)
                    if shot.role is not None:
                        sign_in(page, stack.keys[shot.role])
                    shot.open(page, stack)
                    page.wait_for_load_state("networkidle")
                    target = OUT / f"{shot.name}.{language}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(f"wrote {target.relative_to(ROOT)}")
                    context.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
