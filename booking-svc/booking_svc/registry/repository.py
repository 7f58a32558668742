"""Queries on the local copy of registry data."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.db import chunks, insert_ignoring_duplicates
from booking_svc.registry.models import Clinician, Practice, Registration, RegistryVersion, SlotType


async def get_practice(session: AsyncSession, ods_code: str, *, for_update: bool = False) -> Practice | None:
    return await session.get(Practice, ods_code, with_for_update=for_update or None)


async def practices_and_slot_types(
        session: AsyncSession, ods_codes: Iterable[str]) -> tuple[dict[str, Practice], dict[tuple[str, str], SlotType]]:
    """The practices and their slot types, in one query (a search needs both)."""
    codes = sorted(set(ods_codes))
    if not codes:
        return {}, {}
    rows = await session.execute(select(Practice, SlotType).outerjoin(SlotType, SlotType.ods_code == Practice.ods_code)
                                 .where(Practice.ods_code.in_(codes)))
    practices: dict[str, Practice] = {}
    types: dict[tuple[str, str], SlotType] = {}
    for practice, slot_type in rows:
        practices[practice.ods_code] = practice
        if slot_type is not None:
            types[(slot_type.ods_code, slot_type.code)] = slot_type
    return practices, types


async def pcn_members(session: AsyncSession, pcns: Iterable[str]) -> list[Practice]:
    names = sorted({p for p in pcns if p})
    if not names:
        return []
    return list((await session.execute(select(Practice).where(Practice.pcn.in_(names)))).scalars())


async def clinicians_of(session: AsyncSession, ods_code: str) -> dict[str, Clinician]:
    rows = (await session.execute(select(Clinician).where(Clinician.ods_code == ods_code))).scalars()
    return {c.clinician_id: c for c in rows}


async def clinicians_by_key(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Clinician]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = (await session.execute(select(Clinician).where(Clinician.ods_code.in_({k[0] for k in wanted})))).scalars()
    return {(c.ods_code, c.clinician_id): c for c in rows if (c.ods_code, c.clinician_id) in wanted}


async def slot_types_of(session: AsyncSession, ods_codes: Iterable[str]) -> dict[tuple[str, str], SlotType]:
    codes = sorted(set(ods_codes))
    if not codes:
        return {}
    rows = (await session.execute(select(SlotType).where(SlotType.ods_code.in_(codes)))).scalars()
    return {(t.ods_code, t.code): t for t in rows}


_REGISTERED_AT = select(Registration.ods_code).where(Registration.nhs_number == bindparam("p_nhs"))


async def registered_practices(session: AsyncSession, nhs_number: str) -> set[str]:
    return set((await session.execute(_REGISTERED_AT, {"p_nhs": nhs_number})).scalars())


async def applied_version(session: AsyncSession, ods_code: str, aggregate: str) -> int | None:
    row = await session.get(RegistryVersion, (ods_code, aggregate), with_for_update=True)
    return row.version if row else None


async def remember_version(session: AsyncSession, ods_code: str, aggregate: str, version: int) -> None:
    row = await session.get(RegistryVersion, (ods_code, aggregate))
    if row is None:
        session.add(RegistryVersion(ods_code=ods_code, aggregate=aggregate, version=version))
    else:
        row.version = version


async def replace_clinicians(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(Clinician).where(Clinician.ods_code == ods_code))
    if rows:
        await session.execute(Clinician.__table__.insert(), rows)


async def replace_slot_types(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(SlotType).where(SlotType.ods_code == ods_code))
    if rows:
        await session.execute(SlotType.__table__.insert(), rows)


async def add_registrations(session: AsyncSession, ods_code: str, nhs_numbers: list[str]) -> None:
    for chunk in chunks(nhs_numbers, 2000):
        await session.execute(insert_ignoring_duplicates(session, Registration.__table__),
                              [{"nhs_number": n, "ods_code": ods_code} for n in chunk])


async def remove_registrations(session: AsyncSession, ods_code: str, nhs_numbers: list[str]) -> None:
    for chunk in chunks(nhs_numbers):
        await session.execute(delete(Registration).where(Registration.ods_code == ods_code,
                                                         Registration.nhs_number.in_(chunk)))
