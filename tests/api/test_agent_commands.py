"""The action queue agents long-poll, and the per-CPE band sources a server's agent may report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeroam.api import create_app
from edgeroam.config import DriverSettings
from edgeroam.model import OperationKind, OperationRequest, OperationState, Reason
from edgeroam.runtime import Runtime
from tests.api.support import (
    AGENT,
    OPERATOR,
    VIEWER,
    FakeClock,
    TestClient,
    bearer,
    built_runtime,
    load_world,
)


@pytest.fixture
def netns_runtime(tmp_path: Path) -> Iterator[Runtime]:
    with built_runtime(tmp_path, FakeClock(), driver=DriverSettings(kind="netns")) as rt:
        yield rt


@pytest.fixture
def agent_client(netns_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(netns_runtime)) as c:
        load_world(c)
        c.headers.update(bearer(AGENT))  # the agent token of host h1
        yield c


def instantiate(runtime: Runtime) -> str:
    request = OperationRequest(
        kind=OperationKind.INSTANTIATE,
        subject="fw@h1",
        function="fw",
        hosts=("h1",),
        params={"mode": "strict"},
        reason=Reason(rule="test", message="test"),
    )
    return runtime.controller.request(request, runtime.now()).id


def test_an_operation_runs_through_the_agent_queue(
    agent_client: TestClient, netns_runtime: Runtime
) -> None:
    op_id = instantiate(netns_runtime)
    actions = agent_client.get("/api/v1/agents/h1/actions").json()["actions"]
    assert [(a["key"], a["action"]) for a in actions] == [(f"{op_id}/do/0/0", "create_sandbox")]
    assert actions[0]["args"]["host"] == "h1"
    body = {
        "results": [{"key": actions[0]["key"], "outcome": "done", "message": "ok"}],
        "state": {"sandboxes": [actions[0]["args"]["instance"]], "running": []},
    }
    answer = agent_client.post("/api/v1/agents/h1/actions/results", json=body)
    assert answer.status_code == 200 and answer.json() == {"accepted": 1}
    netns_runtime.controller.tick(netns_runtime.now())
    [start] = agent_client.get("/api/v1/agents/h1/actions").json()["actions"]
    assert start["action"] == "start_function"
    assert start["args"]["params"] == {"mode": "strict"}
    body = {"results": [{"key": start["key"], "outcome": "done"}]}
    agent_client.post("/api/v1/agents/h1/actions/results", json=body)
    netns_runtime.controller.tick(netns_runtime.now())
    op = netns_runtime.controller.operation(op_id)
    assert op is not None and op.state is OperationState.COMPLETED


def test_agents_reach_only_their_own_host(agent_client: TestClient) -> None:
    response = agent_client.get("/api/v1/agents/h2/actions")
    assert response.status_code == 403
    assert "host 'h1' may not act for host 'h2'" in response.json()["detail"]
    assert agent_client.get("/api/v1/agents/h1/actions", headers=bearer(VIEWER)).status_code == 403
    ops = agent_client.get("/api/v1/agents/h2/actions", headers=bearer(OPERATOR))
    assert ops.status_code == 200 and ops.json() == {"actions": []}
    missing = agent_client.get("/api/v1/agents/nohost/actions", headers=bearer(OPERATOR))
    assert missing.status_code == 404


def test_long_poll_waits_then_answers_empty(agent_client: TestClient) -> None:
    started = time.monotonic()
    response = agent_client.get("/api/v1/agents/h1/actions", params={"wait": 0.3})
    assert response.json() == {"actions": []}
    assert time.monotonic() - started >= 0.3
    assert agent_client.get("/api/v1/agents/h1/actions", params={"wait": 99}).status_code == 422


def test_malformed_results_are_refused(agent_client: TestClient) -> None:
    bad = {"results": [{"key": "k", "outcome": "maybe"}]}
    response = agent_client.post("/api/v1/agents/h1/actions/results", json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "outcome"


def test_a_sim_controller_has_no_agent_queue(tmp_path: Path) -> None:
    with built_runtime(tmp_path) as runtime, TestClient(create_app(runtime)) as c:
        load_world(c)
        response = c.get("/api/v1/agents/h1/actions", headers=bearer(AGENT))
        assert response.status_code == 409
        assert "driver (sim) does not hand actions to agents" in response.json()["detail"]


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("host:h1/cpe-1", 200),  # the server's band from one CPE
        ("host:h2/cpe-1", 403),  # another host's breakdown
        ("host:h1/ghost", 403),  # not a host
        ("host:h1cpe-1", 403),
    ],
)
def test_a_server_agent_reports_its_band_per_cpe(
    agent_client: TestClient, source: str, status: int
) -> None:
    reading = {"source": source, "metric": "band.cpe.fw.used_mbps", "value": 1, "timestamp": 1}
    response = agent_client.post("/api/v1/telemetry", json={"readings": [reading]})
    assert response.status_code == status, response.text
