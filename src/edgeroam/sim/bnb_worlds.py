"""The IoT-B&B life-cycle world of `scenarios/bnb-lifecycle.yaml`, built in code.

The `iotbnb-lifecycle` experiment runs it without needing the repository's scenario folder; a
test keeps this function and the YAML file identical.
"""

from __future__ import annotations

from typing import Any

from edgeroam.sim.scenario import Scenario, parse_scenario

CPE_CAPACITY = {"vcpu": 4, "memory_mb": 4096, "bandwidth_mbps": 100}


def _cpe(i: int, incentive: float | None, vcpu: float = 4) -> dict[str, Any]:
    host: dict[str, Any] = {
        "id": f"cpe-{i}",
        "kind": "cpe",
        "site": f"home-{i}",
        "owner": f"c{i}",
        "capacity": {**CPE_CAPACITY, "vcpu": vcpu},
    }
    if incentive is not None:
        host["lends_capacity"] = True
        host["incentives"] = {
            "per_vcpu": incentive,
            "per_memory_mb": incentive / 1000,
            "per_bandwidth_mbps": incentive / 10,
        }
    return host


def lifecycle_scenario() -> Scenario:
    """c1's IoT group scales out over its own CPE, B&B nodes and the cloud, survives cpe-2's
    withdrawal at t=120 s and scales back in from t=200 s."""
    data: dict[str, Any] = {
        "name": "bnb-lifecycle",
        "description": "scale-out to own CPE, B&B nodes and cloud; B&B withdrawal; "
        "scale-in by cost",
        "seed": 1,
        "duration_s": 330,
        "tick_s": 2,
        "policies": {
            "bnb_lifecycle": {
                "enabled": True,
                "strategy": "exhaustive",
                "hold_s": 4,
                "scale_cooldown_s": 4,
                "rejoin_hold_s": 40,
                "rebalance_interval_s": 30,
                "migration_margin": 2,
                "migration_cooldown_s": 60,
                "groups": {
                    "iot-c1": {
                        "function": "iot-proc",
                        "owner": "c1",
                        "min_instances": 1,
                        "max_instances": 10,
                    }
                },
            }
        },
        "controller": {"arbiter": {"cooldown_s": 0}},
        "topology": {
            "sites": [{"id": f"home-{i}", "kind": "home"} for i in range(1, 5)]
            + [{"id": "metro", "kind": "edge"}, {"id": "cloud", "kind": "cloud"}],
            "hosts": [
                _cpe(1, None),
                _cpe(2, 2),
                _cpe(3, 4),
                _cpe(4, 12, vcpu=2.5),
                {
                    "id": "cloud-1",
                    "kind": "cloud",
                    "site": "cloud",
                    "capacity": {"vcpu": 64, "memory_mb": 65536, "bandwidth_mbps": 1000},
                },
            ],
            "links": [
                {"id": f"access-{i}", "a": f"cpe-{i}", "b": "metro", "capacity_mbps": 100}
                for i in range(1, 5)
            ]
            + [
                {
                    "id": "core",
                    "a": "metro",
                    "b": "cloud",
                    "capacity_mbps": 1000,
                    "kind": "core",
                    "delay_ms": 5,
                }
            ],
        },
        "customers": [{"id": f"c{i}"} for i in range(1, 5)],
        "flavors": [
            {
                "id": "iot-small",
                "vcpu": 1,
                "memory_mb": 1024,
                "bandwidth_mbps": 10,
                "max_delay_ms": 200,
            }
        ],
        "functions": [
            {"name": "iot-proc", "flavor": "iot-small", "placement": ["cpe", "server", "cloud"]}
        ],
        "instances": [
            {
                "id": "iot-c1-0",
                "function": "iot-proc",
                "owner": "c1",
                "host": "cpe-1",
                "group": "iot-c1",
            }
        ],
        "bnb": {
            "groups": [
                {
                    "group": "iot-c1",
                    "demand": {"kind": "steps", "points": [[0, 0.5], [20, 5.5], [200, 0.5]]},
                }
            ],
            "owner_usage": [
                {
                    "host": "cpe-2",
                    "usage": {"kind": "steps", "points": [[0, 0.1], [120, 0.9], [260, 0.1]]},
                }
            ],
        },
    }
    return parse_scenario(data, "bnb-lifecycle (built in code)")
