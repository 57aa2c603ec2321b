"""A running (or starting, or stopping) copy of a function on a host."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from edgeroam.model.base import Identifier, Model


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


class LifecycleStage(StrEnum):
    """The stages of seed 002's lifecycle state machine (FIG. 3), plus the end state."""

    ONBOARDING = "onboarding"
    VI_DEPLOYMENT = "vi_deployment"
    PRE_DEPLOYMENT = "pre_deployment"
    DEPLOYMENT = "deployment"
    POST_DEPLOYMENT = "post_deployment"
    MONITORING = "monitoring"
    UPDATE = "update"
    UNDEPLOYMENT = "undeployment"
    OVERLOADED = "overloaded"
    UNDERLOADED = "underloaded"
    FAIL = "fail"
    SCALE = "scale"
    HEAL = "heal"
    TERMINATED = "terminated"


class Instance(Model):
    id: Identifier
    function: Identifier
    owner: Identifier | None = Field(default=None, description="Customer the instance serves.")
    host: Identifier
    role: Role = Role.ACTIVE
    group: Identifier | None = Field(
        default=None, description="Scaling group; defaults to the function name."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    stage: LifecycleStage = LifecycleStage.ONBOARDING
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def group_key(self) -> str:
        return self.group or self.function

    @property
    def serving(self) -> bool:
        return self.stage in _SERVING


_SERVING = frozenset(
    {
        LifecycleStage.MONITORING,
        LifecycleStage.UPDATE,
        LifecycleStage.OVERLOADED,
        LifecycleStage.UNDERLOADED,
        LifecycleStage.SCALE,
    }
)
