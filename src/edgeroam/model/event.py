"""An entry of the event log: every decision, operation change and alarm."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from edgeroam.model.base import Model


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class EventCategory(StrEnum):
    DECISION = "decision"
    OPERATION = "operation"
    LIFECYCLE = "lifecycle"
    TELEMETRY = "telemetry"
    ALARM = "alarm"
    INVENTORY = "inventory"
    SYSTEM = "system"


class Event(Model):
    id: int | None = None
    time: float
    category: EventCategory
    tags: tuple[str, ...] = ()
    severity: Severity = Severity.INFO
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
