"""The scenario's optional `bnb` section: what drives the IoT-B&B life cycle in a simulation.

* `groups`: each managed group's offered demand over time, in units of one instance's capacity
  (demand 2.4 needs three instances to stay below a load of 0.8);
* `owner_usage`: the share of a lending CPE's capacity its own owner uses over time; when it
  rises the CPE stops being a B&B node.

Kept apart from `edgeroam.sim.bnb` (the world model) so the scenario schema can import it
without importing the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from edgeroam.model import HostKind, Identifier, Model
from edgeroam.sim.profiles import Profile

if TYPE_CHECKING:
    from edgeroam.sim.scenario import Scenario

POLICY = "bnb_lifecycle"
METRIC_PATTERN = r"^[a-z][a-z0-9_.]*$"


class GroupDemand(Model):
    group: Identifier
    demand: Profile = Field(description="Offered demand in instance capacities (1.0 = one).")


class OwnerUsage(Model):
    host: Identifier
    usage: Profile = Field(description="Share of the CPE's capacity its owner uses (0..1).")


class BnbSection(Model):
    groups: tuple[GroupDemand, ...] = ()
    owner_usage: tuple[OwnerUsage, ...] = ()
    load_metric: str = Field(default="load", pattern=METRIC_PATTERN)
    usage_metric: str = Field(default="owner_usage", pattern=METRIC_PATTERN)


def _policy_settings(scenario: Scenario) -> Mapping[str, Any] | None:
    settings = scenario.policies.get(POLICY)
    return settings if isinstance(settings, Mapping) else None


def managed_groups(scenario: Scenario) -> dict[str, Mapping[str, Any]]:
    """The policy's `groups` setting as written in the scenario (unvalidated mappings)."""
    settings = _policy_settings(scenario)
    groups = settings.get("groups") if settings is not None else None
    if not isinstance(groups, Mapping):
        return {}
    return {str(k): v for k, v in groups.items() if isinstance(v, Mapping)}


def bnb_problems(scenario: Scenario) -> list[str]:
    """Cross-reference problems of the `bnb` section and of the bnb_lifecycle settings."""
    problems: list[str] = []
    functions = {f.name for f in scenario.functions}
    customers = {c.id for c in scenario.customers}
    hosts = {h.id: h for h in scenario.topology.hosts}
    managed = managed_groups(scenario)
    for key, group in managed.items():
        where = f"policies.{POLICY}.groups.{key}"
        function = group.get("function")
        if isinstance(function, str) and function not in functions:
            problems.append(f"{where}.function: unknown function {function!r}")
        owner = group.get("owner")
        if isinstance(owner, str) and owner not in customers:
            problems.append(f"{where}.owner: unknown customer {owner!r}")
    section = scenario.bnb
    if section is None:
        return problems
    known_groups = set(managed) | {i.group or i.function for i in scenario.instances}
    seen: set[str] = set()
    for i, item in enumerate(section.groups):
        where = f"bnb.groups[{i}].group"
        if item.group in seen:
            problems.append(f"{where}: group {item.group!r} is listed twice")
        seen.add(item.group)
        if item.group not in known_groups:
            problems.append(
                f"{where}: unknown group {item.group!r}; name a group of "
                f"policies.{POLICY}.groups or of a seeded instance"
            )
    seen = set()
    for i, usage in enumerate(section.owner_usage):
        where = f"bnb.owner_usage[{i}].host"
        if usage.host in seen:
            problems.append(f"{where}: host {usage.host!r} is listed twice")
        seen.add(usage.host)
        host = hosts.get(usage.host)
        if host is None:
            problems.append(f"{where}: unknown host {usage.host!r}")
        elif host.kind is not HostKind.CPE:
            problems.append(f"{where}: host {usage.host!r} is a {host.kind.value}, not a CPE")
        elif not host.lends_capacity:
            problems.append(
                f"{where}: CPE {usage.host!r} does not lend capacity, so its owner's usage "
                "changes nothing; set lends_capacity: true or drop the entry"
            )
    settings = _policy_settings(scenario)
    if settings is not None:
        for name, mine in (
            ("load_metric", section.load_metric),
            ("owner_usage_metric", section.usage_metric),
        ):
            theirs = settings.get(name)
            if isinstance(theirs, str) and theirs != mine:
                problems.append(
                    f"policies.{POLICY}.{name}: the policy reads {theirs!r} but the bnb "
                    f"section reports {mine!r}"
                )
    return problems
