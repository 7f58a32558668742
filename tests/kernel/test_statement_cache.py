"""The statements the hot paths build once at import are ones SQLAlchemy's compiled cache can hold. A statement
without a cache key is compiled again on every execution: a multi-row VALUES INSERT for the outbox did that
silently and cost a booking about 700 more Python calls than the executemany it replaced."""

from __future__ import annotations

import importlib
from itertools import product

import pytest
from sqlalchemy.sql.base import Executable

from booking_svc.appointments.repository import _claim_and_insert
from booking_svc.registry.repository import _practices_and_slot_types_statement
from booking_svc.slots.repository import _embargoed_statement, _search_statement

MODULES = ["services.outbox", "services.inbox",
           "booking_svc.slots.repository", "booking_svc.registry.repository", "booking_svc.appointments.repository",
           "booking_svc.feed.repository",
           "agent_desk_svc.calls.repository", "agent_desk_svc.agents.repository",
           "practice_registry_svc.patients.repository"]


def _module_statements(name: str) -> dict[str, Executable]:
    found: dict[str, Executable] = {}
    for attr, value in vars(importlib.import_module(name)).items():
        for key, item in (value.items() if isinstance(value, dict) else [(None, value)]):
            if isinstance(item, Executable):
                found[attr if key is None else f"{attr}[{key}]"] = item
    return found


@pytest.mark.parametrize("module", MODULES)
def test_statements_built_at_import_have_a_cache_key(module: str):
    statements = _module_statements(module)
    assert statements, f"{module} builds no statement at import: take it off the list"
    uncached = sorted(name for name, statement in statements.items() if statement._generate_cache_key() is None)
    assert uncached == []


def test_the_statements_built_once_per_shape_have_a_cache_key():
    # A DriverStatement runs its statement through SQLAlchemy on SQLite (and in a session that writes).
    built = [_practices_and_slot_types_statement(d).statement for d in ("postgresql", "sqlite")]
    shapes = [(), (True,), (False,), (True, False, False)]
    built += [_search_statement(d, shape, role, gender, paged).statement
              for d, shape, role, gender, paged in product(("postgresql", "sqlite"), shapes, *[(True, False)] * 3)]
    built += [_embargoed_statement(d, (False, True), role, gender).statement for d in ("postgresql", "sqlite")
              for role in (True, False) for gender in (True, False)]
    built += [_claim_and_insert(*flags) for flags in product((True, False), repeat=3)]
    assert all(statement._generate_cache_key() is not None for statement in built)


def test_the_check_would_catch_a_statement_compiled_on_every_execution():
    from services.outbox import outbox_table

    multi_row = outbox_table.insert().values([{"event_id": "a", "subject": "s", "payload": b"", "created_at": None}] * 2)
    assert multi_row._generate_cache_key() is None
