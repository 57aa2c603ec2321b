"""An agent against the real API: actions through the queue, telemetry, silence made visible."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeroam.agent.agent import Agent
from edgeroam.agent.config import parse_agent_config
from edgeroam.api import create_app
from edgeroam.config import DriverSettings
from edgeroam.model import OperationKind, OperationRequest, OperationState, Reason
from edgeroam.runtime import Runtime
from edgeroam.testbed.cgroups import Sandbox
from tests.api.support import AGENT, TestClient, bearer, built_runtime, load_world

pytestmark = pytest.mark.root


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with built_runtime(
        tmp_path, time.time, driver=DriverSettings(kind="netns"), stale_after_s=1.0
    ) as rt:
        yield rt


@pytest.fixture
def agent(runtime: Runtime, tmp_path: Path, prefix: str) -> Iterator[Agent]:
    with TestClient(create_app(runtime)) as client:
        load_world(client)
        client.headers.update(bearer(AGENT))
        config = parse_agent_config(
            {
                "host": "h1",
                "kind": "server",
                "controller": "http://testserver",
                "token": AGENT,
                "state_dir": str(tmp_path / "agent"),
                "prefix": prefix,
                "links": {"l1": {"link": "l1", "a_side": True, "capacity_mbps": 1000}},
                "functions": {"fw": {"implementation": "noop", "vcpu": 1, "memory_mb": 32}},
            }
        )
        yield Agent(config, client=client, links=lambda: {"l1": (1000, 2000)})


def request(runtime: Runtime, kind: OperationKind, **fields: object) -> str:
    op = runtime.controller.request(
        OperationRequest(kind=kind, reason=Reason(rule="t", message="t"), **fields),
        runtime.now(),
    )
    return op.id


def state_of(runtime: Runtime, op_id: str) -> OperationState:
    op = runtime.controller.operation(op_id)
    assert op is not None
    return op.state


def test_actions_flow_through_the_agent_and_back(runtime: Runtime, agent: Agent) -> None:
    op_id = request(
        runtime, OperationKind.INSTANTIATE, subject="fw@h1", function="fw", hosts=("h1",)
    )
    for _ in range(4):
        agent.actions_once(wait=0)
        runtime.controller.tick(runtime.now())
    assert state_of(runtime, op_id) is OperationState.COMPLETED
    [instance] = [i for i in runtime.controller.inventory.instances if i.startswith("fw.")]
    assert runtime.controller.driver.observe().running == {(instance, "h1")}
    sandbox = Sandbox(agent.config.prefix, "h1", instance)
    assert sandbox.exists()
    op_id = request(runtime, OperationKind.TERMINATE, subject=instance, instances=(instance,))
    for _ in range(4):
        agent.actions_once(wait=0)
        runtime.controller.tick(runtime.now())
    assert state_of(runtime, op_id) is OperationState.COMPLETED
    assert not sandbox.exists()
    assert runtime.controller.driver.observe().sandboxes == frozenset()


def test_a_silent_agent_is_unknown_not_idle(runtime: Runtime, agent: Agent) -> None:
    runtime.start()
    assert agent.report_once()
    telemetry = runtime.controller.snapshot(runtime.now()).telemetry
    assert telemetry.value("host:h1", "heartbeat") == 1.0
    assert telemetry.value("link:l1", "ab_bytes") == 2000  # a side: a->b is what it sends
    assert runtime.silent_hosts() == []
    time.sleep(1.3)  # > stale_after_s without a report
    snapshot = runtime.controller.snapshot(runtime.now())
    assert snapshot.telemetry.value("host:h1", "heartbeat") is None  # unknown, not zero
    assert snapshot.telemetry.value("link:l1", "ab_bytes") is None
    assert runtime.silent_hosts() == ["h1"]
    health = runtime.health()
    assert health.code == 2010 and "1 agent(s) not reporting" in health.message
    assert agent.report_once()
    assert runtime.silent_hosts() == []
