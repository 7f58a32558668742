"""GET /api/v1/slots offers only what the centre may book now."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import bindparam, select

from booking_svc.slots import repository
from booking_svc.slots.models import Slot
from services.db import DriverStatement
from services.timeutil import as_utc, london_date
from tests.booking_svc.conftest import TOMORROW, Booking, nhs, rota, session
from tests.support.apps import AGENT, practice

TODAY = date(2027, 1, 11)  # the clock starts at 09:00 London
A, B, C, D = "A81001", "A81002", "A81003", "D00001"


async def seed(booking: Booking) -> None:
    await booking.seed_practice(A, pcn="PCN-1")
    await booking.seed_practice(B, pcn="PCN-1")
    await booking.seed_practice(C, pcn="PCN-1", status="suspended")
    await booking.seed_practice(D, pcn="PCN-2")
    a = rota([
        session("routine-today", TODAY, "09:30", "10:30"),
        session("notice", TODAY, "10:00", "12:00", clinician="C2", slot_type="NOTICE", minutes=30),
        session("urgent-today", TODAY, "12:00", "13:00", clinician="C2", slot_type="URGENT"),
        session("urgent-tomorrow", TOMORROW, "09:00", "10:00", clinician="C2", slot_type="URGENT"),
        session("internal", TOMORROW, "09:00", "10:00", clinician="N1", slot_type="INTERNAL"),
        session("far", TODAY + timedelta(days=29), "09:00", "10:00"),
        session("hub", TOMORROW, "14:00", "15:00", clinician="N1", slot_type="SHARED"),
    ], start=TODAY, days=35)
    assert (await booking.put_rota(A, a)).status_code == 200
    for ods in (B, C, D):
        body = rota([session("routine", TOMORROW, "09:00", "10:00"),
                     session("hub", TOMORROW, "11:00", "12:00", clinician="C2", slot_type="SHARED", minutes=20)])
        assert (await booking.put_rota(ods, body)).status_code == 200


async def sessions_of(booking: Booking, items: list[dict]) -> list[str]:
    names = dict(await booking.sql("SELECT id, ods_code || ':' || session_id FROM slots"))
    return [names[i["id"]] for i in items]


async def search(booking: Booking, headers=AGENT, **params) -> dict:
    response = await booking.client.get("/api/v1/slots", params={"practice": A, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_only_what_the_centre_may_book_now_is_offered(booking: Booking):
    await seed(booking)
    found = await search(booking)
    offered = await sessions_of(booking, found["items"])
    assert offered == (["A81001:routine-today"] * 3 + ["A81001:notice"] * 0 + ["A81001:routine-today"] * 3
                       + ["A81001:notice"] * 2 + ["A81001:urgent-today"] * 6 + ["A81001:hub"] * 6)
    starts = [i["start"] for i in found["items"]]
    assert starts == sorted(starts) and starts[0] == "2027-01-11T09:30:00+00:00"
    # 120 minutes' notice from 09:00: the 11:00 and 11:30 video slots, not 10:00 and 10:30.
    assert [i["start"][11:16] for i in found["items"] if i["slot_type"] == "NOTICE"] == ["11:00", "11:30"]
    assert {i["channel"] for i in found["items"] if i["slot_type"] == "NOTICE"} == {"video"}
    # Tomorrow's on-the-day slots exist but are released at 08:00 tomorrow: "ring back at 8".
    assert found["embargoed"] == {"count": 6, "next_release_at": "2027-01-12T08:00:00+00:00"}
    assert found["next_cursor"] is None

    booking.clock.now = datetime(2027, 1, 12, 8, 0, tzinfo=timezone.utc)
    released = await search(booking)
    assert (await sessions_of(booking, released["items"])).count("A81001:urgent-tomorrow") == 6
    assert released["embargoed"] == {"count": 0, "next_release_at": None}
    # 29 days ahead stays out of reach until it is within 28 days.
    booking.clock.now = datetime(2027, 1, 12, 9, 0, tzinfo=timezone.utc)
    assert "A81001:far" in await sessions_of(booking, (await search(booking))["items"])


async def test_pcn_partners_share_only_their_shared_slots_and_a_suspended_practice_offers_nothing(booking: Booking):
    await seed(booking)
    with_pcn = await sessions_of(booking, (await search(booking, include="pcn"))["items"])
    assert with_pcn.count("A81002:hub") == 3
    assert not {"A81002:routine", "A81003:hub", "A81003:routine", "D00001:hub"} & set(with_pcn)
    partner = [i for i in (await search(booking, include="pcn"))["items"] if i["practice"] == B]
    assert all(i["pcn_partner"] and i["channel"] == "telephone" for i in partner)
    assert (await search(booking, practice=C))["items"] == []
    assert (await search(booking, practice=[B, C]))["items"] != []
    assert {i["practice"] for i in (await search(booking, practice=[B, C]))["items"]} == {B}


async def test_filters_paging_and_who_may_search(booking: Booking):
    await seed(booking)
    everything = (await search(booking))["items"]
    nurse = (await search(booking, role="nurse"))["items"]
    assert nurse and {i["clinician"]["name"] for i in nurse} == {"Sam Lee RN"}
    assert {i["clinician"]["id"] for i in (await search(booking, gender="Female"))["items"]} == {"C1"}
    assert {i["slot_type"] for i in (await search(booking, channel="telephone"))["items"]} == {"SHARED"}
    urgent = await search(booking, slot_type="URGENT")
    assert len(urgent["items"]) == 6 and urgent["embargoed"]["count"] == 6
    assert (await search(booking, slot_type="ROUTINE"))["embargoed"] == {"count": 0, "next_release_at": None}
    # The slots waiting for release are counted under the same clinician filters as the page, and on every page.
    assert (await search(booking, role="nurse"))["embargoed"]["count"] == 0
    assert (await search(booking, role="gp", gender="male"))["embargoed"]["count"] == 6
    assert (await search(booking, gender="female"))["embargoed"]["count"] == 0
    paged = await search(booking, limit=1, cursor=(await search(booking, limit=1))["next_cursor"])
    assert len(paged["items"]) == 1 and paged["embargoed"]["count"] == 6
    today = (await search(booking, to=TODAY.isoformat()))["items"]
    assert len(today) == 14 and all(i["start"].startswith("2027-01-11") for i in today)
    later = (await search(booking, **{"from": "2027-01-11T12:30:00"}))["items"]
    assert later[0]["start"] == "2027-01-11T12:30:00+00:00"

    pages, cursor = [], None
    while True:
        page = await search(booking, limit=7, cursor=cursor)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [7, 7, 6] and [i for p in pages for i in p] == everything
    assert len((await search(booking, limit=100000))["items"]) == 20

    assert (await search(booking, headers=practice(A)))["items"] == everything
    other = await booking.client.get("/api/v1/slots", params={"practice": B}, headers=practice(A))
    assert other.status_code == 403 and other.json()["code"] == "other_practice"
    wider = await booking.client.get("/api/v1/slots", params={"practice": A, "include": "pcn"}, headers=practice(A))
    assert wider.status_code == 403
    assert (await booking.client.get("/api/v1/slots", headers=AGENT)).json()["code"] == "practice_required"
    bad = await booking.client.get("/api/v1/slots", params={"practice": A, "cursor": "!!"}, headers=AGENT)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    bad_time = await booking.client.get("/api/v1/slots", params={"practice": A, "from": "soon"}, headers=AGENT)
    assert bad_time.status_code == 422 and bad_time.json()["code"] == "invalid_time"
    assert (await booking.client.get("/api/v1/slots", params={"practice": A})).status_code == 401


async def test_a_held_slot_is_hidden_until_its_hold_expires(booking: Booking):
    await seed(booking)
    first = (await search(booking))["items"][0]["id"]
    assert (await booking.client.post("/api/v1/holds", json={"slot_id": first}, headers=AGENT)).status_code == 201
    assert first not in [i["id"] for i in (await search(booking))["items"]]
    booking.clock.advance(seconds=119)
    assert first not in [i["id"] for i in (await search(booking))["items"]]
    booking.clock.advance(seconds=1)
    assert first in [i["id"] for i in (await search(booking))["items"]]


async def free_in_day(booking: Booking, day: date) -> int:
    """The database's own answer, read after the change: slots of A still to start that day, free or with an
    expired hold."""
    now = booking.clock()
    async with booking.app.state.db.session() as db_session:
        rows = (await db_session.execute(select(Slot.start_at, Slot.status, Slot.hold_expires_at)
                                         .where(Slot.ods_code == A))).all()
    return sum(1 for start, status, expires in rows
               if as_utc(start) >= now and london_date(start) == day
               and (status == "free" or (status == "held" and as_utc(expires) <= now)))


async def test_the_free_count_sent_with_a_hold_or_booking_is_the_days_count_after_it(booking: Booking):
    """The claim and the count share one statement on PostgreSQL, which sees the slot as it was before the claim:
    the count must still leave out the slot just taken, whether it was free, held by someone whose hold expired,
    or held by the caller."""
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(1), nhs(2)])
    first, second = [i["id"] for i in (await search(booking, **{"from": TODAY.isoformat(),
                                                                "to": TODAY.isoformat()}))["items"][:2]]
    before = await free_in_day(booking, TODAY)

    async def published() -> int:
        """The newest count sent: a hold's SlotAvailabilityChanged or a booking's own event."""
        sent = [e for e in await booking.events() if e["type"] in ("booking.availability.changed",
                                                                   "booking.appointment.booked")]
        return sent[-1]["data"]["free_slots_by_date"][TODAY.isoformat()]

    held = await booking.client.post("/api/v1/holds", json={"slot_id": first}, headers=AGENT)
    assert held.status_code == 201
    assert await published() == await free_in_day(booking, TODAY) == before - 1

    booking.clock.advance(seconds=121)  # that hold has expired: the slot counts as free again until booked
    assert await free_in_day(booking, TODAY) == before
    booked = await booking.client.post("/api/v1/appointments", headers=AGENT, json={"slot_id": first,
                                                                                    "nhs_number": nhs(1)})
    assert booked.status_code == 201, booked.text
    assert await published() == await free_in_day(booking, TODAY) == before - 1

    hold_id = (await booking.client.post("/api/v1/holds", json={"slot_id": second}, headers=AGENT)).json()["hold_id"]
    assert await published() == await free_in_day(booking, TODAY) == before - 2
    own = await booking.client.post("/api/v1/appointments", headers=AGENT, json={"slot_id": second,
                                                                                 "hold_id": hold_id,
                                                                                 "nhs_number": nhs(2)})
    assert own.status_code == 201, own.text
    assert await published() == await free_in_day(booking, TODAY) == before - 2


async def _plans(booking: Booking, statement, params: dict) -> list[str]:
    """How the database would run `statement` (a DriverStatement) with `params`: on PostgreSQL both its plan for
    these values and its generic plan, the one a prepared statement settles on; seq scans off, so a small test
    table does not make the planner prefer reading everything (the question is whether it can use an index)."""
    async with booking.app.state.db.session() as db_session:
        connection = await db_session.connection()
        dialect = connection.dialect
        if dialect.name == "sqlite":  # the statement as SQLAlchemy sends it there, IN lists expanded
            state = statement.statement.compile(dialect=dialect).construct_expanded_state(params)
            args = tuple(state.processors[name](state.parameters[name]) if name in state.processors
                         else state.parameters[name] for name in state.positiontup)
            rows = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + state.statement, args)).all()
            return [" ".join(str(row[-1]) for row in rows)]
        sql, _parts = statement.compile(dialect)
        args = statement.args(dialect, params)
        driver = (await connection.get_raw_connection()).driver_connection
        await driver.execute(f"SET enable_seqscan = off; PREPARE open_slots AS {sql}")
        # EXECUTE takes its values as SQL text: each written as a literal of the statement's own parameter type.
        types = [t.name for t in (await driver.prepare(sql)).get_parameters()]
        values = ", ".join([await driver.fetchval(f"SELECT quote_nullable($1::{t})", a) for t, a in zip(types, args)])
        plans = []
        for mode in ("force_custom_plan", "force_generic_plan"):
            await driver.execute(f"SET plan_cache_mode = {mode}")
            plans.append("\n".join(row[0] for row in await driver.fetch(f"EXPLAIN EXECUTE open_slots({values})")))
        await driver.execute("DEALLOCATE open_slots; RESET plan_cache_mode; RESET enable_seqscan")
        return plans


async def test_searches_and_day_counts_read_only_slots_that_are_not_booked(booking: Booking):
    """At the rush the earliest slots are booked first; a search that stepped over them read more rows the more
    of the fortnight was booked. The partial indexes leave booked slots out, and every statement that looks for
    available slots states their predicate in literal words, so the database can use them (a bound parameter
    in its place would not prove it, and a prepared statement's generic plan would walk the booked slots too)."""
    await seed(booking)
    now = booking.clock.now
    day = (datetime(2027, 1, 12, tzinfo=timezone.utc), datetime(2027, 1, 13, tzinfo=timezone.utc))
    one = {"p_now": now, "p_code_0": A, "p_type_0": "ROUTINE", "p_lo_0": now, "p_hi_0": now + timedelta(days=14),
           "p_limit": 20}
    many = {**one, "p_codes_0": [A, B, D]}
    del many["p_code_0"]
    dialect = booking.app.state.db.dialect
    cases = [
        (repository._search_statement(dialect, (True,), False, False, False), one),
        (repository._search_statement(dialect, (False,), False, False, False), many),
        (repository._FREE_IN_DAY_EACH, {"p_ods": A, "p_lo": day[0], "p_hi": day[1], "p_now": now}),
    ]
    for statement, params in cases:
        for plan in await _plans(booking, statement, params):
            assert "ix_slots_open_" in plan, plan  # which of the two is the planner's choice
            assert "ix_slots_ods_code_start_at" not in plan and "ix_slots_start_at_id" not in plan, plan


async def test_a_hold_is_found_by_its_id_through_the_index_of_held_slots(booking: Booking):
    """Only held slots have a hold id, so the index leaves out the NULLs of every other slot (a rota's thousands of
    new slots, every booked one). A lookup by hold id can still use it, in a generic plan too: `hold_id = $1` is
    never true of a NULL."""
    await seed(booking)
    lookup = DriverStatement(select(Slot.id).where(Slot.hold_id == bindparam("p_hold_id")))
    for plan in await _plans(booking, lookup, {"p_hold_id": "somehold"}):
        assert "ix_slots_hold_id_set" in plan, plan
