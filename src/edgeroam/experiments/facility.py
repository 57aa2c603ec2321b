"""`facility`: seed 004's three embodiments, with and without the facility policy.

Each scenario (power, cooling, water) runs as

* **baseline** — no policy acts on failures, as in the seed's prior-art timeline (Fig. 2): the
  servers fail when the environment does and their functions wait for the repair;
* **policy** — the `facility` policy (and `heal`, the controller's default safety net);
* **no_shutdown** (scenarios with a battery) — the policy without switching emptied servers
  off, to measure what the shutdown adds to the battery's runtime;
* **heal_only** (CSV and docs only) — the reactive alternative: re-create functions after the
  servers died.

The JSON holds, per scenario, exactly the figures the issue asks for; the CSV files and the
plots (charge / temperature / water with the Deg and failure levels, the evacuation window and
the functions down) go to `--out`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from edgeroam.experiments.output import save_png
from edgeroam.experiments.registry import Experiment, Progress, register
from edgeroam.policies.facility import POLICY, FacilityConfig
from edgeroam.policies.registry import default_registry
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import Scenario, load_scenario

SCENARIOS = ("facility-power", "facility-cooling", "facility-flood")
SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
VARIANTS = ("baseline", "heal_only", "policy", "no_shutdown")


def scenario_path(name: str) -> Path:
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"scenario {name!r} not found at {path} (run from a checkout)")
    return path


def variant(scenario: Scenario, name: str) -> Scenario:
    """The scenario with only the policies of one variant enabled (others never interfere)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")
    enabled = {"baseline": set(), "heal_only": {"heal"}}.get(name, {"heal", POLICY})
    policies: dict[str, dict[str, Any]] = {}
    for policy in default_registry():
        settings = dict(scenario.policies.get(policy, {}))
        settings["enabled"] = policy in enabled
        if policy == POLICY and name == "no_shutdown":
            settings["power_off"] = False
        policies[policy] = settings
    return scenario.model_copy(update={"policies": policies})


def run_variant(scenario: Scenario, name: str, progress: Progress) -> dict[str, Any]:
    sim = Simulation(variant(scenario, name))
    step = max(1.0, round(scenario.duration_s / 4))
    marks = [step * k for k in range(1, 4)]

    def report(t: float, duration: float) -> None:
        if marks and t >= marks[0]:
            marks.pop(0)
            progress(f"{scenario.name} {name}: t={t:.0f}/{duration:.0f} s")

    result = sim.run(report)
    return result


def battery_runtime(result: dict[str, Any]) -> float | None:
    batteries = result["summary"]["facility"]["batteries"]
    if not batteries:
        return None
    first = batteries[sorted(batteries)[0]]
    runtime: float | None = first["runtime_s"]
    return runtime


def migrated_before_failure(baseline: dict[str, Any], policy: dict[str, Any]) -> bool:
    """No host failed with functions on it in the policy run, and every host that failed in
    the baseline held none at that moment in the policy run."""
    if any(f["instances"] for f in policy["summary"]["facility"]["failures"]):
        return False
    by_t = {entry["t"]: entry for entry in policy["timeline"]}
    for failure in baseline["summary"]["facility"]["failures"]:
        entry = by_t.get(failure["t"])
        if entry is None or entry["hosts"][failure["host"]]["instances"] > 0:
            return False
    return True


def compare(name: str, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = runs["baseline"]["summary"]["facility"]
    pol = runs["policy"]["summary"]["facility"]
    no_shutdown = runs.get("no_shutdown")
    return {
        "scenario": name,
        "baseline": {
            "function_downtime_s": base["function_downtime_s"],
            "critical_downtime_s": base["critical_downtime_s"],
        },
        "policy": {
            "function_downtime_s": pol["function_downtime_s"],
            "critical_downtime_s": pol["critical_downtime_s"],
            "migrated_before_failure": migrated_before_failure(runs["baseline"], runs["policy"]),
            "battery_runtime_s": battery_runtime(runs["policy"]),
            "battery_runtime_without_shutdown_s": (
                battery_runtime(no_shutdown) if no_shutdown is not None else None
            ),
        },
    }


def variants_for(scenario: Scenario, *, reference: bool) -> tuple[str, ...]:
    names = ["baseline", "policy"]
    if scenario.facility is not None and scenario.facility.batteries:
        names.append("no_shutdown")
    if reference:
        names.append("heal_only")
    return tuple(names)


def run_scenario(
    name: str, progress: Progress, *, reference: bool = False
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One scenario's variants: (the JSON row, every variant's full simulation result)."""
    scenario = load_scenario(scenario_path(name))
    runs: dict[str, dict[str, Any]] = {}
    for v in variants_for(scenario, reference=reference):
        progress(f"{name}: {v}")
        runs[v] = run_variant(scenario, v, progress)
    return compare(name, runs), runs


def run(out: Path | None, progress: Progress) -> dict[str, Any]:
    rows = []
    table: list[list[Any]] = []
    for name in SCENARIOS:
        row, runs = run_scenario(name, progress, reference=out is not None)
        rows.append(row)
        for v, result in runs.items():
            f = result["summary"]["facility"]
            table.append(
                [
                    name,
                    v,
                    f["function_downtime_s"],
                    f["critical_downtime_s"],
                    len(f["failures"]),
                    battery_runtime(result),
                ]
            )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            scenario = load_scenario(scenario_path(name))
            write_series(out / f"{name}.csv", scenario, runs)
            plot(out / f"{name}.png", scenario, runs)
    if out is not None:
        with (out / "facility.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                [
                    "scenario",
                    "variant",
                    "function_downtime_s",
                    "critical_downtime_s",
                    "host_failures",
                    "battery_runtime_s",
                ]
            )
            writer.writerows(table)
    return {"scenarios": rows}


# --- output --------------------------------------------------------------------------------------


def _focus(scenario: Scenario) -> tuple[str, str]:
    """What a scenario is about: ('battery', id), ('cooling', room) or ('water', room)."""
    f = scenario.facility
    if f is None:
        raise ValueError(f"scenario {scenario.name} has no facility section")
    if f.batteries:
        return "battery", f.batteries[0].id
    if f.cooling:
        return "cooling", f.cooling[0].room
    if f.floods:
        return "water", f.floods[0].room
    raise ValueError(f"scenario {scenario.name} has an empty facility section")


def _signal(entry: dict[str, Any], focus: tuple[str, str]) -> float:
    """The environment value: battery charge, hottest inlet of the room, or water level."""
    kind, key = focus
    f = entry["facility"]
    if kind == "battery":
        return float(f["batteries"][key]["pct"])
    if kind == "cooling":
        return float(f["rooms"][key]["hottest_inlet_c"])
    return float(f["water"][key]["level_mm"])


def _supply(entry: dict[str, Any], focus: tuple[str, str]) -> tuple[int, int | None]:
    """(the facility works: mains / cooling available / no inflow, cooling running or None)."""
    kind, key = focus
    f = entry["facility"]
    if kind == "battery":
        return int(f["batteries"][key]["mains"]), None
    if kind == "cooling":
        room = f["rooms"][key]
        return int(room["cooling_ok"]), int(room["cooling_on"])
    return 1 - int(f["water"][key]["inflow"]), None


def evacuation_windows(result: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per evacuated host, from its first facility evacuation's start to its last one's end."""
    windows: dict[str, tuple[float, float]] = {}
    for o in result["operations"]:
        if o["policy"] != POLICY or o["operation"] not in ("migrate", "scale-out"):
            continue
        for host in o["sources"]:
            end = o["finished_at"] if o["finished_at"] is not None else o["t"]
            lo, hi = windows.get(host, (o["t"], end))
            windows[host] = (min(lo, o["t"]), max(hi, end))
    return windows


def write_series(path: Path, scenario: Scenario, runs: dict[str, dict[str, Any]]) -> None:
    focus = _focus(scenario)
    names = list(runs)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["t", "facility_ok"]
            + [f"{v}.{k}" for v in names for k in ("signal", "functions_down", "critical_down")]
        )
        for i, entry in enumerate(runs[names[0]]["timeline"]):
            row: list[Any] = [entry["t"], _supply(entry, focus)[0]]
            for v in names:
                e = runs[v]["timeline"][i]
                row += [_signal(e, focus), e["facility"]["down"], e["facility"]["critical_down"]]
            writer.writerow(row)


def _levels(scenario: Scenario, focus: tuple[str, str]) -> list[tuple[str, float, str]]:
    """Horizontal reference levels of the middle panel, named as in the seed's figures."""
    config = FacilityConfig.model_validate(scenario.policies.get(POLICY, {}))
    base = config.base_thresholds()
    facility = scenario.facility
    assert facility is not None
    kind, key = focus
    found: list[tuple[str, float | None, str]]
    if kind == "battery":
        battery = next(b for b in facility.batteries if b.id == key)
        found = [
            ("Normal (clear)", base["battery_pct"].effective("degraded_clear"), "green"),
            ("Deg", base["battery_pct"].degraded, "darkorange"),
            ("Min: UPS cut-off", battery.cutoff_pct, "red"),
        ]
    elif kind == "cooling":
        cooling = next(c for c in facility.cooling if c.room == key)
        found = [
            ("Bas", cooling.low_c, "blue"),
            ("Normal", cooling.high_c, "green"),
            ("Deg", base["temperature_c"].degraded, "darkorange"),
            ("Haut: servers fail", cooling.fail_c, "red"),
        ]
    else:
        deg = base["water_clearance_mm"].degraded or 0.0
        found = []
        for host in scenario.topology.hosts:
            height = host.labels.get("mount_height_mm")
            if host.room == key and height is not None:
                found.append((f"{host.id} Deg", float(height) - deg, "darkorange"))
                found.append((f"{host.id} fails", float(height), "red"))
    return [(label, value, color) for label, value, color in found if value is not None]


def plot(path: Path, scenario: Scenario, runs: dict[str, dict[str, Any]]) -> None:
    """Three stacked panels like the seed's figures: the facility's state (5A), the environment
    value with its levels (5B), and the state of the servers and functions (5C)."""
    focus = _focus(scenario)
    fig = Figure(figsize=(9, 8.5))
    ax_a, ax_b, ax_c = (fig.add_subplot(3, 1, k) for k in (1, 2, 3))
    policy = runs["policy"]["timeline"]
    baseline = runs["baseline"]["timeline"]
    ts = [e["t"] for e in policy]

    supply = [_supply(e, focus) for e in policy]
    label = {"battery": "mains", "cooling": "cooling available", "water": "no water inflow"}
    ax_a.step(ts, [s[0] for s in supply], where="post", color="black", label=label[focus[0]])
    if focus[0] == "cooling":
        running = [s[1] if s[1] is not None else 0 for s in supply]
        ax_a.step(
            ts,
            [0.5 * r for r in running],
            where="post",
            color="tab:blue",
            linewidth=0.8,
            label="cooling running (thermostat)",
        )
        ax_a.legend(fontsize=7, loc="center right")
    ax_a.set_ylim(-0.1, 1.1)
    ax_a.set_yticks([0, 1])
    ax_a.set_yticklabels(["NOK", "OK"])
    ax_a.set_ylabel(label[focus[0]])
    ax_a.set_title(f"{scenario.name}: {scenario.description}", fontsize=9)

    curves = [("baseline (prior art)", baseline, ":", "gray"), ("policy", policy, "-", "tab:blue")]
    if "no_shutdown" in runs:
        curves.append(
            ("policy without shutdown", runs["no_shutdown"]["timeline"], "--", "tab:purple")
        )
    for name, timeline, style, color in curves:
        ax_b.plot(ts, [_signal(e, focus) for e in timeline], style, label=name, color=color)
    for name, value, color in _levels(scenario, focus):
        ax_b.axhline(value, color=color, linewidth=0.8, linestyle="--")
        ax_b.text(ts[-1], value, f" {name}", fontsize=7, va="center", color=color)
    unit = {"battery": "battery charge (%)", "cooling": "hottest inlet (°C)", "water": "water (mm)"}
    ax_b.set_ylabel(unit[focus[0]])
    ax_b.legend(fontsize=7, loc="best")

    for lo, hi in evacuation_windows(runs["policy"]).values():
        for ax in (ax_b, ax_c):
            ax.axvspan(lo, hi, color="orange", alpha=0.3, linewidth=0)
    ax_c.step(
        ts,
        [e["facility"]["down"] for e in baseline],
        where="post",
        color="gray",
        linestyle=":",
        label="baseline: functions down",
    )
    ax_c.step(
        ts,
        [e["facility"]["down"] for e in policy],
        where="post",
        color="tab:red",
        label="policy: functions down",
    )
    for failure in runs["baseline"]["summary"]["facility"]["failures"]:
        ax_c.axvline(failure["t"], color="gray", linewidth=0.6)
    ax_c.set_ylabel("functions down")
    ax_c.set_xlabel("time (s) — shaded: evacuation windows; grey lines: baseline server failures")
    ax_c.legend(fontsize=7, loc="upper left")
    ax_s = ax_c.twinx()
    worst = [
        max((max(p.values()) for p in e["facility"]["levels"].values()), default=0) for e in policy
    ]
    ax_s.step(ts, worst, where="post", color="darkorange", linewidth=1.2)
    ax_s.set_ylim(-0.1, 2.4)
    ax_s.set_yticks([0, 1, 2])
    ax_s.set_yticklabels(["Norm", "Deg", "Def"])
    ax_s.set_ylabel("worst server level (policy)", color="darkorange")
    fig.subplots_adjust(left=0.09, right=0.80, top=0.95, bottom=0.07, hspace=0.3)
    save_png(fig, path, tight=False)


register(
    Experiment(
        "facility",
        "seed 004: functions leave servers whose power, cooling or room fails (vs prior art)",
        run,
    )
)
