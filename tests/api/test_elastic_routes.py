"""The managed-groups and rules router (`api/routes_elastic.py`), mounted on its own app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from edgeroam.api import routes_elastic
from edgeroam.model import Flavor, FunctionSpec, Site, SiteKind
from edgeroam.runtime import Runtime
from tests.api.support import (
    OPERATOR,
    VIEWER,
    FakeClock,
    TestClient,
    bearer,
    built_runtime,
)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with built_runtime(tmp_path, FakeClock()) as rt:
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(routes_elastic.router, prefix="/api/v1")
    with TestClient(app) as c:
        yield c


def test_groups_are_inventory_with_a_live_status(client: TestClient, runtime: Runtime) -> None:
    controller = runtime.controller
    controller.put("site", Site(id="s1", kind=SiteKind.EDGE), 0.0)
    controller.put("flavor", Flavor(id="small", vcpu=1, memory_mb=512), 0.0)
    controller.put("function", FunctionSpec(name="fw", flavor="small"), 0.0)
    group = {"id": "fw", "function": "fw", "site": "s1", "min_size": 1, "max_size": 4}
    assert client.put("/api/v1/groups/fw", json=group, headers=bearer(VIEWER)).status_code == 403
    created = client.put("/api/v1/groups/fw", json=group, headers=bearer(OPERATOR))
    assert created.status_code == 201 and created.json()["max_size"] == 4
    bad = client.put(
        "/api/v1/groups/x", json={"id": "x", "function": "nope"}, headers=bearer(OPERATOR)
    )
    assert bad.status_code == 422 and "unknown function 'nope'" in bad.text
    listed = client.get("/api/v1/groups", headers=bearer(VIEWER)).json()
    assert [g["id"] for g in listed] == ["fw"]
    status = client.get("/api/v1/groups/fw/status", headers=bearer(VIEWER)).json()
    assert status["active"] == 0 and status["members"] == [] and status["load"] is None
    assert client.get("/api/v1/groups/nope/status", headers=bearer(VIEWER)).status_code == 404


def test_rules_reload_validates_before_it_replaces(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - name: down\n    when: {host: h1, state: down}\n"
        "    actions: [{do: notify, message: h1 down}]\n"
    )
    url = "/api/v1/rules/reload"
    assert client.post(url, json={"file": str(path)}, headers=bearer(VIEWER)).status_code == 403
    loaded = client.post(url, json={"file": str(path)}, headers=bearer(OPERATOR))
    assert loaded.status_code == 200
    assert loaded.json() == {"file": str(path), "rules": ["down"]}
    path.write_text("rules:\n  - name: down\n    when: {host: h1}\n    actions: []\n")
    refused = client.post(url, headers=bearer(OPERATOR))
    assert refused.status_code == 422 and "rules[0].when" in refused.text
    current = client.get("/api/v1/rules", headers=bearer(VIEWER)).json()
    assert [r["name"] for r in current["rules"]] == ["down"] and current["runs"] == []
