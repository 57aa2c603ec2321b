"""The `elastic` experiment on the diurnal scenario: the issue's acceptance criteria.

One run of the experiment (both variants, one simulated day each) is shared by the tests.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from edgeroam.experiments.elastic import KEYS, SCENARIO, run
from edgeroam.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("elastic")
    messages: list[str] = []
    result = run(out, messages.append)
    assert messages  # progress was reported
    return result, out


def test_the_json_has_exactly_the_agreed_shape(experiment: tuple[dict[str, Any], Path]) -> None:
    result, out = experiment
    assert set(result) == {"naive", "edgeroam"}
    for measures in result.values():
        assert tuple(measures) == KEYS
    assert json.loads(json.dumps(result)) == result
    for name in ("load.png", "group-sizes.png", "operations.png", "summary.json"):
        assert (out / name).stat().st_size > 0


def test_half_the_scaling_operations_with_no_more_overload(
    experiment: tuple[dict[str, Any], Path],
) -> None:
    result, _ = experiment
    naive, edgeroam = result["naive"], result["edgeroam"]
    assert edgeroam["scaling_operations"] <= 0.5 * naive["scaling_operations"]
    assert edgeroam["overload_s"] <= naive["overload_s"]
    assert edgeroam["oscillations"] < naive["oscillations"]


def _timeline(out: Path, variant: str) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (out / f"{variant}-timeline.csv").open() as fh:
        for row in csv.DictReader(fh):
            rows[row["group"]].append(row)
    return rows


def test_never_below_a_minimum(experiment: tuple[dict[str, Any], Path]) -> None:
    _, out = experiment
    scenario = load_scenario(SCENARIO)
    minimum = {g.id: g.min_size for g in scenario.groups}
    for gid, rows in _timeline(out, "edgeroam").items():
        assert min(int(r["active"]) for r in rows) >= minimum[gid], gid
    summary = json.loads((out / "summary.json").read_text())["edgeroam"]
    assert all(summary["min_active"][g] >= summary["min_size"][g] for g in minimum)


def test_never_scales_an_object_during_its_own_operation(
    experiment: tuple[dict[str, Any], Path],
) -> None:
    _, out = experiment
    summary = json.loads((out / "summary.json").read_text())
    assert summary["edgeroam"]["scaled_during_operation"] == 0
    assert summary["naive"]["scaled_during_operation"] > 0  # the baseline does not look


def test_the_failure_is_healed_by_promoting_a_standby_within_one_cycle(
    experiment: tuple[dict[str, Any], Path],
) -> None:
    result, out = experiment
    scenario = load_scenario(SCENARIO)
    assert scenario.load is not None
    failure = scenario.load.failures[0]
    assert result["edgeroam"]["unavailable_s"] <= scenario.tick_s
    assert result["naive"]["unavailable_s"] > result["edgeroam"]["unavailable_s"]
    with (out / "edgeroam-operations.csv").open() as fh:
        ops = list(csv.DictReader(fh))
    promotions = [o for o in ops if o["kind"] == "promote" and o["group"] == failure.group]
    assert promotions and float(promotions[0]["t"]) - failure.t <= scenario.tick_s
    assert promotions[0]["state"] == "COMPLETED"
