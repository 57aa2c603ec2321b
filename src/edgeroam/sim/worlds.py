"""Generated worlds: the demo's data center + cloud + N customer CPEs."""

from __future__ import annotations

from typing import Any

from edgeroam.sim.scenario import Scenario, parse_scenario


def demo_world(
    customers: int = 20,
    *,
    duration_s: float = 300.0,
    tick_s: float = 1.0,
    seed: int = 7,
    server_failure_at: float | None = 60.0,
    server_repair_at: float | None = 150.0,
) -> Scenario:
    """A vCPE data center, a cloud and `customers` homes whose functions run on the vCPE server.

    With `server_failure_at`, the vCPE server goes down then and the built-in `heal` policy
    moves its functions to the cloud; that is what the demo shows moving.
    """
    if customers < 1:
        raise ValueError("a demo world needs at least one customer")
    sites: list[dict[str, Any]] = [
        {"id": "dc-1", "kind": "datacenter", "region": "metro"},
        {"id": "cloud", "kind": "cloud", "region": "core"},
    ]
    hosts: list[dict[str, Any]] = [
        {
            "id": "vcpe-1",
            "kind": "server",
            "site": "dc-1",
            "capacity": {"vcpu": 16, "memory_mb": 32768, "bandwidth_mbps": 10000},
        },
        {
            "id": "cloud-1",
            "kind": "cloud",
            "site": "cloud",
            "capacity": {"vcpu": 256, "memory_mb": 524288, "bandwidth_mbps": 100000},
        },
    ]
    links: list[dict[str, Any]] = [
        {
            "id": "uplink-vcpe-1",
            "a": "dc-1",
            "b": "vcpe-1",
            "capacity_mbps": 1000,
            "kind": "uplink",
        },
        {
            "id": "core-cloud",
            "a": "dc-1",
            "b": "cloud",
            "capacity_mbps": 10000,
            "kind": "core",
            "delay_ms": 20,
        },
        {
            "id": "cloud-1-port",
            "a": "cloud",
            "b": "cloud-1",
            "capacity_mbps": 100000,
            "kind": "uplink",
        },
    ]
    customer_list: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    for n in range(1, customers + 1):
        cid, home, cpe = f"cust-{n:03d}", f"home-{n:03d}", f"cpe-{n:03d}"
        customer_list.append({"id": cid, "name": f"Customer {n}", "profile": "average"})
        sites.append({"id": home, "kind": "home", "region": "metro"})
        hosts.append(
            {
                "id": cpe,
                "kind": "cpe",
                "site": home,
                "owner": cid,
                "lends_capacity": n % 3 == 0,
                "capacity": {"vcpu": 2, "memory_mb": 1024, "bandwidth_mbps": 100},
            }
        )
        links.append({"id": f"access-{n:03d}", "a": cpe, "b": "dc-1", "capacity_mbps": 100})
        flows.append({"id": f"{cid}-dhcp", "customer": cid, "function": "dhcp", "rate_mbps": 0.05})
        flows.append(
            {
                "id": f"{cid}-nat",
                "customer": cid,
                "function": "nat",
                "rate_mbps": {
                    "kind": "diurnal",
                    "base": 20 + (n % 5) * 4,
                    "amplitude": 12,
                    "period_s": 240,
                    "phase_s": n * 7,
                    "noise_pct": 8,
                },
            }
        )
        flows.append(
            {
                "id": f"{cid}-firewall",
                "customer": cid,
                "function": "firewall",
                "rate_mbps": {"kind": "constant", "mbps": 3, "noise_pct": 10},
            }
        )
    events: list[dict[str, Any]] = []
    if server_failure_at is not None:
        events.append({"t": server_failure_at, "action": "host_down", "host": "vcpe-1"})
        if server_repair_at is not None:
            events.append({"t": server_repair_at, "action": "host_up", "host": "vcpe-1"})
    data = {
        "name": f"demo-{customers}",
        "description": "vCPE data center, a cloud and customer homes; the vCPE server fails "
        "and its functions are healed onto the cloud.",
        "seed": seed,
        "duration_s": duration_s,
        "tick_s": tick_s,
        "driver": {"latency_s": 2.0},
        "topology": {"sites": sites, "hosts": hosts, "links": links},
        "flavors": [
            {"id": "small", "vcpu": 1, "memory_mb": 512, "bandwidth_mbps": 100},
            {"id": "tiny", "vcpu": 0.25, "memory_mb": 64, "bandwidth_mbps": 10},
        ],
        "functions": [
            {
                "name": "dhcp",
                "flavor": "tiny",
                "placement": ["cpe", "server", "cloud"],
                "criticality": 3,
            },
            {
                "name": "nat",
                "flavor": "small",
                "placement": ["cpe", "server", "cloud"],
                "criticality": 2,
            },
            {
                "name": "firewall",
                "flavor": "small",
                "placement": ["cpe", "server", "cloud"],
                "criticality": 2,
                "parameters": {"destination": {"type": "ipv4"}, "protocol": {"type": "string"}},
            },
        ],
        "customers": customer_list,
        "instances": [
            {"id": "dhcp-shared", "function": "dhcp", "host": "vcpe-1"},
            {"id": "nat-shared", "function": "nat", "host": "vcpe-1"},
            {"id": "firewall-shared", "function": "firewall", "host": "vcpe-1"},
        ],
        "flows": flows,
        "events": events,
    }
    return parse_scenario(data, source="demo world")
