"""`edgeroam rules check` and `edgeroam rules reload` (the latter against nothing listening)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edgeroam.cli import app
from edgeroam.cli.rules import rules_app

RUNNER = CliRunner()
BRANCH = Path(__file__).resolve().parents[2] / "scenarios" / "rules" / "branch.yaml"


def test_check_lists_valid_rules_and_prints_them_as_json() -> None:
    assert rules_app is not None
    result = RUNNER.invoke(app, ["rules", "check", str(BRANCH)])
    assert result.exit_code == 0, result.output
    assert "fw-saturated: sequence [grow:scale, tell:notify, ticket:custom]" in result.stdout
    parsed = RUNNER.invoke(app, ["rules", "check", str(BRANCH), "--json"])
    names = [r["name"] for r in json.loads(parsed.stdout)["rules"]]
    assert names == ["fw-saturated", "fw-failover-notice"]


def test_check_reports_each_problem_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - name: r\n    when: {metric: x, source: 'host:a', op: '~', value: 1}\n"
        "    actions: [{do: migrate}]\n"
    )
    result = RUNNER.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert "rules[0].when.op" in result.output
    assert "rules[0].actions[0]: a migrate action needs instance" in result.output


def test_reload_says_when_the_controller_is_unreachable() -> None:
    result = RUNNER.invoke(app, ["rules", "reload", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 3
    assert "cannot reach edgeroam" in result.output
