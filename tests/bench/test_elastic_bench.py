"""`edgeroam bench elastic` on a small world: shape and the world it builds."""

from __future__ import annotations

from edgeroam.bench.elastic import build_world, run_elastic_bench


def test_the_world_has_a_manager_and_function_groups_per_branch() -> None:
    inventory, reporters = build_world(branches=3, functions=2, members=2)
    assert len(inventory.groups) == 1 + 3 * (1 + 2)
    # cloud manager + per branch: local manager + 2 groups of (2 actives + 1 standby)
    assert len(inventory.instances) == 1 + 3 * (1 + 2 * 3) == len(reporters)
    assert inventory.groups["vnf1-2"].manager == "lvnfm-2"
    assert inventory.groups["lvnfm-2"].manager == "cvnfm"


def test_a_quiet_world_gets_no_proposals_and_reports_each_policy() -> None:
    messages: list[str] = []
    result = run_elastic_bench(
        branches=4, functions=2, members=2, cycles=5, progress=messages.append
    )
    assert result["groups"] == 1 + 4 * 3 and result["cycles"] == 5
    assert set(result["median_ms"]) == {"elastic", "failover", "ratio"}
    assert result["proposals"] == 0  # loads stay between the levels, ratios hold
    assert messages == ["cycle 5/5"]
