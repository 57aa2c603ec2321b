"""The engine's strategies against the plain-Python reference of the filters and cost model."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.policies.placement import DelayCheck, Strategy
from edgeroam.policies.placement.edge import Request
from tests.policies.placement.reference_model import (
    World,
    build,
    delay,
    eligible,
    free_of,
    reference_choice,
    requests,
    worlds,
)

# --- properties ---------------------------------------------------------------------------------

STRATEGIES = st.sampled_from([Strategy.EXHAUSTIVE, Strategy.HEURISTIC])


@settings(max_examples=120, deadline=None)
@given(data=st.data(), world=worlds(), strategy=STRATEGIES, incremental=st.booleans())
def test_choice_matches_the_reference(
    data: st.DataObject, world: World, strategy: Strategy, incremental: bool
) -> None:
    state = build(world)
    req = data.draw(requests(state.n))
    choice = state.choose(req, strategy, incremental=incremental)
    row, cost = reference_choice(state, req, strategy)
    assert choice.row == row
    if row is not None:
        assert math.isclose(choice.cost, cost, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), world=worlds())
def test_exhaustive_never_costs_more_than_heuristic(data: st.DataObject, world: World) -> None:
    state = build(world)
    req = data.draw(requests(state.n))
    exhaustive = state.choose(req, Strategy.EXHAUSTIVE)
    heuristic = state.choose(req, Strategy.HEURISTIC)
    assert (exhaustive.row is None) == (heuristic.row is None)
    if heuristic.row is not None:
        assert exhaustive.cost <= heuristic.cost


ACTIONS = st.sampled_from(["place", "place", "place", "release", "ready", "lends"])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), world=worlds(), strategy=STRATEGIES)
def test_incremental_and_one_shot_agree_along_a_run(
    data: st.DataObject, world: World, strategy: Strategy
) -> None:
    """Placements, releases and state changes: the indexes stay in step with the columns."""
    incremental = build(world)
    one_shot = build(world)
    placed: list[tuple[int, Request]] = []
    for _ in range(data.draw(st.integers(1, 12))):
        action = data.draw(ACTIONS)
        if incremental.n == 0:
            break
        row = data.draw(st.integers(0, incremental.n - 1))
        if action == "place":
            req = data.draw(requests(incremental.n))
            a = incremental.choose(req, strategy, incremental=True)
            b = one_shot.choose(req, strategy)
            assert (a.row, a.place) == (b.row, b.place)
            if a.row is not None:
                assert a.cost == b.cost
                incremental.commit(a, req)
                one_shot.commit(b, req)
                placed.append((a.row, req))
        elif action == "release" and placed:
            spot, req = placed.pop(data.draw(st.integers(0, len(placed) - 1)))
            incremental.release(spot, req.demand, req.max_delay)
            one_shot.release(spot, req.demand, req.max_delay)
        elif action in ("ready", "lends"):
            flag = data.draw(st.booleans())
            for s in (incremental, one_shot):
                (s.set_ready if action == "ready" else s.set_lends)(row, flag)
    assert np.array_equal(incremental.free, one_shot.free)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), world=worlds(), strategy=STRATEGIES)
def test_no_placement_breaks_headroom_link_or_delay(
    data: st.DataObject, world: World, strategy: Strategy
) -> None:
    state = build(world)
    for _ in range(data.draw(st.integers(1, 10))):
        req = data.draw(requests(state.n))
        choice = state.choose(req, strategy, incremental=True)
        if choice.row is None:
            continue
        assert eligible(state, choice.row, req)  # judged by the reference, before the commit
        before = free_of(state, choice.row)
        state.commit(choice, req)
        after = free_of(state, choice.row)
        for r in range(3):
            assert after[r] == before[r] - req.demand[r]
            if req.demand[r] > 0 and state.cost.strict_headroom:
                assert after[r] > 0
            elif req.demand[r] > 0:
                assert after[r] >= 0
        g = int(state.group[choice.row])
        if g >= 0 and state.cost.delay_check is DelayCheck.PROTECT and req.max_delay is not None:
            link = state.groups[g]
            ext = state.cost.external_delay if link.external_delay is None else link.external_delay
            now = delay(state.cost, link.budget - link.used, link.fixed_delay + ext)
            assert now < min(link.residents)  # every instance behind the link still fine


@settings(max_examples=60, deadline=None)
@given(data=st.data(), world=worlds())
def test_a_failure_reports_every_filter(data: st.DataObject, world: World) -> None:
    state = build(world)
    req = data.draw(requests(state.n))
    choice = state.choose(req, Strategy.EXHAUSTIVE, incremental=data.draw(st.booleans()))
    if choice.row is not None:
        return
    assert choice.filters is not None and choice.rejects is not None
    names = [
        "state_ready",
        "host_kind",
        "placement_mode",
        "cpe_access",
        "bnb_opt_in",
        "not_excluded",
        "headroom_vcpu",
        "headroom_memory",
        "headroom_bandwidth",
        "cloud_link_bandwidth",
        "cloud_core_delay",
    ]
    assert list(choice.filters) == names
    assert sum(choice.filters.values()) == state.n  # every host removed by exactly one filter
    for name in names:
        assert choice.rejects[name] >= choice.filters[name]
