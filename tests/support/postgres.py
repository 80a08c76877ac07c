"""A throwaway PostgreSQL server for tests (initdb + pg_ctl on a free local port)."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from exchange.local.broker import free_port

PG_ROOT = Path("/usr/lib/postgresql")
OS_USER = "postgres"  # initdb and postgres refuse to run as root
DB_USER = "postgres"


def find_bin_dir() -> Path:
    """Return the newest /usr/lib/postgresql/<ver>/bin that has initdb."""
    found = [p.parent for p in PG_ROOT.glob("*/bin/initdb")]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {PG_ROOT}/*/bin; "
            "run scripts/ensure-postgres.sh first"
        )
    return max(found, key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])


class PostgresServer:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.bin_dir = find_bin_dir()
        self.as_root = os.geteuid() == 0
        self.port = 0
        self._work: Path | None = None
        self._own_work = False  # True if _work is a private temp dir we must delete

    def _cmd(self, *args: str) -> list[str]:
        prog = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", OS_USER, "--", *prog] if self.as_root else prog

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(*args), cwd=self._work, capture_output=True, text=True, timeout=timeout
        )

    def _prepare_work_dir(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            return self.base_dir
        # The postgres OS user must own base_dir and be able to reach it. pytest's tmp_path
        # sits under a 0700 root-owned dir, so fall back to a private dir in /tmp if needed.
        try:
            pw = pwd.getpwnam(OS_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root needs the {OS_USER!r} OS user; run scripts/ensure-postgres.sh"
            ) from None
        work = self.base_dir
        work.chmod(0o755)
        os.chown(work, pw.pw_uid, pw.pw_gid)
        probe = ["runuser", "-u", OS_USER, "--", "test", "-w", str(work)]
        if subprocess.run(probe, cwd="/", capture_output=True).returncode != 0:
            work = Path(tempfile.mkdtemp(prefix="pgtest-"))
            os.chown(work, pw.pw_uid, pw.pw_gid)
            self._own_work = True
        return work

    @property
    def data_dir(self) -> Path:
        assert self._work is not None, "server not started"
        return self._work / "data"

    @property
    def log_file(self) -> Path:
        assert self._work is not None, "server not started"
        return self._work / "postgres.log"

    def start(self, timeout: float = 60) -> None:
        self._work = self._prepare_work_dir()
        init = self._run(
            "initdb", "-D", str(self.data_dir), "-U", DB_USER, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync", timeout=timeout,
        )  # fmt: skip
        if init.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        self.port = free_port()
        opts = (
            f"-p {self.port} -k {shlex.quote(str(self._work))} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            res = self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", opts, "-w", "-t", str(int(timeout)), timeout=timeout + 10,
            )  # fmt: skip
            ok, out = res.returncode == 0, res.stdout + res.stderr
        except subprocess.TimeoutExpired as exc:
            ok, out = False, str(exc)
        if not ok:
            tail = self._log_tail()
            self.stop()
            raise RuntimeError(f"postgres failed to start:\n{out}\n--- server log ---\n{tail}")

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self._work is None:
            return
        pid = self._postmaster_pid()
        if pid is not None:
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
            if _alive(pid):  # last resort: immediate shutdown, then kill
                os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        if self._own_work:
            shutil.rmtree(self._work, ignore_errors=True)
        self._work = None

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (init may reap the postmaster lazily)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
