"""`edgeroam policies`: the printed defaults are a valid policies file; bad files are named."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from edgeroam.cli import app, load_commands
from edgeroam.policies.registry import default_registry

load_commands()


def test_defaults_round_trip_through_check(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["policies"])
    assert printed.exit_code == 0
    document = yaml.safe_load(printed.stdout)
    assert set(document["policies"]) == set(default_registry())
    path = tmp_path / "policies.yaml"
    path.write_text(printed.stdout)
    checked = runner.invoke(app, ["policies", "--check", str(path)])
    assert checked.exit_code == 0, checked.output


def test_a_bad_threshold_is_refused_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text("policies:\n  heal:\n    max_per_cycle: 0\n  nosuch: {}\n")
    result = CliRunner().invoke(app, ["policies", "--check", str(path)])
    assert result.exit_code == 2
    assert "policies.heal.max_per_cycle" in result.output
    assert "policies.nosuch: unknown policy" in result.output
