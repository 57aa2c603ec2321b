"""One lifecycle action occurrence with an ETSI-style operation state."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from edgeroam.model.base import Identifier, Model
from edgeroam.model.reason import Reason


class OperationKind(StrEnum):
    INSTANTIATE = "instantiate"
    MIGRATE = "migrate"
    SCALE_OUT = "scale-out"
    SCALE_IN = "scale-in"
    HEAL = "heal"
    OFFLOAD = "offload"
    REVERT = "revert"
    TERMINATE = "terminate"
    UPDATE = "update"
    POWER_OFF = "power-off"
    POWER_ON = "power-on"
    CORDON = "cordon"
    UNCORDON = "uncordon"
    PROMOTE = "promote"


class OperationState(StrEnum):
    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def in_flight(self) -> bool:
        return self in _IN_FLIGHT

    @property
    def final(self) -> bool:
        return self in _FINAL


_IN_FLIGHT = frozenset(
    {
        OperationState.STARTING,
        OperationState.PROCESSING,
        OperationState.ROLLING_BACK,
        OperationState.FAILED_TEMP,
    }
)
_FINAL = frozenset({OperationState.COMPLETED, OperationState.FAILED, OperationState.ROLLED_BACK})


class Step(Model):
    """One driver action of an operation's plan; `done` survives a crash with the operation.

    `effect` names inventory changes applied when the step completes (e.g. an instance's host
    switching to the migration target), so the inventory follows the world step by step.
    """

    action: str
    stage: str
    args: dict[str, Any] = Field(default_factory=dict)
    effect: dict[str, Any] = Field(default_factory=dict)
    best_effort: bool = False
    done: bool = False


class OperationRequest(Model):
    """What someone (a policy or the API) asks the lifecycle engine to do."""

    kind: OperationKind
    subject: str = Field(description="What is acted on: instance id, group key or host id.")
    instances: tuple[str, ...] = ()
    function: str | None = None
    owner: str | None = None
    hosts: tuple[str, ...] = Field(default=(), description="Target (or affected) hosts.")
    sources: tuple[str, ...] = Field(default=(), description="Hosts being left, if any.")
    params: dict[str, Any] = Field(default_factory=dict)
    deadline: float | None = None
    reason: Reason
    policy: str = "api"


class Operation(Model):
    id: Identifier
    kind: OperationKind
    state: OperationState = OperationState.STARTING
    subject: str = Field(description="What the operation acts on (instance id, group, host).")
    instances: tuple[Identifier, ...] = ()
    function: Identifier | None = None
    owner: Identifier | None = None
    hosts: tuple[Identifier, ...] = ()
    sources: tuple[Identifier, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    reason: Reason
    policy: str = "api"
    deadline: float | None = None
    created_instances: tuple[Identifier, ...] = ()
    step: int = Field(default=0, description="Index of the step being executed or undone.")
    plan: tuple[Step, ...] = ()
    attempt: int = 0
    next_attempt_at: float | None = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
