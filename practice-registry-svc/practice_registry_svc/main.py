"""practice-registry-svc: practices, PCNs, clinicians, slot-type rules, registered patients and API keys."""

from __future__ import annotations

from fastapi import FastAPI

from services.app import create_app
from services.groupcommit import GroupCommit

from practice_registry_svc.api_keys.endpoints import internal_router as api_keys_internal
from practice_registry_svc.api_keys.endpoints import router as api_keys
from practice_registry_svc.clinicians.endpoints import router as clinicians
from practice_registry_svc.patients import service as patients
from practice_registry_svc.patients.endpoints import lookup_router as patient_lookup
from practice_registry_svc.patients.endpoints import upload_router as patient_upload
from practice_registry_svc.pcns.endpoints import router as pcns
from practice_registry_svc.practices.endpoints import router as practices
from practice_registry_svc.settings import Settings
from practice_registry_svc.slot_types.endpoints import router as slot_types


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def start(app: FastAPI) -> None:
        # Every call starts with a lookup, audited: at the 8am peak, on PostgreSQL, those commit together.
        app.state.lookups = GroupCommit(app.state.db, name="lookups", run_batch=patients.find_batch,
                                        run_one=patients.find_one)

    # The registry consumes no events: it is the source other services learn practices from.
    return create_app(settings, title="practice-registry-svc",
                      routers=[practices, pcns, clinicians, slot_types, api_keys, patient_upload, patient_lookup,
                               api_keys_internal], on_startup=[start])
