"""Small testbed topologies for the root tests."""

from __future__ import annotations

from typing import Any

from edgeroam.testbed.topology import BedTopology, parse_topology

FUNCTIONS: dict[str, dict[str, Any]] = {
    "guard": {
        "implementation": "filter",
        "parameters": {
            "destination": {"type": "ipv4"},
            "protocol": {"type": "string"},
            "ports": {"type": "list"},
        },
    },
    "nat": {
        "implementation": "nat",
        "parameters": {"forwards": {"type": "list"}, "masquerade": {"type": "boolean"}},
    },
    "dhcp": {
        "implementation": "dnsmasq",
        "parameters": {
            "domain": {"type": "string"},
            "records": {"type": "list"},
            "lease_s": {"type": "integer"},
        },
    },
}


def star(
    cpes: int = 2,
    *,
    access_mbps: float = 100.0,
    band_mbps: float = 1000.0,
    dhcp_terminals: tuple[str, ...] = (),
    routes_back: bool = True,
    instances: tuple[dict[str, Any], ...] = (),
) -> BedTopology:
    """cpe-1..n (terminal t<i> each) -> site dc -> server srv -> internet (50.1.1.1/.2)."""
    hosts: list[dict[str, Any]] = [
        {
            "id": "srv",
            "kind": "server",
            "site": "dc",
            "capacity": {"vcpu": 8, "memory_mb": 8192, "bandwidth_mbps": band_mbps},
        }
    ]
    sites = [{"id": "dc", "kind": "datacenter"}]
    links = [{"id": "band", "a": "dc", "b": "srv", "capacity_mbps": band_mbps}]
    for i in range(1, cpes + 1):
        sites.append({"id": f"home-{i}", "kind": "home"})
        hosts.append(
            {
                "id": f"cpe-{i}",
                "kind": "cpe",
                "site": f"home-{i}",
                "owner": f"cust-{i}",
                "capacity": {"vcpu": 1, "memory_mb": 512, "bandwidth_mbps": access_mbps},
            }
        )
        links.append({"id": f"acc-{i}", "a": f"cpe-{i}", "b": "dc", "capacity_mbps": access_mbps})
    data = {
        "name": "test-star",
        "topology": {"sites": sites, "hosts": hosts, "links": links},
        "customers": [{"id": f"cust-{i}"} for i in range(1, cpes + 1)],
        "flavors": [{"id": "tiny", "vcpu": 0.2, "memory_mb": 64}],
        "functions": [
            {
                "name": name,
                "flavor": "tiny",
                "placement": ["cpe", "server"],
                "parameters": spec["parameters"],
            }
            for name, spec in FUNCTIONS.items()
        ],
        "implementations": {name: spec["implementation"] for name, spec in FUNCTIONS.items()},
        "instances": list(instances),
        "terminals": [
            {"id": f"t{i}", "cpe": f"cpe-{i}", "dhcp": f"t{i}" in dhcp_terminals}
            for i in range(1, cpes + 1)
        ],
        "internet": {"attach": "srv", "routes_back": routes_back},
    }
    return parse_topology(data, "<test star>")
