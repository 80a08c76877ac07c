"""The real stack the console's browser tests drive: ``exchange demo`` in a directory of its
own (a Kafka broker, the registry builder and the gateway as separate processes, SQLite),
a real OpenID Connect provider (node-oidc-provider, offline), and a key for each role.

The demo publishes five departments' exports, links them, and grants the civil affairs
bureau's caseworkers what the minimum-living-allowance review needs (through sharing
requests). The keys made here are for the roles the demo does not sign in as.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import DEV_DEMO_KEY
from exchange.core.db import make_engine, session_factory, transaction
from exchange.core.models import User
from exchange.identity.apikeys import create_key
from exchange.identity.identities import create_user
from exchange.local.broker import free_port

BROWSER_DIR = Path(__file__).resolve().parents[1] / "e2e" / "browser"
NODE_MODULES = BROWSER_DIR / "node_modules"
OIDC_CLIENT_ID = "exchange-console"
DISCOVERY = "/.well-known/openid-configuration"
OIDC_SECRET = "browser-tests-client-secret"  # the provider is the test's own, on loopback
OIDC_SUBJECT = "sso.caseworker"  # a login name at the provider, registered as a user here

# Who signs in as what (user name, department, role); the caseworker is the demo's.
ROLES: dict[str, tuple[str, str, str]] = {
    "auditor": ("audit.office", "civil_affairs", "auditor"),
    "admin": ("central.admin", "civil_affairs", "admin"),
    "publisher": ("hi.publisher", "health_insurance", "publisher"),
    "department_admin": ("ca.console.admin", "civil_affairs", "department_admin"),
    "data_steward": ("hr.console.steward", "human_resources", "data_steward"),
}


@dataclass
class ConsoleStack:
    """The running stack: the gateway's address, its database, a key for each role."""

    url: str
    data_dir: Path
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    demo_output: str = ""
    oidc_url: str | None = None

    @property
    def db(self) -> Path:
        return self.data_dir / "registry.db"

    def sessions(self) -> sessionmaker[Session]:
        return session_factory(make_engine(f"sqlite:///{self.db}"))

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]


def _exchange(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 420):
    return subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def _oidc_provider(port: int, redirect_uri: str, logs: Path) -> Iterator[str | None]:
    """node-oidc-provider on ``port``; its issuer URL (None when its npm packages are not
    installed: scripts/ensure-browser.sh installs them)."""
    if not (NODE_MODULES / "oidc-provider").is_dir():
        yield None
        return
    log = (logs / "oidc-provider.log").open("w")
    process = subprocess.Popen(
        ["node", str(BROWSER_DIR / "oidc_provider.mjs"), str(port), redirect_uri, OIDC_SECRET],
        cwd=BROWSER_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}{DISCOVERY}", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OIDC provider did not start: see {log.name}")
            time.sleep(0.2)
        yield issuer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def running_console(root: Path) -> Iterator[ConsoleStack]:
    """Run the demo in ``root`` (ports of its own) and yield the stack; ``exchange down``
    after."""
    gateway_port = free_port()
    url = f"http://127.0.0.1:{gateway_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {
        "EXCHANGE_DATA_DIR": str(root / "var"),
        "EXCHANGE_KAFKA__PORT": str(free_port()),
        "EXCHANGE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "EXCHANGE_GATEWAY__PORT": str(gateway_port),
        "EXCHANGE_REGISTRY__METRICS_PORT": str(free_port()),
        "COLUMNS": "200",
    }
    with _oidc_provider(free_port(), f"{url}/ui/sign-in/oidc/callback", root) as issuer:
        if issuer is not None:
            env |= {
                "EXCHANGE_CONSOLE__OIDC_DISCOVERY_URL": f"{issuer}{DISCOVERY}",
                "EXCHANGE_CONSOLE__OIDC_CLIENT_ID": OIDC_CLIENT_ID,
                "EXCHANGE_CONSOLE__OIDC_CLIENT_SECRET": OIDC_SECRET,
            }
        stack = ConsoleStack(url=url, data_dir=root / "var", env=env, oidc_url=issuer)
        try:
            demo = _exchange(["demo"], root, env)
            stack.demo_output = demo.stdout + demo.stderr
            if demo.returncode != 0:
                raise RuntimeError(f"exchange demo failed:\n{stack.demo_output}")
            stack.keys["caseworker"] = DEV_DEMO_KEY
            sessions = stack.sessions()
            with transaction(sessions) as session:
                for role, (username, department, user_role) in ROLES.items():
                    create_user(session, username=username, department=department, role=user_role)
                    session.flush()
                    stack.keys[role] = create_key(
                        session,
                        actor=username,
                        department=department,
                        role=user_role,
                        user_id=session.scalar(select(User.id).where(User.username == username)),
                    )
                create_user(
                    session,
                    username="sso.caseworker",
                    department="civil_affairs",
                    role="caseworker",
                    oidc_subject=OIDC_SUBJECT,
                )
            yield stack
        finally:
            _exchange(["down"], root, env, timeout=120)
