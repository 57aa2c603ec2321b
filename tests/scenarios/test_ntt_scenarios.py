"""The seed's three worked examples, run from the shipped scenario files through the CLI.

The band figures asserted are the seed's (paragraphs 0090-0099, 0106-0115, 0119-0123), the
acceptance numbers of the issue. Which CPEs get a copy is derived from the scenario's own
topology (free resources against the function's flavor), not typed in.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgeroam.cli import app
from edgeroam.cli import simulate as _simulate  # noqa: F401  (registers the command)
from edgeroam.model import HostKind
from edgeroam.sim.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@cache
def simulate(name: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["simulate", str(SCENARIOS / f"{name}.yaml"), "--json", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def values(doc: dict[str, Any], field: str) -> list[float]:
    """The field over the run, with consecutive repeats collapsed: the band's story."""
    out: list[float] = []
    for entry in doc["timeline"]:
        if not out or entry[field] != out[-1]:
            out.append(entry[field])
    return out


def entry_after(doc: dict[str, Any], t: float) -> dict[str, Any]:
    return next(e for e in doc["timeline"] if e["t"] > t)


def ops(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [op for op in doc["operations"] if op["operation"] == kind]


def cpes_with_room(scenario: Scenario, function: str) -> list[str]:
    """CPEs whose capacity minus their scenario instances' flavors fits the function."""
    flavors = {f.id: f for f in scenario.flavors}
    spec = {f.name: f for f in scenario.functions}
    need = flavors[spec[function].flavor]
    room = []
    for host in scenario.topology.hosts:
        if host.kind is not HostKind.CPE:
            continue
        used_vcpu = sum(
            flavors[spec[i.function].flavor].vcpu for i in scenario.instances if i.host == host.id
        )
        used_mem = sum(
            flavors[spec[i.function].flavor].memory_mb
            for i in scenario.instances
            if i.host == host.id
        )
        if (
            host.capacity.vcpu - used_vcpu >= need.vcpu
            and host.capacity.memory_mb - used_mem >= need.memory_mb
        ):
            room.append(host.id)
    return room


def test_embodiment_1_800_600_650() -> None:
    doc = simulate("ntt-embodiment-1")
    assert values(doc, "used_mbps") == [650, 800, 600, 650]
    assert values(doc, "use_ratio") == [0.65, 0.8, 0.6, 0.65]
    (offload,) = ops(doc, "offload")
    (revert,) = ops(doc, "revert")
    before = next(e for e in doc["timeline"] if e["t"] == offload["t"])
    after = entry_after(doc, offload["t"])
    assert before["used_mbps"] == 800 and before["occupancy"]["proxy"] == 0.6
    assert after["used_mbps"] == 600 and after["occupancy"]["proxy"] == 0.0
    # Every CPE with room, i.e. all but CPE #2, whose vCPU is taken.
    scenario = load_scenario(SCENARIOS / "ntt-embodiment-1.yaml")
    room = cpes_with_room(scenario, "proxy")
    all_cpes = [h.id for h in scenario.topology.hosts if h.kind is HostKind.CPE]
    assert offload["hosts"] == room
    assert sorted(set(all_cpes) - set(room)) == ["cpe-2"]
    assert "cpe-2" in offload["reason"]["details"]["resource_check"]["skipped"]["hosts"]
    assert offload["params"] == {"cached_destination": "203.0.113.80"}
    # Return: 600 used + 50 kept off by the copies <= 700.
    measured = revert["reason"]["measured"]
    assert (measured["used_mbps"], measured["returning_mbps"]) == (600, 50)
    assert measured["used_mbps"] + measured["returning_mbps"] <= 0.7 * measured["capacity_mbps"]
    assert sorted(revert["instances"]) == sorted(offload["instances"])
    assert entry_after(doc, revert["t"])["used_mbps"] == 650
    assert all(op["operationState"] == "COMPLETED" for op in doc["operations"])


def test_embodiment_2_900_600_610() -> None:
    doc = simulate("ntt-embodiment-2")
    assert values(doc, "used_mbps") == [610, 900, 600, 610]
    assert values(doc, "use_ratio") == [0.61, 0.9, 0.6, 0.61]
    (offload,) = ops(doc, "offload")
    (revert,) = ops(doc, "revert")
    before = next(e for e in doc["timeline"] if e["t"] == offload["t"])
    assert before["occupancy"]["voice"] == 0.6
    busiest = before["band"]["cpes"][0]
    assert (busiest["cpe"], busiest["occupancy"]) == ("cpe-1", 0.6)
    pair = before["band"]["pairs"][0]
    assert (pair["cpe"], pair["function"], pair["share_of_cpe"]) == ("cpe-1", "voice", 0.9)
    assert offload["hosts"] == ["cpe-1"]
    after = entry_after(doc, offload["t"])
    assert after["used_mbps"] == 600 and after["occupancy"]["voice"] == 0.3
    measured = revert["reason"]["measured"]
    assert (measured["used_mbps"], measured["returning_mbps"]) == (600, 10)
    assert entry_after(doc, revert["t"])["used_mbps"] == 610


def test_ping_flood_900_to_0_with_the_filter_parameters() -> None:
    doc = simulate("ntt-ping-flood")
    assert values(doc, "used_mbps") == [0, 900, 0]
    (offload,) = ops(doc, "offload")
    before = next(e for e in doc["timeline"] if e["t"] == offload["t"])
    assert before["use_ratio"] == 0.9 and before["occupancy"]["security"] == 0.9
    pair = before["band"]["pairs"][0]
    assert (pair["cpe"], pair["share_of_cpe"], pair["share_of_function"]) == ("cpe-2", 1.0, 1.0)
    assert offload["hosts"] == ["cpe-2"]
    assert offload["params"] == {"destination": "50.1.1.1", "protocol": "icmp-echo"}
    after = entry_after(doc, offload["t"])
    assert (after["used_mbps"], after["use_ratio"], after["occupancy"]["security"]) == (0, 0, 0)


@pytest.mark.parametrize("name", ["ntt-embodiment-1", "ntt-embodiment-2", "ntt-ping-flood"])
def test_each_move_waits_its_hold_time_and_carries_its_reason(name: str) -> None:
    doc = simulate(name)
    settings = load_scenario(SCENARIOS / f"{name}.yaml").policies["offload"]
    first_above = next(e["t"] for e in doc["timeline"] if e["use_ratio"] > settings["threshold"])
    (offload,) = ops(doc, "offload")
    (revert,) = ops(doc, "revert")
    assert offload["t"] - first_above == settings["hold_s"]
    assert offload["reason"]["rule"] == "band_pressure"
    assert offload["reason"]["thresholds"]["threshold"] == settings["threshold"]
    assert revert["reason"]["rule"] == "band_relieved"
    assert revert["t"] - offload["t"] >= settings["clear_hold_s"]
