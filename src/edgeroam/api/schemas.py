"""Request and response bodies that are not domain models themselves.

Domain objects (Host, Operation, Reading…) are returned as they are; only the shapes that
exist for the API alone live here, so the OpenAPI document shows one schema per concept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgeroam.model import Identifier, LifecycleStage, Reading, Role

MAX_READINGS_PER_REQUEST = 10_000


class Body(BaseModel):
    """Request bodies reject unknown fields, like the domain model, so typos are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceCreate(Body):
    function: Identifier
    host: Identifier
    owner: Identifier | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    role: Role = Role.ACTIVE
    group: Identifier | None = None
    reason: str | None = Field(default=None, description="Free text recorded with the operation.")


class MigrateBody(Body):
    host: Identifier
    reason: str | None = None


class HealBody(Body):
    host: Identifier | None = Field(
        default=None, description="Target host; the instance's current host (restart) if unset."
    )
    reason: str | None = None


class ParamsBody(Body):
    params: dict[str, Any]
    reason: str | None = None


class TelemetryBatch(Body):
    readings: list[Reading] = Field(max_length=MAX_READINGS_PER_REQUEST)


class Accepted(BaseModel):
    accepted: int


class DryRunBody(Body):
    dry_run: bool


class PolicyView(BaseModel):
    name: str
    enabled: bool
    precedence: int
    dry_run: bool
    config: dict[str, Any]


class AgentCommand(BaseModel):
    """One instance the controller wants running on the agent's host."""

    instance: str
    function: str
    params: dict[str, Any]
    stage: LifecycleStage
    role: Role


class HealthView(BaseModel):
    code: int
    message: str
    details: dict[str, str]


class ErrorView(BaseModel):
    detail: Any
