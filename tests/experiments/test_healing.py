"""The `healing` experiment: restoration time follows from the driver latency and the plan."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgeroam.experiments.healing import _run_one, run
from edgeroam.experiments.registry import load_all


@pytest.mark.parametrize("latency", [0.5, 2.0])
def test_without_failures_service_returns_after_two_driver_actions_and_a_tick(
    latency: float,
) -> None:
    # The heal plan starts with create_sandbox then start_function on the target; the sim
    # driver finishes an action at the first 1 s tick after its latency, and traffic follows
    # the instance from the next tick on.
    result = _run_one(latency, 0.0, seed=3)
    assert result["restored_after_s"] == 2 * math.ceil(latency) + 1
    assert result["operations_by_state"] == {"COMPLETED": result["operations"]}


def test_failures_never_restore_sooner_and_retries_still_complete() -> None:
    clean = _run_one(0.5, 0.0, seed=3)
    flaky = _run_one(0.5, 0.4, seed=3)
    assert flaky["restored_after_s"] is not None
    assert flaky["restored_after_s"] >= clean["restored_after_s"]
    assert flaky["unserved_mbit"] >= clean["unserved_mbit"]
    assert set(flaky["operations_by_state"]) == {"COMPLETED"}


def test_registered_and_writes_csv_and_plot(tmp_path: Path) -> None:
    assert "healing" in load_all()
    result = run(tmp_path, lambda _message: None)
    assert len(result["runs"]) == 6
    assert (tmp_path / "healing.csv").read_text().count("\n") == 7
    assert (tmp_path / "healing.png").stat().st_size > 10_000
