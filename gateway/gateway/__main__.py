"""`python -m gateway [serve]`: run the gateway with uvicorn (uvloop, httptools with coalesced writes)."""

from __future__ import annotations

import sys

import uvicorn

from gateway.settings import Settings
from services.httpserver import HTTP_PROTOCOL


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] != "serve":
        raise SystemExit("usage: python -m gateway [serve]")
    settings = Settings()
    uvicorn.run(
        "gateway.app:build_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, with each response written in one send()
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,  # the gateway writes its own access log, without query strings
        server_header=False,
        date_header=False,  # the upstream's Date passes through
        proxy_headers=False,  # X-Forwarded-For is the gateway's own decision (trust_forwarded_for)
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
