"""The stack a benchmark starts for itself: `callcentre.stack.Stack` (nats-server, the three services, the
gateway, supervised) in a temporary data dir, every service on a fresh PostgreSQL database of its own, dropped
afterwards. The gateway's per-principal rate limit is raised out of reach (the limiter still runs)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from callcentre.stack import SERVICES, Stack, free_port

PG_ADMIN_DSN = os.environ.get("CALLCENTRE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_RATE_LIMIT = "100000000/hour"
# Signing in is not what is measured: a scratch stack hashes its throwaway agents' passwords cheaply.
CHEAP_PASSWORD_HASHING = {"DESK_ARGON2_TIME_COST": "1", "DESK_ARGON2_MEMORY_KIB": "8192", "DESK_ARGON2_PARALLELISM": "1"}
DATABASE_NAMES = {"practice-registry-svc": "registry", "booking-svc": "booking", "agent-desk-svc": "desk"}


def _server_and_db(dsn: str) -> tuple[str, str]:
    server, _, db = dsn.rpartition("/")
    return server, db


async def create_databases_async(prefix: str, names: list[str], admin_dsn: str = PG_ADMIN_DSN) -> dict[str, str]:
    """Fresh, empty databases `<prefix>_<name>`; returns name -> plain postgresql:// DSN."""
    import asyncpg

    server, _ = _server_and_db(admin_dsn)
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{prefix}_{name}"')
    finally:
        await conn.close()
    return {name: f"{server}/{prefix}_{name}" for name in names}


async def drop_databases_async(dsns: list[str], admin_dsn: str = PG_ADMIN_DSN) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for dsn in dsns:
            await conn.execute(f'DROP DATABASE IF EXISTS "{_server_and_db(dsn)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def create_databases(prefix: str, names: list[str], admin_dsn: str = PG_ADMIN_DSN) -> dict[str, str]:
    return asyncio.run(create_databases_async(prefix, names, admin_dsn))


def drop_databases(dsns: list[str], admin_dsn: str = PG_ADMIN_DSN) -> None:
    asyncio.run(drop_databases_async(dsns, admin_dsn))


def sqlalchemy_url(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


@dataclass
class PostgresStack:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    keep_databases: bool = False
    log: Callable[[str], None] = print
    stack: Stack | None = None
    dsns: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.stack is not None
        return f"http://127.0.0.1:{self.stack.gateway_port}"

    def database_url(self, service: str) -> str:
        return sqlalchemy_url(self.dsns[DATABASE_NAMES[service]])

    @property
    def secrets(self) -> dict[str, str]:
        assert self.stack is not None
        return self.stack.secrets

    @property
    def admin_credentials(self) -> tuple[str, str]:
        assert self.stack is not None
        return self.stack.admin_credentials

    def start(self) -> None:
        prefix = f"ccbench_{uuid.uuid4().hex[:8]}"
        self.dsns = create_databases(prefix, list(DATABASE_NAMES.values()))
        try:
            self.stack = Stack(self.data_dir, free_port(), any_ports=True)
            self.stack.prepare()
            for name, _package, env_prefix in SERVICES:
                self.stack.env[f"{env_prefix}DATABASE_URL"] = self.database_url(name)
            self.stack.env["GATEWAY_RATE_LIMIT_PRINCIPAL"] = BENCH_RATE_LIMIT
            self.stack.env.update(self.extra_env)
            self.log(f"stack: PostgreSQL databases {prefix}_*, data dir {self.data_dir}, "
                     f"GATEWAY_RATE_LIMIT_PRINCIPAL={self.stack.env['GATEWAY_RATE_LIMIT_PRINCIPAL']}"
                     + "".join(f", {k}={v}" for k, v in sorted(self.extra_env.items())))
            self.stack.migrate()
            self.stack.build_children()
            self.stack.start_all()
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="bench-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        assert self.stack is not None
        while not self._stop.wait(0.5):
            self.stack.supervise_once(lambda m: self.log(f"supervisor: {m}"))

    def pid(self, name: str) -> int | None:
        assert self.stack is not None
        for child in self.stack.children:
            if child.name == name and child.proc is not None and child.proc.poll() is None:
                return child.proc.pid
        return None

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        if self.stack is not None:
            self.stack.stop_all()
        if self.dsns and not self.keep_databases:
            try:
                drop_databases(list(self.dsns.values()))
            except Exception as exc:  # noqa: BLE001 - a leftover scratch database is not worth failing a report
                self.log(f"stack: could not drop the scratch databases: {exc}")
