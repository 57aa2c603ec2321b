"""The batch integer program against brute force on instances small enough to enumerate."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.experiments.iotbnb import batch_cost
from edgeroam.policies.placement import CostModel, DelayCheck, PlacementMode, Strategy
from edgeroam.policies.placement.edge import CLOUD, CPE, EdgeState, Request
from edgeroam.policies.placement.optimal import solve_batch
from edgeroam.policies.placement.reference import build_edge, flavor
from tests.policies.placement.reference_model import (
    Group,
    Row,
    World,
    build,
    delay,
    eligible,
    free_of,
    price,
    requests,
    worlds,
)


def protect(state: EdgeState) -> EdgeState:
    """The program's delay rule is the final-state one: judge single placements that way."""
    state.cost = state.cost.model_copy(update={"delay_check": DelayCheck.PROTECT})
    return state


def jointly_feasible(state: EdgeState, reqs: Sequence[Request], rows: Sequence[int]) -> bool:
    strict = state.cost.strict_headroom
    load: dict[tuple[int, int], float] = {}
    for req, row in zip(reqs, rows, strict=True):
        for r in range(3):
            if req.demand[r] > 0:
                load[(row, r)] = load.get((row, r), 0.0) + req.demand[r]
    for (row, r), total in load.items():
        free = free_of(state, row)[r]
        if not (total < free if strict else total <= free):
            return False
    for g, link in enumerate(state.groups):
        mine = [req for req, row in zip(reqs, rows, strict=True) if state.group[row] == g]
        if not mine:
            continue
        remaining = link.budget - link.used - sum(req.demand[2] for req in mine)
        if any(req.demand[2] > 0 for req in mine) and not (
            remaining > 0 if strict else remaining >= 0
        ):
            return False
        limits = [req.max_delay for req in mine if req.max_delay is not None]
        limits += list(link.residents)
        ext = state.cost.external_delay if link.external_delay is None else link.external_delay
        after = delay(state.cost, remaining, link.fixed_delay + ext)
        if limits and not after < min(limits):
            return False
    return True


def brute_force(state: EdgeState, reqs: Sequence[Request]) -> float:
    choices = [[r for r in range(state.n) if eligible(state, r, req)] for req in reqs]
    best = math.inf
    for rows in itertools.product(*choices):
        if jointly_feasible(state, reqs, rows):
            best = min(best, sum(price(state, r, q)[0] for q, r in zip(reqs, rows, strict=True)))
    return best


@st.composite
def roomy_batches(draw: st.DrawFn) -> tuple[EdgeState, list[Request]]:
    """Edges with room, so that most batches are feasible and the optimum is not trivial."""
    n = draw(st.integers(2, 4))
    cloud = draw(st.booleans())
    capacity = [[draw(st.sampled_from([1.0, 2.0, 3.0, 5.0])) for _ in range(3)] for _ in range(n)]
    prices = [[draw(st.sampled_from([0.0, 1.0, 3.0])) for _ in range(3)] for _ in range(n)]
    rows = [
        Row(CPE, tuple(c), (0.0, 0.0, 0.0), tuple(p), draw(st.booleans()) or i > 0, True, i, -1)
        for i, (c, p) in enumerate(zip(capacity, prices, strict=True))
    ]
    groups = []
    if cloud:
        rows.append(Row(CLOUD, (20.0, 20.0, 20.0), (0.0, 0.0, 0.0), (0.0,) * 3, False, True, -1, 0))
        residents = draw(st.dictionaries(st.sampled_from([300.0, 2000.0]), st.integers(1, 2)))
        groups.append(Group(draw(st.sampled_from([6.0, 10.0])), 0.0, 0.0, None, residents))
    world = World(
        rows,  # type: ignore[arg-type]
        groups,
        CostModel(
            max_core_delay=1000.0,
            strict_headroom=draw(st.booleans()),
            delay_check=DelayCheck.PROTECT,
            redundancy_factor=draw(st.sampled_from([1.0, 2.0])),
        ),
    )
    amount = st.sampled_from([0.0, 1.0, 1.0, 2.0])
    reqs = [
        Request(
            (draw(amount), draw(amount), draw(amount)),
            draw(st.integers(0, min(1, n - 1))),
            draw(st.sampled_from([None, 200.0, 400.0, 2000.0])),
        )
        for _ in range(draw(st.integers(2, 4)))
    ]
    return build(world), reqs


def check_against_brute_force(state: EdgeState, reqs: list[Request]) -> bool:
    """Assert the program's answer is the brute-force optimum; True if the batch was feasible."""
    solution = solve_batch(state, reqs)
    best = brute_force(state, reqs)
    if math.isinf(best):
        assert solution.rows == [None] * len(reqs)
        assert solution.status != "optimal"
        return False
    assert solution.status == "optimal"
    assert solution.objective == pytest.approx(best, rel=1e-9, abs=1e-9)
    rows = [r for r in solution.rows if r is not None]
    assert len(rows) == len(reqs)
    assert jointly_feasible(state, reqs, rows)
    assert all(eligible(state, r, q) for q, r in zip(reqs, rows, strict=True))
    return True


FEASIBLE: list[bool] = []


@settings(max_examples=80, deadline=None)
@given(batch=roomy_batches())
def test_the_optimum_equals_brute_force(batch: tuple[EdgeState, list[Request]]) -> None:
    FEASIBLE.append(check_against_brute_force(*batch))


def test_the_brute_force_comparison_saw_feasible_batches() -> None:
    """Guard against a generator that only yields infeasible batches (a vacuous comparison)."""
    if not FEASIBLE:
        pytest.skip("runs after test_the_optimum_equals_brute_force")
    assert sum(FEASIBLE) >= len(FEASIBLE) // 2


@settings(max_examples=40, deadline=None)
@given(data=st.data(), world=worlds(max_cpe=4, max_pool=2))
def test_infeasibility_agrees_with_brute_force_on_odd_edges(
    data: st.DataObject, world: World
) -> None:
    """Hosts down, negative free space, exclusions: the program and brute force still agree."""
    state = protect(build(world))
    reqs = [  # avoid is a preference of single decisions; the program has no such notion
        Request(r.demand, r.owner, r.max_delay, r.mode, r.kinds, r.exclude)
        for r in data.draw(st.lists(requests(state.n), min_size=1, max_size=3))
    ]
    check_against_brute_force(state, reqs)


def test_the_optimum_beats_greedy_when_greed_blocks_a_later_instance() -> None:
    """Owner 1's only free place is its own CPE; a greedy first placement of owner 0's small
    instance there (cheaper than the cloud for it) would strand owner 1's large one."""
    state = build_edge([3, 9, 2], cloud=True)
    state.cost = state.cost.model_copy(update={"delay_check": DelayCheck.PROTECT})
    small = flavor("SMALL_LOW_DELAY")  # cannot use the cloud (delay)
    large = flavor("LARGE_LOW_DELAY")
    reqs = [
        Request(small.demand, 0, small.max_delay, PlacementMode.LOCAL_CLOUD_BNB),
        Request(large.demand, 1, large.max_delay, PlacementMode.LOCAL_CLOUD_BNB),
    ]
    solution = solve_batch(state, reqs)
    assert solution.status == "optimal"
    assert solution.rows == [0, 1]  # each on its own CPE: 2 < 3 and 8 < 9
    assert solution.objective == 0.0


@settings(max_examples=30, deadline=None)
@given(data=st.data(), world=worlds(max_cpe=5, max_pool=2))
def test_sequential_answers_are_feasible_and_never_cheaper(
    data: st.DataObject, world: World
) -> None:
    """With the protect delay rule, exhaustive and heuristic give feasible points of the program,
    so the optimum (objective (14), prices before the batch) is a lower bound of both."""
    state = protect(build(world))
    reqs = [
        Request(r.demand, r.owner, r.max_delay, r.mode, r.kinds, r.exclude)
        for r in data.draw(st.lists(requests(state.n), min_size=1, max_size=4))
    ]
    solution = solve_batch(state, reqs)
    for strategy in (Strategy.EXHAUSTIVE, Strategy.HEURISTIC):
        work = state.copy()
        rows: list[int | None] = []
        for req in reqs:
            choice = work.choose(req, strategy)
            rows.append(choice.row)
            if choice.row is not None:
                work.commit(choice, req)
        if None in rows:
            continue
        placed = [r for r in rows if r is not None]
        assert jointly_feasible(state, reqs, placed)
        assert solution.status == "optimal"
        assert solution.objective <= batch_cost(state, reqs, rows) + 1e-9
