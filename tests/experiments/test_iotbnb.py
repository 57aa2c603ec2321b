"""The IoT-B&B experiments in fast configurations: JSON shapes, files written, sanity."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeroam.cli.app import app
from edgeroam.experiments import iotbnb
from edgeroam.experiments.registry import load_all
from edgeroam.policies.placement.reference import FLAVORS, random_grid

NAMES = [
    "iotbnb-lifecycle",
    "iotbnb-capacity",
    "iotbnb-costs",
    "iotbnb-external-delay",
    "iotbnb-heatmap",
    "iotbnb-scale",
    "iotbnb-optimality",
]


def test_all_six_experiments_are_registered() -> None:
    assert set(NAMES) <= set(load_all())


def test_capacity_cli_prints_exactly_the_rows_document(tmp_path: Path) -> None:
    import edgeroam.cli.simulate  # noqa: F401  (registers the `experiment` command)

    done = CliRunner().invoke(
        app, ["experiment", "iotbnb-capacity", "--json", "--out", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert list(document) == ["rows"]
    assert [r["flavor"] for r in document["rows"]] == [f.name for f in FLAVORS]
    assert all(
        list(r) == ["flavor", "local", "local_cloud", "local_cloud_bnb"] for r in document["rows"]
    )
    small = next(r for r in document["rows"] if r["flavor"] == "SMALL_MODERATE_DELAY")
    assert (small["local"], small["local_cloud"], small["local_cloud_bnb"]) == (9, 85, 550)
    with (tmp_path / "iotbnb-capacity.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["local_cloud_bnb"]) for r in rows] == [
        r["local_cloud_bnb"] for r in document["rows"]
    ]
    assert (tmp_path / "iotbnb-capacity.png").stat().st_size > 10_000


def test_costs_runs_and_files(tmp_path: Path) -> None:
    result = iotbnb.run_costs(tmp_path, lambda _m: None)
    assert [(r["flavor"], r["mode"]) for r in result["runs"]] == [
        (f, m) for f in iotbnb.MODERATE for m in ("local_cloud", "local_cloud_bnb")
    ]
    for run in result["runs"]:
        assert set(run) == {"flavor", "mode", "costs"}
        assert run["costs"][0] == 0  # the owner's CPE first
    assert (tmp_path / "iotbnb-costs.png").exists() and (tmp_path / "iotbnb-costs.csv").exists()


def test_external_delay_only_ever_removes_cloud_capacity(tmp_path: Path) -> None:
    result = iotbnb.external_delay(
        levels=9, step_ms=100, repetitions=2, flavors=["SMALL_MODERATE_DELAY"]
    )
    means = [r["mean"] for r in result["rows"]]
    clouds = [r["cloud_mean"] for r in result["rows"]]
    assert means == sorted(means, reverse=True)
    # At d_ext = 800 ms, 50,000 / (R + 1) < 200 ms needs R > 249: more than the 200 link.
    assert clouds[8] == clouds[9] == 0
    assert means[0] - means[9] == clouds[0]  # the B&B nodes' share does not depend on d_ext
    iotbnb.write_external_delay(result, tmp_path)
    assert (tmp_path / "iotbnb-external-delay.png").exists()


def test_heatmap_before_is_the_reference_grid_and_after_is_drained(tmp_path: Path) -> None:
    result = iotbnb.run_heatmap(tmp_path, lambda _m: None)
    before = np.array(result["before"], dtype=float)
    after = np.array(result["after"], dtype=float)
    assert before[0, 0] == 20 and before[9, 9] == 20  # owner's CPE and the full cloud
    assert np.isnan(before).sum() == 0
    cpes = np.ones_like(before, dtype=bool)
    cpes[9, 9] = False
    # TINY needs 1 < remaining: every CPE ends at exactly one level (or its level 1 start).
    assert (after[cpes] == 1).all()
    assert after[9, 9] < before[9, 9]
    assert (tmp_path / "iotbnb-heatmap.png").exists()


def test_scale_reports_every_strategy(tmp_path: Path) -> None:
    result = iotbnb.scale(sizes=(50, 200), decisions=60, optimal_up_to=50, batch=3)
    assert [r["nodes"] for r in result["rows"]] == [50, 200]
    for row in result["rows"]:
        assert row["exhaustive_us"] > 0 and row["heuristic_us"] > 0 and row["one_shot_us"] > 0
    assert result["rows"][0]["optimal_us_per_instance"] is not None
    assert result["rows"][1]["optimal_us_per_instance"] is None
    iotbnb.write_scale(result, tmp_path)
    assert (tmp_path / "iotbnb-scale.csv").exists()


def test_optimality_gaps_are_never_negative(tmp_path: Path) -> None:
    result = iotbnb.optimality(batches=6, nodes=6, batch=5)
    assert result["solved"] + result["infeasible_batches"] == 6
    for run in result["runs"]:
        for name in ("heuristic", "exhaustive"):
            if run[name] is not None:
                assert run[name] >= run["optimal"] - 1e-6
    for name in ("heuristic", "exhaustive"):
        assert result["gap"][name]["absolute_min"] >= -1e-6
    iotbnb.write_optimality(result, tmp_path)
    assert (tmp_path / "iotbnb-optimality.png").exists()


def test_random_grids_look_like_the_papers() -> None:
    grid = random_grid(np.random.default_rng(1))
    assert [len(row) for row in grid] == [10] * 9 + [9]
    assert all(1 <= v <= 20 for row in grid for v in row)


@pytest.mark.parametrize("name", ["TINY", "LARGE_HIGH_DELAY"])
def test_run_until_die_heuristic_reaches_the_same_capacity(name: str) -> None:
    from edgeroam.policies.placement import PlacementMode, Strategy
    from edgeroam.policies.placement.reference import build_edge, flavor, grid_levels

    counts = {
        s: len(
            iotbnb.run_until_die(
                build_edge(grid_levels()), flavor(name), PlacementMode.LOCAL_CLOUD_BNB, s
            )
        )
        for s in (Strategy.EXHAUSTIVE, Strategy.HEURISTIC)
    }
    assert counts[Strategy.EXHAUSTIVE] == counts[Strategy.HEURISTIC]


def test_lifecycle_tracks_where_the_group_runs(tmp_path: Path) -> None:
    result = iotbnb.run_lifecycle(tmp_path, lambda _m: None)
    ticks = result["timeline"]
    assert ticks[0]["own"] == 1 and ticks[-1] == {**ticks[-1], "own": 1, "bnb": 0, "cloud": 0}
    assert max(t["bnb"] for t in ticks) > 0 and max(t["cloud"] for t in ticks) > 0
    during = [t for t in ticks if 130 <= t["t"] < 200]
    assert all("cpe-2" in t["withdrawn"] for t in during)
    assert (tmp_path / "iotbnb-lifecycle.png").exists()
