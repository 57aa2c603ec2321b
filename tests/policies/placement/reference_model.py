"""A plain-Python restatement of the placement rules, shared by the placement tests.

`reference_choice` applies the rules of docs/placement.md row by row, with no numpy and no
incremental structure; `worlds` draws small random edges (CPEs that lend or not, servers,
clouds behind links, some hosts down, negative free space, odd owners) and `requests` draws
requests for them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from edgeroam.policies.placement import CostModel, DelayCheck, PlacementMode, Strategy
from edgeroam.policies.placement.edge import CLOUD, CPE, SERVER, EdgeState, LinkGroup, Request

AMOUNT = st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, 8.0])
SMALL = st.sampled_from([0.0, 1.0, 2.0])


@dataclass
class Row:
    kind: int
    capacity: tuple[float, float, float]
    used: tuple[float, float, float]
    prices: tuple[float, float, float]
    lends: bool
    ready: bool
    owner: int
    group: int


@dataclass
class Group:
    budget: float
    used: float
    fixed_delay: float
    external_delay: float | None
    residents: dict[float, int]


@dataclass
class World:
    rows: list[Row]
    groups: list[Group]
    cost: CostModel


@st.composite
def worlds(draw: st.DrawFn, max_cpe: int = 6, max_pool: int = 3) -> World:
    groups = [
        Group(
            budget=draw(st.sampled_from([0.0, 5.0, 10.0, 50.0])),
            used=draw(SMALL),
            fixed_delay=draw(st.sampled_from([0.0, 5.0])),
            external_delay=draw(st.sampled_from([None, 0.0, 100.0])),
            residents=draw(
                st.dictionaries(st.sampled_from([50.0, 500.0, 5000.0]), st.integers(1, 2))
            ),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    rows: list[Row] = []
    for _ in range(draw(st.integers(0, max_cpe))):
        rows.append(
            Row(
                CPE,
                (draw(AMOUNT), draw(AMOUNT), draw(AMOUNT)),
                (draw(SMALL), draw(SMALL), draw(SMALL)),
                (draw(SMALL), draw(SMALL), draw(SMALL)),
                draw(st.booleans()),
                draw(st.sampled_from([True, True, False])),
                draw(st.integers(0, 2)),
                -1,
            )
        )
    for _ in range(draw(st.integers(0, max_pool))):
        kind = draw(st.sampled_from([SERVER, CLOUD]))
        group = draw(st.integers(-1, len(groups) - 1)) if kind == CLOUD else -1
        rows.append(
            Row(
                kind,
                (draw(AMOUNT), draw(AMOUNT), draw(AMOUNT)),
                (draw(SMALL), draw(SMALL), draw(SMALL)),
                (0.0, 0.0, 0.0),
                False,
                draw(st.sampled_from([True, True, False])),
                -1,
                group,
            )
        )
    rows = draw(st.permutations(rows)) if rows else rows
    cost = CostModel(
        max_core_delay=draw(st.sampled_from([100.0, 1000.0])),
        external_delay=draw(st.sampled_from([0.0, 10.0])),
        cloud_coefficients=(draw(SMALL), draw(AMOUNT), draw(AMOUNT)),
        server_coefficients=(draw(AMOUNT), draw(SMALL), draw(AMOUNT)),
        epsilon=draw(st.sampled_from([0.0, 0.5])),
        redundancy_factor=draw(st.sampled_from([0.0, 1.0, 2.0])),
        strict_headroom=draw(st.booleans()),
        delay_check=draw(st.sampled_from(list(DelayCheck))),
    )
    return World(rows, groups, cost)


def build(world: World) -> EdgeState:
    n = len(world.rows)
    return EdgeState(
        ids=[f"h{i}" for i in range(n)],
        kind=np.array([r.kind for r in world.rows], dtype=np.int64),
        capacity=np.array([r.capacity for r in world.rows]).reshape(n, 3),
        used=np.array([r.used for r in world.rows]).reshape(n, 3),
        prices=np.array([r.prices for r in world.rows]).reshape(n, 3),
        lends=np.array([r.lends for r in world.rows], dtype=bool),
        ready=np.array([r.ready for r in world.rows], dtype=bool),
        owner=np.array([r.owner for r in world.rows], dtype=np.int64),
        group=np.array([r.group for r in world.rows], dtype=np.int64),
        groups=[
            LinkGroup(
                f"g{k}", g.budget, g.used, g.fixed_delay, g.external_delay, Counter(g.residents)
            )
            for k, g in enumerate(world.groups)
        ],
        cost=world.cost,
    )


@st.composite
def requests(draw: st.DrawFn, n: int) -> Request:
    rows = st.integers(0, max(n - 1, 0))
    return Request(
        demand=(draw(AMOUNT), draw(AMOUNT), draw(AMOUNT)),
        owner=draw(st.integers(-1, 3)),
        max_delay=draw(st.sampled_from([None, 20.0, 100.0, 1000.0])),
        mode=draw(st.sampled_from(list(PlacementMode))),
        kinds=draw(st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(lambda k: any(k))),
        exclude=frozenset(draw(st.lists(rows, max_size=2))) if n else frozenset(),
        avoid=frozenset(draw(st.lists(rows, max_size=2))) if n else frozenset(),
    )


# --- the reference ------------------------------------------------------------------------------


def free_of(state: EdgeState, row: int) -> list[float]:
    return [float(state.free[r, row]) for r in range(3)]


def fits(free: float, need: float, strict: bool) -> bool:
    if need > 0:
        return free > need if strict else free >= need
    return free >= need


def delay(cost: CostModel, remaining: float, fixed: float) -> float:
    den = remaining + cost.delay_offset
    return math.inf if den <= 0 else cost.max_core_delay / den + fixed


def eligible(state: EdgeState, row: int, req: Request) -> bool:
    cost = state.cost
    kind = int(state.kind[row])
    cpe = kind == CPE
    own = cpe and req.owner >= 0 and int(state.owner[row]) == req.owner
    if not state.ready[row] or not req.kinds[kind]:
        return False
    if req.mode is PlacementMode.LOCAL and not own:
        return False
    if req.mode is PlacementMode.LOCAL_CLOUD and cpe and not own:
        return False
    if cpe and req.owner < 0:
        return False
    if cpe and not own and not state.lends[row]:
        return False
    if row in req.exclude:
        return False
    free = free_of(state, row)
    if not all(fits(free[r], req.demand[r], cost.strict_headroom) for r in range(3)):
        return False
    g = int(state.group[row])
    if g >= 0:
        link = state.groups[g]
        remaining = link.budget - link.used
        if not fits(remaining, req.demand[2], cost.strict_headroom):
            return False
        ext = cost.external_delay if link.external_delay is None else link.external_delay
        fixed = link.fixed_delay + ext
        if cost.delay_check is DelayCheck.BEFORE:
            return req.max_delay is None or delay(cost, remaining, fixed) < req.max_delay
        limit = min([req.max_delay or math.inf, *link.residents])
        return limit == math.inf or delay(cost, remaining - req.demand[2], fixed) < limit
    return True


def price(state: EdgeState, row: int, req: Request) -> tuple[float, int]:
    """(cost, place class) with classes own 0, B&B 1, server 2, cloud 3."""
    cost = state.cost
    d = req.demand
    kind = int(state.kind[row])
    if kind == CPE:
        if req.owner >= 0 and int(state.owner[row]) == req.owner:
            return 0.0, 0
        p = [float(state.prices[r, row]) for r in range(3)]
        return cost.redundancy_factor * (p[0] * d[0] + p[1] * d[1] + p[2] * d[2]), 1
    free = free_of(state, row)
    g = int(state.group[row])
    if g >= 0:
        free[2] = state.groups[g].budget - state.groups[g].used
    coef = cost.cloud_coefficients if kind == CLOUD else cost.server_coefficients
    total = 0.0
    for r in range(3):
        if d[r] > 0:
            den = free[r] + cost.epsilon
            if den <= 0:
                return math.inf, 3 if kind == CLOUD else 2
            total += coef[r] * d[r] / den
    return total, 3 if kind == CLOUD else 2


def share(state: EdgeState, row: int) -> float:
    best = math.inf
    for r in range(3):
        cap = float(state.capacity[r, row])
        best = min(best, float(state.free[r, row]) / cap if cap > 0 else 1.0)
    return best


def reference_choice(
    state: EdgeState, req: Request, strategy: Strategy
) -> tuple[int | None, float]:
    rows = [r for r in range(state.n) if eligible(state, r, req)]
    preferred = [r for r in rows if r not in req.avoid]
    pool = preferred or rows
    if not pool:
        return None, math.inf
    priced = {r: price(state, r, req) for r in pool}
    if strategy is Strategy.HEURISTIC:
        own = [r for r in pool if priced[r][1] == 0]
        if own:
            return own[0], 0.0
        bnb = [r for r in pool if priced[r][1] == 1]
        keep = [r for r in pool if priced[r][1] >= 2]
        if bnb:
            keep.append(max(bnb, key=lambda r: (share(state, r), -r)))
        pool = keep
    best = min(pool, key=lambda r: (priced[r][0], priced[r][1], r))
    return best, priced[best][0]
