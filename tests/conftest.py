from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import DIALECTS, create_database, drop_database
from tests.support.natsserver import NatsServer

# Fails a whole-suite or CI run when a test the hazard log relies on is missing, skipped or failed.
pytest_plugins = ("tests.safety.plugin",)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream of the test's own, so no test sees another's streams or consumers."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url_factory(dialect: str, tmp_path: Path) -> Iterator:
    """Makes fresh, empty databases of the test's dialect (SQLite and PostgreSQL); drops them afterwards."""
    made: list[str] = []

    def make(name: str) -> str:
        url = create_database(dialect, name, tmp_path)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture
def database_url(database_url_factory) -> str:
    return database_url_factory("svc")
