"""The one event envelope, the contract base class, and the JetStream streams (one per producing service)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Base of every event contract. A subclass declares `event_type` and `event_version`; its subject is
    `<event_type>.v<version>`. A breaking change is a new class with the next version, never an edit."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            subject = cls.subject()
            if subject in CONTRACTS and CONTRACTS[subject] is not cls:
                raise RuntimeError(f"event contract {subject} declared twice")
            CONTRACTS[subject] = cls

    @classmethod
    def subject(cls) -> str:
        return f"{cls.event_type}.v{cls.event_version}"


CONTRACTS: dict[str, type[EventData]] = {}


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    producer: str
    correlation_id: str | None = None
    subject_key: str
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return f"{self.type}.v{self.version}"

    @classmethod
    def wrap(cls, event: EventData, *, producer: str, subject_key: str, correlation_id: str | None) -> Envelope:
        return cls(type=event.event_type, version=event.event_version, producer=producer,
                   correlation_id=correlation_id, subject_key=subject_key, data=event.model_dump(mode="json"))

    def parse_data(self) -> EventData | None:
        contract = CONTRACTS.get(self.subject)
        return contract.model_validate(self.data) if contract else None


# One stream per producing service; its subjects start with the stream's prefix.
STREAMS: dict[str, str] = {"REGISTRY": "registry", "BOOKING": "booking", "DESK": "desk"}


def stream_for_subject(subject: str) -> str:
    prefix = subject.split(".", 1)[0]
    for stream, stream_prefix in STREAMS.items():
        if stream_prefix == prefix:
            return stream
    raise ValueError(f"no stream carries subject {subject!r}")
