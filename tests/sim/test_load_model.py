"""The `groups:`/`load:` scenario sections and the group load world model."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import ScenarioError, load_scenario, parse_scenario

DIURNAL = Path(__file__).resolve().parents[2] / "scenarios" / "elastic-diurnal.yaml"


def small(**changes: Any) -> dict[str, Any]:
    """Two firewalls and a standby on a branch server, a local manager, constant demand."""
    data: dict[str, Any] = {
        "name": "load-small",
        "duration_s": 600,
        "tick_s": 60,
        "topology": {
            "sites": [{"id": "b", "kind": "branch"}],
            "hosts": [
                {
                    "id": "srv",
                    "kind": "server",
                    "site": "b",
                    "capacity": {"vcpu": 16, "memory_mb": 65536, "bandwidth_mbps": 1000},
                }
            ],
        },
        "flavors": [{"id": "one", "vcpu": 1, "memory_mb": 1024}],
        "functions": [
            {"name": "fw", "flavor": "one", "placement": ["server"]},
            {"name": "vnfm", "flavor": "one", "placement": ["server"]},
        ],
        "groups": [
            {
                "id": "mgr",
                "kind": "local_manager",
                "function": "vnfm",
                "site": "b",
                "metrics": [{"name": "jobs", "capacity": 10}],
            },
            {
                "id": "fw",
                "function": "fw",
                "site": "b",
                "manager": "mgr",
                "min_size": 2,
                "ratio": {"active": 2, "standby": 1},
            },
        ],
        "instances": [
            {"id": "mgr-1", "function": "vnfm", "group": "mgr", "host": "srv"},
            {"id": "fw-1", "function": "fw", "host": "srv"},
            {"id": "fw-2", "function": "fw", "host": "srv"},
            {"id": "fw-3", "function": "fw", "host": "srv", "role": "standby"},
        ],
        "load": {
            "groups": [
                {"group": "fw", "demand": {"cpu": 1.2}},
                {"group": "mgr", "demand": {"jobs": 1}, "per_child_instance": {"jobs": 0.5}},
            ],
        },
        "policies": {"elastic": {"enabled": False}, "ratio": {"enabled": False}},
    }
    for key, value in changes.items():
        data[key] = value
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "s.yaml")
    return info.value.problems


def test_demand_is_shared_by_the_serving_actives_and_managers_follow_their_groups() -> None:
    sim = Simulation(parse_scenario(small()))
    sim.step()
    snapshot = sim.controller.snapshot(0.0)

    def value(source: str, metric: str) -> float | None:
        return snapshot.telemetry.value(f"instance:{source}", metric)

    assert value("fw-1", "cpu") == pytest.approx(1.2 / 2)
    assert value("fw-2", "cpu") == pytest.approx(1.2 / 2)
    assert value("fw-3", "cpu") == 0.0  # the standby idles
    assert value("mgr-1", "jobs") == pytest.approx(1 + 0.5 * 3)
    assert [value(n, "health") for n in ("mgr-1", "fw-1", "fw-2", "fw-3")] == [1.0] * 4
    groups = sim.timeline[-1]["groups"]
    assert groups["fw"] == {
        "active": 2,
        "standby": 1,
        "serving": 2,
        "failed": 0,
        "demand": {"cpu": 1.2},
        "utilisation": pytest.approx(0.6),
    }


def test_a_crash_is_healed_by_promotion_within_one_cycle() -> None:
    data = small(load={**small()["load"], "failures": [{"t": 150, "instance": "fw-2"}]})
    data["policies"] = {"elastic": {"enabled": False}}
    data["driver"] = {"latency_s": 30, "latency_by_action": {"update_function": 0, "noop": 0}}
    result = Simulation(parse_scenario(data)).run()
    measures = result["summary"]["elastic"]
    # Crash at 150 s, seen by the probe at the 180 s cycle, promoted in that cycle.
    assert measures["unavailable_s"] == pytest.approx(180 - 150)
    assert measures["failures"][0]["applied_at"] == 180.0
    kinds = [(op["operation"], op["policy"]) for op in result["operations"]]
    assert ("promote", "failover") in kinds and ("heal", "failover") in kinds


def test_without_failover_a_crash_stays_unavailable() -> None:
    data = small(load={**small()["load"], "failures": [{"t": 150, "group": "fw"}]})
    data["policies"] = {"elastic": {"enabled": False}, "failover": {"enabled": False}}
    result = Simulation(parse_scenario(data)).run()
    measures = result["summary"]["elastic"]
    assert measures["failures"][0]["instance"] == "fw-1"  # first serving active by id
    assert measures["unavailable_s"] == pytest.approx(result["summary"]["duration_s"] + 60 - 150)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["groups"][1].update(manager="nobody"),
            "groups[1].manager: unknown group 'nobody'",
        ),
        (
            lambda d: d["groups"][0].update(manager="fw"),
            "groups[0].manager: group 'fw' is a function group, not a manager",
        ),
        (lambda d: d["groups"][0].update(function="nat"), "groups[0].function: unknown function"),
        (lambda d: d["groups"][0].update(site="moon"), "groups[0].site: unknown site 'moon'"),
        (
            lambda d: d["instances"][1].update(group="web"),
            "instances[1].group: unknown group 'web'",
        ),
        (
            lambda d: d["instances"][0].update(group="fw"),
            "instances[0].function: group 'fw' runs 'fw', not 'vnfm'",
        ),
        (
            lambda d: d["load"]["groups"][0].update(group="web"),
            "load.groups[0].group: unknown group 'web'",
        ),
        (
            lambda d: d["load"]["groups"][0].update(demand={"sessions": 3}),
            "load.groups[0].demand.sessions: group 'fw' has no metric 'sessions'",
        ),
        (
            lambda d: d["load"]["groups"][0].update(per_child_instance={"cpu": 1}),
            "load.groups[0]: per_child_* demand needs a manager group",
        ),
        (
            lambda d: d["load"].update(failures=[{"t": 5, "instance": "fw-9"}]),
            "load.failures[0].instance: unknown instance 'fw-9'",
        ),
        (
            lambda d: d["load"].update(failures=[{"t": 5000, "group": "fw"}]),
            "load.failures[0].t: 5000 is after the end of the run (600 s)",
        ),
        (
            lambda d: d["load"].update(failures=[{"t": 5}]),
            "load.failures[0]: a failure names either an instance or a group",
        ),
        (
            lambda d: d["groups"][1].update(min_size=5, max_size=2),
            "groups[1]: group 'fw': min_size 5 is above max_size 2",
        ),
        (
            lambda d: d.update(driver={"latency_by_action": {"teleport": 1}}),
            "driver: latency_by_action: unknown driver action(s) ['teleport']",
        ),
    ],
)
def test_scenario_problems_name_their_place(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(small())
    mutate(data)
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_the_diurnal_scenario_is_valid() -> None:
    scenario = load_scenario(DIURNAL)
    assert {g.id for g in scenario.groups} == {"cvnfm", "lvnfm", "fw", "ids", "analytics"}
    assert scenario.load is not None and scenario.load.failures
    raw = yaml.safe_load(DIURNAL.read_text())
    assert raw["duration_s"] == 86400
