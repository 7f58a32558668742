"""Every table of this service, imported in one place for alembic."""

from booking_svc.appointments.models import Appointment
from booking_svc.feed.models import FeedCounter, FeedEntry
from booking_svc.registry.models import Clinician, Practice, Registration, RegistryVersion, SlotType
from booking_svc.slots.models import Slot

__all__ = ["Appointment", "Clinician", "FeedCounter", "FeedEntry", "Practice", "Registration", "RegistryVersion",
           "Slot", "SlotType"]
