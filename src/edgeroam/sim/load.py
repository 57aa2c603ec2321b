"""World model of the load on managed groups (seed 002): the readings the monitors report.

Each tick, for every group of the scenario's `load:` section:

* the demand on each metric is the sum of its profiles (a day/night wave plus bursts), plus,
  for managers, a share per instance of the groups they manage and per operation in flight on
  those groups, plus, for any group, what operations in flight on the group itself cost;
* the demand is split evenly over the group's active members in a serving stage, as a load
  balancer would; a crashed member's share is lost (that is the unavailability);
* every member in a serving stage reports its metrics (standbys report idle) and a `health`
  reading from a probe: 1 while its function runs, 0 once it crashed.

A scheduled failure stops an instance's function in the simulated driver; it counts as healed
once the controller restarts it or moves its active role to a standby.

The summary carries the elastic experiment's measures: scaling operations, oscillations,
overload time, instance-hours and unavailable time, plus two safety checks (the smallest active
size seen per group, and scaling operations started while the group had another in flight).
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeroam.model import (
    Group,
    Instance,
    LifecycleStage,
    Operation,
    OperationKind,
    Reading,
    Role,
)
from edgeroam.sim.load_config import GroupDemand, LoadSection
from edgeroam.sim.models import register_world_model

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario

SCALING = frozenset({OperationKind.SCALE_OUT, OperationKind.SCALE_IN})
_PROMISED = frozenset(
    {
        LifecycleStage.MONITORING,
        LifecycleStage.UPDATE,
        LifecycleStage.OVERLOADED,
        LifecycleStage.UNDERLOADED,
        LifecycleStage.SCALE,
        LifecycleStage.FAIL,
        LifecycleStage.HEAL,
    }
)
"""Stages in which an active instance is expected to carry its share."""
_REMOVING = frozenset({OperationKind.SCALE_IN, OperationKind.TERMINATE})


class LoadModel:
    name = "load"

    def __init__(self, scenario: Scenario, section: LoadSection) -> None:
        self.section = section
        self.groups: dict[str, Group] = {g.id: g for g in scenario.groups}
        self.demands: dict[str, GroupDemand] = {d.group: d for d in section.groups}
        self.failures = sorted(section.failures, key=lambda f: f.t)
        self.tick_s = scenario.tick_s
        self.duration_s = scenario.duration_s
        self.rng = np.random.default_rng(scenario.seed + 2)
        self.children: dict[str, list[str]] = defaultdict(list)
        for g in scenario.groups:
            if g.manager is not None:
                self.children[g.manager].append(g.id)
        self.down_since: dict[str, float] = {}
        self.unavailable_s: dict[str, float] = defaultdict(float)
        self.overload_s: dict[str, float] = defaultdict(float)
        self.instance_s = 0.0
        self.min_active: dict[str, int] = {}
        self.applied: list[dict[str, Any]] = []
        self.group_of: dict[str, str] = {}
        """Every instance ever seen in a managed group -> the group (for the run's checks)."""
        self.last_demand: dict[str, dict[str, float]] = {}
        self.operations: dict[str, Operation] = {}
        """Every operation of the run (the engine forgets finished ones after an hour)."""
        self.draining: set[str] = set()
        """Instances an operation in flight is removing: the load balancer drained them."""

    # -- helpers ------------------------------------------------------------------------------
    def _members(self, sim: Simulation) -> dict[str, list[Instance]]:
        members: dict[str, list[Instance]] = {g: [] for g in self.groups}
        for inst in sim.controller.inventory.instances.values():
            bucket = members.get(inst.group_key)
            if bucket is not None:
                bucket.append(inst)
                self.group_of[inst.id] = inst.group_key
        for bucket in members.values():
            bucket.sort(key=lambda i: i.id)
        return members

    def _operations_in_flight(self, sim: Simulation) -> dict[str, list[OperationKind]]:
        """Group -> kinds of the operations in flight on it (subject or member instances)."""
        found: dict[str, list[OperationKind]] = defaultdict(list)
        self.draining = set()
        for op in sim.controller.engine.active.values():
            for gid in self._groups_of(op):
                found[gid].append(op.kind)
            if op.kind in _REMOVING:
                self.draining.update(op.instances)
        return found

    def _groups_of(self, op: Operation) -> set[str]:
        touched = {op.subject.split(":")[0]} & set(self.groups)
        touched |= {self.group_of[i] for i in op.instances if i in self.group_of}
        touched |= {self.group_of[op.subject]} if op.subject in self.group_of else set()
        return touched

    def _victim(self, sim: Simulation, instance: str | None, group: str | None) -> Instance | None:
        instances = sim.controller.inventory.instances
        if instance is not None:
            return instances.get(instance)
        serving = [
            i
            for i in instances.values()
            if i.group_key == group
            and i.role is Role.ACTIVE
            and i.serving
            and self._running(sim, i)
        ]
        return min(serving, key=lambda i: i.id, default=None)

    def _running(self, sim: Simulation, inst: Instance) -> bool:
        return (inst.id, inst.host) in sim.driver.running

    # -- the world model protocol -------------------------------------------------------------
    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        while self.failures and self.failures[0].t <= t + 1e-9:
            failure = self.failures.pop(0)
            inst = self._victim(sim, failure.instance, failure.group)
            record: dict[str, Any] = {
                "t": failure.t,
                "applied_at": t,
                "instance": inst.id if inst is not None else failure.instance,
                "group": failure.group,
            }
            if inst is None or not self._running(sim, inst):
                record["skipped"] = "not running"
            else:
                sim.driver.running.pop((inst.id, inst.host), None)
                if inst.role is Role.ACTIVE and inst.group_key in self.groups:
                    self.down_since.setdefault(inst.group_key, failure.t)
            self.applied.append(record)
        members = self._members(sim)
        ops = self._operations_in_flight(sim)
        readings: list[Reading] = []
        for gid, group in self.groups.items():
            spec = self.demands.get(gid)
            demand = self._demand(gid, spec, members, ops, t)
            self.last_demand[gid] = demand
            carriers = {
                i.id
                for i in members[gid]
                if i.role is Role.ACTIVE and i.stage in _PROMISED and i.id not in self.draining
            }
            noise = spec.noise_pct / 100.0 if spec is not None else 0.0
            for inst in members[gid]:
                if not inst.serving and inst.stage not in (LifecycleStage.FAIL,):
                    continue
                running = self._running(sim, inst)
                source = f"instance:{inst.id}"
                if running or self.section.probe:
                    readings.append(
                        Reading(source=source, metric="health", value=float(running), timestamp=t)
                    )
                if not running or not inst.serving:
                    continue
                for metric in group.metrics:
                    if inst.id in carriers:
                        share = demand.get(metric.name, 0.0) / len(carriers)
                        if noise > 0:
                            share *= max(0.0, 1.0 + noise * float(self.rng.standard_normal()))
                    else:
                        share = 0.0
                    readings.append(
                        Reading(source=source, metric=metric.name, value=share, timestamp=t)
                    )
        return readings

    def _demand(
        self,
        gid: str,
        spec: GroupDemand | None,
        members: dict[str, list[Instance]],
        ops: dict[str, list[OperationKind]],
        t: float,
    ) -> dict[str, float]:
        if spec is None:
            return {}
        group = self.groups[gid]
        demand = {name: sum(p.rate(t) for p in profiles) for name, profiles in spec.demand.items()}
        children = self.children.get(gid, [])
        child_instances = sum(len(members[c]) for c in children)
        child_ops = sum(len(ops.get(c, ())) for c in children)
        for metric, per in spec.per_child_instance.items():
            demand[metric] = demand.get(metric, 0.0) + per * child_instances
        for metric, per in spec.per_child_operation.items():
            demand[metric] = demand.get(metric, 0.0) + per * child_ops
        first = group.metrics[0].name
        own = sum(spec.operation_load.get(k, 0.0) for k in ops.get(gid, ()))
        if own:
            demand[first] = demand.get(first, 0.0) + own
        return demand

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        engine = sim.controller.engine
        for op in (*engine.finished, *engine.active.values()):
            self.operations[op.id] = op
        members = self._members(sim)
        self._operations_in_flight(sim)
        tick = self.tick_s
        view: dict[str, Any] = {}
        for gid, group in self.groups.items():
            insts = members[gid]
            active = [i for i in insts if i.role is Role.ACTIVE]
            healthy = [i for i in active if i.serving and self._running(sim, i)]
            standby = [i for i in insts if i.role is Role.STANDBY]
            dead = [
                i
                for i in active
                if i.stage in _PROMISED and i.id not in self.draining and not self._running(sim, i)
            ]
            demand = self.last_demand.get(gid, {})
            utilisation = 0.0
            for metric in group.metrics:
                need = demand.get(metric.name, 0.0)
                if need <= 0:
                    continue
                util = need / (len(healthy) * metric.capacity) if healthy else math.inf
                utilisation = max(utilisation, util)
            if gid in self.demands and utilisation > self.section.overload_level:
                self.overload_s[gid] += tick
            self.instance_s += len(insts) * tick
            self.min_active[gid] = min(self.min_active.get(gid, len(active)), len(active))
            if dead:
                self.down_since.setdefault(gid, t)
            elif gid in self.down_since:
                self.unavailable_s[gid] += t - self.down_since.pop(gid)
            view[gid] = {
                "active": len(active),
                "standby": len(standby),
                "serving": len(healthy),
                "failed": len(dead),
                "demand": {k: round(v, 6) for k, v in demand.items()},
                "utilisation": round(utilisation, 6) if math.isfinite(utilisation) else None,
            }
        entry["groups"] = view

    def summary(self, sim: Simulation) -> dict[str, Any]:
        end = min(sim.clock.now(), self.duration_s + self.tick_s)
        unavailable = dict(self.unavailable_s)
        for gid, since in self.down_since.items():
            unavailable[gid] = unavailable.get(gid, 0.0) + max(0.0, end - since)
        ops = [self.operations[k] for k in sorted(self.operations)]
        return {
            "elastic": {
                **measures(ops, self.group_of, self.section.oscillation_window_s),
                "overload_s": round(sum(self.overload_s.values()), 3),
                "instance_hours": round(self.instance_s / 3600.0, 3),
                "unavailable_s": round(sum(unavailable.values()), 3),
                "overload_s_by_group": {k: round(v, 3) for k, v in sorted(self.overload_s.items())},
                "unavailable_s_by_group": {k: round(v, 3) for k, v in sorted(unavailable.items())},
                "min_active": dict(sorted(self.min_active.items())),
                "min_size": {g: grp.min_size for g, grp in sorted(self.groups.items())},
                "failures": self.applied,
            }
        }


def measures(
    operations: list[Operation], group_of: dict[str, str], window_s: float
) -> dict[str, Any]:
    """Scaling operations, oscillations and scalings started during another operation."""

    def groups(op: Operation) -> set[str]:
        found = {op.subject.split(":")[0]} & set(group_of.values())
        found |= {group_of[i] for i in op.instances if i in group_of}
        return found

    scaling = [op for op in operations if op.kind in SCALING]
    by_group: dict[str, list[Operation]] = defaultdict(list)
    for op in scaling:
        for gid in groups(op):
            by_group[gid].append(op)
    oscillations = 0
    for seq in by_group.values():
        seq.sort(key=lambda o: (o.created_at, o.id))
        for before, after in pairwise(seq):
            if before.kind is not after.kind and after.created_at - before.created_at < window_s:
                oscillations += 1
    during = 0
    spans = [(op, groups(op)) for op in operations]
    for op in scaling:
        mine = groups(op)
        for other, theirs in spans:
            if other.id == op.id or not (mine & theirs):
                continue
            ended = other.finished_at if other.finished_at is not None else math.inf
            if other.created_at < op.created_at < ended:
                during += 1
                break
    return {
        "scaling_operations": len(scaling),
        "oscillations": oscillations,
        "scaled_during_operation": during,
    }


@register_world_model
def _factory(scenario: Scenario) -> LoadModel | None:
    if scenario.load is None:
        return None
    return LoadModel(scenario, scenario.load)
