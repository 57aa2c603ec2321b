"""Policy and arbiter configuration through the API."""

from __future__ import annotations

from edgeroam.runtime import Runtime
from tests.api.support import VIEWER, TestClient, bearer


def test_list_and_get(ops: TestClient) -> None:
    policies = ops.get("/api/v1/policies").json()
    heal = next(p for p in policies if p["name"] == "heal")
    assert heal["enabled"] is True
    assert heal["dry_run"] is False
    assert heal["precedence"] == heal["config"]["precedence"]
    assert "max_per_cycle" in heal["config"]
    assert ops.get("/api/v1/policies/heal").json() == heal
    missing = ops.get("/api/v1/policies/nope")
    assert missing.status_code == 404
    assert "known:" in missing.json()["detail"]


def test_enable_disable_and_dry_run(ops: TestClient, runtime: Runtime) -> None:
    registry = runtime.controller.registry
    assert ops.post("/api/v1/policies/heal/disable").json()["enabled"] is False
    assert registry.config("heal").enabled is False
    assert "heal" not in [p.name for p, _ in registry.enabled()]
    assert ops.post("/api/v1/policies/heal/enable").json()["enabled"] is True
    assert ops.post("/api/v1/policies/heal/dry-run", json={"dry_run": True}).json()["dry_run"]
    assert registry.config("heal").dry_run is True
    assert ops.post("/api/v1/policies/heal/dry-run", json={}).status_code == 422
    assert ops.post("/api/v1/policies/nope/enable").status_code == 404


def test_config_is_merged_and_validated(ops: TestClient, runtime: Runtime) -> None:
    before = ops.get("/api/v1/policies/heal").json()["config"]
    changed = ops.put("/api/v1/policies/heal/config", json={"max_per_cycle": 7})
    assert changed.status_code == 200
    assert changed.json()["config"] == {**before, "max_per_cycle": 7}
    assert runtime.controller.registry.config("heal").model_dump()["max_per_cycle"] == 7

    bad = ops.put("/api/v1/policies/heal/config", json={"max_per_cycle": 0, "colour": "red"})
    assert bad.status_code == 422
    locs = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert locs == {("body", "max_per_cycle"), ("body", "colour")}
    assert runtime.controller.registry.config("heal").model_dump()["max_per_cycle"] == 7
    assert ops.put("/api/v1/policies/heal/config", json=[1]).status_code == 422


def test_viewer_reads_policies_but_cannot_change_them(ops: TestClient) -> None:
    assert ops.get("/api/v1/policies", headers=bearer(VIEWER)).status_code == 200
    response = ops.put(
        "/api/v1/policies/heal/config", json={"enabled": False}, headers=bearer(VIEWER)
    )
    assert response.status_code == 403


def test_arbiter_settings(ops: TestClient, runtime: Runtime) -> None:
    current = ops.get("/api/v1/arbiter").json()
    assert current["dry_run"] is False
    updated = ops.put("/api/v1/arbiter", json={"dry_run": True, "site_rate_limit": 3})
    assert updated.status_code == 200
    assert updated.json() == {**current, "dry_run": True, "site_rate_limit": 3}
    assert runtime.controller.arbiter.dry_run is True
    assert runtime.controller.arbiter.site_rate_limit == 3

    bad = ops.put("/api/v1/arbiter", json={"max_concurrent": 0})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "max_concurrent"]
    assert ops.put("/api/v1/arbiter", json={"bogus": 1}).status_code == 422
    assert runtime.controller.arbiter.site_rate_limit == 3
