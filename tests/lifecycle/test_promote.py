"""PROMOTE: a standby takes the active role, the failed active steps down; undone on rollback."""

from __future__ import annotations

from edgeroam.drivers.sim import SimDriver
from edgeroam.events import EventLog
from edgeroam.inventory import Inventory
from edgeroam.lifecycle import LifecycleConfig, LifecycleEngine
from edgeroam.model import (
    Instance,
    LifecycleStage,
    OperationKind,
    OperationRequest,
    OperationState,
    Role,
)
from tests.conftest import load_world, reason


def setup(latency: float = 0.0) -> tuple[LifecycleEngine, Inventory, SimDriver]:
    inv = Inventory()
    load_world(inv)
    driver = SimDriver(latency_s=latency)
    for name, role in (("fw-a", Role.ACTIVE), ("fw-s", Role.STANDBY)):
        inst = Instance(
            id=name, function="fw", host="edge-a", role=role, stage=LifecycleStage.MONITORING
        )
        inv.put_instance(inst)
        driver.adopt(name, "edge-a", {})
    engine = LifecycleEngine(None, inv, driver, EventLog(None), LifecycleConfig(max_attempts=1))
    return engine, inv, driver


def promote() -> OperationRequest:
    return OperationRequest(
        kind=OperationKind.PROMOTE, subject="fw-a", instances=("fw-s", "fw-a"), reason=reason()
    )


def test_promotion_flips_both_roles_and_ends_serving() -> None:
    engine, inv, _ = setup()
    op = engine.submit(promote(), 0.0)
    assert [s.action for s in op.plan] == ["update_function", "noop"]
    engine.advance(0.0)
    assert inv.instances["fw-s"].role is Role.ACTIVE
    assert inv.instances["fw-a"].role is Role.STANDBY
    assert all(inv.instances[n].stage is LifecycleStage.MONITORING for n in ("fw-s", "fw-a"))
    assert not engine.active


def test_a_latency_free_role_flip_completes_in_the_cycle_it_starts() -> None:
    engine, inv, driver = setup(latency=30.0)
    driver.latency_by_action = {"update_function": 0.0, "noop": 0.0}
    op = engine.submit(promote(), 0.0)
    engine.advance(0.0)
    assert op.id not in engine.active
    assert inv.instances["fw-s"].role is Role.ACTIVE


def test_undoing_the_steps_restores_the_previous_roles() -> None:
    engine, inv, _ = setup()
    op = engine.submit(promote(), 0.0)
    engine.advance(0.0)
    for step in reversed(op.plan):
        engine._apply_effect(op, step.effect, 1.0, undo=True)
    assert inv.instances["fw-s"].role is Role.STANDBY
    assert inv.instances["fw-a"].role is Role.ACTIVE


def test_a_promotion_whose_role_flip_fails_changes_no_role() -> None:
    engine, inv, driver = setup()
    driver.fail_next("update_function")
    op = engine.submit(promote(), 0.0)
    engine.advance(0.0)
    assert engine.active[op.id].state is OperationState.FAILED_TEMP
    engine.rollback(op.id, 1.0)
    engine.advance(1.0)
    assert inv.instances["fw-s"].role is Role.STANDBY
    assert inv.instances["fw-a"].role is Role.ACTIVE
