"""The `band` world model: what servers and CPEs report, timeline fields, scenario checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from edgeroam.model import FunctionSpec, Host, HostKind, Instance, LifecycleStage, Link, Resources
from edgeroam.policies.offload import (
    BAND_USED,
    copy_local_metric,
    copy_processed_metric,
    function_band_metric,
    pair_band_metric,
    pair_source,
)
from edgeroam.sim.band import measure_band
from edgeroam.sim.profiles import ConstantProfile
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import Flow, ScenarioError, parse_scenario
from edgeroam.sim.traffic import compute_traffic

CAP = Resources(vcpu=4, memory_mb=4096, bandwidth_mbps=1000)
HOSTS = {
    h.id: h
    for h in [
        Host(id="cpe-1", kind=HostKind.CPE, site="home", owner="c1", capacity=CAP),
        Host(id="cpe-2", kind=HostKind.CPE, site="home", owner="c2", capacity=CAP),
        Host(id="srv-1", kind=HostKind.SERVER, site="dc", capacity=CAP),
        Host(
            id="srv-2",
            kind=HostKind.SERVER,
            site="dc",
            capacity=CAP.model_copy(update={"bandwidth_mbps": 500}),
        ),
        Host(id="cloud-1", kind=HostKind.CLOUD, site="dc", capacity=CAP),
    ]
}
LINKS = [Link(id=f"l-{h}", a=h, b="dc", capacity_mbps=10_000) for h in HOSTS]


def inst(inst_id: str, function: str, host: str, owner: str | None = None) -> Instance:
    return Instance(
        id=inst_id, function=function, owner=owner, host=host, stage=LifecycleStage.MONITORING
    )


def flow(
    flow_id: str, customer: str, function: str, mbps: float, destination: str | None = None
) -> Flow:
    return Flow(
        id=flow_id,
        customer=customer,
        function=function,
        rate_mbps=ConstantProfile(mbps=mbps),
        destination=destination,
    )


FUNCTIONS = {
    "nat": FunctionSpec(name="nat", flavor="s"),
    "proxy": FunctionSpec.model_validate(
        {
            "name": "proxy",
            "flavor": "s",
            "traffic": {
                "rules": [{"match": {"destination": "203.0.113.8"}, "action": "answer"}],
                "otherwise": "forward",
            },
        }
    ),
    "dns": FunctionSpec(name="dns", flavor="s"),
}


def test_servers_count_what_they_serve_and_what_cpe_copies_forward_to_them() -> None:
    instances = {
        i.id: i
        for i in [
            inst("nat-1", "nat", "srv-1"),
            inst("proxy-1", "proxy", "srv-2"),
            inst("proxy-c1", "proxy", "cpe-1", owner="c1"),
            inst("dns-cloud", "dns", "cloud-1"),
        ]
    }
    rates = {"n1": 100.0, "n2": 50.0, "hit": 30.0, "miss": 20.0, "p2": 40.0, "d1": 5.0}
    flows = {
        f.id: f
        for f in [
            flow("n1", "c1", "nat", rates["n1"]),
            flow("n2", "c2", "nat", rates["n2"]),
            flow("hit", "c1", "proxy", rates["hit"], "203.0.113.8"),
            flow("miss", "c1", "proxy", rates["miss"], "192.0.2.1"),
            flow("p2", "c2", "proxy", rates["p2"]),
            flow("d1", "c1", "dns", rates["d1"]),
        ]
    }
    sample = compute_traffic(
        list(HOSTS.values()),
        LINKS,
        list(instances.values()),
        list(flows.values()),
        0.0,
        functions=FUNCTIONS,
    )
    m = measure_band(sample, flows, HOSTS, instances, ["srv-1", "srv-2"])
    assert m.capacity == {"srv-1": 1000, "srv-2": 500}
    assert m.used == {"srv-1": rates["n1"] + rates["n2"], "srv-2": rates["miss"] + rates["p2"]}
    assert m.transit == {"srv-1": 0, "srv-2": rates["miss"]}
    assert m.by_function == {("srv-1", "nat"): 150, ("srv-2", "proxy"): rates["p2"]}
    assert m.pairs == {
        ("srv-1", "cpe-1", "nat"): rates["n1"],
        ("srv-1", "cpe-2", "nat"): rates["n2"],
        ("srv-2", "cpe-2", "proxy"): rates["p2"],
    }
    assert m.copy_processed == {("cpe-1", "proxy"): rates["hit"] + rates["miss"]}
    assert m.copy_local == {("cpe-1", "proxy"): rates["hit"]}
    assert m.use_ratio == pytest.approx(sum(m.used.values()) / 1500)
    assert m.occupancy(["nat", "proxy", "dns"]) == pytest.approx(
        {"nat": 150 / 1500, "proxy": rates["p2"] / 1500, "dns": 0.0}
    )
    assert m.cpe_band() == {"cpe-1": rates["n1"], "cpe-2": rates["n2"] + rates["p2"]}


# --- through the simulator ----------------------------------------------------------------------


def scenario(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "band",
        "duration_s": 4,
        "band": {"servers": ["srv-1"]},
        "topology": {
            "sites": [{"id": "dc", "kind": "datacenter"}, {"id": "home", "kind": "home"}],
            "hosts": [
                {
                    "id": "srv-1",
                    "kind": "server",
                    "site": "dc",
                    "capacity": {"vcpu": 8, "memory_mb": 8192, "bandwidth_mbps": 400},
                },
                {
                    "id": "cpe-1",
                    "kind": "cpe",
                    "site": "home",
                    "owner": "c1",
                    "capacity": {"vcpu": 2, "memory_mb": 1024},
                },
                {
                    "id": "cpe-2",
                    "kind": "cpe",
                    "site": "home",
                    "owner": "c2",
                    "capacity": {"vcpu": 2, "memory_mb": 1024},
                },
            ],
            "links": [
                {"id": "a1", "a": "cpe-1", "b": "dc", "capacity_mbps": 1000},
                {"id": "a2", "a": "cpe-2", "b": "dc", "capacity_mbps": 1000},
                {"id": "up", "a": "dc", "b": "srv-1", "capacity_mbps": 1000},
            ],
        },
        "flavors": [{"id": "s", "vcpu": 0.5, "memory_mb": 128}],
        "functions": [
            {"name": "nat", "flavor": "s", "placement": ["server"]},
            {
                "name": "fw",
                "flavor": "s",
                "placement": ["cpe", "server"],
                "parameters": {"target": {"type": "ipv4"}},
            },
        ],
        "customers": [{"id": "c1"}, {"id": "c2"}],
        "instances": [
            {"id": "nat-s", "function": "nat", "host": "srv-1"},
            {"id": "fw-s", "function": "fw", "host": "srv-1"},
            {"id": "fw-c2", "function": "fw", "owner": "c2", "host": "cpe-2"},
        ],
        "flows": [
            {"id": "n1", "customer": "c1", "function": "nat", "rate_mbps": 100},
            {
                "id": "f1",
                "customer": "c1",
                "function": "fw",
                "rate_mbps": {"kind": "steps", "points": [[0, 60], [2, 0]]},
            },
            {"id": "f2", "customer": "c2", "function": "fw", "rate_mbps": 30},
        ],
        "policies": {"offload": {"enabled": False}},
    }
    doc.update(changes)
    return doc


def test_the_timeline_shows_the_band_its_use_ratio_and_occupancy() -> None:
    sim = Simulation(parse_scenario(scenario()))
    result = sim.run()
    first, last = result["timeline"][0], result["timeline"][-1]
    assert first["used_mbps"] == 160 and first["use_ratio"] == pytest.approx(160 / 400)
    assert first["occupancy"] == pytest.approx({"nat": 100 / 400, "fw": 60 / 400})
    assert last["used_mbps"] == 100  # f1 stopped at t=2
    band = first["band"]
    assert band["capacity_mbps"] == 400
    assert band["servers"]["srv-1"]["used_mbps"] == 160
    assert band["cpes"] == [{"cpe": "cpe-1", "used_mbps": 160, "occupancy": 0.4}]
    assert band["pairs"][0] == {
        "cpe": "cpe-1",
        "function": "nat",
        "used_mbps": 100,
        "occupancy": 0.25,
        "share_of_cpe": pytest.approx(100 / 160),
        "share_of_function": 1.0,
    }
    assert band["cpe_copies"] == {"fw": {"copies": 1, "processed_mbps": 30, "local_mbps": 30}}
    summary = result["summary"]["band"]
    assert summary["servers"] == ["srv-1"]
    assert summary["peak_use_ratio"] == {"value": pytest.approx(0.4), "t": 0.0}


def test_the_readings_use_the_documented_names_and_a_quiet_pair_reports_zero() -> None:
    sim = Simulation(parse_scenario(scenario()))
    sim.step()
    sim.step()
    sim.step()  # t = 2: f1 has stopped
    view = sim.controller.snapshot(2.0).telemetry
    assert view.value("host:srv-1", BAND_USED) == 100
    assert view.value("host:srv-1", function_band_metric("nat")) == 100
    assert view.value("host:srv-1", function_band_metric("fw")) == 0
    assert view.value(pair_source("srv-1", "cpe-1"), pair_band_metric("fw")) == 0
    assert view.value(pair_source("srv-1", "cpe-1"), pair_band_metric("nat")) == 100
    assert view.value("host:cpe-2", copy_processed_metric("fw")) == 30
    assert view.value("host:cpe-2", copy_local_metric("fw")) == 30


def test_without_a_band_section_there_is_no_band_model() -> None:
    doc = scenario()
    del doc["band"]
    entry = Simulation(parse_scenario(doc)).step()
    assert "used_mbps" not in entry and "band" not in entry


# --- scenario checks ----------------------------------------------------------------------------


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc, source="s.yaml")
    return info.value.problems


def test_band_servers_must_be_known_servers_listed_once() -> None:
    doc = scenario(band={"servers": ["srv-1", "cpe-1", "ghost", "srv-1"]})
    assert problems(doc) == [
        "band.servers[1]: host 'cpe-1' is a cpe, not a server",
        "band.servers[2]: unknown host 'ghost'",
        "band.servers[3]: 'srv-1' is listed twice",
    ]


def test_a_monitored_server_needs_a_bandwidth_capacity() -> None:
    doc = scenario()
    doc["topology"]["hosts"][0]["capacity"].pop("bandwidth_mbps")
    (problem,) = problems(doc)
    assert problem.startswith("topology.hosts[0].capacity.bandwidth_mbps: server 'srv-1'")


def test_an_enabled_offload_policy_needs_the_band_section() -> None:
    doc = scenario(policies={"offload": {"threshold": 0.8}})
    del doc["band"]
    (problem,) = problems(doc)
    assert problem.startswith("policies.offload: the offload policy decides on the band")
    disabled = scenario(policies={"offload": {"enabled": False}})
    del disabled["band"]
    parse_scenario(disabled)


def test_offload_settings_are_checked_against_the_topology_and_functions() -> None:
    doc = scenario(
        policies={
            "offload": {
                "servers": ["ghost", "cpe-1"],
                "params": {"nope": {}, "fw": {"target": "not-an-ip"}},
            }
        }
    )
    found = problems(doc)
    assert found[:3] == [
        "policies.offload.servers[0]: unknown host 'ghost'",
        "policies.offload.servers[1]: host 'cpe-1' is not a server",
        "policies.offload.params.nope: unknown function 'nope'",
    ]
    assert found[3].startswith("policies.offload.params.fw: parameter 'target'")


def test_a_valid_scenario_is_left_untouched_by_the_checks() -> None:
    doc = scenario()
    before = copy.deepcopy(doc)
    parse_scenario(doc)
    assert doc == before
