"""Runs a scenario: the real Controller, the simulation driver and a virtual clock.

Each tick: apply the scheduled events due, let the traffic model produce the readings agents
would send, hand them to the controller, run one control cycle, and record the timeline.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeroam.arbiter import ArbiterConfig, Verdict
from edgeroam.controller import Controller, TickReport
from edgeroam.drivers.sim import SimDriver
from edgeroam.inventory import managers_first
from edgeroam.lifecycle import LifecycleConfig
from edgeroam.model import EventCategory, HostState, Operation, Reading, Severity
from edgeroam.policies.registry import PolicyRegistry, default_registry
from edgeroam.sim.clock import VirtualClock
from edgeroam.sim.models import WORLD_MODEL_MODULES, WORLD_MODELS, WorldModel
from edgeroam.sim.scenario import (
    Flow,
    FlowRateEvent,
    HostDownEvent,
    HostUpEvent,
    LinkCapacityEvent,
    ReadingEvent,
    Scenario,
    ScheduledEvent,
)
from edgeroam.sim.traffic import TrafficModel, TrafficSample, sample_to_readings
from edgeroam.store import Store

Progress = Callable[[float, float], None]
"""Called after each tick with (t, duration_s)."""


def build_controller(
    scenario: Scenario,
    *,
    database_url: str | None = None,
    registry: PolicyRegistry | None = None,
) -> Controller:
    """A controller loaded with the scenario's world at t = 0 (instances already running)."""
    d = scenario.driver
    driver = SimDriver(
        latency_s=d.latency_s,
        latency_by_action=dict(d.latency_by_action),
        failure_rate=d.failure_rate,
        fail_actions=d.fail_actions,
        seed=d.seed if d.seed is not None else scenario.seed,
    )
    registry = registry if registry is not None else default_registry()
    registry.configure_all(scenario.policies)
    arbiter = ArbiterConfig.model_validate(
        {**scenario.controller.arbiter, "dry_run": scenario.controller.dry_run}
    )
    controller = Controller(
        driver,
        store=Store(database_url) if database_url else None,
        registry=registry,
        arbiter=arbiter,
        lifecycle=LifecycleConfig(seed=scenario.seed),
        stale_after_s=scenario.effective_stale_after_s,
        persist_readings=False,
    )
    topo = scenario.topology
    for kind, objects in (
        ("site", topo.sites),
        ("customer", scenario.customers),
        ("flavor", scenario.flavors),
        ("function", scenario.functions),
        ("host", topo.hosts),
        ("link", topo.links),
        ("group", managers_first(scenario.groups)),
    ):
        for obj in objects:
            controller.put(kind, obj, 0.0)
    for seed in scenario.instances:
        instance = controller.seed_instance(seed.to_instance(), 0.0)
        driver.adopt(instance.id, instance.host, instance.params)
    controller.events.flush()
    return controller


class Simulation:
    """One run of a scenario; `step()` advances one tick, `run()` goes to the end."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        database_url: str | None = None,
        registry: PolicyRegistry | None = None,
    ) -> None:
        self.scenario = scenario
        self.controller = build_controller(scenario, database_url=database_url, registry=registry)
        driver = self.controller.driver
        assert isinstance(driver, SimDriver)
        self.driver = driver
        self.clock = VirtualClock()
        self.rng = np.random.default_rng(scenario.seed)
        self.traffic = TrafficModel()
        self.flows: dict[str, Flow] = {f.id: f for f in scenario.flows}
        self.pending: list[ScheduledEvent] = scenario.sorted_events()
        self.timeline: list[dict[str, Any]] = []
        self.seen_operations: dict[str, Operation] = {}
        """Every operation of the run: the engine forgets finished ones after `history_s`."""
        self.tick_ms: list[float] = []
        self.decisions: Counter[str] = Counter()
        self.last_sample: TrafficSample | None = None
        self.extra_readings: list[Reading] = []
        self.observers: list[Callable[[Simulation, TrafficSample, TickReport], None]] = []
        """Called after every tick (tests and experiments watch runs this way)."""
        self.models: list[WorldModel] = _world_models(scenario)

    # -- scheduled events ---------------------------------------------------------------------
    def _apply(self, event: ScheduledEvent, t: float) -> None:
        c = self.controller
        if isinstance(event, HostDownEvent | HostUpEvent):
            host = c.inventory.hosts[event.host]
            alive = isinstance(event, HostUpEvent)
            state = HostState.READY if alive else HostState.DOWN
            c.put("host", host.model_copy(update={"state": state}), t)
            self.driver.set_host_alive(event.host, alive)
        elif isinstance(event, LinkCapacityEvent):
            link = c.inventory.links[event.link]
            c.put("link", link.model_copy(update={"capacity_mbps": event.capacity_mbps}), t)
        elif isinstance(event, ReadingEvent):
            self.extra_readings.append(event.to_reading().model_copy(update={"timestamp": t}))
        elif isinstance(event, FlowRateEvent):
            self.flows[event.flow] = self.flows[event.flow].model_copy(
                update={"rate_mbps": event.rate_mbps}
            )
        c.events.emit(
            t,
            EventCategory.SYSTEM,
            f"scenario event: {event.action}",
            tags=("scenario", event.action),
            severity=Severity.INFO,
            data=event.model_dump(mode="json"),
        )

    # -- one tick -----------------------------------------------------------------------------
    def feed(self, t: float) -> TrafficSample:
        """Apply the events due at `t` and send the controller the readings agents would."""
        while self.pending and self.pending[0].t <= t + 1e-9:
            self._apply(self.pending.pop(0), t)
        inv = self.controller.inventory
        hosts = list(inv.hosts.values())
        links = list(inv.links.values())
        sample = self.traffic.sample(
            hosts,
            links,
            list(inv.instances.values()),
            list(self.flows.values()),
            t,
            self.rng,
            functions=inv.functions,
        )
        readings = sample_to_readings(sample, links, t) + self.extra_readings
        self.extra_readings = []
        self.last_sample = sample  # world models read the sample of time t
        for model in self.models:
            readings += model.feed(self, t)
        self.controller.ingest(readings)
        return sample

    def step(self) -> dict[str, Any]:
        t = self.clock.now()
        sample = self.feed(t)
        report = self.controller.tick(t)
        self._remember_operations()
        self.tick_ms.append(report.duration_s * 1000)
        for decision in report.decisions:
            self.decisions[decision.verdict.value] += 1
        entry = self._timeline_entry(t, sample, report)
        for model in self.models:
            model.record(self, t, entry)
        self.timeline.append(entry)
        for observer in self.observers:
            observer(self, sample, report)
        self.clock.advance(self.scenario.tick_s)
        return entry

    def _timeline_entry(
        self, t: float, sample: TrafficSample, report: TickReport
    ) -> dict[str, Any]:
        inv = self.controller.inventory
        links = {
            lid: {
                "used_mbps": round(sample.link_used_mbps.get(lid, 0.0), 6),
                "use_ratio": round(sample.link_used_mbps.get(lid, 0.0) / link.capacity_mbps, 6),
            }
            for lid, link in inv.links.items()
        }
        cols = inv.columns
        hosts: dict[str, dict[str, Any]] = {}
        for hid, host in inv.hosts.items():
            row = cols.index[hid]
            hosts[hid] = {
                "state": host.state.value,
                "processed_mbps": round(sample.host_processed_mbps.get(hid, 0.0), 6),
                "vcpu_allocated": round(float(cols.allocated[row, 0]), 6),
                "instances": len(inv.instances_by_host.get(hid, ())),
            }
        return {
            "t": t,
            "links": links,
            "hosts": hosts,
            "unserved_mbps": round(sample.total_unserved_mbps, 6),
            "instances": len(inv.instances),
            "in_flight": len(self.controller.engine.active),
            "decisions": {
                v.value: sum(1 for d in report.decisions if d.verdict is v) for v in Verdict
            },
        }

    def run(self, progress: Progress | None = None) -> dict[str, Any]:
        duration = self.scenario.duration_s
        while self.clock.now() <= duration + 1e-9:
            self.step()
            if progress is not None:
                progress(self.clock.now(), duration)
        return self.result()

    # -- results ------------------------------------------------------------------------------
    def _remember_operations(self) -> None:
        """Keep every operation: finished ones are appended to the engine's deque in order, so
        only its tail (back to the first one already kept) is new."""
        engine = self.controller.engine
        for op in reversed(engine.finished):
            if op.id in self.seen_operations and self.seen_operations[op.id].state.final:
                break
            self.seen_operations[op.id] = op
        self.seen_operations.update(engine.active)

    def operations(self) -> list[Operation]:
        engine = self.controller.engine
        ops = dict(self.seen_operations)
        ops.update((op.id, op) for op in engine.finished)
        ops.update(engine.active)
        return [ops[k] for k in sorted(ops)]

    def result(self) -> dict[str, Any]:
        ops = self.operations()
        peak_link = max(
            (
                (entry["links"][lid]["use_ratio"], lid, entry["t"])
                for entry in self.timeline
                for lid in entry["links"]
            ),
            default=(0.0, None, None),
        )
        tick = self.scenario.tick_s
        summary = {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "duration_s": self.scenario.duration_s,
            "tick_s": tick,
            "ticks": len(self.timeline),
            "operations": len(ops),
            "operations_by_kind": dict(sorted(Counter(op.kind.value for op in ops).items())),
            "operations_by_state": dict(sorted(Counter(op.state.value for op in ops).items())),
            "decisions": dict(sorted(self.decisions.items())),
            "peak_use_ratio": {"value": peak_link[0], "link": peak_link[1], "t": peak_link[2]},
            "unserved_mbit": round(sum(e["unserved_mbps"] for e in self.timeline) * tick, 6),
            "tick_ms_mean": round(float(np.mean(self.tick_ms)), 3) if self.tick_ms else 0.0,
            "tick_ms_max": round(float(np.max(self.tick_ms)), 3) if self.tick_ms else 0.0,
        }
        for model in self.models:
            summary.update(model.summary(self))
        return {
            "timeline": self.timeline,
            "operations": [operation_record(op) for op in ops],
            "summary": summary,
        }


def _world_models(scenario: Scenario) -> list[WorldModel]:
    for module in WORLD_MODEL_MODULES:
        importlib.import_module(module)
    found = (factory(scenario) for factory in WORLD_MODELS)
    return [model for model in found if model is not None]


def operation_record(op: Operation) -> dict[str, Any]:
    """The JSON shape of an operation in a simulation result."""
    return {
        "t": op.created_at,
        "id": op.id,
        "operation": op.kind.value,
        "instance": op.instances[0] if op.instances else None,
        "instances": list(op.instances),
        "function": op.function,
        "hosts": list(op.hosts),
        "sources": list(op.sources),
        "params": {k: v for k, v in op.params.items() if not k.startswith("_")},
        "reason": op.reason.model_dump(mode="json"),
        "policy": op.policy,
        "operationState": op.state.value,
        "finished_at": op.finished_at,
    }


def run_scenario(
    scenario: Scenario,
    *,
    database_url: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    return Simulation(scenario, database_url=database_url).run(progress)
