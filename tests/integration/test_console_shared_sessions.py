"""A console session works across gateway processes: it lives in the database.

Two gateways on one database (SQLite, then PostgreSQL), each a real uvicorn server on its
own port: a browser signed in through one is served by the other, and signing out through
the second ends the session on the first. The cookie is the only thing carried over.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.identity.apikeys import create_key
from tests.support.database import migrated
from tests.support.gateway import running_gateway
from tests.support.keys import MASTER_KEY_B64

pytestmark = pytest.mark.integration


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_a_session_made_by_one_gateway_is_served_and_ended_by_another(
    database_url: str, tmp_path: Path
) -> None:
    with migrated(database_url) as factory, transaction(factory) as session:
        key = create_key(session, actor="li.na", department="civil_affairs", role="caseworker")
    settings = [
        Settings(
            data_dir=tmp_path / name,
            database_url=database_url,
            master_key=MASTER_KEY_B64,
            audit={"head_interval_s": 0, "head_every_entries": 0, "mirror": False},
        )
        for name in ("a", "b")
    ]
    with running_gateway(settings[0]) as first, running_gateway(settings[1]) as second:
        with httpx.Client(base_url=first) as a:
            form = a.get("/ui/sign-in")
            signed = a.post(
                "/ui/sign-in",
                data={"api_key": key, "csrf_token": _token(form.text), "next": "/ui/"},
            )
            assert signed.status_code == 303
            cookie = a.cookies.get("dx_session")
            assert cookie
        with httpx.Client(base_url=second, cookies={"dx_session": cookie}) as b:
            home = b.get("/ui/")
            assert home.status_code == 200
            assert "li.na" in home.text
            out = b.post("/ui/sign-out", data={"csrf_token": _token(home.text)})
            assert out.status_code == 303
        with httpx.Client(base_url=first, cookies={"dx_session": cookie}) as a_again:
            refused = a_again.get("/ui/")
            assert refused.status_code == 401
            assert "signed out" in refused.text
