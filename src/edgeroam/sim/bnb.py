"""World model for the IoT-B&B life cycle: group load and the owners' own usage of their CPEs.

Each tick it reports, as agents would:

* ``function:<group>`` `load` = the group's offered demand divided by its serving active
  instances (so scaling out brings the load down — the loop the life cycle closes);
* ``host:<cpe>`` `owner_usage` = the share of a lending CPE its owner uses.

It records per tick each group's demand, load, instance counts and placement cost (the
`bnb_lifecycle` cost model applied to where the group's instances are), and the CPEs that
stopped lending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgeroam.model import HostState, Reading, Role
from edgeroam.policies.bnb import BnbConfig, BnbMemory
from edgeroam.policies.placement import PlacementRequest, Placer
from edgeroam.sim.bnb_config import POLICY, BnbSection
from edgeroam.sim.models import register_world_model

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario

_DOWN = frozenset({HostState.DOWN, HostState.OFF})


class BnbWorld:
    name = "bnb"

    def __init__(self, section: BnbSection) -> None:
        self.section = section
        self.groups = [g.group for g in section.groups]
        self.costs: list[float] = []
        self.peak: dict[str, int] = {}
        self.withdrawn_ever: set[str] = set()

    def _counts(self, sim: Simulation) -> dict[str, tuple[int, int]]:
        inv = sim.controller.inventory
        counts = {g: [0, 0] for g in self.groups}
        for inst in inv.instances.values():
            pair = counts.get(inst.group_key)
            if pair is None or not inst.serving or inv.hosts[inst.host].state in _DOWN:
                continue
            pair[0 if inst.role is Role.ACTIVE else 1] += 1
        return {g: (a, s) for g, (a, s) in counts.items()}

    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        counts = self._counts(sim)
        readings: list[Reading] = []
        for item in self.section.groups:
            demand = item.demand.rate(t)
            active = counts[item.group][0]
            readings.append(
                Reading(
                    source=f"function:{item.group}",
                    metric=self.section.load_metric,
                    value=demand / max(active, 1),
                    timestamp=t,
                )
            )
        for usage in self.section.owner_usage:
            readings.append(
                Reading(
                    source=f"host:{usage.host}",
                    metric=self.section.usage_metric,
                    value=usage.usage.rate(t),
                    timestamp=t,
                )
            )
        return readings

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        controller = sim.controller
        config = controller.registry.config(POLICY)
        assert isinstance(config, BnbConfig)
        snapshot = controller.snapshot(t)
        placer = Placer(snapshot, cost=config.cost, incremental=False)
        counts = self._counts(sim)
        groups: dict[str, Any] = {}
        total = 0.0
        for item in self.section.groups:
            cost = 0.0
            for inst in snapshot.instances.values():
                if inst.group_key != item.group:
                    continue
                request = PlacementRequest(
                    function=inst.function,
                    demand=snapshot.flavor_of(inst.function).resources,
                    kinds=snapshot.functions[inst.function].placement,
                    owner=inst.owner,
                )
                cost += placer.resident_cost(request, inst.host)
            active, standby = counts[item.group]
            demand = item.demand.rate(t)
            self.peak[item.group] = max(self.peak.get(item.group, 0), active)
            groups[item.group] = {
                "demand": round(demand, 6),
                "load": round(demand / max(active, 1), 6),
                "active": active,
                "standby": standby,
                "cost": round(cost, 6),
            }
            total += cost
        memory = controller.memory.get(POLICY)
        withdrawn = sorted(memory.withdrawn) if isinstance(memory, BnbMemory) else []
        self.withdrawn_ever.update(withdrawn)
        self.costs.append(total)
        entry["bnb"] = {"groups": groups, "withdrawn": withdrawn, "cost": round(total, 6)}

    def summary(self, sim: Simulation) -> dict[str, Any]:
        ops = sim.operations()
        by_rule: dict[str, int] = {}
        for op in ops:
            if op.policy == POLICY:
                by_rule[op.reason.rule] = by_rule.get(op.reason.rule, 0) + 1
        return {
            "bnb": {
                "peak_active": dict(sorted(self.peak.items())),
                "withdrawn_nodes": sorted(self.withdrawn_ever),
                "operations_by_rule": dict(sorted(by_rule.items())),
                "cost_mean": round(float(np.mean(self.costs)), 6) if self.costs else 0.0,
                "cost_final": round(self.costs[-1], 6) if self.costs else 0.0,
            }
        }


@register_world_model
def _factory(scenario: Scenario) -> BnbWorld | None:
    return None if scenario.bnb is None else BnbWorld(scenario.bnb)
