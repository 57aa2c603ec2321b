"""`edgeroam experiment facility`: the issue's acceptance figures, from the shipped scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeroam.experiments.facility import (
    POLICY,
    SCENARIOS,
    evacuation_windows,
    plot,
    run_scenario,
    scenario_path,
    write_series,
)
from edgeroam.experiments.registry import load_all
from edgeroam.model import Criticality
from edgeroam.sim.scenario import load_scenario

Runs = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def experiment() -> dict[str, tuple[dict[str, Any], Runs]]:
    return {name: run_scenario(name, lambda _msg: None) for name in SCENARIOS}


def test_json_has_exactly_the_keys_the_issue_spells(
    experiment: dict[str, tuple[dict[str, Any], Runs]],
) -> None:
    for name, (row, _) in experiment.items():
        assert set(row) == {"scenario", "baseline", "policy"}
        assert row["scenario"] == name
        assert set(row["baseline"]) == {"function_downtime_s", "critical_downtime_s"}
        assert set(row["policy"]) == {
            "function_downtime_s",
            "critical_downtime_s",
            "migrated_before_failure",
            "battery_runtime_s",
            "battery_runtime_without_shutdown_s",
        }
    assert "facility" in load_all()


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_function_leaves_before_the_servers_fail(
    name: str, experiment: dict[str, tuple[dict[str, Any], Runs]]
) -> None:
    row, runs = experiment[name]
    baseline = runs["baseline"]["summary"]["facility"]
    policy = runs["policy"]["summary"]["facility"]
    # The baseline is the prior art: servers fail with functions on them.
    assert baseline["failures"] and any(f["instances"] for f in baseline["failures"])
    assert row["policy"]["migrated_before_failure"] is True
    assert all(not f["instances"] for f in policy["failures"])
    # Each host that failed in the baseline was empty at that moment with the policy.
    timeline = {e["t"]: e for e in runs["policy"]["timeline"]}
    for failure in baseline["failures"]:
        assert timeline[failure["t"]]["hosts"][failure["host"]]["instances"] == 0


@pytest.mark.parametrize("name", SCENARIOS)
def test_downtime_is_at_least_90_percent_below_baseline(
    name: str, experiment: dict[str, tuple[dict[str, Any], Runs]]
) -> None:
    row, _ = experiment[name]
    assert row["baseline"]["function_downtime_s"] > 0
    assert row["policy"]["function_downtime_s"] <= 0.1 * row["baseline"]["function_downtime_s"]
    assert row["policy"]["critical_downtime_s"] <= 0.1 * row["baseline"]["critical_downtime_s"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_critical_downtime_is_only_the_migration_interruption(
    name: str, experiment: dict[str, tuple[dict[str, Any], Runs]]
) -> None:
    row, runs = experiment[name]
    result = runs["policy"]
    scenario = load_scenario(scenario_path(name))
    critical = {f.name for f in scenario.functions if f.criticality >= Criticality.CRITICAL}
    owner_of = {i.id: (i.function, i.owner) for i in scenario.instances}
    moves: dict[str, list[tuple[float, float]]] = {}
    for op in result["operations"]:
        if op["policy"] == POLICY and op["operation"] == "migrate":
            function, owner = owner_of[op["instance"]]
            key = f"{function}:{owner}" if owner else function
            moves.setdefault(key, []).append((op["t"], op["finished_at"]))
    down_ticks = 0
    tick = scenario.tick_s
    for entry in result["timeline"]:
        for service in entry["facility"]["down_services"]:
            if service.split(":")[0] not in critical:
                continue
            down_ticks += 1
            assert any(lo <= entry["t"] <= hi for lo, hi in moves.get(service, [])), (
                f"{service} down at t={entry['t']} outside its migration"
            )
    assert row["policy"]["critical_downtime_s"] == down_ticks * tick
    # Every critical function on a server that failed in the baseline was moved away.
    failed = {f["host"] for f in runs["baseline"]["summary"]["facility"]["failures"]}
    threatened = {
        f"{i.function}:{i.owner}" if i.owner else i.function
        for i in scenario.instances
        if i.function in critical and i.host in failed
    }
    assert threatened and threatened <= set(moves)


def test_switching_emptied_servers_off_extends_the_battery_runtime(
    experiment: dict[str, tuple[dict[str, Any], Runs]],
) -> None:
    row, runs = experiment["facility-power"]
    with_shutdown = row["policy"]["battery_runtime_s"]
    without = row["policy"]["battery_runtime_without_shutdown_s"]
    assert with_shutdown is not None and without is not None
    assert with_shutdown > without
    # Independently from the inputs: once every server is off only the base load drains the
    # battery, so from mains' return the charge above the cut-off lasts charge·3600/base_load.
    scenario = load_scenario(scenario_path("facility-power"))
    assert scenario.facility is not None
    ups = scenario.facility.batteries[0]
    outage = ups.outages[0]
    assert outage.end is not None
    at_back = next(e for e in runs["policy"]["timeline"] if e["t"] == outage.end)
    assert at_back["facility"]["off"] == ["srv-a1", "srv-a2", "srv-a3", "srv-a4"]
    charge_wh = at_back["facility"]["batteries"][ups.id]["pct"] / 100 * ups.capacity_wh
    above_floor = charge_wh - ups.cutoff_pct / 100 * ups.capacity_wh
    expected = outage.end - outage.start + above_floor * 3600 / ups.base_load_w
    assert with_shutdown == pytest.approx(expected, rel=1e-3)
    # Without the shutdown the battery actually ran out during the outage.
    info = runs["no_shutdown"]["summary"]["facility"]["batteries"][ups.id]
    assert info["runtime_measured"] and info["depleted_at"] < outage.end
    # Other scenarios have no battery.
    for name in ("facility-cooling", "facility-flood"):
        policy = experiment[name][0]["policy"]
        assert policy["battery_runtime_s"] is None
        assert policy["battery_runtime_without_shutdown_s"] is None


def test_recovery_switches_servers_back_on_and_offers_them_again(
    experiment: dict[str, tuple[dict[str, Any], Runs]],
) -> None:
    for name in SCENARIOS:
        _, runs = experiment[name]
        ops = [o for o in runs["policy"]["operations"] if o["policy"] == POLICY]
        off = {h for o in ops if o["operation"] == "power-off" for h in o["hosts"]}
        on = {h for o in ops if o["operation"] == "power-on" for h in o["hosts"]}
        assert off, name
        last = runs["policy"]["timeline"][-1]
        still_off = set(last["facility"]["off"])
        # Every server switched off came back unless its environment is still not normal.
        for host in off - on:
            assert host in still_off and host in last["facility"]["levels"], (name, host)
        for host in on:
            assert last["hosts"][host]["state"] == "ready", (name, host)


def test_outputs_are_written(
    tmp_path: Path, experiment: dict[str, tuple[dict[str, Any], Runs]]
) -> None:
    name = "facility-flood"
    _, runs = experiment[name]
    scenario = load_scenario(scenario_path(name))
    write_series(tmp_path / "series.csv", scenario, runs)
    plot(tmp_path / "plot.png", scenario, runs)
    header = (tmp_path / "series.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["t", "facility_ok"]
    assert "policy.functions_down" in header
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    windows = evacuation_windows(runs["policy"])
    assert set(windows) == {"srv-b1a", "srv-b1b", "srv-b1c"}
    assert all(lo <= hi for lo, hi in windows.values())
