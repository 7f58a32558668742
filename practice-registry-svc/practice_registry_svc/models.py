"""Every table of this service, imported in one place for alembic."""

from practice_registry_svc.api_keys.models import ApiKey
from practice_registry_svc.clinicians.models import Clinician
from practice_registry_svc.patients.models import Patient
from practice_registry_svc.pcns.models import Pcn
from practice_registry_svc.practices.models import Practice
from practice_registry_svc.slot_types.models import SlotType

__all__ = ["ApiKey", "Clinician", "Patient", "Pcn", "Practice", "SlotType"]
