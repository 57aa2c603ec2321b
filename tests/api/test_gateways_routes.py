"""/api/v1/gateways: TR-181 settings by role, live update as an UPDATE operation, migration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeroam.api import create_app
from edgeroam.arbiter import ArbiterConfig
from edgeroam.config import Role, TokenSpec
from edgeroam.gateways.simdriver import GatewaySimDriver
from edgeroam.gateways.template import vrgw_flavor, vrgw_function
from edgeroam.model import Customer, Host, HostKind, Resources, Site, SiteKind
from edgeroam.runtime import Runtime
from tests.api.support import OPERATOR, VIEWER, FakeClock, TestClient, bearer, built_runtime

ALICE_BRIDGE = "agent-bridge-alice-0123456789"
BOB_BRIDGE = "agent-bridge-bob-0123456789"
POOL = "Device.DHCPv4.Server.Pool.1."
KEY = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    tokens = (
        TokenSpec(name="view", token=VIEWER, role=Role.VIEWER),
        TokenSpec(name="ops", token=OPERATOR, role=Role.OPERATOR),
        TokenSpec(name="alice-bridge", token=ALICE_BRIDGE, role=Role.AGENT, host="br-alice"),
        TokenSpec(name="bob-bridge", token=BOB_BRIDGE, role=Role.AGENT, host="br-bob"),
    )
    with built_runtime(
        tmp_path,
        clock,
        tokens=tokens,
        policies={"gateways": {"enabled": True, "pool_size": 1}},
        arbiter=ArbiterConfig(cooldown_s=0.0),
    ) as rt:
        controller = rt.controller
        driver = GatewaySimDriver()
        controller.driver = driver
        controller.engine.driver = driver
        now = clock()
        controller.put("site", Site(id="dc1", kind=SiteKind.DATACENTER), now)
        controller.put("site", Site(id="home", kind=SiteKind.HOME), now)
        controller.put("flavor", vrgw_flavor(), now)
        controller.put("function", vrgw_function(), now)
        for node in ("n1", "n2"):
            controller.put(
                "host",
                Host(
                    id=node,
                    kind=HostKind.SERVER,
                    site="dc1",
                    capacity=Resources(vcpu=4, memory_mb=4096, bandwidth_mbps=700),
                    labels={"vrgw-node": "true"},
                ),
                now,
            )
        for who in ("alice", "bob"):
            labels = {"vrgw": "true", "access-node": "an1"}
            controller.put("customer", Customer(id=who, profile="high", labels=labels), now)
            controller.put(
                "host",
                Host(
                    id=f"br-{who}",
                    kind=HostKind.CPE,
                    site="home",
                    owner=who,
                    capacity=Resources(vcpu=0.1, memory_mb=16, bandwidth_mbps=100),
                ),
                now,
            )
        for _ in range(40):
            controller.tick(clock.advance(0.05))
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


def as_(token: str) -> dict[str, str]:
    return bearer(token)


def settle(runtime: Runtime, clock: FakeClock) -> None:
    for _ in range(10):
        runtime.controller.tick(clock.advance(0.05))


def test_list_and_read_settings(client: TestClient) -> None:
    listing = client.get("/api/v1/gateways", headers=as_(VIEWER)).json()
    assert [g["customer"] for g in listing] == ["alice", "bob"]
    assert all(g["instance"] and g["s_tag"] == 1 for g in listing)
    assert {g["c_tag"] for g in listing} == {1, 2}
    assert listing[0]["parts"] == ["dhcp", "dns", "nat", "firewall", "wifi"]
    got = client.get(
        "/api/v1/gateways/alice/settings",
        params={"name": [f"{POOL}MinAddress", "Device.WiFi."]},
        headers=as_(ALICE_BRIDGE),
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert body[f"{POOL}MinAddress"] == "192.168.1.100"
    assert body[KEY] == ""
    assert len(body) == 5
    missing = client.get(
        "/api/v1/gateways/alice/settings", params={"name": "Device.Nope"}, headers=as_(VIEWER)
    )
    assert missing.status_code == 404 and "no such parameter" in missing.text
    # Another customer's bridge may not read alice's gateway.
    assert client.get("/api/v1/gateways/alice/settings", headers=as_(BOB_BRIDGE)).status_code == 403
    params = client.get("/api/v1/gateways/parameters", headers=as_(VIEWER)).json()
    access = {p["name"]: p["access"] for p in params}
    assert access["Device.WiFi.SSID.1.SSID"] == "customer"
    assert access["Device.Ethernet.VLANTermination.2.VLANID"] == "operator"
    assert access["Device.NAT.PortMapping.{i}.InternalClient"] == "customer"


def test_customer_bridge_changes_settings_live(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    driver = runtime.controller.driver
    assert isinstance(driver, GatewaySimDriver)
    change: dict[str, Any] = {
        "Device.WiFi.SSID.1.SSID": "Casa",
        "Device.WiFi.SSID.1.Enable": True,
        KEY: "a secret phrase",
        "Device.NAT.PortMapping.1.ExternalPort": 8080,
        "Device.NAT.PortMapping.1.InternalPort": 80,
        "Device.NAT.PortMapping.1.InternalClient": "192.168.1.20",
    }
    got = client.patch("/api/v1/gateways/alice/settings", json=change, headers=as_(ALICE_BRIDGE))
    assert got.status_code == 202, got.text
    body = got.json()
    assert body["restarts"] == []
    assert body["reloads"] == ["nftables", "wifi"]
    assert "Device.NAT.PortMapping.1.ExternalPort" in body["changed"]
    assert body["operation"]["kind"] == "update"
    assert got.headers["Location"] == f"/api/v1/operations/{body['operation']['id']}"
    settle(runtime, clock)
    op = client.get(f"/api/v1/operations/{body['operation']['id']}", headers=as_(VIEWER)).json()
    assert op["state"] == "COMPLETED"
    after = client.get("/api/v1/gateways/alice/settings", headers=as_(VIEWER)).json()
    assert after["Device.WiFi.SSID.1.SSID"] == "Casa"
    assert after["Device.NAT.PortMappingNumberOfEntries"] == 1
    # The running vRGW got it without a restart (the driver saw a live update).
    ((name, plan),) = driver.updates
    assert plan.reload_nftables and plan.push_wifi and not plan.restart_dnsmasq
    assert driver.serving_copy(name) is not None
    # The same change again is a no-op: 200, no operation.
    again = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.WiFi.SSID.1.SSID": "Casa"},
        headers=as_(ALICE_BRIDGE),
    )
    assert again.status_code == 200 and again.json()["operation"] is None


def test_pool_change_restarts_dhcp_only(client: TestClient) -> None:
    got = client.patch(
        "/api/v1/gateways/bob/settings",
        json={f"{POOL}MinAddress": "192.168.1.20", f"{POOL}MaxAddress": "192.168.1.60"},
        headers=as_(BOB_BRIDGE),
    )
    assert got.status_code == 202, got.text
    assert got.json()["restarts"] == ["dnsmasq"] and got.json()["reloads"] == []


def test_refusals(client: TestClient) -> None:
    bad = client.patch(
        "/api/v1/gateways/alice/settings",
        json={f"{POOL}MinAddress": "10.0.0.5", KEY: "short", "Device.WiFi.SSID.1.Enable": True},
        headers=as_(ALICE_BRIDGE),
    )
    assert bad.status_code == 422
    locs = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert ("body", f"{POOL}MinAddress") in locs and ("body", KEY) in locs
    operator_only = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.Ethernet.VLANTermination.1.VLANID": 99},
        headers=as_(ALICE_BRIDGE),
    )
    assert operator_only.status_code == 403
    assert operator_only.json()["detail"][0]["loc"] == [
        "body",
        "Device.Ethernet.VLANTermination.1.VLANID",
    ]
    viewer = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.WiFi.SSID.1.SSID": "x"},
        headers=as_(VIEWER),
    )
    assert viewer.status_code == 403 and "needs role operator" in viewer.text
    other = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.WiFi.SSID.1.SSID": "x"},
        headers=as_(BOB_BRIDGE),
    )
    assert other.status_code == 403
    # The operator may set tags, but not to another customer's pair.
    clash = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.Ethernet.VLANTermination.1.VLANID": 2},
        headers=as_(OPERATOR),
    )
    assert clash.status_code == 422 and "already held by 'bob'" in clash.text
    moved = client.patch(
        "/api/v1/gateways/alice/settings",
        json={"Device.Ethernet.VLANTermination.1.VLANID": 77},
        headers=as_(OPERATOR),
    )
    assert moved.status_code == 202, moved.text
    assert client.get("/api/v1/gateways/nobody/settings", headers=as_(VIEWER)).status_code == 404


def test_migrate_and_leases(client: TestClient, runtime: Runtime, clock: FakeClock) -> None:
    driver = runtime.controller.driver
    assert isinstance(driver, GatewaySimDriver)
    gw = client.get("/api/v1/gateways/alice", headers=as_(VIEWER)).json()
    ip = driver.dhcp(gw["instance"], "02:aa:00:00:00:01", clock())
    leases = client.get("/api/v1/gateways/alice/leases", headers=as_(ALICE_BRIDGE)).json()
    assert [(x["mac"], x["ip"]) for x in leases] == [("02:aa:00:00:00:01", str(ip))]
    target = "n2" if gw["host"] == "n1" else "n1"
    refused = client.post(
        "/api/v1/gateways/alice/migrate", json={"host": target}, headers=as_(ALICE_BRIDGE)
    )
    assert refused.status_code == 403
    not_node = client.post(
        "/api/v1/gateways/alice/migrate", json={"host": "br-bob"}, headers=as_(OPERATOR)
    )
    assert not_node.status_code == 422
    got = client.post(
        "/api/v1/gateways/alice/migrate",
        json={"host": target, "mode": "image"},
        headers=as_(OPERATOR),
    )
    assert got.status_code == 202, got.text
    assert got.json()["plan"][0]["action"] == "stop_function"
    settle(runtime, clock)
    moved = client.get("/api/v1/gateways/alice", headers=as_(VIEWER)).json()
    assert moved["host"] == target
    after = client.get("/api/v1/gateways/alice/leases", headers=as_(VIEWER)).json()
    assert after == leases
    cuts = client.get("/api/v1/gateways/alice/interruptions", headers=as_(VIEWER)).json()
    assert len(cuts) == 1 and cuts[0]["seconds"] > 0
    assert cuts[0]["seconds"] == pytest.approx(cuts[0]["end"] - cuts[0]["start"])


def test_pools_view(client: TestClient) -> None:
    got = client.get("/api/v1/gateways/pools", headers=as_(VIEWER)).json()
    assert [p["node"] for p in got] == ["n1", "n2"]
    assert all(p["target"] == 1 and len(p["ready"]) + p["building"] == 1 for p in got)
