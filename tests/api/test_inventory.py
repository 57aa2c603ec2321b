"""Create-or-replace, read, list and delete of the six plain inventory kinds."""

from __future__ import annotations

from typing import Any

import pytest

from edgeroam.runtime import Runtime
from tests.api.support import WORLD, TestClient

FRESH: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (collection, new object, a change to apply in a second PUT)
    ("sites", {"id": "s9", "kind": "branch"}, {"region": "south"}),
    ("customers", {"id": "c9", "name": "Nine"}, {"name": "Nine Ltd"}),
    ("flavors", {"id": "f9", "vcpu": 2, "memory_mb": 256}, {"vcpu": 3}),
    ("functions", {"name": "dns", "flavor": "small"}, {"description": "resolver"}),
    (
        "hosts",
        {
            "id": "h9",
            "kind": "cloud",
            "site": "s1",
            "capacity": {"vcpu": 1, "memory_mb": 1, "bandwidth_mbps": 1},
        },
        {"state": "cordoned"},
    ),
    ("links", {"id": "l9", "a": "h1", "b": "h2", "capacity_mbps": 10}, {"delay_ms": 2.5}),
]


def _key(plural: str, body: dict[str, Any]) -> str:
    return str(body["name"] if plural == "functions" else body["id"])


@pytest.mark.parametrize(("plural", "body", "change"), FRESH, ids=[f[0] for f in FRESH])
def test_round_trip(
    world: TestClient, plural: str, body: dict[str, Any], change: dict[str, Any]
) -> None:
    key = _key(plural, body)
    url = f"/api/v1/{plural}/{key}"
    created = world.put(url, json=body)
    assert created.status_code == 201, created.text
    assert world.get(url).json() == created.json()
    assert key in [_key(plural, o) for o in world.get(f"/api/v1/{plural}").json()]

    replaced = world.put(url, json={**body, **change})
    assert replaced.status_code == 200
    for field, value in change.items():
        assert replaced.json()[field] == value
    assert world.get(url).json() == replaced.json()

    assert world.delete(url).status_code == 204
    assert world.get(url).status_code == 404
    assert world.delete(url).status_code == 404


def test_post_takes_the_key_from_the_body(world: TestClient, runtime: Runtime) -> None:
    response = world.post("/api/v1/sites", json={"id": "s7", "kind": "datacenter"})
    assert response.status_code == 201
    assert world.post("/api/v1/sites", json={"id": "s7", "kind": "cloud"}).status_code == 200
    assert runtime.controller.inventory.sites["s7"].kind.value == "cloud"
    # Written through to the store, not just the in-memory inventory.
    store = runtime.controller.store
    assert store is not None
    assert "s7" in [getattr(s, "id", None) for s in store.load("site")]


def test_writes_emit_inventory_events_right_away(world: TestClient) -> None:
    events = world.get("/api/v1/events", params={"category": "inventory", "tag": "h1"}).json()
    assert any(e["message"] == "host h1 stored" for e in events)


def test_host_list_filters_and_pages(world: TestClient) -> None:
    hosts = world.get("/api/v1/hosts")
    assert hosts.headers["X-Total-Count"] == "3"
    assert [h["id"] for h in hosts.json()] == ["cpe-1", "h1", "h2"]
    assert [h["id"] for h in world.get("/api/v1/hosts", params={"kind": "cpe"}).json()] == ["cpe-1"]
    by_site = world.get("/api/v1/hosts", params={"site": "s1"}).json()
    assert [h["id"] for h in by_site] == ["h1", "h2"]
    page = world.get("/api/v1/hosts", params={"site": "s1", "limit": 1, "offset": 1})
    assert [h["id"] for h in page.json()] == ["h2"]
    assert page.headers["X-Total-Count"] == "2"
    assert world.get("/api/v1/hosts", params={"state": "down"}).json() == []
    bad = world.get("/api/v1/hosts", params={"state": "sleepy"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "state"]


def test_bad_capacity_is_422_naming_the_field(world: TestClient) -> None:
    body = {
        "id": "h5",
        "kind": "server",
        "site": "s1",
        "capacity": {"vcpu": -1, "memory_mb": 1024},
    }
    response = world.put("/api/v1/hosts/h5", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "capacity", "vcpu"]
    assert "greater than or equal to 0" in error["msg"]


def test_unknown_field_is_422(world: TestClient) -> None:
    response = world.put("/api/v1/sites/s5", json={"id": "s5", "kind": "edge", "colour": "red"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "colour"]


def test_unknown_site_reference_is_422_with_the_message(world: TestClient) -> None:
    body = {
        "id": "h5",
        "kind": "server",
        "site": "atlantis",
        "capacity": {"vcpu": 1, "memory_mb": 1},
    }
    response = world.put("/api/v1/hosts/h5", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == "host 'h5': unknown site 'atlantis'"
    assert world.get("/api/v1/hosts/h5").status_code == 404


def test_model_rule_violation_is_422(world: TestClient) -> None:
    body = {"id": "cpe-2", "kind": "cpe", "site": "home-1", "capacity": {"vcpu": 1}}
    response = world.put("/api/v1/hosts/cpe-2", json=body)
    assert response.status_code == 422
    assert "a CPE needs an owner customer" in str(response.json()["detail"])


def test_key_in_path_and_body_must_agree(world: TestClient) -> None:
    response = world.put("/api/v1/sites/s5", json={"id": "s6", "kind": "edge"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "id"]
    fn = world.put("/api/v1/functions/other", json={"name": "fw", "flavor": "small"})
    assert fn.json()["detail"][0]["loc"] == ["body", "name"]


def test_deleting_what_is_still_used_is_409(world: TestClient) -> None:
    response = world.delete("/api/v1/sites/s1")
    assert response.status_code == 409
    assert "still used by" in response.json()["detail"]
    assert world.get("/api/v1/sites/s1").status_code == 200


def test_world_objects_read_back_as_written(world: TestClient) -> None:
    for plural, body in WORLD:
        got = world.get(f"/api/v1/{plural}/{_key(plural, body)}").json()
        for field, value in body.items():
            if isinstance(value, dict) and field != "parameters":
                for sub, v in value.items():
                    assert got[field][sub] == v
            elif field != "parameters":
                assert got[field] == value, (plural, field)


def test_instance_record_can_be_put_directly(world: TestClient) -> None:
    body = {"id": "fw.adopted", "function": "fw", "host": "h2", "stage": "monitoring"}
    response = world.put("/api/v1/instances/fw.adopted", json=body)
    assert response.status_code == 201
    assert response.json()["params"] == {"mode": "open", "port": 8443}  # defaults filled in
    bad = world.put("/api/v1/instances/x", json={**body, "id": "x", "host": "nowhere"})
    assert bad.status_code == 422
    assert "unknown host 'nowhere'" in bad.json()["detail"]
