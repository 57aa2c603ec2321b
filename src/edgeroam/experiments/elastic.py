"""`elastic`: edgeroam's elastic scaling against a naive threshold autoscaler, same day, same trace.

Both runs replay `scenarios/elastic-diurnal.yaml` (a branch and a cloud, a day/night cycle with
bursts, one firewall crash at 12:00:30) with the same seed, so every group sees the same demand;
only the deciding policies differ:

* edgeroam: the built-in `elastic`, `ratio` and `failover` policies;
* naive: `experiments.naive.NaiveAutoscaler` with the same overload/underload levels, and no
  standby handling (so also no healing beyond the built-in host-failure `heal`).

The JSON is ``{"naive": {...}, "edgeroam": {...}}`` with, per run: scaling operations (scale-out
and scale-in operations of any policy), oscillations (a scaling action of a group followed by
the opposite one within the scenario's oscillation window), overload time (group-seconds with
demand above the serving members' capacity), instance-hours (all members of the managed groups,
standbys included) and unavailable time (group-seconds with a crashed active member still
holding its share). With ``--out``: per-run timelines and operations as CSV, every measure of
both runs in summary.json, and three plots (load, group sizes, operations).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from edgeroam.experiments.naive import NaiveAutoscaler, NaiveConfig
from edgeroam.experiments.output import save_png
from edgeroam.experiments.registry import Experiment, Progress, register
from edgeroam.policies.elastic import ElasticConfig
from edgeroam.policies.registry import PolicyRegistry, default_registry
from edgeroam.sim.load import LoadModel
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import Scenario, load_scenario

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "elastic-diurnal.yaml"
KEYS = ("scaling_operations", "oscillations", "overload_s", "instance_hours", "unavailable_s")
SCALING_POLICIES = {"edgeroam": ("elastic", "ratio", "failover"), "naive": ("naive",)}


def _registry(scenario: Scenario, variant: str) -> PolicyRegistry:
    registry = default_registry()
    if variant == "naive":
        elastic = ElasticConfig.model_validate(scenario.policies.get("elastic", {}))
        registry.register(
            NaiveAutoscaler(),
            NaiveConfig(
                overload=elastic.defaults.overload.level,
                underload=elastic.defaults.underload.level,
                branch_limit=elastic.branch.overload,
            ),
        )
    return registry


def run_variant(
    scenario: Scenario,
    variant: str,
    progress: Callable[[float, float], None] | None = None,
) -> dict[str, Any]:
    """One run of the scenario with edgeroam's policies or the naive autoscaler."""
    if variant not in SCALING_POLICIES:
        raise ValueError(f"unknown variant {variant!r}; use one of {sorted(SCALING_POLICIES)}")
    sim = Simulation(scenario, registry=_registry(scenario, variant))
    if variant == "naive":
        for name in ("elastic", "ratio", "failover"):
            sim.controller.registry.configure(name, {"enabled": False})
    result = sim.run(progress)
    measures = result["summary"].get("elastic")
    if measures is None:
        raise ValueError(f"scenario {scenario.name!r} has no load: section to measure")
    return {"measures": measures, "timeline": result["timeline"], "operations": _ops(sim)}


def _ops(sim: Simulation) -> list[dict[str, Any]]:
    model = next(m for m in sim.models if isinstance(m, LoadModel))
    rows = []
    for key in sorted(model.operations):
        op = model.operations[key]
        names = (op.subject, *op.instances)
        group = op.subject if op.subject in model.groups else None
        group = group or next((model.group_of[n] for n in names if n in model.group_of), "")
        rows.append(
            {
                "t": op.created_at,
                "kind": op.kind.value,
                "group": group,
                "subject": op.subject,
                "policy": op.policy,
                "state": op.state.value,
            }
        )
    return rows


def run(out: Path | None, progress: Progress, scenario_path: Path = SCENARIO) -> dict[str, Any]:
    scenario = load_scenario(scenario_path)
    runs: dict[str, dict[str, Any]] = {}
    for variant in ("naive", "edgeroam"):
        progress(f"{variant}: one simulated day ({scenario.duration_s:g} s)")
        last = [0.0]

        def tick(
            t: float, duration: float, variant: str = variant, last: list[float] = last
        ) -> None:
            if t - last[0] >= 21600 or t >= duration:
                last[0] = t
                progress(f"{variant}: t = {t / 3600:.0f} h")

        runs[variant] = run_variant(scenario, variant, tick)
    result = {v: {k: runs[v]["measures"][k] for k in KEYS} for v in ("naive", "edgeroam")}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for variant, data in runs.items():
            _write_timeline(out / f"{variant}-timeline.csv", data["timeline"])
            _write_operations(out / f"{variant}-operations.csv", data["operations"])
        (out / "summary.json").write_text(
            json.dumps({v: runs[v]["measures"] for v in runs}, indent=2, default=str)
        )
        _plot_load(out / "load.png", runs["edgeroam"]["timeline"])
        _plot_sizes(out / "group-sizes.png", runs)
        _plot_operations(out / "operations.png", runs)
        progress(f"wrote CSV and PNG files to {out}")
    return result


# --- files --------------------------------------------------------------------------------------


def _write_timeline(path: Path, timeline: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["t", "group", "active", "standby", "serving", "failed", "utilisation", "demand"]
        )
        for entry in timeline:
            for gid, g in sorted(entry.get("groups", {}).items()):
                demand = ";".join(f"{k}={v}" for k, v in sorted(g["demand"].items()))
                writer.writerow(
                    [
                        entry["t"],
                        gid,
                        g["active"],
                        g["standby"],
                        g["serving"],
                        g["failed"],
                        g["utilisation"],
                        demand,
                    ]
                )


def _write_operations(path: Path, operations: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["t", "kind", "group", "subject", "policy", "state"])
        writer.writeheader()
        writer.writerows(operations)


def _groups(timeline: list[dict[str, Any]]) -> list[str]:
    return sorted(timeline[0].get("groups", {})) if timeline else []


def _hours(timeline: list[dict[str, Any]]) -> list[float]:
    return [e["t"] / 3600 for e in timeline]


def _plot_load(path: Path, timeline: list[dict[str, Any]]) -> None:
    """Demand on each group's first metric (the shared trace both runs saw)."""
    fig = Figure(figsize=(10, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    hours = _hours(timeline)
    for gid in _groups(timeline):
        series = []
        for e in timeline:
            demand = e["groups"][gid]["demand"]
            series.append(next(iter(demand.values()), 0.0) if demand else 0.0)
        ax.plot(hours, series, label=gid, linewidth=1.2)
    ax.set_xlabel("time of day (h)")
    ax.set_ylabel("demand (first metric: cpu cores or jobs)")
    ax.set_title(
        "Demand on the managed groups (edgeroam's run; a manager's follows what it manages)"
    )
    ax.set_xlim(0, 24)
    ax.legend(fontsize=8, ncol=5)
    ax.grid(alpha=0.3)
    save_png(fig, path)


def _plot_sizes(path: Path, runs: dict[str, dict[str, Any]]) -> None:
    groups = _groups(runs["edgeroam"]["timeline"])
    fig = Figure(figsize=(10, 2.2 * len(groups) + 0.6))
    for i, gid in enumerate(groups):
        ax = fig.add_subplot(len(groups), 1, i + 1)
        for variant, style in (("naive", "-"), ("edgeroam", "-")):
            timeline = runs[variant]["timeline"]
            ax.step(
                _hours(timeline),
                [e["groups"][gid]["active"] for e in timeline],
                style,
                where="post",
                label=f"{variant} active",
                linewidth=1.4 if variant == "edgeroam" else 0.9,
                alpha=1.0 if variant == "edgeroam" else 0.7,
            )
        timeline = runs["edgeroam"]["timeline"]
        ax.step(
            _hours(timeline),
            [e["groups"][gid]["standby"] for e in timeline],
            ":",
            where="post",
            label="edgeroam standby",
            color="gray",
        )
        ax.set_ylabel(gid)
        ax.set_xlim(0, 24)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_title("Group sizes over the day: naive autoscaler vs edgeroam")
            ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.axes[-1].set_xlabel("time of day (h)")
    save_png(fig, path)


def _plot_operations(path: Path, runs: dict[str, dict[str, Any]]) -> None:
    fig = Figure(figsize=(10, 5.2))
    markers = {"scale-out": "^", "scale-in": "v", "promote": "*", "heal": "P", "migrate": "s"}
    ax = fig.add_subplot(1, 1, 1)
    groups = _groups(runs["edgeroam"]["timeline"])
    offsets = {"naive": -0.18, "edgeroam": 0.18}
    colors = {"naive": "tab:red", "edgeroam": "tab:blue"}
    for variant, data in runs.items():
        for kind, marker in markers.items():
            points = [
                (op["t"] / 3600, groups.index(op["group"]) + offsets[variant])
                for op in data["operations"]
                if op["kind"] == kind and op["group"] in groups
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(
                    xs, ys, marker=marker, s=28, color=colors[variant], label=f"{variant} {kind}"
                )
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xlabel("time of day (h)")
    ax.set_xlim(0, 24)
    ax.set_title("Operations over the day (naive below each group's line, edgeroam above)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    save_png(fig, path)


register(
    Experiment(
        "elastic",
        "edgeroam's elastic scaling and failover vs a naive threshold autoscaler over one day",
        run,
    )
)
