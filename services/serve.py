"""One entry point shape for every service: `python -m <package> [serve|migrate]`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import uvicorn

from services.httpserver import HTTP_PROTOCOL
from services.migrations import make_revision, upgrade
from services.settings import ServiceSettings


def main(package: str, settings: ServiceSettings, argv: list[str] | None = None,
         commands: Mapping[str, Callable[[ServiceSettings, list[str]], None]] | None = None) -> None:
    """`commands` adds a service's own operator commands (e.g. a retention purge) beside serve and migrate."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "serve"
    if commands and command in commands:
        commands[command](settings, args[1:])
        return
    if command == "migrate":
        upgrade(package, settings.database_url)
        return
    if command == "makemigration":  # developers: autogenerate the next revision from the models
        make_revision(package, " ".join(args[1:]) or "change")
        return
    if command != "serve":
        extra = "|".join(commands or ())
        raise SystemExit(f"usage: python -m {package} [serve|migrate{'|' + extra if extra else ''}]")
    uvicorn.run(
        f"{package}.main:build_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, with each response written in one send()
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        proxy_headers=False,
    )
