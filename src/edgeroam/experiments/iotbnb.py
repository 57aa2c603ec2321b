"""The IoT-B&B experiments (seed 001 §3.3 and §5) on the reference model.

* `iotbnb-capacity` (Fig. 10) — instances of one flavour deployed until nothing fits, per mode;
* `iotbnb-costs` (Figs. 11–12) — the cost of each successive instance;
* `iotbnb-external-delay` (Fig. 13) — capacity as the cloud's external delay rises;
* `iotbnb-heatmap` (Figs. 9 and 14) — remaining resource levels before and after;
* `iotbnb-scale` (Fig. 5) — decision time per strategy as the edge grows;
* `iotbnb-optimality` — heuristic and exhaustive against the integer program's optimum;
* `iotbnb-lifecycle` (§4.4–4.5) — the `bnb_lifecycle` policy on a small simulated edge.

Every run uses the reference constants (`CostModel()`), flavours and grid; the "run until die"
owner is the node at (0, 0). Each public function takes its sizes as arguments so tests can run
small configurations; the registered experiments use the paper's.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from edgeroam.bench.placement import (
    JAVA_DECISION_US,
    prefill,
    random_edge,
    random_requests,
    time_decisions,
)
from edgeroam.experiments.output import save_png, write_csv
from edgeroam.experiments.registry import Experiment, Progress, register
from edgeroam.policies.placement.costs import CostModel, DelayCheck, PlacementMode, Strategy
from edgeroam.policies.placement.edge import EdgeState, Request
from edgeroam.policies.placement.optimal import solve_batch
from edgeroam.policies.placement.reference import (
    FLAVORS,
    NUM_RESOURCE_LEVELS,
    REFERENCE_LEVELS,
    ReferenceFlavor,
    build_edge,
    flavor,
    grid_coordinates,
    grid_levels,
    random_grid,
    request,
)

MODES = (PlacementMode.LOCAL, PlacementMode.LOCAL_CLOUD, PlacementMode.LOCAL_CLOUD_BNB)
MODERATE = ("SMALL_MODERATE_DELAY", "MEDIUM_MODERATE_DELAY", "LARGE_MODERATE_DELAY")
OWNER = 0
"""The owner of every instance in "run until die": the CPE at (0, 0), level 20."""


def _quiet(_msg: str) -> None:
    return None


def run_until_die(
    state: EdgeState,
    f: ReferenceFlavor,
    mode: PlacementMode,
    strategy: Strategy = Strategy.EXHAUSTIVE,
    owner: int = OWNER,
) -> list[tuple[int, float, str]]:
    """Place instances of `f` one by one until none fits; (row, cost, place kind) of each."""
    req = request(f, owner, mode)
    placed: list[tuple[int, float, str]] = []
    while True:
        choice = state.choose(req, strategy, incremental=True)
        if choice.row is None:
            return placed
        state.commit(choice, req)
        placed.append((choice.row, choice.cost, choice.place))


# --- capacity (Fig. 10) -------------------------------------------------------------------------


def capacity(
    grid: tuple[tuple[int, ...], ...] = REFERENCE_LEVELS,
    strategy: Strategy = Strategy.EXHAUSTIVE,
    cost: CostModel | None = None,
) -> dict[str, Any]:
    rows = []
    levels = grid_levels(grid)
    for f in FLAVORS:
        row: dict[str, Any] = {"flavor": f.name}
        for mode in MODES:
            row[mode.value] = len(run_until_die(build_edge(levels, cost), f, mode, strategy))
        rows.append(row)
    return {"rows": rows}


def run_capacity(out: Path | None, progress: Progress) -> dict[str, Any]:
    progress("run until die: 10 flavours × 3 modes on the reference grid")
    result = capacity()
    if out is not None:
        write_capacity(result, out)
    return result


def write_capacity(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    header = ["flavor", *(m.value for m in MODES)]
    write_csv(
        out / "iotbnb-capacity.csv",
        header,
        [[r[h] for h in header] for r in result["rows"]],
    )
    fig = Figure(figsize=(10, 5))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(result["rows"]))
    width = 0.27
    labels = {"local": "local", "local_cloud": "local + cloud", "local_cloud_bnb": "+ B&B"}
    for k, mode in enumerate(MODES):
        values = [r[mode.value] for r in result["rows"]]
        bars = ax.bar(x + (k - 1) * width, values, width, label=labels[mode.value])
        ax.bar_label(bars, fontsize=6, padding=1)
    ax.set_yscale("log")
    ax.set_xticks(x, [r["flavor"].replace("_", "\n", 1) for r in result["rows"]], fontsize=7)
    ax.set_ylabel("instances deployed (log scale)")
    ax.set_title("Run until die: instances per flavour and placement mode (reference grid)")
    ax.legend()
    save_png(fig, out / "iotbnb-capacity.png")


# --- cost curves (Figs. 11–12) ------------------------------------------------------------------


def cost_curves(flavors: Sequence[str] = MODERATE, cost: CostModel | None = None) -> dict[str, Any]:
    runs = []
    for name in flavors:
        for mode in (PlacementMode.LOCAL_CLOUD, PlacementMode.LOCAL_CLOUD_BNB):
            placed = run_until_die(build_edge(grid_levels(), cost), flavor(name), mode)
            runs.append(
                {
                    "flavor": name,
                    "mode": mode.value,
                    "costs": [round(c, 6) for _, c, _ in placed],
                    "places": [p for _, _, p in placed],
                }
            )
    return {"runs": runs}


def run_costs(out: Path | None, progress: Progress) -> dict[str, Any]:
    progress("cost of each successive instance: 3 flavours × 2 modes")
    result = cost_curves()
    if out is not None:
        write_costs(result, out)
    return {"runs": [{k: v for k, v in r.items() if k != "places"} for r in result["runs"]]}


def write_costs(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        [r["flavor"], r["mode"], i + 1, c, p]
        for r in result["runs"]
        for i, (c, p) in enumerate(zip(r["costs"], r["places"], strict=True))
    ]
    write_csv(out / "iotbnb-costs.csv", ["flavor", "mode", "instance", "cost", "place"], rows)
    fig = Figure(figsize=(11, 4.5))
    for k, mode in enumerate(("local_cloud", "local_cloud_bnb")):
        ax = fig.add_subplot(1, 2, k + 1)
        for r in result["runs"]:
            if r["mode"] == mode:
                ax.plot(range(1, len(r["costs"]) + 1), r["costs"], label=r["flavor"])
        ax.set_xlabel("instances deployed")
        ax.set_ylabel("cost of the instance")
        ax.set_title("local + cloud" if mode == "local_cloud" else "local + cloud + B&B")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_png(fig, out / "iotbnb-costs.png")


# --- external delay (Fig. 13) -------------------------------------------------------------------


def external_delay(
    levels: int = 10,
    step_ms: float = 100.0,
    repetitions: int = 10,
    flavors: Sequence[str] = MODERATE,
    seed: int = 13,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Instances deployed (local + cloud + B&B) with d_ext = level × step, on a fresh random
    grid per repetition (the same grids at every level, so levels differ only by d_ext)."""
    rng = np.random.default_rng(seed)
    grids = [random_grid(rng) for _ in range(repetitions)]
    rows = []
    for level in range(levels + 1):
        progress(f"external delay level {level} of {levels}")
        cost = CostModel(external_delay=level * step_ms)
        for name in flavors:
            counts, clouds = [], []
            for grid in grids:
                placed = run_until_die(
                    build_edge(grid_levels(grid), cost), flavor(name), PlacementMode.LOCAL_CLOUD_BNB
                )
                counts.append(len(placed))
                clouds.append(sum(1 for _, _, p in placed if p == "cloud"))
            rows.append(
                {
                    "flavor": name,
                    "level": level,
                    "external_delay_ms": level * step_ms,
                    "mean": float(np.mean(counts)),
                    "min": int(min(counts)),
                    "max": int(max(counts)),
                    "cloud_mean": float(np.mean(clouds)),
                    "counts": counts,
                }
            )
    return {
        "step_ms": step_ms,
        "repetitions": repetitions,
        "levels": list(range(levels + 1)),
        "rows": rows,
    }


def run_external_delay(out: Path | None, progress: Progress) -> dict[str, Any]:
    result = external_delay(progress=progress)
    if out is not None:
        write_external_delay(result, out)
    return result


def write_external_delay(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "iotbnb-external-delay.csv",
        ["flavor", "level", "external_delay_ms", "mean", "min", "max", "cloud_mean"],
        [
            [r[k] for k in ("flavor", "level", "external_delay_ms", "mean", "min", "max")]
            + [r["cloud_mean"]]
            for r in result["rows"]
        ],
    )
    fig = Figure(figsize=(11, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    for name in MODERATE:
        rs = [r for r in result["rows"] if r["flavor"] == name]
        x = [r["level"] for r in rs]
        mean = np.array([r["mean"] for r in rs])
        err = [mean - [r["min"] for r in rs], [r["max"] for r in rs] - mean]
        ax.errorbar(x, mean, yerr=err, capsize=3, marker="o", label=name)
        ax2.plot(x, [r["cloud_mean"] for r in rs], marker="o", label=name)
    ax.set_xlabel(f"external delay level (× {result['step_ms']:g} ms)")
    ax.set_ylabel("instances deployed (mean, min–max)")
    ax.set_title(f"Local + cloud + B&B, {result['repetitions']} random grids per level")
    ax2.set_xlabel(f"external delay level (× {result['step_ms']:g} ms)")
    ax2.set_ylabel("of which in the cloud (mean)")
    ax2.set_title("The cloud's share shrinks; the B&B nodes stay")
    for a in (ax, ax2):
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    save_png(fig, out / "iotbnb-external-delay.png")


# --- heat maps (Figs. 9 and 14) -----------------------------------------------------------------


def _levels_grid(state: EdgeState, grid: tuple[tuple[int, ...], ...]) -> list[list[float]]:
    """Scarcest remaining resource per cell, in levels; the cloud scaled to 20 levels."""
    cells = grid_coordinates(grid)
    height = max(x for x, _ in cells) + 1
    width = max(len(row) for row in grid)
    out: list[list[float]] = [[math.nan] * width for _ in range(height)]
    for row, (x, y) in enumerate(cells):
        free = state.free[:, row]
        if state.is_cpe[row]:
            value = float(free.min())
        else:
            budget = state.capacity[:, row].copy()
            left = free.copy()
            g = int(state.group[row])
            if g >= 0:
                budget[2] = state.groups[g].budget
                left[2] = state.groups[g].remaining
            value = float((left / budget).min() * NUM_RESOURCE_LEVELS)
        out[x][y] = round(value, 4)
    return out


def heatmap(
    flavor_name: str = "TINY", grid: tuple[tuple[int, ...], ...] = REFERENCE_LEVELS
) -> dict[str, Any]:
    state = build_edge(grid_levels(grid))
    before = _levels_grid(state, grid)
    placed = run_until_die(state, flavor(flavor_name), PlacementMode.LOCAL_CLOUD_BNB)
    return {
        "flavor": flavor_name,
        "deployed": len(placed),
        "before": before,
        "after": _levels_grid(state, grid),
    }


def run_heatmap(out: Path | None, progress: Progress) -> dict[str, Any]:
    progress("remaining resource levels before and after deploying TINY until full")
    result = heatmap()
    if out is not None:
        write_heatmap(result, out)
    return result


def write_heatmap(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in ("before", "after"):
        for x, line in enumerate(result[name]):
            for y, value in enumerate(line):
                rows.append([name, x, y, value])
    write_csv(out / "iotbnb-heatmap.csv", ["when", "x", "y", "level"], rows)
    fig = Figure(figsize=(11, 5))
    for k, name in enumerate(("before", "after")):
        ax = fig.add_subplot(1, 2, k + 1)
        data = np.array(result[name], dtype=float)
        image = ax.imshow(data, cmap="viridis", vmin=0, vmax=NUM_RESOURCE_LEVELS)
        for (x, y), value in np.ndenumerate(data):
            if not math.isnan(value):
                shade = "white" if value < 10 else "black"
                ax.text(y, x, f"{value:.0f}", ha="center", va="center", fontsize=7, c=shade)
        ax.set_title(
            "before (the reference grid; cloud at bottom right)"
            if name == "before"
            else f"after {result['deployed']} {result['flavor']} instances"
        )
        ax.set_xticks(range(data.shape[1]))
        ax.set_yticks(range(data.shape[0]))
        fig.colorbar(image, ax=ax, shrink=0.8, label="scarcest remaining resource (levels)")
    save_png(fig, out / "iotbnb-heatmap.png")


# --- scale (Fig. 5) -----------------------------------------------------------------------------


def scale(
    sizes: Sequence[int] = (50, 100, 1_000, 10_000, 100_000),
    decisions: int = 2_000,
    optimal_up_to: int = 1_000,
    batch: int = 10,
    seed: int = 5,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Time per decision of each strategy on random edges half full (see bench/placement)."""
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"nodes": n}
        for strategy in (Strategy.EXHAUSTIVE, Strategy.HEURISTIC):
            progress(f"{n} nodes: {strategy.value}")
            state = random_edge(n, seed)
            prefill(state, 0.5, seed + 1)
            gc.collect()
            requests = random_requests(n, decisions, seed + 2)
            timing = time_decisions(state, requests, strategy, window=max(1, n // 4))
            row[f"{strategy.value}_us"] = timing["decide_us_median"]
            row[f"{strategy.value}_us_mean"] = timing["decide_us_mean"]
        progress(f"{n} nodes: one-shot (column-wise) exhaustive")
        state = random_edge(n, seed)
        prefill(state, 0.5, seed + 1)
        reqs = random_requests(n, max(20, decisions // 20), seed + 3)
        started = time.perf_counter()
        for req in reqs:
            state.choose(req, Strategy.EXHAUSTIVE)
        row["one_shot_us"] = round((time.perf_counter() - started) / len(reqs) * 1e6, 2)
        row["optimal_us_per_instance"] = None
        if n <= optimal_up_to:
            progress(f"{n} nodes: optimal, batches of {batch}")
            started = time.perf_counter()
            runs = 5
            for k in range(runs):
                solve_batch(state, random_requests(n, batch, seed + 10 + k))
            seconds = time.perf_counter() - started
            row["optimal_us_per_instance"] = round(seconds / (runs * batch) * 1e6, 1)
        row["java_us"] = JAVA_DECISION_US.get(n)
        rows.append(row)
    return {"decisions": decisions, "rows": rows}


def run_scale(out: Path | None, progress: Progress) -> dict[str, Any]:
    result = scale(progress=progress)
    if out is not None:
        write_scale(result, out)
    return result


def write_scale(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    header = [
        "nodes",
        "exhaustive_us",
        "heuristic_us",
        "exhaustive_us_mean",
        "heuristic_us_mean",
        "one_shot_us",
        "optimal_us_per_instance",
        "java_us",
    ]
    write_csv(out / "iotbnb-scale.csv", header, [[r[h] for h in header] for r in result["rows"]])
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot(1, 1, 1)
    nodes = [r["nodes"] for r in result["rows"]]
    for key, label in (
        ("exhaustive_us", "exhaustive (incremental)"),
        ("heuristic_us", "heuristic (incremental)"),
        ("one_shot_us", "exhaustive, one-shot column pass"),
    ):
        ax.plot(nodes, [r[key] for r in result["rows"]], marker="o", label=label)
    opt = [(r["nodes"], r["optimal_us_per_instance"]) for r in result["rows"]]
    opt = [p for p in opt if p[1] is not None]
    if opt:
        ax.plot(*zip(*opt, strict=True), marker="s", label="optimal (HiGHS, per instance)")
    java = sorted(JAVA_DECISION_US.items())
    ax.plot(*zip(*java, strict=True), marker="x", ls="--", c="grey", label="authors' Java")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("CPE nodes")
    ax.set_ylabel("µs per decision (median)")
    ax.set_title("Decision time as the edge grows")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save_png(fig, out / "iotbnb-scale.png")


# --- optimality ---------------------------------------------------------------------------------


def _sequential(state: EdgeState, reqs: list[Request], strategy: Strategy) -> list[int | None]:
    work = state.copy()
    rows: list[int | None] = []
    for req in reqs:
        choice = work.choose(req, strategy)
        rows.append(choice.row)
        if choice.row is not None:
            work.commit(choice, req)
    return rows


def batch_cost(state: EdgeState, reqs: list[Request], rows: Sequence[int | None]) -> float:
    """Objective (14) of an assignment: every cost taken on the state before the batch."""
    total = 0.0
    for req, row in zip(reqs, rows, strict=True):
        if row is None:
            return math.inf
        total += float(state.costs(np.array([row], dtype=np.int64), req)[0])
    return total


def random_batch_world(
    rng: np.random.Generator, nodes: int, batch: int, cost: CostModel
) -> tuple[EdgeState, list[Request]]:
    """A small random edge, partly used, a smaller cloud, and a random batch of requests."""
    state = build_edge(rng.integers(1, 21, size=nodes), cost)
    for _ in range(nodes):
        f = FLAVORS[int(rng.integers(0, 4))]
        req = Request(f.demand, int(rng.integers(0, nodes)), f.max_delay)
        choice = state.choose(req, Strategy.EXHAUSTIVE)
        if choice.row is not None and state.is_cpe[choice.row]:
            state.commit(choice, req)
    reqs = []
    for _ in range(batch):
        f = FLAVORS[int(rng.integers(0, len(FLAVORS)))]
        reqs.append(Request(f.demand, int(rng.integers(0, nodes)), f.max_delay))
    return state, reqs


def optimality(
    batches: int = 100,
    nodes: int = 12,
    batch: int = 12,
    seed: int = 21,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Costs of heuristic and exhaustive against the optimum on random batches.

    All three use the `protect` delay check, so each sequential answer is a feasible point of
    the integer program and the optimum is a true lower bound.
    """
    cost = CostModel(delay_check=DelayCheck.PROTECT)
    rng = np.random.default_rng(seed)
    runs: list[dict[str, Any]] = []
    skipped = 0
    for b in range(batches):
        if b % 20 == 0:
            progress(f"batch {b} of {batches}")
        state, reqs = random_batch_world(rng, nodes, batch, cost)
        solution = solve_batch(state, reqs)
        if solution.status != "optimal":
            skipped += 1
            continue
        run: dict[str, Any] = {"batch": b, "optimal": round(solution.objective, 6)}
        for strategy in (Strategy.HEURISTIC, Strategy.EXHAUSTIVE):
            rows = _sequential(state, reqs, strategy)
            value = batch_cost(state, reqs, rows)
            run[strategy.value] = None if math.isinf(value) else round(value, 6)
        run["solve_ms"] = round(solution.seconds * 1000, 2)
        runs.append(run)
    gap = {s: _gap_stats(runs, s) for s in ("heuristic", "exhaustive")}
    return {
        "batches": batches,
        "nodes": nodes,
        "batch_size": batch,
        "solved": len(runs),
        "infeasible_batches": skipped,
        "gap": gap,
        "runs": runs,
    }


def _gap_stats(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    absolute: list[float] = []
    relative: list[float] = []
    unplaced = 0
    for run in runs:
        value = run[name]
        if value is None:
            unplaced += 1
            continue
        diff = value - run["optimal"]
        absolute.append(diff)
        if run["optimal"] > 0:
            relative.append(diff / run["optimal"])
    rel = np.array(relative) if relative else np.zeros(1)
    ab = np.array(absolute) if absolute else np.zeros(1)
    return {
        "compared": len(absolute),
        "unplaced_batches": unplaced,
        "optimal_share": round(float(np.mean(ab <= 1e-6)), 4),
        "relative_mean": round(float(rel.mean()), 4),
        "relative_median": round(float(np.median(rel)), 4),
        "relative_p90": round(float(np.percentile(rel, 90)), 4),
        "relative_max": round(float(rel.max()), 4),
        "absolute_mean": round(float(ab.mean()), 4),
        "absolute_min": round(float(ab.min()), 6),
    }


def run_optimality(out: Path | None, progress: Progress) -> dict[str, Any]:
    result = optimality(progress=progress)
    if out is not None:
        write_optimality(result, out)
    return result


def write_optimality(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "iotbnb-optimality.csv",
        ["batch", "optimal", "heuristic", "exhaustive", "solve_ms"],
        [
            [r["batch"], r["optimal"], r["heuristic"], r["exhaustive"], r["solve_ms"]]
            for r in result["runs"]
        ],
    )
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for name in ("heuristic", "exhaustive"):
        gaps = sorted(
            (r[name] - r["optimal"]) / r["optimal"]
            for r in result["runs"]
            if r[name] is not None and r["optimal"] > 0
        )
        if gaps:
            share = np.arange(1, len(gaps) + 1) / len(gaps)
            ax.step(np.array(gaps) * 100, share, where="post", label=name)
    ax.set_xlabel("cost above the optimum (%)")
    ax.set_ylabel("share of batches")
    ax.set_title(
        f"Optimality gap on {result['solved']} random batches of {result['batch_size']} "
        f"instances ({result['nodes']} CPEs + cloud)"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, out / "iotbnb-optimality.png")


# --- the system life cycle (§4.4–4.5) -----------------------------------------------------------


def lifecycle() -> dict[str, Any]:
    """Run the life-cycle scenario; per tick, where the group's instances are and their cost."""
    from edgeroam.model import HostKind, Role
    from edgeroam.sim.bnb_worlds import lifecycle_scenario
    from edgeroam.sim.runner import Simulation

    sim = Simulation(lifecycle_scenario())
    ticks: list[dict[str, Any]] = []

    def observe(sim: Simulation, _sample: Any, _report: Any) -> None:
        inv = sim.controller.inventory
        counts = {"own": 0, "bnb": 0, "cloud": 0, "standby": 0}
        for inst in inv.instances.values():
            if inst.group_key != "iot-c1":
                continue
            host = inv.hosts[inst.host]
            if inst.role is Role.STANDBY:
                counts["standby"] += 1
            elif host.kind is HostKind.CPE:
                counts["own" if host.owner == inst.owner else "bnb"] += 1
            else:
                counts["cloud"] += 1
        entry = sim.timeline[-1] if sim.timeline else {}
        bnb = entry.get("bnb", {})
        group = bnb.get("groups", {}).get("iot-c1", {})
        ticks.append(
            {
                "t": entry.get("t"),
                **counts,
                "demand": group.get("demand"),
                "cost": bnb.get("cost"),
                "withdrawn": bnb.get("withdrawn", []),
            }
        )

    sim.observers.append(observe)
    result = sim.run()
    operations = [
        {
            "t": op["t"],
            "operation": op["operation"],
            "rule": op["reason"]["rule"],
            "hosts": op["hosts"],
            "sources": op["sources"],
        }
        for op in result["operations"]
    ]
    return {"summary": result["summary"]["bnb"], "operations": operations, "timeline": ticks}


def run_lifecycle(out: Path | None, progress: Progress) -> dict[str, Any]:
    progress("running the bnb-lifecycle scenario")
    result = lifecycle()
    if out is not None:
        write_lifecycle(result, out)
    return result


def write_lifecycle(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    header = ["t", "own", "bnb", "cloud", "standby", "demand", "cost"]
    write_csv(
        out / "iotbnb-lifecycle.csv", header, [[r[h] for h in header] for r in result["timeline"]]
    )
    ticks = result["timeline"]
    t = [r["t"] for r in ticks]
    fig = Figure(figsize=(11, 6.5))
    ax = fig.add_subplot(2, 1, 1)
    ax.stackplot(
        t,
        [r["own"] for r in ticks],
        [r["bnb"] for r in ticks],
        [r["cloud"] for r in ticks],
        labels=["active on the owner's CPE", "active on B&B nodes", "active in the cloud"],
        alpha=0.8,
    )
    ax.plot(t, [r["standby"] for r in ticks], color="black", ls="--", label="standbys")
    ax.plot(t, [r["demand"] for r in ticks], color="red", lw=1, label="demand (instances)")
    ax.set_ylabel("instances")
    ax.set_title("Group iot-c1: scale-out, B&B withdrawal of cpe-2 at 120 s, scale-in from 200 s")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
    ax2.plot(t, [r["cost"] for r in ticks], color="tab:purple")
    for op in result["operations"]:
        if op["operation"] == "migrate":
            ax2.axvline(op["t"], color="grey", ls=":", lw=0.8)
    ax2.set_xlabel("time (s)   (dotted: migrations)")
    ax2.set_ylabel("placement cost of the group")
    ax2.grid(alpha=0.3)
    save_png(fig, out / "iotbnb-lifecycle.png")


register(
    Experiment("iotbnb-capacity", "IoT-B&B Fig. 10: instances per flavour and mode", run_capacity)
)
register(
    Experiment("iotbnb-costs", "IoT-B&B Figs. 11-12: cost of each successive instance", run_costs)
)
register(
    Experiment(
        "iotbnb-external-delay",
        "IoT-B&B Fig. 13: capacity as the cloud's external delay rises",
        run_external_delay,
    )
)
register(
    Experiment(
        "iotbnb-heatmap", "IoT-B&B Figs. 9 and 14: remaining levels before/after", run_heatmap
    )
)
register(Experiment("iotbnb-scale", "IoT-B&B Fig. 5: decision time vs number of nodes", run_scale))
register(
    Experiment(
        "iotbnb-optimality",
        "heuristic and exhaustive cost against the integer program's optimum",
        run_optimality,
    )
)
register(
    Experiment(
        "iotbnb-lifecycle",
        "IoT-B&B §4.4-4.5: the system life cycle on a small edge (bnb_lifecycle policy)",
        run_lifecycle,
    )
)
