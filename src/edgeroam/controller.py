"""The control cycle: snapshot → policies → arbiter → lifecycle engine, every tick.

The same Controller runs against real hosts (wall clock, netns driver) and in the simulator
(virtual clock, sim driver); only the driver and the source of `now` differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from edgeroam.arbiter import ArbiterConfig, Candidate, Decision, Verdict, arbitrate
from edgeroam.drivers.base import Driver
from edgeroam.events import EventLog
from edgeroam.inventory import Inventory, InventoryError
from edgeroam.lifecycle import LifecycleConfig, LifecycleEngine
from edgeroam.model import (
    INVENTORY_MODELS,
    Customer,
    EventCategory,
    Flavor,
    FunctionSpec,
    Group,
    Host,
    Instance,
    LifecycleStage,
    Link,
    Operation,
    OperationRequest,
    Reading,
    Severity,
    Site,
    validate_params,
)
from edgeroam.policies.registry import PolicyRegistry, default_registry
from edgeroam.snapshot import Snapshot, TableCache, build_snapshot
from edgeroam.store import Store
from edgeroam.telemetry.cache import TelemetryCache


@dataclass
class TickReport:
    now: float
    duration_s: float
    proposals: int = 0
    decisions: list[Decision] = field(default_factory=list)
    started: list[Operation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for d in self.decisions if d.verdict is Verdict.ACCEPTED)


class Controller:
    def __init__(
        self,
        driver: Driver,
        *,
        store: Store | None = None,
        registry: PolicyRegistry | None = None,
        arbiter: ArbiterConfig | None = None,
        lifecycle: LifecycleConfig | None = None,
        stale_after_s: float = 30.0,
        persist_readings: bool = True,
    ) -> None:
        self.store = store
        self.driver = driver
        self.inventory = Inventory()
        self.telemetry = TelemetryCache(stale_after=stale_after_s)
        self.events = EventLog(store)
        self.registry = registry if registry is not None else default_registry()
        self.arbiter = arbiter or ArbiterConfig()
        self.engine = LifecycleEngine(store, self.inventory, driver, self.events, lifecycle)
        self.memory: dict[str, Any] = {}
        self._tables = TableCache()
        self.lock = threading.RLock()
        self.persist_readings = persist_readings and store is not None
        self.last_tick: TickReport | None = None
        self.ticks = 0
        self.started_at = time.time()

    # -- start-up -----------------------------------------------------------------------------
    def load(self, now: float) -> list[Operation]:
        """Fill the inventory from the store and take over operations left in flight."""
        if self.store is None:
            return []
        with self.lock:
            store = self.store
            self.inventory.load(
                sites=[Site.model_validate(o) for o in store.load("site")],
                customers=[Customer.model_validate(o) for o in store.load("customer")],
                flavors=[Flavor.model_validate(o) for o in store.load("flavor")],
                functions=[FunctionSpec.model_validate(o) for o in store.load("function")],
                hosts=[Host.model_validate(o) for o in store.load("host")],
                links=[Link.model_validate(o) for o in store.load("link")],
                instances=[Instance.model_validate(o) for o in store.load("instance")],
                groups=[Group.model_validate(o) for o in store.load("group")],
            )
            recovered = self.engine.recover(now)
            self.events.emit(
                now,
                EventCategory.SYSTEM,
                f"controller started: {len(self.inventory.hosts)} hosts, "
                f"{len(self.inventory.instances)} instances, {len(recovered)} operations "
                "recovered",
                tags=("startup",),
                data={"recovered": [op.id for op in recovered]},
            )
            self.events.flush()
            return recovered

    # -- inventory ----------------------------------------------------------------------------
    def put(self, kind: str, obj: BaseModel, now: float) -> BaseModel:
        """Create or replace an inventory object after checking its references."""
        inv = self.inventory
        model = INVENTORY_MODELS.get(kind)
        if model is None:
            raise InventoryError(f"unknown inventory kind {kind!r}")
        # Re-validate: objects built with model_copy(update=...) skip pydantic's checks.
        obj = model.model_validate(obj.model_dump())
        with self.lock:
            if kind == "site":
                assert isinstance(obj, Site)
                inv.put_site(obj)
            elif kind == "customer":
                assert isinstance(obj, Customer)
                inv.put_customer(obj)
            elif kind == "flavor":
                assert isinstance(obj, Flavor)
                inv.put_flavor(obj)
            elif kind == "function":
                assert isinstance(obj, FunctionSpec)
                inv.check_function(obj)
                inv.put_function(obj)
            elif kind == "host":
                assert isinstance(obj, Host)
                inv.check_host(obj)
                inv.put_host(obj)
            elif kind == "link":
                assert isinstance(obj, Link)
                inv.check_link(obj)
                inv.put_link(obj)
            elif kind == "instance":
                assert isinstance(obj, Instance)
                inv.check_instance(obj)
                function = inv.functions[obj.function]
                obj = obj.model_copy(update={"params": validate_params(function, obj.params)})
                inv.put_instance(obj)
            elif kind == "group":
                assert isinstance(obj, Group)
                inv.check_group(obj)
                inv.put_group(obj)
            else:
                raise InventoryError(f"unknown inventory kind {kind!r}")
            if self.store is not None:
                self.store.put(kind, obj)
            self.events.emit(
                now,
                EventCategory.INVENTORY,
                f"{kind} {_key(kind, obj)} stored",
                tags=(kind, _key(kind, obj)),
            )
        return obj

    def remove(self, kind: str, key: str, now: float) -> None:
        with self.lock:
            table = self.inventory.table(kind)
            if key not in table:
                raise KeyError(f"no {kind} {key!r}")
            if kind == "instance" and key in self.engine.busy_names():
                raise InventoryError(f"instance {key!r} has an operation in flight")
            self.inventory.remove(kind, key)
            if self.store is not None:
                self.store.delete(kind, key)
            self.events.emit(
                now, EventCategory.INVENTORY, f"{kind} {key} removed", tags=(kind, key)
            )

    def seed_instance(self, instance: Instance, now: float) -> Instance:
        """Record an instance that already runs (scenario start, adoption) as monitoring."""
        ready = instance.model_copy(
            update={"stage": LifecycleStage.MONITORING, "created_at": now, "updated_at": now}
        )
        return Instance.model_validate(self.put("instance", ready, now))

    # -- telemetry and requests ---------------------------------------------------------------
    def ingest(self, readings: Sequence[Reading]) -> int:
        with self.lock:
            if self.persist_readings and self.store is not None:
                self.store.add_readings(readings)
            return self.telemetry.ingest(readings)

    def request(self, request: OperationRequest, now: float) -> Operation:
        """An operation asked for directly (API, CLI): skips policies, not the engine's rules."""
        with self.lock:
            op = self.engine.submit(request, now)
            self.engine.advance(now)
            self.events.flush()
            return self.engine.active.get(op.id) or self.operation(op.id) or op

    def operation(self, op_id: str) -> Operation | None:
        if op_id in self.engine.active:
            return self.engine.active[op_id]
        for op in reversed(self.engine.finished):
            if op.id == op_id:
                return op
        return self.store.operation(op_id) if self.store is not None else None

    def snapshot(self, now: float) -> Snapshot:
        with self.lock:
            return build_snapshot(
                now, self.inventory, self.telemetry, self.engine.summaries(now), self._tables
            )

    # -- the cycle ----------------------------------------------------------------------------
    def tick(self, now: float) -> TickReport:
        started = time.perf_counter()
        with self.lock:
            report = TickReport(now=now, duration_s=0.0)
            self.engine.advance(now)
            snapshot = build_snapshot(
                now, self.inventory, self.telemetry, self.engine.summaries(now), self._tables
            )
            candidates: list[Candidate] = []
            for policy, config in self.registry.enabled():
                try:
                    result = policy.evaluate(snapshot, config, self.memory.get(policy.name))
                except Exception as exc:  # a broken policy must not stop the others
                    message = f"policy {policy.name} failed: {exc.__class__.__name__}: {exc}"
                    report.errors.append(message)
                    self.events.emit(
                        now,
                        EventCategory.SYSTEM,
                        message,
                        tags=(policy.name, "policy_error"),
                        severity=Severity.ERROR,
                    )
                    continue
                self.memory[policy.name] = result.memory
                for note in result.notes:
                    self.events.emit(
                        now,
                        EventCategory.DECISION,
                        note.message,
                        tags=(policy.name, note.rule, "note"),
                        data={"reason": note.model_dump(mode="json")},
                    )
                for alarm in result.alarms:
                    self.events.emit(
                        now,
                        EventCategory.ALARM,
                        alarm.message,
                        tags=(policy.name, alarm.rule, "alarm"),
                        severity=Severity(alarm.details.get("severity", "info")),
                        data={"reason": alarm.model_dump(mode="json")},
                    )
                for proposal in result.proposals:
                    stamped = proposal.model_copy(update={"policy": policy.name})
                    candidates.append(Candidate(stamped, config.precedence, config.dry_run))
            report.proposals = len(candidates)
            report.decisions = arbitrate(candidates, snapshot, self.arbiter)
            for decision in report.decisions:
                self._record(decision, now, report)
            self.engine.advance(now)
            self.events.flush()
            report.duration_s = time.perf_counter() - started
            self.last_tick = report
            self.ticks += 1
        return report

    def _record(self, decision: Decision, now: float, report: TickReport) -> None:
        p = decision.proposal
        verdict = decision.verdict
        op_id: str | None = None
        if verdict is Verdict.ACCEPTED:
            try:
                op = self.engine.submit(p.request(), now)
                op_id = op.id
                report.started.append(op)
            except ValueError as exc:
                verdict = Verdict.REFUSED
                decision = Decision(p, Verdict.REFUSED, "engine", str(exc))
        text = {
            Verdict.ACCEPTED: f"{p.policy}: {p.kind.value} {p.subject} — {p.reason.message}",
            Verdict.DRY_RUN: f"{p.policy} (dry-run): would {p.kind.value} {p.subject} — "
            f"{p.reason.message}",
            Verdict.REFUSED: f"{p.policy}: {p.kind.value} {p.subject} refused "
            f"({decision.rule}: {decision.message})",
        }[verdict]
        self.events.emit(
            now,
            EventCategory.DECISION,
            text,
            tags=(p.policy, p.kind.value, verdict.value, decision.rule),
            severity=Severity.INFO if verdict is not Verdict.REFUSED else Severity.WARNING,
            data={
                "verdict": verdict.value,
                "rule": decision.rule,
                "detail": decision.message,
                "operation": op_id,
                "proposal": p.model_dump(mode="json"),
            },
        )


def _key(kind: str, obj: BaseModel) -> str:
    return str(getattr(obj, "name" if kind == "function" else "id"))
