"""Alarms raised by the facility policy (ETSI style): list, read, acknowledge.

The alarms live in the policy's memory (the policy is pure; its memory is its state), so the
routes read and update `controller.memory["facility"]` under the controller's lock, the same
lock the control cycle holds. Acknowledging is the ETSI PATCH of `ackState`; acknowledging the
`telemetry_suspect` alarm tells the policy the emergency is real and it may act.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status

from edgeroam.api.auth import Principal, RuntimeDep, require, standard_access
from edgeroam.config import Role
from edgeroam.model import (
    AckState,
    Alarm,
    AlarmEventType,
    EventCategory,
    Model,
    PerceivedSeverity,
)
from edgeroam.policies.facility import POLICY, acknowledge_alarm, alarms_of

router = APIRouter(prefix="/alarms", tags=["alarms"], dependencies=[Depends(standard_access)])
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


class AlarmPatch(Model):
    """The one change an operator makes to an alarm: acknowledge it."""

    ack_state: Literal[AckState.ACKNOWLEDGED]


@router.get("", response_model=list[Alarm])
def list_alarms(
    runtime: RuntimeDep,
    state: Annotated[
        Literal["active", "cleared", "all"], Query(description="Active alarms by default.")
    ] = "active",
    severity: PerceivedSeverity | None = None,
    event_type: AlarmEventType | None = None,
    ack_state: AckState | None = None,
    managed_object: Annotated[
        str | None, Query(description="e.g. host:srv-1, room:r1, system:telemetry")
    ] = None,
) -> list[Alarm]:
    """Oldest first; cleared alarms stay listed for the policy's `alarm_retention_s`."""
    controller = runtime.controller
    with controller.lock:
        alarms = alarms_of(controller.memory.get(POLICY))
    return [
        a
        for a in alarms
        if (state == "all" or a.active == (state == "active"))
        and (severity is None or a.perceived_severity is severity)
        and (event_type is None or a.event_type is event_type)
        and (ack_state is None or a.ack_state is ack_state)
        and (managed_object is None or a.managed_object == managed_object)
    ]


@router.get("/{alarm_id}", response_model=Alarm)
def get_alarm(alarm_id: str, runtime: RuntimeDep) -> Alarm:
    controller = runtime.controller
    with controller.lock:
        alarms = {a.id: a for a in alarms_of(controller.memory.get(POLICY))}
    if alarm_id not in alarms:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id!r}")
    return alarms[alarm_id]


@router.patch("/{alarm_id}", response_model=Alarm)
def acknowledge(alarm_id: str, body: AlarmPatch, runtime: RuntimeDep, who: Operator) -> Alarm:
    """Acknowledge an alarm (409 if it already is); it stays active until its cause clears."""
    del body  # validated: the only accepted change is ack_state=ACKNOWLEDGED
    controller = runtime.controller
    now = runtime.now()
    with controller.lock:
        try:
            memory, alarm = acknowledge_alarm(
                controller.memory.get(POLICY), alarm_id, who.name or "operator", now
            )
        except KeyError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc.args[0])) from exc
        except ValueError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        controller.memory[POLICY] = memory
        controller.events.emit(
            now,
            EventCategory.ALARM,
            f"{alarm.probable_cause} on {alarm.managed_object} acknowledged by {who.name}",
            tags=(POLICY, "alarm_acknowledged", "alarm"),
            data={"alarm": alarm.model_dump(mode="json")},
        )
        controller.events.flush()
    return alarm
