"""The `groups:` and `load:` sections of a scenario: managed groups (seed 002) and the demand
on them, checked against the rest of the scenario with precise locations.

Kept apart from the world model (`sim.load`) so `sim.scenario` can import it without
importing the runner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from edgeroam.model import Group, Identifier, Model, OperationKind
from edgeroam.model.base import NonNegative, Positive
from edgeroam.model.document import duplicate_problems
from edgeroam.sim.profiles import Profile

if TYPE_CHECKING:
    from edgeroam.sim.scenario import Scenario


def _listed(value: Any) -> Any:
    """A single profile (or number) is a list of one; the list's rates are added up."""
    return value if isinstance(value, list | tuple) else [value]


Demand = Annotated[tuple[Profile, ...], BeforeValidator(_listed), Field(min_length=1)]
"""One or more rate profiles whose sum is the demand (e.g. a day/night wave plus bursts)."""


class GroupDemand(Model):
    """What one group is asked to do, in the units of its metrics, shared by its actives."""

    group: Identifier
    demand: dict[str, Demand] = Field(
        default_factory=dict,
        description="Metric name -> total demand on the group (sum of profiles).",
    )
    per_child_instance: dict[str, NonNegative] = Field(
        default_factory=dict,
        description="Managers: demand added per instance of the groups they manage.",
    )
    per_child_operation: dict[str, NonNegative] = Field(
        default_factory=dict,
        description="Managers: demand added per operation in flight on the groups they manage.",
    )
    operation_load: dict[OperationKind, NonNegative] = Field(
        default_factory=dict,
        description="Demand (first metric) an operation in flight on the group itself adds.",
    )
    noise_pct: NonNegative = Field(
        default=0.0, description="Per-instance multiplicative noise (standard deviation, %)."
    )


class InstanceFailure(Model):
    """An instance crashes: its function stops, its share of the load is lost until healed.

    Name the instance, or a group: then its first serving active member (by id) crashes, so
    runs whose policies reshaped the group still see the same kind of failure.
    """

    t: NonNegative
    instance: Identifier | None = None
    group: Identifier | None = None

    @model_validator(mode="after")
    def _one_target(self) -> InstanceFailure:
        if (self.instance is None) == (self.group is None):
            raise ValueError("a failure names either an instance or a group: give exactly one")
        return self


class LoadSection(Model):
    groups: tuple[GroupDemand, ...] = ()
    failures: tuple[InstanceFailure, ...] = ()
    probe: bool = Field(
        default=True,
        description="A health probe reports a crashed instance as down at once (health 0); "
        "without it a crash only shows as silence.",
    )
    overload_level: Positive = Field(
        default=1.0, description="Utilisation above which a group counts as overloaded."
    )
    oscillation_window_s: Positive = Field(
        default=3600.0,
        description="Opposite scaling actions of a group closer than this count as an oscillation.",
    )


def group_problems(s: Scenario) -> list[str]:
    """Cross-references of `groups:` and of instances naming a group."""
    problems = duplicate_problems("groups", [g.id for g in s.groups], "id")
    groups: Mapping[str, Group] = {g.id: g for g in s.groups}
    functions = {f.name for f in s.functions}
    sites = {x.id for x in s.topology.sites}
    for i, g in enumerate(s.groups):
        where = f"groups[{i}]"
        if g.function not in functions:
            problems.append(f"{where}.function: unknown function {g.function!r}")
        if g.site is not None and g.site not in sites:
            problems.append(f"{where}.site: unknown site {g.site!r}")
        if g.manager is not None:
            manager = groups.get(g.manager)
            if manager is None:
                problems.append(f"{where}.manager: unknown group {g.manager!r}")
            elif not manager.kind.is_manager:
                problems.append(
                    f"{where}.manager: group {g.manager!r} is a {manager.kind.value} group, "
                    "not a manager"
                )
            else:
                seen = {g.id}
                step: Group | None = manager
                while step is not None:
                    if step.id in seen:
                        problems.append(
                            f"{where}.manager: the manager chain loops back through {step.id!r}"
                        )
                        break
                    seen.add(step.id)
                    step = groups.get(step.manager) if step.manager is not None else None
        for j, peer in enumerate(g.peers or ()):
            if peer not in groups:
                problems.append(f"{where}.peers[{j}]: unknown group {peer!r}")
    if groups:
        for i, inst in enumerate(s.instances):
            if inst.group is not None and inst.group not in groups:
                problems.append(
                    f"instances[{i}].group: unknown group {inst.group!r}; declared groups: "
                    f"{sorted(groups)}"
                )
            group = groups.get(inst.group or inst.function)
            if group is not None and group.function != inst.function:
                problems.append(
                    f"instances[{i}].function: group {group.id!r} runs {group.function!r}, "
                    f"not {inst.function!r}"
                )
    return problems


def load_problems(s: Scenario) -> list[str]:
    """Cross-references of the `load:` section."""
    if s.load is None:
        return []
    section = s.load
    groups: Mapping[str, Group] = {g.id: g for g in s.groups}
    problems = duplicate_problems("load.groups", [d.group for d in section.groups], "group")
    for i, d in enumerate(section.groups):
        where = f"load.groups[{i}]"
        group = groups.get(d.group)
        if group is None:
            problems.append(f"{where}.group: unknown group {d.group!r}")
            continue
        metrics = [m.name for m in group.metrics]
        for part in ("demand", "per_child_instance", "per_child_operation"):
            for metric in getattr(d, part):
                if metric not in metrics:
                    problems.append(
                        f"{where}.{part}.{metric}: group {d.group!r} has no metric {metric!r}; "
                        f"its metrics: {metrics}"
                    )
        if (d.per_child_instance or d.per_child_operation) and not group.kind.is_manager:
            problems.append(
                f"{where}: per_child_* demand needs a manager group; {d.group!r} is a "
                f"{group.kind.value} group"
            )
    instances = {x.id for x in s.instances}
    for i, f in enumerate(section.failures):
        where = f"load.failures[{i}]"
        if f.instance is not None and f.instance not in instances:
            problems.append(f"{where}.instance: unknown instance {f.instance!r}")
        if f.group is not None and f.group not in groups:
            problems.append(f"{where}.group: unknown group {f.group!r}")
        if f.t > s.duration_s:
            problems.append(f"{where}.t: {f.t:g} is after the end of the run ({s.duration_s:g} s)")
    return problems
