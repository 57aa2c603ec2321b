"""The `bnb` scenario section (validation with precise locations) and the life-cycle world."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "bnb-lifecycle.yaml"


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return Simulation(load_scenario(SCENARIO)).run()


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "s.yaml")
    return caught.value.problems


def raw() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(SCENARIO.read_text()))


def test_the_example_scenario_is_valid() -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.bnb is not None
    assert [g.group for g in scenario.bnb.groups] == ["iot-c1"]


def test_bad_bnb_sections_name_each_faulty_location() -> None:
    data = raw()
    data["bnb"]["groups"].append({"group": "nope", "demand": 1})
    data["bnb"]["groups"].append({"group": "iot-c1", "demand": 2})
    data["bnb"]["owner_usage"] += [
        {"host": "cloud-1", "usage": 0.5},
        {"host": "cpe-1", "usage": 0.5},
        {"host": "ghost", "usage": 0.5},
    ]
    data["policies"]["bnb_lifecycle"]["load_metric"] = "group_load"
    data["policies"]["bnb_lifecycle"]["groups"]["other"] = {"function": "nat", "owner": "c9"}
    problems = problems_of(data)
    expected = [
        "policies.bnb_lifecycle.groups.other.function: unknown function 'nat'",
        "policies.bnb_lifecycle.groups.other.owner: unknown customer 'c9'",
        "bnb.groups[1].group: unknown group 'nope'",
        "bnb.groups[2].group: group 'iot-c1' is listed twice",
        "bnb.owner_usage[1].host: host 'cloud-1' is a cloud, not a CPE",
        "bnb.owner_usage[2].host: CPE 'cpe-1' does not lend capacity",
        "bnb.owner_usage[3].host: unknown host 'ghost'",
        "policies.bnb_lifecycle.load_metric: the policy reads 'group_load' but the bnb section "
        "reports 'load'",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)


def test_a_bad_profile_points_at_its_field() -> None:
    data = raw()
    data["bnb"]["groups"][0]["demand"] = {"kind": "steps", "points": [[10, 1], [5, 2]]}
    assert any(p.startswith("bnb.groups[0].demand") for p in problems_of(data))


def test_the_life_cycle_runs_as_the_paper_describes(result: dict[str, Any]) -> None:
    ops = result["operations"]
    assert all(op["operationState"] == "COMPLETED" for op in ops)
    outs = [op for op in ops if op["reason"]["rule"] == "bnb_scale_out_overloaded"]
    # Scale-out fills the owner's CPE (free) first, then B&B nodes.
    places = [op["reason"]["details"]["placement"]["measured"]["place"] for op in outs]
    assert places[:2] == ["own", "own"] and "bnb" in places[2:]
    assert all(places.index("own") <= i for i, p in enumerate(places) if p != "own")
    # cpe-2's owner takes it back at t=120: its guests leave (migration events).
    moved = [op for op in ops if op["reason"]["rule"] == "bnb_node_withdrawn"]
    assert moved and all(op["sources"] == ["cpe-2"] and op["t"] >= 120 for op in moved)
    assert result["summary"]["bnb"]["withdrawn_nodes"] == ["cpe-2"]
    # Scale-in removes the dearest first and stops at the minimum on the owner's CPE.
    ins = [op for op in ops if op["reason"]["rule"] == "bnb_scale_in_underloaded"]
    costs = [op["reason"]["measured"]["cost"] for op in ins]
    assert costs == sorted(costs, reverse=True)
    final = result["timeline"][-1]["bnb"]["groups"]["iot-c1"]
    assert (final["active"], final["standby"], final["cost"]) == (1, 0, 0.0)
    assert result["timeline"][-1]["hosts"]["cpe-1"]["instances"] == 1
    # While the group used B&B guests, standbys existed.
    peak = max(result["timeline"], key=lambda e: e["bnb"]["groups"]["iot-c1"]["active"])
    assert peak["bnb"]["groups"]["iot-c1"]["standby"] > 0


def test_the_code_built_world_is_the_yaml_file() -> None:
    from edgeroam.sim.bnb_worlds import lifecycle_scenario

    assert lifecycle_scenario().model_dump() == load_scenario(SCENARIO).model_dump()
