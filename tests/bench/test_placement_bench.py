"""`edgeroam bench placement` in a small configuration: shape, and the fill count's closed form."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import edgeroam.cli.bench  # noqa: F401  (registers the `bench` commands)
from edgeroam.bench.placement import fill, run_placement_bench
from edgeroam.cli.app import app
from edgeroam.policies.placement import Strategy


def test_the_bench_reports_both_strategies_and_the_fill() -> None:
    result = run_placement_bench(300, 100, seed=3, repeats=2)
    assert set(result["strategies"]) == {"exhaustive", "heuristic"}
    for timing in result["strategies"].values():
        assert timing["decisions"] == 100
        assert 0 < timing["decide_us_median"] <= timing["decide_us_p95"]
        assert sum(p["decisions"] for p in timing["by_place"].values()) == 100
    assert set(result["fill"]) == {"exhaustive", "heuristic"}


def test_filling_the_edge_places_the_closed_form_count() -> None:
    """TINY needs 1 < remaining: a level-L node takes L − 1; the cloud's 200 link takes R while
    50,000 / (R + 1) < 1000, i.e. R = 200 … 50: 151 instances."""
    nodes, seed = 400, 9
    levels = np.random.default_rng(seed).integers(1, 21, size=nodes)
    expected = int(np.maximum(levels - 1, 0).sum()) + 151
    for strategy in (Strategy.EXHAUSTIVE, Strategy.HEURISTIC):
        assert fill(nodes, seed, strategy)["instances"] == expected


def test_the_command_prints_json() -> None:
    done = CliRunner().invoke(
        app,
        [
            "bench",
            "placement",
            "--nodes",
            "200",
            "--decisions",
            "50",
            "--no-fill",
            "--repeats",
            "1",
        ],
    )
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["nodes"] == 200 and "fill" not in document
