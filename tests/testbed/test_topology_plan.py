"""Topology validation and the bed plan: pure, no root needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from edgeroam.testbed.plan import NodeKind, build_plan
from edgeroam.testbed.scenario import load_scenario, parse_scenario
from edgeroam.testbed.topology import (
    TopologyError,
    generate_topology,
    load_topology,
    parse_topology,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def small() -> dict[str, Any]:
    return {
        "name": "t",
        "topology": {
            "sites": [{"id": "dc", "kind": "datacenter"}, {"id": "home", "kind": "home"}],
            "hosts": [
                {
                    "id": "srv",
                    "kind": "server",
                    "site": "dc",
                    "capacity": {"vcpu": 4, "memory_mb": 4096, "bandwidth_mbps": 100},
                },
                {
                    "id": "cpe-a",
                    "kind": "cpe",
                    "site": "home",
                    "owner": "c1",
                    "capacity": {"vcpu": 1, "memory_mb": 512, "bandwidth_mbps": 100},
                },
            ],
            "links": [
                {"id": "acc", "a": "cpe-a", "b": "dc", "capacity_mbps": 100},
                {"id": "band", "a": "dc", "b": "srv", "capacity_mbps": 100},
            ],
        },
        "customers": [{"id": "c1"}],
        "flavors": [{"id": "f", "vcpu": 0.1, "memory_mb": 64}],
        "functions": [{"name": "fw", "flavor": "f", "placement": ["cpe", "server"]}],
        "implementations": {"fw": "filter"},
        "terminals": [{"id": "t1", "cpe": "cpe-a"}, {"id": "t2", "cpe": "cpe-a", "dhcp": True}],
        "internet": {"attach": "srv"},
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(data, "bed.yaml")
    return info.value.problems


def test_the_shipped_ping_flood_files_are_valid() -> None:
    loaded = load_scenario(SCENARIOS / "testbed-ping-flood.yaml")
    assert loaded.scenario.telemetry_interval_s == 0.25
    assert [t.id for t in loaded.bed.terminals] == ["term-1", "term-2", "term-3"]
    flood = next(t for t in loaded.scenario.traffic if t.id == "flood")
    access = next(lk for lk in loaded.bed.topology.links if lk.id == "access-2")
    # ~90 % of the flooding terminal's access link, as in the seed's example.
    assert flood.rate_mbps / access.capacity_mbps == pytest.approx(0.9)
    assert str(flood.to) == "50.1.1.1"


def test_inventory_errors_use_the_scenario_checks() -> None:
    data = small()
    data["topology"]["links"][0]["b"] = "nowhere"
    found = problems(data)
    assert any("topology.links[0].b" in p and "'nowhere'" in p for p in found), found


def test_testbed_specific_errors_name_the_location() -> None:
    data = small()
    data["terminals"].append({"id": "t3", "cpe": "srv"})
    data["implementations"] = {}
    data["internet"] = {"attach": "ghost"}
    data["topology"]["hosts"][1]["id"] = "CPE.A"  # an id, but not a testbed name
    data["topology"]["links"][0]["a"] = "CPE.A"
    found = problems(data)
    text = "\n".join(found)
    assert "terminals[0].cpe: 'cpe-a' is not a CPE" in text  # its CPE was renamed
    assert "terminals[2].cpe: 'srv' is not a CPE of the topology" in text
    assert "functions[0].name: 'fw' has no entry in implementations" in text
    assert "internet.attach: unknown host 'ghost'" in text
    assert "topology.hosts[1].id: 'CPE.A' is not a testbed name" in text


def test_overlapping_pools_and_unreachable_hosts_are_refused() -> None:
    data = small()
    data["addressing"] = {"lans": "10.0.0.0/16", "links": "10.0.0.0/24"}
    assert any("overlaps addressing.lans" in p for p in problems(data))
    data = small()
    data["topology"]["links"] = data["topology"]["links"][1:]  # cpe-a cut off
    assert problems(data) == ["topology.links: no path from srv (internet.attach) to cpe-a"]


def test_plan_addresses_routes_and_names() -> None:
    bed = parse_topology(small())
    plan = build_plan(bed, "er7-x-")
    cpe = plan.node_of_host("cpe-a")
    assert cpe.netns == "er7-x-h-cpe-a"
    assert cpe.lan == "10.128.0.0/24"
    assert cpe.bridges == {"lan0": "10.128.0.1/24"}
    acc = next(i for i in cpe.ifaces if i.link == "acc")
    assert (acc.name, acc.address, acc.rate_mbps) == ("acc", "100.64.0.1/30", 100)
    site = plan.nodes[plan.sites["dc"]]
    assert site.kind is NodeKind.SITE
    # The aggregation sends the LAN to the CPE, everything else towards the server.
    assert [(r.destination, r.via) for r in site.routes] == [("10.128.0.0/24", "100.64.0.1")]
    assert site.default_via == "100.64.0.6"
    server = plan.node_of_host("srv")
    assert server.default_via == "100.64.0.10"  # the internet end of the third /30
    assert {i.name for i in server.ifaces} == {"band", "inet0", "mgmt0"}
    t1, t2 = (plan.nodes[plan.terminals[t]] for t in ("t1", "t2"))
    assert t1.ifaces[0].address == "10.128.0.10/24" and t1.default_via == "10.128.0.1"
    assert t2.ifaces[0].address is None and t2.dhcp  # waits for a DHCP function
    inet = plan.nodes[plan.internet_netns]
    assert inet.loopback == ("50.1.1.1/32", "50.1.1.2/32")
    assert [(r.destination, r.via) for r in inet.routes] == [("10.128.0.0/9", "100.64.0.9")]
    # Management: the controller on the bridge, every host one port, no data route.
    mgmt = plan.nodes[plan.mgmt_netns]
    assert mgmt.bridges == {"br0": "172.31.0.1/16"}
    assert sorted(i.peer_netns for i in mgmt.ifaces) == sorted(plan.hosts.values())
    # Every veth listed once, ends consistent.
    pairs = plan.veths()
    assert len(pairs) == len(set(pairs)) == 2 + 1 + 2 + 2  # links, internet, terminals, mgmt


def test_routes_of_a_large_star_are_aggregated() -> None:
    bed = generate_topology(300, terminals_per_cpe=0)
    plan = build_plan(bed, "er7-x-")
    server = plan.node_of_host("vcpe")
    # 300 consecutive /24 LANs behind one next hop collapse into a handful of prefixes.
    nets = [ipaddress.IPv4Network(r.destination) for r in server.routes]
    assert sum(n.num_addresses for n in nets) == 300 * 256
    assert len(nets) <= 4
    assert all(r.via == server.routes[0].via for r in server.routes)
    assert plan.node_of_host("cpe-7").routes == ()  # one default route is all a CPE needs
    assert len(plan.nodes[plan.sites["dc"]].routes) == 300
    names = {i.name for node in plan.nodes.values() for i in node.ifaces}
    assert all(len(n) <= 15 for n in names)


def test_scenario_cross_checks() -> None:
    bed = small()
    bed["internet"] = {"attach": "srv"}
    data = {
        "name": "s",
        "topology": "x.yaml",
        "duration_s": 10,
        "traffic": [
            {"id": "f", "kind": "ping", "from": "t9", "to": "8.8.8.8", "rate_mbps": 1, **w}
            for w in ({"start_s": 1, "stop_s": 20},)
        ],
        "report": {"access_link": "nope", "band_server": "cpe-a", "flood": "zz"},
    }
    with pytest.raises(TopologyError) as info:
        parse_scenario(data, bed)
    text = "\n".join(info.value.problems)
    assert "traffic[0].from: 't9' is not a terminal" in text
    assert "traffic[0].to: 8.8.8.8 is not an internet address" in text
    assert "traffic[0].stop_s: 20.0 is after the end of the run" in text
    assert "report.access_link: unknown link 'nope'" in text
    assert "report.band_server: 'cpe-a' is not a server" in text
    assert "report.flood: unknown traffic id 'zz'" in text


def test_a_missing_topology_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntopology: absent.yaml\nduration_s: 5\n")
    with pytest.raises(TopologyError, match="topology: no file"):
        load_scenario(path)
    with pytest.raises(TopologyError, match="cannot read the file"):
        load_topology(tmp_path / "nope.yaml")
