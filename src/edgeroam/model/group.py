"""Managed groups: functions and their managers as scalable sets of instances (seed 002).

A group is what the elastic policy scales and the ratio policy keeps redundant. Its members are
the instances whose `group` (or, when unset, function name) equals the group id. A group names
its parent manager, so the controller knows which local manager acts for a branch's functions
and which cloud manager instructs the local managers.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import Field, model_validator

from edgeroam.model.base import Identifier, Model, NonNegative, Positive
from edgeroam.model.operation import OperationKind


class GroupKind(StrEnum):
    FUNCTION = "function"
    LOCAL_MANAGER = "local_manager"
    CLOUD_MANAGER = "cloud_manager"

    @property
    def is_manager(self) -> bool:
        return self is not GroupKind.FUNCTION


class LoadMetric(Model):
    """A per-instance telemetry metric (source ``instance:<id>``) and what one instance copes with.

    The group's load on a metric is the members' sum divided by (members × capacity), so 1.0
    means the serving instances are exactly full; the group's load is its worst metric.
    """

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z][a-z0-9_.]*$",
        description="Metric name as reported, e.g. cpu, memory, sessions, jobs or a custom KPI.",
    )
    capacity: Positive = Field(description="Value of the metric at which one instance is full.")


class Ratio(Model):
    """N:M — for every `active` active instances keep `standby` standbys ready to take over."""

    active: int = Field(ge=1)
    standby: int = Field(ge=0)

    def standbys_for(self, actives: int) -> int:
        """Standbys wanted next to `actives` active instances (rounded up, never negative)."""
        if actives <= 0 or self.standby == 0:
            return 0
        return math.ceil(actives * self.standby / self.active)


class PlannedOperation(Model):
    """A lifecycle operation scheduled on the group (a maintenance window, an upgrade)."""

    kind: OperationKind
    at: NonNegative = Field(description="Start time (seconds, controller clock).")
    duration_s: NonNegative = 0.0
    description: str = ""


class Group(Model):
    id: Identifier
    kind: GroupKind = GroupKind.FUNCTION
    function: Identifier = Field(description="The function every member runs.")
    site: Identifier | None = Field(
        default=None,
        description="Home site (a branch): scale out here first; None means anywhere.",
    )
    manager: Identifier | None = Field(
        default=None, description="Parent manager group that acts on this group's members."
    )
    min_size: int = Field(default=1, ge=0, description="Fewest active members.")
    max_size: int = Field(default=8, ge=1, description="Most active members.")
    metrics: tuple[LoadMetric, ...] = Field(
        default=(LoadMetric(name="cpu", capacity=1.0),), min_length=1
    )
    ratio: Ratio | None = None
    planned: tuple[PlannedOperation, ...] = ()
    cloud_cost: NonNegative = Field(
        default=1.0,
        description="Relative cost of running one member in the cloud instead of at home "
        "(latency, egress); a congested branch moves the member with most relief per cost.",
    )
    peers: tuple[Identifier, ...] | None = Field(
        default=None,
        description="Groups whose loads relative thresholds compare with; None means every "
        "other group of the same kind.",
    )
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Group:
        if self.min_size > self.max_size:
            raise ValueError(
                f"group {self.id!r}: min_size {self.min_size} is above max_size {self.max_size}"
            )
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"group {self.id!r}: metric(s) {duplicates} listed twice")
        if self.manager == self.id:
            raise ValueError(f"group {self.id!r} cannot be its own manager")
        if self.peers is not None and self.id in self.peers:
            raise ValueError(f"group {self.id!r} cannot be its own peer")
        return self
