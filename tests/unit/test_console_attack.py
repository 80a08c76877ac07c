"""The console attacked from outside (issue 21's review): what a caller sends never becomes
an audit entry's reason, out-of-range values are field errors rather than 500s, and sign-in
never sends the browser out of the console. Each test names what it tries."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.core.models import ConsoleLogin
from exchange.identity import consolesessions, oidcclient
from exchange.identity.apikeys import create_key
from gateway import create_app
from gateway.console import auth
from gateway.console.web import safe_next
from tests.support.database import migrated
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

# What an outsider might put where the gateway would echo it: a resident ID and markup.
PERSON = "110101199003077777"
PLANTED = f"{PERSON} <b>planted</b>"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@dataclass
class Console:
    client: TestClient
    keys: dict[str, str]
    db: Path

    def sign_in(self, role: str) -> str:
        """Sign in with the role's key; the session's CSRF token."""
        self.client.cookies.clear()
        self.client.get("/ui/sign-in")
        answer = self.client.post(
            "/ui/sign-in",
            data={
                "api_key": self.keys[role],
                "csrf_token": self.client.cookies.get("dx_signin"),
                "next": "/ui/",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        home = self.client.get("/ui/")
        found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
        assert found is not None
        return found.group(1)

    def last(self) -> tuple[str, str, int, str]:
        """The last audit entry: action, decision, status, reason."""
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT action, decision, status, reason FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        return row


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    settings = Settings(data_dir=tmp_path, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    keys = {}
    with migrated(settings.db_url) as factory, transaction(factory) as session:
        for role in ("auditor", "caseworker", "publisher", "admin", "department_admin"):
            keys[role] = create_key(
                session, actor=f"t.{role}", department="civil_affairs", role=role
            )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Console(client, keys, tmp_path / "registry.db")


# ---- what a caller sends never becomes an audit entry's reason ---------------------------


def test_the_sign_on_callbacks_error_parameter_never_reaches_the_audit_log(
    console: Console,
) -> None:
    """Anyone can send a browser (or curl) to the callback with ``?error=`` of their
    choosing, without signing in: the entry it leaves names a known OAuth error code, or
    none, never the text sent."""
    answer = console.client.get(
        "/ui/sign-in/oidc/callback", params={"error": PLANTED + "x" * 5000, "state": "s"}
    )
    assert answer.status_code == 401
    action, decision, status, reason = console.last()
    assert (action, decision, status) == ("console.sign_in", "deny", 401)
    assert PERSON not in reason
    assert "planted" not in reason
    assert PERSON not in answer.text
    # A provider's own error code is still told.
    console.client.get("/ui/sign-in/oidc/callback", params={"error": "access_denied"})
    assert "access_denied" in console.last()[3]


def test_a_forms_origin_header_never_reaches_the_audit_log(console: Console) -> None:
    """The Origin header is the caller's to choose: a refused form's entry says it came
    from another site without repeating what the header said (before and after sign-in)."""
    console.client.get("/ui/sign-in")
    answer = console.client.post(
        "/ui/sign-in",
        data={"api_key": "dx_x_y", "csrf_token": console.client.cookies.get("dx_signin")},
        headers={"Origin": PLANTED},
    )
    assert answer.status_code == 403
    action, decision, status, reason = console.last()
    assert (action, decision, status) == ("console.sign_in", "deny", 403)
    assert "another site" in reason
    assert PERSON not in reason

    token = console.sign_in("auditor")
    answer = console.client.post(
        "/ui/audit/log", data={"csrf_token": token}, headers={"Origin": PLANTED}
    )
    assert answer.status_code == 403
    assert "another site" in answer.text
    action, decision, status, reason = console.last()
    assert (action, decision, status) == ("audit.search", "deny", 403)
    assert PERSON not in reason


# ---- out-of-range values are field errors, not 500s ---------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("since", "0001-01-01T00:00"),
        ("until", "9999-12-31T23:59-08:00"),
        ("since", "0001-01-01T00:00+08:00"),
    ],
)
def test_a_time_out_of_range_in_the_log_search_is_a_field_error(
    console: Console, field: str, value: str
) -> None:
    token = console.sign_in("auditor")
    for path in ("/ui/audit/log", "/ui/audit/export"):
        answer = console.client.post(path, data={"csrf_token": token, field: value})
        assert answer.status_code == 400, (path, answer.status_code)
        assert 'aria-invalid="true"' in answer.text
        assert console.last()[:3] == (
            "audit.search" if path.endswith("log") else "audit.export",
            "deny",
            400,
        )


@pytest.mark.parametrize(("name", "value"), [("since", "0001-01-01"), ("until", "9999-12-31")])
def test_a_date_out_of_range_on_the_anomalies_page_is_a_field_error(
    console: Console, name: str, value: str
) -> None:
    console.sign_in("auditor")
    answer = console.client.get("/ui/audit/anomalies", params={name: value})
    assert answer.status_code == 400
    assert console.last()[:3] == ("audit.anomalies", "deny", 400)


@pytest.mark.parametrize("query", ["to=0001-01-05", "to=9999-12-31T23:59:59-08:00"])
def test_a_period_out_of_range_on_the_publishers_use_page_is_refused_as_such(
    console: Console, query: str
) -> None:
    """The page's date fields take any year a browser's date picker offers (from 0001)."""
    console.sign_in("publisher")
    answer = console.client.get(f"/ui/publisher/usage?{query}")
    assert answer.status_code == 400
    assert "too far in the past or the future" in answer.text
    assert console.last()[:3] == ("connectors.usage", "deny", 400)


# ---- sign-in never leaves the console -----------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/ui/../..",
        "/ui/..//evil.example",
        "/ui/%2e%2e//evil.example",
        "/ui/.%2E//evil.example",
        "/ui/audit/../../v1/admin/users",
        "/ui/./",
        "/ui/.\t.//evil.example",
        "/ui//evil.example",
    ],
)
def test_sign_in_never_sends_the_browser_out_of_the_console(target: str) -> None:
    """A browser resolves dot segments (also percent-encoded ones) before it asks: each of
    these would have left /ui/ (``/ui/..//evil.example`` is ``//evil.example`` on the
    gateway)."""
    assert safe_next(target) == "/ui/"


def test_sign_in_keeps_a_console_page_with_its_query() -> None:
    assert safe_next("/ui/audit/log?actor=li.na") == "/ui/audit/log?actor=li.na"
    assert safe_next("/ui/publisher/runs") == "/ui/publisher/runs"


# ---- single sign-on's starts cannot pile up -----------------------------------------------


def test_single_sign_on_starts_older_than_ten_minutes_are_cleared_as_new_ones_begin(
    tmp_path: Path,
) -> None:
    """``GET /ui/sign-in/oidc`` needs no sign-in and writes a row: a flood of starts that
    nobody finishes must not grow the table beyond ten minutes' worth."""
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        with transaction(factory) as session:
            for _ in range(50):
                consolesessions.begin_login(session, "/ui/", now=T0)
        with transaction(factory) as session:
            consolesessions.begin_login(session, "/ui/", now=T0 + timedelta(minutes=11))
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(ConsoleLogin)) == 1


def test_a_sign_on_started_from_a_long_address_fits_its_column(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-in page offers single sign-on with the page asked for as ``next``, query and
    all; the start keeps it in ``console_logins.return_to`` (255 characters, which
    PostgreSQL enforces): a longer one goes back to the home page instead of failing."""
    provider = oidcclient.Provider(
        issuer="https://idp.example",
        authorization_endpoint="https://idp.example/auth",
        token_endpoint="https://idp.example/token",
        jwks_uri="https://idp.example/jwks",
    )
    monkeypatch.setattr(
        auth, "_sign_on", lambda state: SimpleNamespace(provider=provider, client_id="console")
    )
    target = "/ui/audit/log?actor=" + "a" * 400
    answer = console.client.get("/ui/sign-in/oidc", params={"next": target}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("https://idp.example/auth?")
    with sqlite3.connect(console.db) as conn:
        kept = [row[0] for row in conn.execute("SELECT return_to FROM console_logins")]
    limit = ConsoleLogin.__table__.c.return_to.type.length
    assert kept == ["/ui/"]
    assert all(len(k) <= limit for k in kept)


# ---- the administrators' and stewards' forms ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("valid_until", "9999-12-31"), ("valid_from", "0001-01-01"), ("valid_from", PERSON)],
)
def test_a_grants_validity_out_of_range_is_a_field_error_that_does_not_repeat_it(
    console: Console, field: str, value: str
) -> None:
    """The grant form's dates take any day a date picker offers: the last day of year 9999
    (whose next midnight the end of a validity is) and the first of year 1 (before UTC's
    first moment) answered 500; a wrong date is not repeated in the entry's reason."""
    token = console.sign_in("admin")
    answer = console.client.post(
        "/ui/admin/grants",
        data={"csrf_token": token, "dataset": "person", "department": "civil_affairs",
              "role": "caseworker", "purposes": "x", field: value},
    )  # fmt: skip
    assert answer.status_code == 400
    action, decision, status, reason = console.last()
    assert (action, decision, status) == ("catalogue.grant.add", "deny", 400)
    assert field in reason
    assert value not in reason


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/ui/sharing/requests", {"dataset": "person", "duration_days": f"{PERSON}x"}),
        ("/ui/sharing/expiring?within_days=" + PERSON + "x", None),
    ],
)
def test_a_number_of_days_typed_wrong_is_not_repeated_in_the_audit_log(
    console: Console, path: str, data: dict[str, str] | None
) -> None:
    token = console.sign_in("department_admin")
    if data is None:
        answer = console.client.get(path)
    else:
        answer = console.client.post(path, data={"csrf_token": token, **data})
    assert answer.status_code == 400
    assert console.last()[2] == 400
    assert PERSON not in console.last()[3]


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("admin", "/ui/admin/grants/new?dataset="),
        ("department_admin", "/ui/sharing/new?dataset="),
    ],
)
def test_a_form_page_names_a_dataset_in_its_entry_only_if_there_is_one(
    console: Console, role: str, path: str
) -> None:
    """The dataset in these pages' addresses is the caller's to type: the entry names it
    when the exchange knows such a dataset, never whatever was typed."""
    console.sign_in(role)
    answer = console.client.get(path + PERSON)
    assert answer.status_code == 200
    assert PERSON not in console.last()[3]
    if role == "admin":  # the grant form offers every dataset of the standards
        console.client.get(path + "person")
        assert "person" in console.last()[3]


# ---- an ended session sends back to a page that can be shown ------------------------------


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("http://testserver/ui/audit/log?actor=li.na", "/ui/audit/log?actor=li.na"),
        (None, "/ui/"),
        ("https://evil.example/ui/audit/log", "/ui/"),
        ("http://testserver/ui/..//evil.example", "/ui/"),
    ],
)
def test_a_form_sent_after_the_session_ended_returns_to_the_page_it_was_sent_from(
    console: Console, referer: str | None, expected: str
) -> None:
    """A form that only answers POST (export, verify, approve, revoke...) sent once the
    session has ended (30 minutes idle is common) was answered with the sign-in page
    returning to the form's own address: after signing in, the browser asked for it with
    GET and was answered "Method Not Allowed". It returns to the page the form was on."""
    headers = {"Referer": referer} if referer else {}
    answer = console.client.post(
        "/ui/audit/export", data={"csrf_token": "x", "format": "csv"}, headers=headers
    )
    assert answer.status_code == 401
    found = re.search(r'name="next" value="([^"]*)"', answer.text)
    assert found is not None
    assert found.group(1).replace("&amp;", "&") == expected


def test_a_sign_in_form_still_works_after_another_tab_showed_the_sign_in_page(
    console: Console,
) -> None:
    """Two tabs with an ended session: the first shows /ui/sign-in, the second is reloaded
    on another console page and shows the sign-in page too. The first tab's form must still
    be accepted (its token was replaced by the second page's: 403, "out of date")."""
    first = console.client.get("/ui/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', first.text)
    assert token is not None
    assert console.client.get("/ui/audit/log").status_code == 401  # the other tab
    answer = console.client.post(
        "/ui/sign-in",
        data={"api_key": console.keys["auditor"], "csrf_token": token.group(1), "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303


# ---- an ended session's requests are traceable --------------------------------------------


def test_a_request_with_an_ended_session_is_audited_with_the_key_it_was_signed_in_with(
    console: Console,
) -> None:
    """A revoked key sent to the API leaves its key id in the refusal's entry, so a replayed
    key can be traced; a console session made from that key, used after the revocation (or
    after it was signed out), must leave the same trace, not an entry naming nobody."""
    console.sign_in("auditor")
    key_id = console.keys["auditor"].split("_")[1]
    with sqlite3.connect(console.db) as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_id = ?", (key_id,)
        )
    assert console.client.get("/ui/audit/log").status_code == 401
    assert console.client.get("/ui/audit/log").status_code == 401  # ended now: signed out
    with sqlite3.connect(console.db) as conn:
        rows = conn.execute(
            "SELECT action, status, key_id FROM audit_log ORDER BY seq DESC LIMIT 2"
        ).fetchall()
    assert rows == [("audit.search", 401, key_id), ("audit.search", 401, key_id)]


# ---- console pages take the session cookie, nothing else ----------------------------------


@pytest.mark.parametrize("scheme", ["x-api-key", "basic", "bearer"])
def test_a_console_form_with_credentials_in_headers_but_no_session_is_refused(
    console: Console, scheme: str
) -> None:
    """The console's CSRF check is made on its session; credentials in headers skipped it.
    The gateway itself asks browsers for HTTP Basic credentials (on /registry), which a
    browser then sends by itself: a page elsewhere could post a console form with them. A
    console path takes its session cookie only."""
    key = console.keys["admin"]
    headers = {
        "x-api-key": {"X-API-Key": key},
        "basic": {"Authorization": "Basic " + base64.b64encode(f"x:{key}".encode()).decode()},
        "bearer": {"Authorization": f"Bearer {key}"},
    }[scheme]
    answer = console.client.post(
        "/ui/admin/departments",
        data={"code": "planted_dept", "name": "Planted"},
        headers=headers,
        follow_redirects=False,
    )
    assert answer.status_code == 401
    with sqlite3.connect(console.db) as conn:
        made = conn.execute("SELECT code FROM departments WHERE code = 'planted_dept'").fetchall()
    assert made == []
    assert console.last()[:3] == ("admin.department.create", "deny", 401)


def test_a_sign_in_with_a_revoked_key_is_audited_with_that_keys_id(console: Console) -> None:
    """The API records the id of a revoked (or wrong-secret) key it was sent, so a replayed
    key can be traced; the sign-in form must too. An id the exchange never issued is not
    recorded (it could be anything typed)."""
    key_id = console.keys["auditor"].split("_")[1]
    with sqlite3.connect(console.db) as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_id = ?", (key_id,)
        )
    for sent, recorded in ((console.keys["auditor"], key_id), ("dx_000000000000_nothing", None)):
        console.client.get("/ui/sign-in")
        answer = console.client.post(
            "/ui/sign-in",
            data={"api_key": sent, "csrf_token": console.client.cookies.get("dx_signin")},
        )
        assert answer.status_code == 401
        with sqlite3.connect(console.db) as conn:
            last = conn.execute(
                "SELECT action, status, key_id FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        assert last == ("console.sign_in", 401, recorded)


# ---- an outsider cannot fill the audit log ------------------------------------------------


def _entries(console: Console) -> int:
    with sqlite3.connect(console.db) as conn:
        found = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert found is not None
    return int(found[0])


@pytest.mark.parametrize("where", ["sign-in form", "sign-on callback"])
def test_refused_sign_ins_spend_the_addresss_budget_of_failures(
    console: Console, where: str
) -> None:
    """Requests refused before any credential is checked (a sign-in form without its
    token, a sign-on callback nobody started) were each audited without limit: anyone
    could write the audit log as fast as they could send. Like failed authentications,
    they spend the client address's budget (gateway.auth_failures_per_minute, 20); once
    it is spent they are answered 429 and counted, not audited one by one."""
    before = _entries(console)
    statuses = []
    for _ in range(40):
        if where == "sign-in form":
            answer = console.client.post(
                "/ui/sign-in", data={"api_key": "dx_x_y", "csrf_token": "forged"}
            )
        else:
            answer = console.client.get("/ui/sign-in/oidc/callback", params={"state": "x"})
        statuses.append(answer.status_code)
    assert statuses.count(429) >= 20
    assert _entries(console) - before <= 20


def test_a_console_form_too_big_to_read_is_audited_for_what_it_was(console: Console) -> None:
    """A form refused before the page could read it (too many fields, a body over the limit)
    was audited as 'credentials refused: the form's security token is missing', naming the
    signed-in user all the same: the token could not be read, the credentials were fine."""
    token = console.sign_in("auditor")
    body = "&".join(f"f{i}=1" for i in range(1100)) + f"&csrf_token={token}"
    answer = console.client.post(
        "/ui/audit/log",
        content=body.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    with sqlite3.connect(console.db) as conn:
        last = conn.execute(
            "SELECT action, status, actor, reason FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert last[:3] == ("request.refused", 400, "t.auditor")
    assert "Too many fields" in last[3]
    assert "credentials refused" not in last[3]


@pytest.mark.parametrize(
    "query", ["since=0001-01-01T00:00:00%2B08:00", "until=9999-12-31T23:59:59-08:00"]
)
def test_the_audit_apis_search_refuses_a_time_out_of_range_as_the_console_does(
    console: Console, query: str
) -> None:
    """The route the log search page mirrors answered 503 database_error (the driver could
    not store the time in UTC); it is the caller's error, 400."""
    answer = console.client.get(
        f"/v1/audit/entries?{query}", headers={"X-API-Key": console.keys["auditor"]}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_failed"
