"""Lifecycle engine with the sim driver: stages, retries, operator actions, migrations."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from edgeroam.drivers.sim import SimDriver
from edgeroam.events import EventLog
from edgeroam.inventory import Inventory
from edgeroam.lifecycle import BusyError, LifecycleConfig, LifecycleEngine, OperationError
from edgeroam.model import (
    Event,
    EventCategory,
    HostState,
    LifecycleStage,
    Operation,
    OperationKind,
    OperationRequest,
    OperationState,
    Severity,
)
from edgeroam.store import Store
from tests.conftest import LOAD_ORDER, reason, world_objects

S = OperationState
K = OperationKind
STAGE = LifecycleStage


@dataclass
class Rig:
    engine: LifecycleEngine
    inv: Inventory
    driver: SimDriver
    events: EventLog
    store: Store | None
    seen: list[Event] = field(default_factory=list)

    @property
    def latency(self) -> float:
        return self.driver.latency_s

    def submit(self, kind: K, subject: str, now: float = 0.0, **kw: Any) -> Operation:
        return self.engine.submit(
            OperationRequest(kind=kind, subject=subject, reason=reason(), **kw), now
        )

    def op(self, op_id: str) -> Operation:
        if op_id in self.engine.active:
            return self.engine.active[op_id]
        return next(o for o in reversed(self.engine.finished) if o.id == op_id)

    def drive(self, op_id: str, now: float, step: float | None = None, limit: int = 200) -> float:
        """Advance time until the operation leaves the in-flight states; returns the end time."""
        step = step if step is not None else max(self.latency, 0.5)
        for _ in range(limit):
            self.engine.advance(now)
            if not self.op(op_id).state.in_flight or self.op(op_id).state is S.FAILED_TEMP:
                return now
            now += step
        raise AssertionError(f"{op_id} still {self.op(op_id).state} at {now}")

    def deploy(self, function: str, host: str, now: float = 0.0, **kw: Any) -> tuple[str, float]:
        op = self.submit(K.INSTANTIATE, function, now, function=function, hosts=(host,), **kw)
        end = self.drive(op.id, now)
        assert self.op(op.id).state is S.COMPLETED
        return op.created_instances[0], end

    def flush(self) -> list[Event]:
        self.seen += self.events.flush()
        return self.seen

    def demand(self, function: str) -> np.ndarray:
        f = self.inv.flavor_of(function)
        return np.array([f.vcpu, f.memory_mb, f.bandwidth_mbps])

    def allocated(self, host: str) -> np.ndarray:
        return self.inv.columns.allocated[self.inv.columns.index[host]]

    def stage(self, name: str) -> LifecycleStage:
        return self.inv.instances[name].stage


def make_rig(latency: float = 0.0, store: Store | None = None, **config: Any) -> Rig:
    inv = Inventory()
    objects = world_objects()
    inv.load(**{f"{kind}s": objects[kind] for kind in LOAD_ORDER})
    if store is not None:
        for kind in LOAD_ORDER:
            store.put(kind, objects[kind])
    driver = SimDriver(latency_s=latency)
    events = EventLog(store)
    engine = LifecycleEngine(store, inv, driver, events, LifecycleConfig(**config))
    return Rig(engine, inv, driver, events, store)


# -- instantiate --------------------------------------------------------------------------------
def test_instantiate_passes_through_stages_and_completes_after_the_latency() -> None:
    rig = make_rig(latency=1.5)
    op = rig.submit(
        K.INSTANTIATE,
        "fw",
        0.0,
        function="fw",
        owner="alice",
        hosts=("edge-a",),
        params={"mode": "strict"},
    )
    assert op.state is S.STARTING
    [name] = op.created_instances
    assert op.instances == (name,)
    assert rig.stage(name) is STAGE.ONBOARDING
    assert rig.inv.instances[name].owner == "alice"
    assert rig.allocated("edge-a") == pytest.approx(rig.demand("fw"))
    assert rig.driver.sandboxes == set()  # nothing reaches the driver before the first advance

    rig.engine.advance(0.0)
    assert rig.op(op.id).state is S.PROCESSING
    assert rig.stage(name) is STAGE.VI_DEPLOYMENT
    rig.engine.advance(rig.latency - 1e-6)
    assert rig.stage(name) is STAGE.VI_DEPLOYMENT
    assert rig.driver.sandboxes == set()

    rig.engine.advance(rig.latency)
    assert rig.driver.sandboxes == {(name, "edge-a")}
    assert rig.stage(name) is STAGE.DEPLOYMENT
    assert rig.driver.running == {}

    rig.engine.advance(2 * rig.latency)
    done = rig.op(op.id)
    assert done.state is S.COMPLETED
    assert done.finished_at == 2 * rig.latency
    assert rig.stage(name) is STAGE.MONITORING
    assert rig.driver.running == {(name, "edge-a"): {"mode": "strict"}}
    assert op.id not in rig.engine.active
    assert rig.engine.completed_count == 1

    transitions = [
        (e.data["from"], e.data["to"])
        for e in rig.flush()
        if e.category is EventCategory.LIFECYCLE and e.data["instance"] == name
    ]
    assert transitions == [
        ("onboarding", "vi_deployment"),
        ("vi_deployment", "deployment"),
        ("deployment", "monitoring"),
    ]
    op_states = [
        e.data["to"] for e in rig.seen if e.category is EventCategory.OPERATION and "to" in e.data
    ]
    assert op_states == ["PROCESSING", "COMPLETED"]


def test_instantiate_on_several_hosts_creates_one_instance_each() -> None:
    rig = make_rig()
    op = rig.submit(K.SCALE_OUT, "fw", 0.0, function="fw", hosts=("edge-a", "edge-b"))
    rig.drive(op.id, 0.0)
    hosts = {rig.inv.instances[i].host for i in op.created_instances}
    assert hosts == {"edge-a", "edge-b"}
    assert len(set(op.created_instances)) == 2
    assert rig.driver.sandboxes == {(i, rig.inv.instances[i].host) for i in op.created_instances}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hosts": ("mars",)}, "unknown host 'mars'"),
        ({"function": "nope"}, "unknown function 'nope'"),
        ({"owner": "zed"}, "unknown customer 'zed'"),
        ({"hosts": ()}, "needs a function and at least one target host"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(changes: dict[str, Any], message: str) -> None:
    rig = make_rig()
    version = rig.inv.version
    args: dict[str, Any] = {"function": "fw", "hosts": ("edge-a",), **changes}
    with pytest.raises(OperationError, match=message):
        rig.submit(K.INSTANTIATE, "fw", **args)
    assert rig.inv.version == version
    assert rig.inv.instances == {}
    assert rig.engine.active == {}


def test_only_ready_hosts_receive_functions() -> None:
    rig = make_rig()
    rig.inv.put_host(rig.inv.hosts["edge-b"].model_copy(update={"state": HostState.CORDONED}))
    with pytest.raises(OperationError, match="host 'edge-b' is cordoned"):
        rig.submit(K.INSTANTIATE, "fw", function="fw", hosts=("edge-b",))


# -- retries ------------------------------------------------------------------------------------
def test_failing_step_is_retried_with_capped_jittered_exponential_backoff() -> None:
    cfg = {"max_attempts": 6, "backoff_base_s": 1.0, "backoff_cap_s": 8.0, "jitter": 0.3}
    rig = make_rig(**cfg)
    failures = cfg["max_attempts"] - 1
    rig.driver.fail_next("create_sandbox", times=int(failures))
    op = rig.submit(K.INSTANTIATE, "fw", 0.0, function="fw", hosts=("edge-a",))
    [name] = op.created_instances
    now = 0.0
    delays: list[float] = []
    for attempt in range(1, int(failures) + 1):
        rig.engine.advance(now)
        current = rig.op(op.id)
        assert current.state is S.PROCESSING
        assert current.attempt == attempt
        assert current.error == "simulated failure of create_sandbox"
        assert current.next_attempt_at is not None
        assert rig.stage(name) is STAGE.VI_DEPLOYMENT  # stays in its stage while retrying
        delays.append(current.next_attempt_at - now)
        # Just before the retry time nothing happens.
        rig.engine.advance(current.next_attempt_at - 1e-6)
        assert rig.op(op.id).attempt == attempt
        now = current.next_attempt_at
    rig.engine.advance(now)
    assert rig.op(op.id).state is S.COMPLETED

    for attempt, delay in enumerate(delays, start=1):
        nominal = min(cfg["backoff_cap_s"], cfg["backoff_base_s"] * 2 ** (attempt - 1))
        assert nominal * (1 - cfg["jitter"]) < delay <= nominal, (attempt, delay)
        assert delay <= cfg["backoff_cap_s"]
    uncapped = [
        d
        for k, d in enumerate(delays, start=1)
        if cfg["backoff_base_s"] * 2 ** (k - 1) <= cfg["backoff_cap_s"]
    ]
    assert len(uncapped) >= 3
    # With jitter below 1/2, each doubling outgrows the previous delay whatever the draw.
    assert all(b > a for a, b in itertools.pairwise(uncapped))
    warnings = [e for e in rig.flush() if e.severity is Severity.WARNING]
    assert len(warnings) == failures


def test_jitter_zero_gives_exact_doubling() -> None:
    rig = make_rig(max_attempts=4, backoff_base_s=0.5, backoff_cap_s=100.0, jitter=0.0)
    rig.driver.fail_next("create_sandbox", times=3)
    op = rig.submit(K.INSTANTIATE, "fw", 0.0, function="fw", hosts=("edge-a",))
    now, delays = 0.0, []
    for _ in range(3):
        rig.engine.advance(now)
        nxt = rig.op(op.id).next_attempt_at
        assert nxt is not None
        delays.append(nxt - now)
        now = nxt
    base = rig.engine.config.backoff_base_s
    assert delays == [base, 2 * base, 4 * base]


def exhaust(rig: Rig, action: str, **submit: Any) -> Operation:
    """Submit an instantiate whose `action` always fails, and drive it to FAILED_TEMP."""
    rig.driver.fail_next(action, times=rig.engine.config.max_attempts)
    op = rig.submit(K.INSTANTIATE, "fw", 0.0, function="fw", hosts=("edge-a",), **submit)
    rig.drive(op.id, 0.0, step=rig.engine.config.backoff_cap_s)
    return rig.op(op.id)


def test_after_max_attempts_the_operation_waits_in_failed_temp() -> None:
    rig = make_rig(max_attempts=3, backoff_cap_s=2.0)
    op = exhaust(rig, "create_sandbox")
    assert op.state is S.FAILED_TEMP
    assert op.attempt == rig.engine.config.max_attempts
    assert op.next_attempt_at is None
    assert op.error == "simulated failure of create_sandbox"
    rig.engine.advance(10_000.0)  # nobody retries on their own
    assert rig.op(op.id).state is S.FAILED_TEMP
    assert op.id in rig.engine.active
    errors = [e for e in rig.flush() if e.severity is Severity.ERROR]
    assert [f"after {op.attempt} attempts" in e.message for e in errors] == [True]
    # The instance is still blocked for other operations.
    with pytest.raises(BusyError):
        rig.submit(K.TERMINATE, op.created_instances[0], instances=op.created_instances)


def test_operator_retry_completes_the_operation() -> None:
    rig = make_rig(max_attempts=3, backoff_cap_s=2.0)
    op = exhaust(rig, "create_sandbox")
    retried = rig.engine.retry(op.id, 100.0)
    assert retried.state is S.PROCESSING
    assert retried.attempt == 0
    rig.drive(op.id, 100.0)
    assert rig.op(op.id).state is S.COMPLETED
    [name] = op.created_instances
    assert rig.driver.sandboxes == {(name, "edge-a")}
    assert rig.driver.running == {(name, "edge-a"): {}}
    assert rig.stage(name) is STAGE.MONITORING


def test_operator_actions_need_failed_temp() -> None:
    rig = make_rig(latency=1.0)
    op = rig.submit(K.INSTANTIATE, "fw", 0.0, function="fw", hosts=("edge-a",))
    for action in (rig.engine.retry, rig.engine.rollback, rig.engine.fail):
        with pytest.raises(OperationError, match="needs FAILED_TEMP"):
            action(op.id, 0.0)
    with pytest.raises(OperationError, match="no operation 'op-999'"):
        rig.engine.retry("op-999", 0.0)


def test_rollback_removes_created_instances_and_their_sandboxes(sqlite_store: Store) -> None:
    rig = make_rig(store=sqlite_store, max_attempts=2, backoff_cap_s=1.0)
    op = exhaust(rig, "start_function")
    [name] = op.created_instances
    assert op.state is S.FAILED_TEMP
    assert rig.driver.sandboxes == {(name, "edge-a")}  # the first step did happen
    assert [i.id for i in sqlite_store.load("instance")] == [name]

    assert rig.engine.rollback(op.id, 50.0).state is S.ROLLING_BACK
    rig.drive(op.id, 50.0)
    final = rig.op(op.id)
    assert final.state is S.ROLLED_BACK
    assert not any(step.done for step in final.plan)
    assert name not in rig.inv.instances
    assert rig.driver.sandboxes == set()
    assert rig.driver.running == {}
    assert not rig.allocated("edge-a").any()
    stored = sqlite_store.operation(op.id)
    assert stored is not None
    assert stored.state is S.ROLLED_BACK
    assert sqlite_store.load("instance") == []


def test_fail_gives_up_and_marks_created_instances_failed() -> None:
    rig = make_rig(max_attempts=2, backoff_cap_s=1.0)
    op = exhaust(rig, "start_function")
    final = rig.engine.fail(op.id, 60.0)
    assert final.state is S.FAILED
    assert final.finished_at == 60.0
    assert op.id not in rig.engine.active
    [name] = op.created_instances
    assert rig.stage(name) is STAGE.FAIL


def test_busy_instance_is_refused_with_a_clear_message() -> None:
    rig = make_rig(latency=1.0)
    name, now = rig.deploy("fw", "edge-a")
    migrate = rig.submit(K.MIGRATE, name, now, instances=(name,), hosts=("edge-b",))
    before = dict(rig.engine.active)
    with pytest.raises(BusyError) as exc:
        rig.submit(K.UPDATE, name, now, instances=(name,), params={"mode": "strict"})
    message = str(exc.value)
    assert name in message
    assert migrate.id in message
    assert "try again" in message
    assert rig.engine.active == before
    assert issubclass(BusyError, OperationError)


# -- migrate ------------------------------------------------------------------------------------
def test_migrate_is_make_before_break() -> None:
    rig = make_rig(latency=1.0)
    name, now = rig.deploy("fw", "edge-a", owner="alice")
    rig.driver.log.clear()
    op = rig.submit(K.MIGRATE, name, now, instances=(name,), hosts=("edge-b",))
    both_running_seen = False
    stages = []
    for _ in range(50):
        rig.engine.advance(now)
        if rig.driver.running.keys() >= {(name, "edge-a"), (name, "edge-b")}:
            both_running_seen = True
        stages.append(rig.stage(name))
        if not rig.op(op.id).state.in_flight:
            break
        now += rig.latency
    final = rig.op(op.id)
    assert final.state is S.COMPLETED
    done_order = [
        (final.plan[int(key.split("/")[2])].action, final.plan[int(key.split("/")[2])].args["host"])
        for _, key, outcome in rig.driver.log
        if outcome == "done"
    ]
    assert done_order == [
        ("create_sandbox", "edge-b"),
        ("start_function", "edge-b"),
        ("stop_function", "edge-a"),
        ("remove_sandbox", "edge-a"),
    ]
    assert both_running_seen
    assert rig.inv.instances[name].host == "edge-b"
    assert rig.stage(name) is STAGE.MONITORING
    assert STAGE.DEPLOYMENT in stages
    assert rig.driver.sandboxes == {(name, "edge-b")}
    assert set(rig.driver.running) == {(name, "edge-b")}
    assert rig.allocated("edge-b") == pytest.approx(rig.demand("fw"))
    assert not rig.allocated("edge-a").any()
    assert rig.inv.reservations == {}


def test_migration_target_is_reserved_while_it_runs() -> None:
    rig = make_rig(latency=1.0)
    name, now = rig.deploy("cache", "edge-a")
    op = rig.submit(K.MIGRATE, name, now, instances=(name,), hosts=("edge-b",))
    assert rig.allocated("edge-b") == pytest.approx(rig.demand("cache"))
    assert rig.allocated("edge-a") == pytest.approx(rig.demand("cache"))
    rig.drive(op.id, now)
    assert rig.allocated("edge-b") == pytest.approx(rig.demand("cache"))
    assert not rig.allocated("edge-a").any()


def test_rolling_back_a_half_done_migration_returns_to_the_source() -> None:
    rig = make_rig(latency=1.0, max_attempts=2, backoff_cap_s=1.0)
    name, now = rig.deploy("fw", "edge-a", params={"mode": "strict"})
    rig.driver.fail_next("stop_function", times=2)  # the source never stops
    op = rig.submit(K.MIGRATE, name, now, instances=(name,), hosts=("edge-b",))
    now = rig.drive(op.id, now)
    half = rig.op(op.id)
    assert half.state is S.FAILED_TEMP
    assert [s.done for s in half.plan] == [True, True, False, False]
    assert rig.inv.instances[name].host == "edge-b"  # it already serves from the target

    rig.engine.rollback(op.id, now)
    rig.drive(op.id, now)
    final = rig.op(op.id)
    assert final.state is S.ROLLED_BACK
    inst = rig.inv.instances[name]
    assert inst.host == "edge-a"
    assert inst.stage is STAGE.MONITORING
    assert rig.driver.sandboxes == {(name, "edge-a")}
    assert rig.driver.running == {(name, "edge-a"): {"mode": "strict"}}
    assert rig.allocated("edge-a") == pytest.approx(rig.demand("fw"))
    assert not rig.allocated("edge-b").any()


def test_heal_completes_even_when_the_dead_source_cannot_be_cleaned() -> None:
    rig = make_rig(latency=1.0)
    name, now = rig.deploy("fw", "edge-a")
    rig.inv.put_host(rig.inv.hosts["edge-a"].model_copy(update={"state": HostState.DOWN}))
    rig.driver.fail_next("stop_function", times=1)
    rig.driver.fail_next("remove_sandbox", times=1)
    op = rig.submit(K.HEAL, name, now, instances=(name,), hosts=("edge-b",), sources=("edge-a",))
    rig.drive(op.id, now)
    assert rig.op(op.id).state is S.COMPLETED
    assert rig.inv.instances[name].host == "edge-b"
    best_effort = [e for e in rig.flush() if "best-effort" in e.message]
    assert len(best_effort) == 2
    assert {e.severity for e in best_effort} == {Severity.WARNING}


# -- hosts, updates, terminate ------------------------------------------------------------------
def test_power_off_and_on_change_the_host_state(sqlite_store: Store) -> None:
    rig = make_rig(store=sqlite_store)
    off = rig.submit(K.POWER_OFF, "cloud-1", hosts=("cloud-1",))
    rig.drive(off.id, 0.0)
    assert rig.op(off.id).state is S.COMPLETED
    assert rig.inv.hosts["cloud-1"].state is HostState.OFF
    assert rig.driver.powered_off == {"cloud-1"}
    stored_hosts = {h.id: h for h in sqlite_store.load("host")}  # type: ignore[attr-defined]
    assert stored_hosts["cloud-1"].state is HostState.OFF  # type: ignore[attr-defined]
    with pytest.raises(OperationError, match="only ready hosts"):
        rig.submit(K.INSTANTIATE, "fw", function="fw", hosts=("cloud-1",))

    on = rig.submit(K.POWER_ON, "cloud-1", 1.0, hosts=("cloud-1",))
    rig.drive(on.id, 1.0)
    assert rig.inv.hosts["cloud-1"].state is HostState.READY
    assert rig.driver.powered_off == set()


def test_update_changes_params() -> None:
    rig = make_rig(latency=1.0)
    name, now = rig.deploy("fw", "edge-a", params={"mode": "open", "port": 8443})
    op = rig.submit(K.UPDATE, name, now, instances=(name,), params={"mode": "strict"})
    rig.engine.advance(now)
    assert rig.stage(name) is STAGE.UPDATE
    rig.drive(op.id, now)
    expected = {"mode": "strict", "port": 8443}
    assert rig.inv.instances[name].params == expected
    assert rig.driver.running[(name, "edge-a")] == expected
    assert rig.stage(name) is STAGE.MONITORING


def test_rolling_back_an_update_restores_the_params() -> None:
    rig = make_rig(latency=1.0, max_attempts=2, backoff_cap_s=1.0)
    first, now = rig.deploy("fw", "edge-a", params={"mode": "open"})
    second, now = rig.deploy("fw", "edge-b", now, params={"mode": "open"})
    op = rig.submit(K.UPDATE, "fw", now, instances=(first, second), params={"mode": "strict"})
    rig.engine.advance(now)  # first update submitted
    now += rig.latency
    rig.engine.advance(now)  # first update done, second submitted
    assert rig.inv.instances[first].params == {"mode": "strict"}
    rig.driver.fail_next("update_function", times=2)
    now = rig.drive(op.id, now)
    assert rig.op(op.id).state is S.FAILED_TEMP

    rig.engine.rollback(op.id, now)
    rig.drive(op.id, now)
    assert rig.op(op.id).state is S.ROLLED_BACK
    for name, host in ((first, "edge-a"), (second, "edge-b")):
        assert rig.inv.instances[name].params == {"mode": "open"}
        assert rig.driver.running[(name, host)] == {"mode": "open"}
        assert rig.stage(name) is STAGE.MONITORING


def test_terminate_removes_the_instance(sqlite_store: Store) -> None:
    rig = make_rig(latency=0.5, store=sqlite_store)
    name, now = rig.deploy("fw", "edge-a")
    keep, now = rig.deploy("dns", "edge-a", now)
    op = rig.submit(K.TERMINATE, name, now, instances=(name,))
    rig.drive(op.id, now)
    assert rig.op(op.id).state is S.COMPLETED
    assert name not in rig.inv.instances
    assert [i.id for i in sqlite_store.load("instance")] == [keep]
    assert rig.driver.sandboxes == {(keep, "edge-a")}
    assert rig.allocated("edge-a") == pytest.approx(rig.demand("dns"))


def test_unknown_instance_is_refused() -> None:
    rig = make_rig()
    with pytest.raises(OperationError, match="unknown instance 'ghost'"):
        rig.submit(K.TERMINATE, "ghost", instances=("ghost",))


# -- persistence and recovery -------------------------------------------------------------------
def test_store_follows_the_engine(sqlite_store: Store) -> None:
    rig = make_rig(latency=1.0, store=sqlite_store)
    name, now = rig.deploy("fw", "edge-a")
    op = rig.submit(K.MIGRATE, name, now, instances=(name,), hosts=("edge-b",))
    rig.drive(op.id, now)
    assert {i.id: i for i in sqlite_store.load("instance")} == rig.inv.instances
    states = {o.id: o.state for o in sqlite_store.operations()}
    assert states == {o.id: o.state for o in rig.engine.finished}
    assert sqlite_store.counters() == rig.engine.counters
    rig.flush()
    assert {e.id for e in sqlite_store.events(limit=10_000)} == {e.id for e in rig.seen}


def test_recovery_can_park_interrupted_operations_for_an_operator(sqlite_store: Store) -> None:
    rig = make_rig(latency=5.0, store=sqlite_store)
    op = rig.submit(K.INSTANTIATE, "fw", 0.0, function="fw", hosts=("edge-a",))
    rig.engine.advance(0.0)
    assert rig.op(op.id).state is S.PROCESSING

    inv = Inventory()
    for kind in LOAD_ORDER:
        for obj in sqlite_store.load(kind):
            getattr(inv, f"put_{kind}")(obj)
    for obj in sqlite_store.load("instance"):
        inv.put_instance(obj)  # type: ignore[arg-type]
    engine = LifecycleEngine(
        sqlite_store,
        inv,
        SimDriver(),
        EventLog(sqlite_store),
        LifecycleConfig(recovery="failed_temp"),
    )
    [recovered] = engine.recover(1.0)
    assert recovered.id == op.id
    assert recovered.state is S.FAILED_TEMP
    assert recovered.error == "controller restarted during the operation"
    assert engine.counters == rig.engine.counters
