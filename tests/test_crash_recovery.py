"""A controller killed mid-operation is taken over by a new one without losing or duplicating.

The worker (tests/helpers/crash_worker.py) runs a Controller on a SQLite file and a SimDriver
that persists its world to JSON, with real action latency. The test SIGKILLs it while operations
are in flight, then builds a fresh Controller on the same database and driver state, lets it
recover and finish, and checks that the store, the inventory and the driver's world agree.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.model import (
    Instance,
    LifecycleStage,
    Operation,
    OperationKind,
    OperationRequest,
    OperationState,
)
from edgeroam.policies.registry import PolicyRegistry
from edgeroam.store import Store
from tests.conftest import make_world, reason

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "helpers" / "crash_worker.py"
LATENCY = 0.15
S = OperationState


class Worker:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "crash.db"
        self.state = tmp_path / "sim.json"
        self.url = f"sqlite:///{self.db}"
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.db), str(self.state), str(LATENCY)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> list[str]:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else ""
        if not line.startswith("ready"):
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            _, stderr = self.proc.communicate(timeout=10)
            pytest.fail(f"worker did not get ready: {line!r}\n{stderr}")
        return line.split()[1:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    w = Worker(tmp_path)
    try:
        yield w
    finally:
        w.kill()


def wait_for(store: Store, kind: OperationKind, min_step: int, timeout: float = 30.0) -> None:
    """Until an operation of `kind` is PROCESSING with at least `min_step` steps done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for op in store.operations(states=[S.PROCESSING], kind=kind.value):
            if op.step >= min_step:
                return
        time.sleep(0.002)
    pytest.fail(f"no {kind.value} operation reached step {min_step} in {timeout} s")


def recover(url: str, state: Path) -> tuple[Controller, list[Operation], float]:
    controller = Controller(
        SimDriver(latency_s=LATENCY, state_path=state),
        store=Store(url),
        registry=PolicyRegistry(),
    )
    now = time.time() + 1.0  # later than anything the dead controller wrote
    recovered = controller.load(now)
    for _ in range(400):
        if not controller.engine.active:
            break
        now += LATENCY / 2
        controller.tick(now)
    return controller, recovered, now


def assert_world_consistent(controller: Controller) -> None:
    store = controller.store
    assert store is not None
    inventory = controller.inventory
    stored = {i.id: i for i in store.load("instance")}
    assert stored == inventory.instances
    view = controller.driver.observe()
    # Exactly one sandbox and one running copy per instance, on the instance's host.
    once = Counter({name: 1 for name in inventory.instances})
    assert Counter(i for i, _ in view.sandboxes) == once
    assert Counter(i for i, _ in view.running) == once
    expected_slots = {(i.id, i.host) for i in inventory.instances.values()}
    assert set(view.sandboxes) == expected_slots
    assert set(view.running) == expected_slots
    for inst in inventory.instances.values():
        assert isinstance(inst, Instance)
        assert inst.stage is LifecycleStage.MONITORING, inst
    # Allocations equal the flavors of the instances on each host; no reservation is left.
    assert inventory.reservations == {}
    for host in inventory.hosts:
        used = np.zeros(3)
        for inst in inventory.instances_on(host):
            f = inventory.flavor_of(inst.function)
            used += (f.vcpu, f.memory_mb, f.bandwidth_mbps)
        row = inventory.columns.index[host]
        assert inventory.columns.allocated[row] == pytest.approx(used), host


@pytest.mark.parametrize(
    ("kind", "min_step"),
    [
        (OperationKind.MIGRATE, 0),  # target sandbox being created
        (OperationKind.MIGRATE, 2),  # new copy runs, the old one is being stopped
        (OperationKind.INSTANTIATE, 1),  # sandbox exists, function starting
    ],
    ids=["migrate-early", "migrate-half-done", "instantiate-starting-function"],
)
def test_killed_controller_is_taken_over_without_losing_or_duplicating(
    worker: Worker, kind: OperationKind, min_step: int
) -> None:
    first_instances = worker.wait_ready()
    watcher = Store(worker.url, migrate=False)
    try:
        wait_for(watcher, kind, min_step)
        worker.kill()
        at_kill = {op.id: op for op in watcher.operations(limit=10_000)}
    finally:
        watcher.close()
    in_flight = {op_id for op_id, op in at_kill.items() if op.state.in_flight}
    assert in_flight, "the kill came too late: nothing was in flight"
    assert worker.state.exists()

    controller, recovered, now = recover(worker.url, worker.state)
    assert {op.id for op in recovered} == in_flight
    assert controller.engine.active == {}, "operations still in flight after recovery"

    store = controller.store
    assert store is not None
    final = {op.id: op for op in store.operations(limit=10_000)}
    assert set(final) == set(at_kill)
    stuck = {
        op_id: op.state
        for op_id, op in final.items()
        if op.state not in (S.COMPLETED, S.ROLLED_BACK)
    }
    assert stuck == {}
    for op_id in set(at_kill) - in_flight:
        assert final[op_id] == at_kill[op_id]  # finished operations are left alone

    # The instances are exactly those of completed instantiations ...
    created = {
        name
        for op in final.values()
        if op.kind is OperationKind.INSTANTIATE and op.state is S.COMPLETED
        for name in op.created_instances
    }
    assert set(controller.inventory.instances) == created
    assert set(first_instances) <= created
    # ... each where its last completed migration put it.
    for op in final.values():
        if op.kind is OperationKind.MIGRATE:
            [name] = op.instances
            host = controller.inventory.instances[name].host
            if op.state is S.COMPLETED:
                assert host == op.hosts[0]
            else:
                assert host != op.hosts[0]
    assert_world_consistent(controller)

    # Counters survived: new ids never collide with the ones the dead controller handed out.
    op = controller.request(
        OperationRequest(
            kind=OperationKind.INSTANTIATE,
            subject="dns",
            function="dns",
            hosts=("cloud-1",),
            reason=reason(),
        ),
        now + 1,
    )
    assert op.id not in final
    assert not set(op.created_instances) & created
    controller.store.close()  # type: ignore[union-attr]


def test_operation_persisted_but_never_driven_is_rolled_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'starting.db'}"
    state = tmp_path / "sim.json"
    first = Controller(SimDriver(state_path=state), store=Store(url), registry=PolicyRegistry())
    make_world(first, 0.0)
    first.seed_instance(Instance(id="fw.moving", function="fw", host="edge-a"), 0.0)
    new = first.engine.submit(
        OperationRequest(
            kind=OperationKind.INSTANTIATE,
            subject="dns",
            function="dns",
            hosts=("edge-b",),
            reason=reason(),
        ),
        1.0,
    )
    move = first.engine.submit(
        OperationRequest(
            kind=OperationKind.MIGRATE,
            subject="fw.moving",
            instances=("fw.moving",),
            hosts=("edge-b",),
            reason=reason(),
        ),
        1.0,
    )
    first.events.flush()
    [created] = new.created_instances
    store = first.store
    assert store is not None
    assert {op.state for op in store.operations()} == {S.STARTING}
    assert created in {i.id for i in store.load("instance")}
    store.close()  # the first controller dies here, before any advance

    second = Controller(SimDriver(state_path=state), store=Store(url), registry=PolicyRegistry())
    recovered = second.load(2.0)
    assert {op.id: op.state for op in recovered} == {
        new.id: S.ROLLED_BACK,
        move.id: S.ROLLED_BACK,
    }
    assert second.store is not None
    assert {op.id: op.state for op in second.store.operations()} == {
        new.id: S.ROLLED_BACK,
        move.id: S.ROLLED_BACK,
    }
    assert created not in second.inventory.instances
    assert created not in {i.id for i in second.store.load("instance")}
    moving = second.inventory.instances["fw.moving"]
    assert moving.host == "edge-a"
    assert moving.stage is LifecycleStage.MONITORING
    assert second.engine.active == {}
    assert second.inventory.reservations == {}
    edge_b = second.inventory.columns.index["edge-b"]
    assert not second.inventory.columns.allocated[edge_b].any()
    assert second.driver.observe().sandboxes == frozenset()  # the driver never saw them
    second.store.close()
