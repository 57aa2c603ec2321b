"""Instance changes become operations; operators answer FAILED_TEMP ones."""

from __future__ import annotations

from typing import Any

import pytest

from edgeroam.runtime import Runtime
from tests.api.support import VIEWER, FakeClock, TestClient, bearer


def _create(world: TestClient, **body: Any) -> dict[str, Any]:
    response = world.post("/api/v1/instances", json={"function": "fw", "host": "h1", **body})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/api/v1/operations/{response.json()['id']}"
    op: dict[str, Any] = response.json()
    return op


def _failed_temp(world: TestClient, runtime: Runtime, clock: FakeClock) -> dict[str, Any]:
    """An instantiation whose start fails on every allowed attempt (max_attempts is 2)."""
    runtime.controller.driver.fail_next("start_function", 2)  # type: ignore[attr-defined]
    op = _create(world)
    assert op["state"] == "PROCESSING" and op["attempt"] == 1
    for _ in range(5):
        clock.advance(1.0)
        runtime.controller.tick(clock.now)
        op = dict(world.get(f"/api/v1/operations/{op['id']}").json())
        if op["state"] == "FAILED_TEMP":
            return op
    raise AssertionError(f"operation never reached FAILED_TEMP: {op}")


def test_instantiate_returns_the_operation_and_creates_the_instance(
    world: TestClient, runtime: Runtime
) -> None:
    op = _create(world, owner="c1", params={"mode": "strict"}, reason="customer asked")
    assert op["kind"] == "instantiate"
    assert op["subject"] == "fw"
    assert op["hosts"] == ["h1"]
    assert op["reason"] == {
        "rule": "api",
        "message": "customer asked",
        "measured": {},
        "thresholds": {},
        "details": {},
    }
    assert op["state"] == "COMPLETED"  # the sim driver has no latency here
    [name] = op["created_instances"]
    inst = world.get(f"/api/v1/instances/{name}").json()
    assert inst["host"] == "h1"
    assert inst["owner"] == "c1"
    assert inst["stage"] == "monitoring"
    assert inst["params"] == {"mode": "strict", "port": 8443}
    assert world.get(f"/api/v1/operations/{op['id']}").json()["state"] == "COMPLETED"


def test_instance_role_and_group_reach_the_instance(world: TestClient) -> None:
    op = _create(world, role="standby", group="fw-c1")
    assert op["subject"] == "fw-c1"
    inst = world.get(f"/api/v1/instances/{op['created_instances'][0]}").json()
    assert inst["role"] == "standby"
    assert inst["group"] == "fw-c1"
    assert inst["params"] == {"mode": "open", "port": 8443}  # no underscore leftovers


def test_instance_list_filters(world: TestClient) -> None:
    _create(world, owner="c1")
    _create(world, host="h2", group="g2")
    everything = world.get("/api/v1/instances")
    assert everything.headers["X-Total-Count"] == "2"
    assert [i["host"] for i in world.get("/api/v1/instances", params={"host": "h2"}).json()] == [
        "h2"
    ]
    assert len(world.get("/api/v1/instances", params={"owner": "c1"}).json()) == 1
    assert len(world.get("/api/v1/instances", params={"function": "fw"}).json()) == 2
    assert len(world.get("/api/v1/instances", params={"stage": "monitoring"}).json()) == 2
    assert world.get("/api/v1/instances", params={"stage": "heal"}).json() == []
    assert len(world.get("/api/v1/instances", params={"limit": 1}).json()) == 1


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"function": "nope", "host": "h1"}, "function", "unknown function 'nope'"),
        ({"function": "fw", "host": "nowhere"}, "host", "unknown host 'nowhere'"),
        ({"function": "fw", "host": "h1", "owner": "zed"}, "owner", "unknown customer 'zed'"),
        ({"function": "fw", "host": "h1", "params": {"mode": "loud"}}, "params", "'loud'"),
        ({"function": "fw", "host": "h1", "params": {"colour": 1}}, "params", "no parameter"),
    ],
)
def test_bad_instantiation_is_422(
    world: TestClient, body: dict[str, Any], field: str, text: str
) -> None:
    response = world.post("/api/v1/instances", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert text in error["msg"]
    assert world.get("/api/v1/operations").json() == []


def test_instantiation_on_a_host_that_is_not_ready_is_409(world: TestClient) -> None:
    host = world.get("/api/v1/hosts/h2").json()
    world.put("/api/v1/hosts/h2", json={**host, "state": "cordoned"})
    response = world.post("/api/v1/instances", json={"function": "fw", "host": "h2"})
    assert response.status_code == 409
    assert "cordoned" in response.json()["detail"]


def test_migrate_heal_update_and_terminate(world: TestClient) -> None:
    name = _create(world)["created_instances"][0]

    moved = world.post(f"/api/v1/instances/{name}/migrate", json={"host": "h2"})
    assert moved.status_code == 202
    assert moved.json()["kind"] == "migrate"
    assert moved.json()["sources"] == ["h1"]
    assert moved.json()["state"] == "COMPLETED"
    assert world.get(f"/api/v1/instances/{name}").json()["host"] == "h2"
    same = world.post(f"/api/v1/instances/{name}/migrate", json={"host": "h2"})
    assert same.status_code == 422

    healed = world.post(f"/api/v1/instances/{name}/heal")
    assert healed.status_code == 202
    assert healed.json()["kind"] == "heal"
    assert healed.json()["hosts"] == ["h2"]
    healed_elsewhere = world.post(f"/api/v1/instances/{name}/heal", json={"host": "h1"})
    assert healed_elsewhere.json()["state"] == "COMPLETED"
    assert world.get(f"/api/v1/instances/{name}").json()["host"] == "h1"

    updated = world.patch(f"/api/v1/instances/{name}/params", json={"params": {"port": 9000}})
    assert updated.status_code == 202
    assert updated.json()["kind"] == "update"
    assert world.get(f"/api/v1/instances/{name}").json()["params"]["port"] == 9000
    bad = world.patch(f"/api/v1/instances/{name}/params", json={"params": {"port": 0}})
    assert bad.status_code == 422

    gone = world.delete(f"/api/v1/instances/{name}")
    assert gone.status_code == 202
    assert gone.json()["kind"] == "terminate"
    assert gone.json()["state"] == "COMPLETED"
    assert world.get(f"/api/v1/instances/{name}").status_code == 404
    assert world.delete(f"/api/v1/instances/{name}").status_code == 404
    assert world.post(f"/api/v1/instances/{name}/heal").status_code == 404


def test_failed_temp_operation_retried_completes(
    world: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    op = _failed_temp(world, runtime, clock)
    assert "simulated failure of start_function" in op["error"]
    listed = world.get("/api/v1/operations", params={"state": "FAILED_TEMP"}).json()
    assert [o["id"] for o in listed] == [op["id"]]

    # While it waits, its subject is busy: another instantiation of fw is refused, and so is
    # rewriting the record of the instance it creates.
    busy = world.post("/api/v1/instances", json={"function": "fw", "host": "h2"})
    assert busy.status_code == 409
    assert "busy" in busy.json()["detail"]
    [name] = op["created_instances"]
    record = world.get(f"/api/v1/instances/{name}").json()
    rewrite = world.put(f"/api/v1/instances/{name}", json={**record, "host": "h2"})
    assert rewrite.status_code == 409

    retried = world.post(f"/api/v1/operations/{op['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["state"] == "COMPLETED"
    assert world.get(f"/api/v1/instances/{name}").json()["stage"] == "monitoring"

    again = world.post(f"/api/v1/operations/{op['id']}/retry")
    assert again.status_code == 409
    assert again.json()["detail"] == (f"operation {op['id']} is COMPLETED; retry needs FAILED_TEMP")


def test_failed_temp_operation_rolled_back(
    world: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    op = _failed_temp(world, runtime, clock)
    rolled = world.post(f"/api/v1/operations/{op['id']}/rollback")
    assert rolled.status_code == 202
    assert rolled.json()["state"] == "ROLLED_BACK"
    assert world.get(f"/api/v1/instances/{op['created_instances'][0]}").status_code == 404
    assert world.post(f"/api/v1/operations/{op['id']}/fail").status_code == 409


def test_failed_temp_operation_failed_by_operator(
    world: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    op = _failed_temp(world, runtime, clock)
    failed = world.post(f"/api/v1/operations/{op['id']}/fail")
    assert failed.status_code == 202
    assert failed.json()["state"] == "FAILED"
    inst = world.get(f"/api/v1/instances/{op['created_instances'][0]}").json()
    assert inst["stage"] == "fail"


def test_operation_actions_need_an_operator_and_a_known_operation(world: TestClient) -> None:
    assert world.post("/api/v1/operations/op-999999/retry").status_code == 404
    assert world.get("/api/v1/operations/op-999999").status_code == 404
    op = _create(world)
    response = world.post(f"/api/v1/operations/{op['id']}/rollback", headers=bearer(VIEWER))
    assert response.status_code == 403


def test_operation_list_filters(world: TestClient, clock: FakeClock) -> None:
    first = _create(world)
    name = first["created_instances"][0]
    clock.advance(100)
    world.post(f"/api/v1/instances/{name}/migrate", json={"host": "h2"})
    ops = world.get("/api/v1/operations").json()
    assert [o["kind"] for o in ops] == ["instantiate", "migrate"]
    assert [o["kind"] for o in world.get("/api/v1/operations?kind=migrate").json()] == ["migrate"]
    assert [o["subject"] for o in world.get(f"/api/v1/operations?subject={name}").json()] == [name]
    assert len(world.get("/api/v1/operations", params={"since": clock.now - 1}).json()) == 1
    states = world.get("/api/v1/operations", params=[("state", "COMPLETED"), ("state", "FAILED")])
    assert len(states.json()) == 2
    assert len(world.get("/api/v1/operations", params={"limit": 1, "offset": 1}).json()) == 1
    assert world.get("/api/v1/operations?state=BROKEN").status_code == 422
