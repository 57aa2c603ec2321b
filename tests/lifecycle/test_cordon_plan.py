"""CORDON / UNCORDON: scheduling-state operations with a no-op step and a host_state effect."""

from __future__ import annotations

import pytest

from edgeroam.drivers.sim import SimDriver
from edgeroam.events import EventLog
from edgeroam.inventory import Inventory
from edgeroam.lifecycle import LifecycleConfig, LifecycleEngine, OperationError
from edgeroam.lifecycle.plans import PlanError, build_plan
from edgeroam.model import HostState, OperationKind, OperationRequest, OperationState
from tests.conftest import load_world, reason


def engine(latency: float = 0.0) -> tuple[LifecycleEngine, Inventory, SimDriver]:
    inv = Inventory()
    load_world(inv)
    driver = SimDriver(latency_s=latency)
    return LifecycleEngine(None, inv, driver, EventLog(None), LifecycleConfig()), inv, driver


def request(kind: OperationKind, host: str = "edge-a", **kw: object) -> OperationRequest:
    return OperationRequest(kind=kind, subject=host, hosts=(host,), reason=reason(), **kw)  # type: ignore[arg-type]


def test_plan_is_one_noop_step_changing_the_host_state() -> None:
    for kind, state in ((OperationKind.CORDON, "cordoned"), (OperationKind.UNCORDON, "ready")):
        plan = build_plan(request(kind), 0.0, {}, lambda f: f, lambda h: True)
        assert [s.action for s in plan.steps] == ["noop"]
        assert plan.steps[0].effect == {"host_state": state, "host": "edge-a"}
        assert plan.new_instances == []
    with pytest.raises(PlanError, match="exactly one host"):
        build_plan(
            OperationRequest(kind=OperationKind.CORDON, subject="x", reason=reason()),
            0.0,
            {},
            lambda f: f,
            lambda h: True,
        )


def test_cordon_then_uncordon_through_the_engine() -> None:
    eng, inv, driver = engine(latency=1.0)
    op = eng.submit(request(OperationKind.CORDON), 0.0)
    eng.advance(0.0)
    assert inv.hosts["edge-a"].state is HostState.READY  # the step takes the driver's latency
    eng.advance(1.0)
    done = next(o for o in eng.finished if o.id == op.id)
    assert done.state is OperationState.COMPLETED
    assert inv.hosts["edge-a"].state is HostState.CORDONED
    # A cordoned host receives no new function.
    with pytest.raises(OperationError, match="cordoned; only ready hosts receive functions"):
        eng.submit(
            OperationRequest(
                kind=OperationKind.INSTANTIATE,
                subject="new",
                function="fw",
                hosts=("edge-a",),
                reason=reason(),
            ),
            2.0,
        )
    eng.submit(request(OperationKind.UNCORDON), 2.0)
    eng.advance(2.0)
    eng.advance(3.0)
    assert inv.hosts["edge-a"].state is HostState.READY
    assert [a for _, a, _ in driver.log] == [f"{op.id}/do/0/0", f"{eng.finished[-1].id}/do/0/0"]


def test_a_failed_cordon_is_rolled_back_to_the_previous_state() -> None:
    eng, inv, driver = engine()
    driver.fail_next("noop", times=10)
    op = eng.submit(request(OperationKind.CORDON), 0.0)
    now = 0.0
    for _ in range(20):
        eng.advance(now)
        now += 60.0
    stuck = eng.active[op.id]
    assert stuck.state is OperationState.FAILED_TEMP
    assert inv.hosts["edge-a"].state is HostState.READY
    driver.failures.clear()
    eng.retry(op.id, now)
    eng.advance(now)
    assert inv.hosts["edge-a"].state is HostState.CORDONED
    # Rolling back a completed cordon is not possible (only FAILED_TEMP waits); a new
    # UNCORDON restores readiness instead.
    eng.submit(request(OperationKind.UNCORDON), now)
    eng.advance(now + 1)
    assert inv.hosts["edge-a"].state is HostState.READY
