"""The command line's shared context: settings, database, keystore, consoles, error reporter.

Every command of ``exchange``, and of its plug-ins (``exchange connector ...``), takes
typer's context and asks :func:`state` for what it uses. Nothing is made before a
command asks for it: commands that need no database (``up``, ``config``, ``schemas
show``) open none, and those that need no settings (``connector check``) read none.
The engine is made and migrated once, on first use, and shared by everything the
command does with the database; it is disposed when the command ends, however it
ends (typer's ``ctx.call_on_close``).

Every :class:`ExchangeError` a command raises ends in one place, the root command
(:class:`RootGroup`), which reports it through :meth:`CliContext.report`:
``error (<code>): <message>`` on stderr, exit status 2, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.core import TyperGroup

from exchange.core.config import Settings, load_settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import ExchangeError

if TYPE_CHECKING:
    from exchange.security.keystore import LocalKeyStore


P = ParamSpec("P")
T = TypeVar("T")


class CliContext:
    """What one command uses, each part made on first use; :meth:`close` ends it.

    ``console`` (stdout) and ``err_console`` (stderr) are the command line's only two
    consoles. Pass ``settings`` to use them instead of loading them from the environment.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.console = Console(highlight=False)
        self.err_console = Console(stderr=True, highlight=False)
        self._settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._keystore: LocalKeyStore | None = None
        self._closed = False

    @property
    def settings(self) -> Settings:
        """The settings, loaded once (a ConfigError names every problem)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        """The database engine: made and migrated to the newest schema on first use."""
        if self._closed:
            raise RuntimeError("the command's context is closed")
        if self._engine is None:
            engine = make_engine(self.settings.db_url)
            try:
                migrate(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory over :attr:`engine`."""
        if self._sessions is None:
            self._sessions = session_factory(self.engine)
        return self._sessions

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with transaction(self.sessions) as session:
            yield session

    @property
    def keystore(self) -> LocalKeyStore:
        """The keystore on this database, under the settings' master key."""
        if self._keystore is None:
            from exchange.security.keystore import LocalKeyStore, master_key_from_settings

            self._keystore = LocalKeyStore(self.sessions, master_key_from_settings(self.settings))
        return self._keystore

    def apply(
        self, change: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``change(session, *args, **kwargs)`` in one transaction, and what it returned."""
        with self.transaction() as session:
            return change(session, *args, **kwargs)

    def report(self, error: ExchangeError) -> None:
        """Say what went wrong, on stderr: ``error (<code>): <message>``.

        The message is printed as plain text (it may hold brackets, or span lines)."""
        self.err_console.print(f"[bold red]error[/] ({error.code}): ", end="")
        self.err_console.print(error.message, markup=False)

    def close(self) -> None:
        """Dispose of the engine, if one was made; the context is not used after this."""
        self._closed = True
        engine, self._engine = self._engine, None
        self._sessions = None
        self._keystore = None
        if engine is not None:
            engine.dispose()


_STATE = "exchange.cli.context"


def state(ctx: typer.Context) -> CliContext:
    """The command's shared context, opened on first call and closed when the command ends.

    It lives on the root of typer's context chain (``ctx.obj``), so a command, its group
    and the root callback share one; a CliContext passed in as ``obj`` is used as given.
    """
    root = ctx.find_root()
    cli = root.meta.get(_STATE)
    if cli is None:
        cli = root.obj if isinstance(root.obj, CliContext) else CliContext()
        root.obj = cli
        root.meta[_STATE] = cli
        root.call_on_close(cli.close)
    assert isinstance(cli, CliContext)
    return cli


class RootGroup(TyperGroup):
    """The ``exchange`` command: every ExchangeError its commands raise is reported here,
    once, and ends the command with exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ExchangeError as error:
            state(ctx).report(error)
            raise typer.Exit(2) from error


__all__ = ["CliContext", "RootGroup", "state"]


def cli_actor() -> str:
    """Who runs a command, as the audit log names an operator: ``cli:<login>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container): still say it came from the CLI
        return "cli"


def audit_operator(
    session: Session,
    action: str,
    reason: str,
    *,
    actor: str | None = None,
    dataset: str | None = None,
    subjects: Sequence[str] = (),
    fields: Sequence[str] = (),
) -> None:
    """Append an operator's action (a change, or a read of the registry) to the audit log,
    in ``session``'s transaction: allowed, answered 200, role ``operator``."""
    from exchange import audit
    from exchange.core.db import utcnow

    decision = audit.Decision(
        request_id=f"cli-{utcnow():%Y%m%dT%H%M%S%f}",
        action=action,
        decision="allow",
        reason=reason,
        status=200,
        actor=actor or cli_actor(),
        role="operator",
        dataset=dataset,
        subjects=list(dict.fromkeys(subjects)),
        fields=list(fields),
    )
    audit.append(session, decision, at=utcnow())
