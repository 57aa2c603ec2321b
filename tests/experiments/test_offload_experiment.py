"""`offload-large` on a small generated world: the band before, during and after the flood."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from edgeroam.experiments.offload import SCENARIO_DIR, offload_world, run, run_examples, run_pair
from edgeroam.experiments.registry import load_all
from edgeroam.model import HostKind
from edgeroam.sim.scenario import load_scenario

CPES = 60
ATTACK = {"attack_start": 20.0, "attack_end": 60.0, "duration_s": 100.0}


@cache
def runs() -> dict[str, Any]:
    return run_pair(CPES, lambda _msg: None, **ATTACK)


def test_the_generated_world_floods_from_the_requested_share_of_cpes() -> None:
    world = offload_world(CPES, attack_share=0.05)
    flooders = {f.customer for f in world.flows if f.protocol == "icmp-echo"}
    assert len(flooders) == round(CPES * 0.05)
    assert all(f.destination == "50.1.1.1" for f in world.flows if f.protocol == "icmp-echo")
    cpes = [h for h in world.topology.hosts if h.kind is HostKind.CPE]
    assert len(cpes) == CPES


def test_without_the_policy_the_flood_holds_the_band_above_the_threshold() -> None:
    ratios = runs()["no-policy"]["use_ratio"]
    assert ratios["before"] < 0.7 < ratios["during"]
    assert ratios["after"] < 0.7
    assert runs()["no-policy"]["operations_by_kind"] == {}


def test_with_the_policy_the_band_returns_below_the_threshold_and_the_filter_comes_back() -> None:
    result = runs()["offload"]
    assert result["use_ratio"]["during"] < 0.7
    assert result["use_ratio"]["before"] < 0.7 and result["use_ratio"]["after"] < 0.7
    kinds = [row["operation"] for row in result["operations"]]
    assert kinds == ["offload", "revert"]
    # The filter goes exactly to the flooders that have room for it; the others are named.
    world = offload_world(CPES, **ATTACK)
    flavor = world.flavors[0]
    flooders = {f.customer for f in world.flows if f.protocol == "icmp-echo"}
    cpes = {h.owner: h for h in world.topology.hosts if h.kind is HostKind.CPE}
    roomy = [c for c in flooders if cpes[c].capacity.vcpu >= flavor.vcpu]
    assert result["cpes_offloaded"] == len(roomy)
    assert result["cpes_skipped"] == len(flooders) - len(roomy)
    assert result["operations"][1]["hosts"] == len(roomy)


def test_the_experiment_is_registered_and_writes_its_plot(tmp_path: Path) -> None:
    assert "offload-large" in load_all()
    summary = run(tmp_path, lambda _msg: None, cpes=20)
    assert (tmp_path / "offload-large.png").stat().st_size > 0
    lines = (tmp_path / "offload-large.csv").read_text().splitlines()
    assert lines[0] == "t,use_ratio_offload,use_ratio_no_policy,security_offload"
    assert len(lines) == 1 + 241  # one row per tick of the 240 s run
    assert set(summary["runs"]) == {"offload", "no-policy"}


def test_the_worked_examples_experiment_reports_each_move_and_plots_them(tmp_path: Path) -> None:
    result = run_examples(tmp_path, lambda _msg: None)
    assert (tmp_path / "offload-examples.png").stat().st_size > 0
    for name, moves in result["examples"].items():
        threshold = load_scenario(SCENARIO_DIR / f"{name}.yaml").policies["offload"]["threshold"]
        assert [m["operation"] for m in moves] == ["offload", "revert"]
        offload, revert = moves
        assert offload["used_mbps_before"] > threshold * 1000 >= offload["used_mbps_after"]
        assert revert["used_mbps_after"] <= threshold * 1000
        assert revert["hosts"] == offload["hosts"]
