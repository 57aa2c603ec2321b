"""The simulated technical environment: closed-form physics, failures, repairs, validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgeroam.model import HostState
from edgeroam.policies.registry import default_registry
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

IDLE, PER_VCPU, BASE = 100.0, 10.0, 30.0

BASE_DOC: dict[str, Any] = {
    "name": "facility-unit",
    "duration_s": 40,
    "tick_s": 1,
    "topology": {
        "sites": [
            {"id": "dc", "kind": "datacenter", "rooms": ["r1", "r2"]},
            {"id": "cloud", "kind": "cloud"},
        ],
        "hosts": [
            {"id": "srv", "kind": "server", "site": "dc", "room": "r1",
             "labels": {"mount_height_mm": "50"}, "capacity": {"vcpu": 8, "memory_mb": 8192}},
            {"id": "other", "kind": "server", "site": "dc", "room": "r2",
             "capacity": {"vcpu": 8, "memory_mb": 8192}},
            {"id": "cloud-1", "kind": "cloud", "site": "cloud",
             "capacity": {"vcpu": 64, "memory_mb": 65536}},
        ],
    },
    "flavors": [{"id": "two", "vcpu": 2, "memory_mb": 256}],
    "functions": [{"name": "nat", "flavor": "two", "criticality": "critical"}],
    "instances": [{"id": "nat-1", "function": "nat", "host": "srv"}],
    "facility": {"host_power": {"idle_w": IDLE, "per_vcpu_w": PER_VCPU}},
}  # fmt: skip


def doc(**facility: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE_DOC)
    d["facility"].update(facility)
    return d


def run(d: dict[str, Any], *, policies: bool = False, before: Any = None) -> dict[str, Any]:
    """Run with every policy off (the environment alone) unless asked otherwise."""
    d = copy.deepcopy(d)
    if not policies:
        d["policies"] = {name: {"enabled": False} for name in default_registry()}
    sim = Simulation(parse_scenario(d))
    if before is not None:
        before(sim)
    return sim.run()


def battery(capacity_wh: float = 1.0, **extra: Any) -> dict[str, Any]:
    b = {
        "id": "ups",
        "site": "dc",
        "capacity_wh": capacity_wh,
        "cutoff_pct": 10,
        "restart_pct": 40,
        "base_load_w": BASE,
        "recharge_w": 3600,
        "outages": [{"start": 0, "end": 30}],
    }
    b.update(extra)
    return b


def test_the_battery_drains_by_the_powered_load_and_cuts_at_its_floor() -> None:
    result = run(doc(batteries=[battery()]))
    # srv: idle + 2 allocated vCPU; `other` idle; plus the base load.
    load = (IDLE + 2 * PER_VCPU) + IDLE + BASE
    by_t = {e["t"]: e["facility"] for e in result["timeline"]}
    expected = 100 * (1 - load * 10 / 3600)
    assert by_t[10.0]["batteries"]["ups"]["pct"] == pytest.approx(expected, abs=1e-4)
    # The charge reaches 10 % of 1 Wh when load·t/3600 ≥ 0.9 Wh.
    cut = next(t for t in range(1, 40) if 1 - load * t / 3600 <= 0.1 + 1e-12)
    failures = result["summary"]["facility"]["failures"]
    assert {f["host"] for f in failures} == {"srv", "other"}
    assert {f["t"] for f in failures} == {float(cut)}
    assert next(f for f in failures if f["host"] == "srv")["instances"] == ["nat-1"]
    assert by_t[float(cut)]["failed"] == ["other", "srv"]
    info = result["summary"]["facility"]["batteries"]["ups"]
    assert info["depleted_at"] == cut and info["runtime_s"] == cut and info["runtime_measured"]
    # Mains back at 30 s; one second at 3600 W (1 Wh) refills it past 40 %: servers return at
    # 31 s, and the one function was down from the cut to then.
    assert by_t[30.0]["failed"] == ["other", "srv"] and by_t[31.0]["failed"] == []
    assert result["summary"]["facility"]["function_downtime_s"] == 31.0 - cut
    assert result["summary"]["facility"]["critical_downtime_s"] == 31.0 - cut


def test_switching_servers_off_extends_the_runtime() -> None:
    def switch_off(sim: Simulation) -> None:
        sim.driver.powered_off.update({"srv", "other"})

    d = doc(batteries=[battery(outages=[{"start": 0}])])
    result = run(d, before=switch_off)
    info = result["summary"]["facility"]["batteries"]["ups"]
    assert result["summary"]["facility"]["failures"] == []
    assert not info["runtime_measured"]
    # Only the base load drains it: 0.9 Wh at 30 W.
    assert info["runtime_s"] == pytest.approx(0.9 * 3600 / BASE)


def test_a_room_without_cooling_heats_at_heat_over_thermal_mass() -> None:
    mass = 100.0
    cooling = {
        "id": "crac",
        "room": "r1",
        "start_c": 24.0,
        "capacity_w": 300,
        "heat_capacity_j_per_c": mass,
        "outages": [{"start": 0, "end": 35}],
        "fail_c": 40,
        "restart_c": 27,
    }
    result = run(doc(cooling=[cooling]))
    heat = IDLE + 2 * PER_VCPU
    by_t = {e["t"]: e["facility"] for e in result["timeline"]}
    assert by_t[5.0]["rooms"]["r1"]["temperature_c"] == pytest.approx(24.0 + heat * 5 / mass)
    fail_at = next(t for t in range(1, 40) if 24.0 + heat * t / mass >= 40.0)
    assert result["summary"]["facility"]["failures"][0]["t"] == fail_at
    # A failed server adds no heat: the temperature stops rising.
    assert by_t[fail_at + 2.0]["rooms"]["r1"]["temperature_c"] == pytest.approx(
        by_t[float(fail_at)]["rooms"]["r1"]["temperature_c"]
    )
    # Cooling back at 35 s removes 300 W from a room whose only heat source failed: -3 °C/s
    # until the inlet is at or below the restart level (27 °C).
    peak = by_t[35.0]["rooms"]["r1"]["temperature_c"]
    back = next(t for t in range(36, 60) if peak - 3.0 * (t - 35) <= 27.0)
    restart = result["summary"]["facility"]["restarts"][0]
    assert restart == {"host": "srv", "t": float(back), "cause": restart["cause"]}


def test_a_working_thermostat_keeps_the_room_between_its_levels() -> None:
    cooling = {
        "id": "crac",
        "room": "r1",
        "start_c": 23.0,
        "low_c": 22,
        "high_c": 25,
        "capacity_w": 600,
        "heat_capacity_j_per_c": 100,
    }
    d = doc(cooling=[cooling])
    d["duration_s"] = 30
    result = run(d)
    temps = [e["facility"]["rooms"]["r1"]["temperature_c"] for e in result["timeline"]]
    step = max(IDLE + 2 * PER_VCPU, 600 - (IDLE + 2 * PER_VCPU)) / 100  # most per 1 s tick
    assert min(temps) >= 22 - step and max(temps) <= 25 + step
    assert {e["facility"]["rooms"]["r1"]["cooling_on"] for e in result["timeline"]} == {0, 1}


def test_water_rises_by_inflow_minus_pumps_and_floods_servers_at_their_height() -> None:
    flood = {
        "id": "leak",
        "room": "r1",
        "inflow": [{"start": 2, "end": 20, "mm_per_s": 5.0}],
        "pump_mm_per_s": 2.0,
        "repair_s": 5,
    }
    result = run(doc(floods=[flood]))
    by_t = {e["t"]: e["facility"] for e in result["timeline"]}
    assert by_t[10.0]["water"]["r1"]["level_mm"] == pytest.approx(3.0 * (10 - 2))
    fail_at = next(t for t in range(2, 40) if 3.0 * (t - 2) >= 50)
    assert result["summary"]["facility"]["failures"][0] == {
        "host": "srv",
        "t": float(fail_at),
        "cause": f"flooded at {3.0 * (fail_at - 2):.0f} mm",
        "instances": ["nat-1"],
    }
    # After 20 s the pumps lower it by 2 mm/s; once below 50 mm, 5 s of repair.
    peak = 3.0 * (20 - 2)
    dry = next(t for t in range(20, 60) if peak - 2.0 * (t - 20) < 50)
    restart = result["summary"]["facility"]["restarts"][0]
    assert restart["t"] == dry + 5


def test_a_switched_off_server_does_not_fail() -> None:
    def switch_off(sim: Simulation) -> None:
        sim.driver.powered_off.add("srv")

    flood = {"id": "leak", "room": "r1", "inflow": [{"start": 0, "mm_per_s": 10.0}]}
    result = run(doc(floods=[flood]), before=switch_off)
    assert result["summary"]["facility"]["failures"] == []


def test_sensor_noise_is_reproducible_from_the_seed() -> None:
    b = battery(noise_pct=1.0, outages=[])

    def readings(seed: int) -> list[float]:
        d = doc(batteries=[b])
        d["seed"] = seed
        sim = Simulation(parse_scenario(d))
        values = []
        for _ in range(10):
            sim.step()
            values.append(
                sim.controller.telemetry.history("site:dc", "facility.battery_pct")[-1][1]
            )
        return values

    first, again, other = readings(1), readings(1), readings(2)
    assert first == again and first != other
    assert all(0.0 <= v <= 100.0 for v in first)  # clipped to the plausible range


def test_failures_go_through_inventory_and_driver() -> None:
    flood = {"id": "leak", "room": "r1", "inflow": [{"start": 0, "mm_per_s": 100.0}]}
    d = doc(floods=[flood])
    d["policies"] = {name: {"enabled": False} for name in default_registry()}
    sim = Simulation(parse_scenario(d))
    sim.step()
    sim.step()
    assert sim.controller.inventory.hosts["srv"].state is HostState.DOWN
    assert "srv" in sim.driver.failed_hosts
    assert ("nat-1", "srv") not in sim.driver.running
    assert any("host_failed" in e.tags for e in sim.controller.events.recent)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"batteries": [{"id": "u", "site": "dc", "room": "r1", "capacity_wh": 1}]},
            "facility.batteries[0]: a battery feeds either a site or a room",
        ),
        (
            {"batteries": [{"id": "u", "site": "nowhere", "capacity_wh": 1}]},
            "facility.batteries[0].site: unknown site 'nowhere'",
        ),
        (
            {"batteries": [{"id": "u", "site": "dc", "capacity_wh": 1, "restart_pct": 5}]},
            "restart_pct (5) must be above cutoff_pct (10)",
        ),
        (
            {"cooling": [{"id": "c", "room": "r9", "capacity_w": 1, "heat_capacity_j_per_c": 1}]},
            "facility.cooling[0].room: unknown room 'r9'",
        ),
        (
            {"floods": [{"id": "f", "room": "r2", "inflow": [{"start": 0, "mm_per_s": 1}]}]},
            "topology.hosts[1].labels.mount_height_mm: host 'other' stands in flooded room 'r2'",
        ),
        (
            {"floods": [{"id": "f", "room": "r1", "inflow": [{"start": 99, "mm_per_s": 1}]}]},
            "facility.floods[0].inflow[0].start: 99 is after the end of the run (40 s)",
        ),
        (
            {"hosts": [{"host": "ghost"}]},
            "facility.hosts[0].host: unknown host 'ghost'",
        ),
        (
            {
                "batteries": [
                    {"id": "u", "site": "dc", "capacity_wh": 1},
                    {"id": "u", "room": "r1", "capacity_wh": 1},
                ]
            },
            "facility.batteries[1]: host 'srv' is already fed by battery 'u'",
        ),
    ],
)
def test_facility_section_errors_name_the_location(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc(**change), "f.yaml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_bad_mount_height_label_is_located() -> None:
    d = doc(floods=[{"id": "f", "room": "r1", "inflow": [{"start": 0, "mm_per_s": 1}]}])
    d["topology"]["hosts"][0]["labels"] = {"mount_height_mm": "knee-high"}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, "f.yaml")
    assert "topology.hosts[0].labels.mount_height_mm: 'knee-high' is not a number" in str(
        info.value
    )


@pytest.mark.parametrize("name", ["facility-power", "facility-cooling", "facility-flood"])
def test_shipped_facility_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    assert scenario.facility is not None


def test_scenarios_without_facility_readings_behave_as_before() -> None:
    """The policy is enabled by default; with no facility readings it changes nothing."""
    scenario = load_scenario(SCENARIOS / "small-foundation.yaml")
    off = scenario.model_copy(
        update={"policies": {**scenario.policies, "facility": {"enabled": False}}}
    )
    on, without = Simulation(scenario).run(), Simulation(off).run()
    assert on["timeline"] == without["timeline"]
    assert on["operations"] == without["operations"]
