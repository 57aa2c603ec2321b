"""Alarms in the shape ETSI NFV fault management uses: event type, perceived severity, and a
raised → (acknowledged) → cleared life.

An alarm is about a managed object named like a reading source (``host:srv-1``, ``room:r1``,
``site:dc-1``, ``instance:nat-3``) or ``system:telemetry`` for faults of the monitoring itself.
Alarms are values: a change (acknowledged, cleared, re-rated) is a new copy, so whoever holds an
alarm list can hand it out without fearing later mutation.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from edgeroam.model.base import Identifier, Model


class AlarmEventType(StrEnum):
    """ETSI's alarm categories; facility faults are ENVIRONMENTAL_ALARM."""

    COMMUNICATIONS_ALARM = "COMMUNICATIONS_ALARM"
    PROCESSING_ERROR_ALARM = "PROCESSING_ERROR_ALARM"
    ENVIRONMENTAL_ALARM = "ENVIRONMENTAL_ALARM"
    QOS_ALARM = "QOS_ALARM"
    EQUIPMENT_ALARM = "EQUIPMENT_ALARM"


class PerceivedSeverity(StrEnum):
    CRITICAL = "CRITICAL"
    MAJOR = "MAJOR"
    MINOR = "MINOR"
    WARNING = "WARNING"
    INDETERMINATE = "INDETERMINATE"
    CLEARED = "CLEARED"


class AckState(StrEnum):
    UNACKNOWLEDGED = "UNACKNOWLEDGED"
    ACKNOWLEDGED = "ACKNOWLEDGED"


class Alarm(Model):
    id: Identifier
    managed_object: str = Field(
        min_length=3,
        max_length=200,
        pattern=r"^[a-z]+:[A-Za-z0-9_.:\-/]+$",
        description="What the alarm is about, kind:id (host:srv-1, room:r1, system:telemetry).",
    )
    event_type: AlarmEventType
    probable_cause: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")
    perceived_severity: PerceivedSeverity
    raised_at: float = Field(ge=0)
    changed_at: float = Field(ge=0, description="Last change of severity, ack or clearance.")
    cleared_at: float | None = None
    ack_state: AckState = AckState.UNACKNOWLEDGED
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    fault_details: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Alarm:
        if self.cleared_at is not None and self.cleared_at < self.raised_at:
            raise ValueError(f"alarm {self.id}: cleared_at is before raised_at")
        if (self.perceived_severity is PerceivedSeverity.CLEARED) != (self.cleared_at is not None):
            raise ValueError(
                f"alarm {self.id}: perceived_severity CLEARED goes with cleared_at and only then"
            )
        if (self.ack_state is AckState.ACKNOWLEDGED) != (self.acknowledged_at is not None):
            raise ValueError(f"alarm {self.id}: ACKNOWLEDGED goes with acknowledged_at")
        return self

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def acknowledge(self, by: str, now: float) -> Alarm:
        """The operator has seen it; an acknowledged alarm stays active until cleared."""
        return self.model_copy(
            update={
                "ack_state": AckState.ACKNOWLEDGED,
                "acknowledged_at": now,
                "acknowledged_by": by,
                "changed_at": now,
            }
        )

    def rerate(self, severity: PerceivedSeverity, now: float, details: tuple[str, ...]) -> Alarm:
        return self.model_copy(
            update={"perceived_severity": severity, "changed_at": now, "fault_details": details}
        )

    def clear(self, now: float) -> Alarm:
        return self.model_copy(
            update={
                "perceived_severity": PerceivedSeverity.CLEARED,
                "cleared_at": now,
                "changed_at": now,
            }
        )
