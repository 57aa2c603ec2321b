"""Run-until-die counts and cost curves against closed forms derived from the reference model.

Nothing here is copied from the program's output: a node of level L takes ⌈(L − c)/c⌉ instances
of a flavour needing c of each resource (each placement needs c < what remains), and the cloud
takes instances while its link keeps more than max(b, D_max / max_delay − δ) — both worked out
with exact fractions below, independently of the placement code.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.experiments.iotbnb import capacity, cost_curves, run_until_die
from edgeroam.policies.placement import CostModel, PlacementMode, Strategy
from edgeroam.policies.placement.reference import (
    FLAVORS,
    REFERENCE_LEVELS,
    build_edge,
    flavor,
    grid_levels,
)

D_MAX, DELTA = 50_000, 1
CLOUD_CPU, CLOUD_LINK = 2000, 200


def node_count(level: int, need: int) -> int:
    """k-th instance (k = 0, 1, …) fits while level − k·need > need."""
    return max(0, -(-(level - need) // need))


def cloud_count(need: int, max_delay: int) -> int:
    """Instances while R − k·bw stays above the link's bottom line (and the cpu budget)."""
    floor = max(Fraction(need), Fraction(D_MAX, max_delay) - DELTA)
    by_link = 0 if floor >= CLOUD_LINK else -(-(CLOUD_LINK - floor) // need)
    by_cpu = node_count(CLOUD_CPU, need)
    return int(min(by_link, by_cpu))


def expected(grid: tuple[tuple[int, ...], ...], name: str) -> dict[str, int]:
    f = flavor(name)
    need = int(f.vcpu)
    own = node_count(grid[0][0], need)
    cloud = cloud_count(need, int(f.max_delay))
    every = sum(node_count(level, need) for row in grid for level in row)
    return {"local": own, "local_cloud": own + cloud, "local_cloud_bnb": every + cloud}


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return capacity()


def test_capacity_matches_the_closed_forms_for_all_thirty_numbers(result: dict[str, Any]) -> None:
    assert [r["flavor"] for r in result["rows"]] == [f.name for f in FLAVORS]
    for row in result["rows"]:
        assert set(row) == {"flavor", "local", "local_cloud", "local_cloud_bnb"}
        assert {k: v for k, v in row.items() if k != "flavor"} == expected(
            REFERENCE_LEVELS, row["flavor"]
        )


def test_small_moderate_delay_gives_the_papers_9_85_550(result: dict[str, Any]) -> None:
    row = next(r for r in result["rows"] if r["flavor"] == "SMALL_MODERATE_DELAY")
    assert (row["local"], row["local_cloud"], row["local_cloud_bnb"]) == (9, 85, 550)


def test_low_delay_flavours_never_reach_the_cloud(result: dict[str, Any]) -> None:
    # 50,000 / (R + 1) < 100 needs R > 499, but the link only has 200.
    assert cloud_count(2, 100) == 0
    for row in result["rows"]:
        if row["flavor"].endswith("LOW_DELAY"):
            assert row["local_cloud"] == row["local"]


@settings(max_examples=25, deadline=None)
@given(
    levels=st.lists(st.integers(1, 20), min_size=1, max_size=30),
    k=st.integers(0, len(FLAVORS) - 1),
    strategy=st.sampled_from([Strategy.EXHAUSTIVE, Strategy.HEURISTIC]),
)
def test_bnb_capacity_is_the_sum_of_per_node_capacities(
    levels: list[int], k: int, strategy: Strategy
) -> None:
    f = FLAVORS[k]
    need = int(f.vcpu)
    placed = run_until_die(build_edge(levels), f, PlacementMode.LOCAL_CLOUD_BNB, strategy)
    assert len(placed) == sum(node_count(lv, need) for lv in levels) + cloud_count(
        need, int(f.max_delay)
    )
    per_row: dict[int, int] = {}
    for row, _, _ in placed:
        per_row[row] = per_row.get(row, 0) + 1
    for row, count in per_row.items():
        if row < len(levels):
            assert count == node_count(levels[row], need)


def cloud_costs(need: int, count: int) -> list[Fraction]:
    """Cost of the k-th cloud instance: 1000·need/(2000 − k·need) for vCPU and for memory,
    plus 1000·need/(200 − k·need) for the link."""
    return [
        Fraction(1000 * need, CLOUD_CPU - k * need) * 2
        + Fraction(1000 * need, CLOUD_LINK - k * need)
        for k in range(count)
    ]


@pytest.mark.parametrize("name", ["SMALL_MODERATE_DELAY", "LARGE_MODERATE_DELAY"])
def test_cost_curves_are_the_sorted_merge_of_every_slots_cost(name: str) -> None:
    """Exhaustive placement takes the cheapest slot each time; node slots cost a fixed
    incentive (21 − L per unit) and cloud slots rise, so the curve is their sorted merge."""
    f = flavor(name)
    need = int(f.vcpu)
    levels = grid_levels()
    owner_slots = [Fraction(0)] * node_count(levels[0], need)
    bnb_slots = [
        Fraction(3 * need * (21 - level))
        for level in levels[1:]
        for _ in range(node_count(level, need))
    ]
    cloud = cloud_costs(need, cloud_count(need, int(f.max_delay)))
    runs = {r["mode"]: r["costs"] for r in cost_curves([name])["runs"]}
    assert runs["local_cloud"] == pytest.approx([float(c) for c in owner_slots + cloud])
    merged = sorted(owner_slots + bnb_slots + cloud)
    assert runs["local_cloud_bnb"] == pytest.approx([float(c) for c in merged])


def test_twenty_large_instances_cost_about_140_and_50() -> None:
    """The paper: at 20 LARGE instances about 140 (local + cloud) and about 50 (+ B&B)."""
    runs = {r["mode"]: r["costs"] for r in cost_curves(["LARGE_MODERATE_DELAY"])["runs"]}
    twentieth_cloud = float(cloud_costs(8, 18)[17])  # 2 on the owner's CPE, then the cloud
    assert runs["local_cloud"][19] == pytest.approx(twentieth_cloud)
    assert 120 < runs["local_cloud"][19] < 150
    assert 40 < runs["local_cloud_bnb"][19] < 60


def test_local_mode_uses_only_the_owners_cpe() -> None:
    f = flavor("TINY")
    placed = run_until_die(build_edge(grid_levels()), f, PlacementMode.LOCAL)
    assert {row for row, _, _ in placed} == {0}
    assert all(cost == 0 for _, cost, _ in placed)


def test_non_strict_headroom_fills_nodes_to_zero() -> None:
    f = flavor("SMALL_HIGH_DELAY")
    state = build_edge([20], CostModel(strict_headroom=False), cloud=False)
    assert len(run_until_die(state, f, PlacementMode.LOCAL)) == 20 // 2
