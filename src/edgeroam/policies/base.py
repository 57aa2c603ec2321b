"""The contract every policy honours.

A policy is pure: `evaluate(snapshot, config, memory)` returns proposals and the memory to hand
it next cycle (hold timers, hysteresis state). Same inputs, same outputs — which is what makes a
simulation reproducible and a decision explainable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import Field

from edgeroam.model import Model, OperationRequest, Reason
from edgeroam.snapshot import Snapshot


class PolicyConfig(Model):
    """Settings every policy has; a policy subclasses this with its own thresholds."""

    enabled: bool = True
    precedence: int = Field(
        default=50, ge=0, le=1000, description="Lower runs first and wins conflicts."
    )
    dry_run: bool = Field(default=False, description="Record decisions without executing them.")


class Proposal(OperationRequest):
    """A policy's wish for one operation; the arbiter decides whether it happens."""

    priority: int = Field(default=0, description="Higher first among one policy's proposals.")

    def request(self) -> OperationRequest:
        return OperationRequest.model_validate(self.model_dump(exclude={"priority"}))


@dataclass(frozen=True)
class PolicyResult:
    proposals: tuple[Proposal, ...] = ()
    memory: Any = None
    notes: tuple[Reason, ...] = field(default=())
    """Observations worth an event even when nothing is proposed (e.g. a trigger arming)."""
    alarms: tuple[Reason, ...] = field(default=())
    """Alarm raises, changes and clears (ETSI style), logged as ALARM events whose severity
    is `details["severity"]` (an event severity name; info when absent)."""


class Policy(Protocol):
    name: ClassVar[str]
    config_model: ClassVar[type[PolicyConfig]]

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        """Return proposals for this cycle; must not perform I/O or mutate its inputs."""
        ...
