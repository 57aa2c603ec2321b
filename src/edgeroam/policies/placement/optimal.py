"""The `optimal` strategy: the paper's 0-1 integer program for a batch, solved with HiGHS.

Variables x[i, j] = 1 when instance i goes to place j (CPEs and pool hosts alike; the paper's
y[i] is x[i, cloud]). Only places where instance i fits on its own get a variable.

* (14) minimise Σ cost[i, j] · x[i, j], each cost taken on the state before the batch — the
  cloud's price per unit is frozen at its current scarcity, which is what keeps the program
  linear;
* (15) Σ_j x[i, j] = 1: every instance is placed exactly once;
* (16), (17), (19), (20) and their bandwidth twins: on every host, the batch's demand stays
  strictly below what remains (the same strict headroom as the sequential strategies);
* (18) the batch's bandwidth through a cloud link stays strictly below what the link has left;
* the delay rule (5): after the batch, the core delay is below the max delay of every instance
  placed behind the link and of every instance already there. As a linear constraint per
  instance i behind link g:  Σ bw · x[·, g] + M · Σ_j∈g x[i, j] ≤ R_g − θ_i + M,  where θ_i is
  the bandwidth R must exceed for i's limit (and residents'), and M the batch's total bandwidth.

This final-state delay rule is the `protect` delay check of the sequential strategies, so with
`delay_check: protect` every sequential answer is a feasible point of this program and the
optimality gap is well defined.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from edgeroam.policies.placement.costs import delay_threshold
from edgeroam.policies.placement.edge import EdgeState, Request

_CAPACITY_FILTERS = frozenset(
    {"headroom_vcpu", "headroom_memory", "headroom_bandwidth", "cloud_link_bandwidth"}
)


@dataclass(frozen=True)
class BatchSolution:
    rows: list[int | None]
    """Chosen row per instance (None for all when the batch is infeasible)."""
    costs: list[float]
    objective: float
    status: str
    seconds: float
    variables: int
    constraints: int


def strict_margin(bound: float) -> float:
    """How far below `bound` a strictly-less constraint must stay (solver tolerances are 1e-9)."""
    return 1e-6 * max(1.0, abs(bound))


def group_threshold(state: EdgeState, g: int, max_delay: float | None) -> float:
    """Bandwidth the link must keep for `max_delay` and for every instance already behind it."""
    link = state.groups[g]
    ext = state.cost.external_delay if link.external_delay is None else link.external_delay
    fixed = link.fixed_delay + ext
    theta = delay_threshold(state.cost, max_delay, fixed)
    if link.residents:
        theta = max(theta, delay_threshold(state.cost, min(link.residents), fixed))
    return theta


def batch_candidates(state: EdgeState, req: Request) -> tuple[np.ndarray, np.ndarray]:
    """Rows where `req` fits on its own before the batch (delay by the final-state rule) and
    their costs."""
    alive = np.ones(state.n, dtype=bool)
    for name, mask in state.filter_masks(req):
        if name != "cloud_core_delay":
            alive &= mask
    rows = np.flatnonzero(alive)
    keep = np.ones(len(rows), dtype=bool)
    for k, row in enumerate(rows.tolist()):
        g = int(state.group[row])
        if g >= 0:
            remaining = state.groups[g].remaining - req.demand[2]
            keep[k] = remaining > group_threshold(state, g, req.max_delay)
    rows = rows[keep]
    return rows, state.costs(rows, req)


def solve_batch(
    state: EdgeState,
    requests: Sequence[Request],
    *,
    time_limit_s: float = 30.0,
) -> BatchSolution:
    """Jointly place `requests` at least total cost; `state` is not changed."""
    started = time.perf_counter()
    m = len(requests)
    var_req: list[int] = []
    var_row: list[int] = []
    var_cost: list[float] = []
    for i, req in enumerate(requests):
        rows, costs = batch_candidates(state, req)
        var_req += [i] * len(rows)
        var_row += rows.tolist()
        var_cost += costs.tolist()
    n_var = len(var_req)
    if m == 0:
        return BatchSolution([], [], 0.0, "optimal", 0.0, 0, 0)
    placed_somewhere = set(var_req)
    if len(placed_somewhere) < m:
        lonely = min(set(range(m)) - placed_somewhere)
        return _infeasible(m, f"instance {lonely} fits nowhere", started, n_var, 0)

    # Constraint rows as (coefficients by variable, lower, upper).
    rows_lo: list[float] = []
    rows_hi: list[float] = []
    entries: list[tuple[int, int, float]] = []  # (row, var, value)

    def add_row(terms: list[tuple[int, float]], lo: float, hi: float) -> None:
        r = len(rows_lo)
        rows_lo.append(lo)
        rows_hi.append(hi)
        entries.extend((r, v, c) for v, c in terms)

    by_req: dict[int, list[int]] = {}
    by_row: dict[int, list[int]] = {}
    for v, (i, row) in enumerate(zip(var_req, var_row, strict=True)):
        by_req.setdefault(i, []).append(v)
        by_row.setdefault(row, []).append(v)
    for i in range(m):  # (15)
        add_row([(v, 1.0) for v in by_req[i]], 1.0, 1.0)
    strict = state.cost.strict_headroom
    for row, vs in by_row.items():  # (16), (17), (19), (20) and bandwidth
        for r in range(3):
            terms = [(v, requests[var_req[v]].demand[r]) for v in vs]
            terms = [(v, c) for v, c in terms if c > 0]
            if not terms:
                continue
            free = float(state.free[r, row])
            bound = free - strict_margin(free) if strict else free
            if sum(c for _, c in terms) <= bound:
                continue  # cannot bind
            add_row(terms, -math.inf, bound)
    for g, link in enumerate(state.groups):
        vs = [v for v in range(n_var) if state.group[var_row[v]] == g]
        bw_terms = [(v, requests[var_req[v]].demand[2]) for v in vs]
        bw_terms = [(v, c) for v, c in bw_terms if c > 0]
        if not bw_terms:
            continue
        remaining = link.remaining
        total = sum(c for _, c in bw_terms)
        bound = remaining - strict_margin(remaining) if strict else remaining
        if total > bound:  # (18)
            add_row(bw_terms, -math.inf, bound)
        big = total
        for i in sorted({var_req[v] for v in vs}):  # (5) after the batch, per instance
            theta = group_threshold(state, g, requests[i].max_delay)
            if theta == -math.inf:
                continue
            limit = remaining - theta - strict_margin(remaining)
            if total <= limit:
                continue
            mine = [v for v in vs if var_req[v] == i]
            merged: dict[int, float] = dict(bw_terms)
            for v in mine:
                merged[v] = merged.get(v, 0.0) + big
            add_row(sorted(merged.items()), -math.inf, limit + big)

    status, values, seconds = _solve(var_cost, rows_lo, rows_hi, entries, time_limit_s)
    n_con = len(rows_lo)
    if values is None:
        return _infeasible(m, status, started, n_var, n_con)
    chosen_rows: list[int | None] = [None] * m
    chosen_costs = [0.0] * m
    for v, value in enumerate(values):
        if value > 0.5:
            chosen_rows[var_req[v]] = var_row[v]
            chosen_costs[var_req[v]] = var_cost[v]
    del seconds
    return BatchSolution(
        chosen_rows,
        chosen_costs,
        float(sum(chosen_costs)),
        status,
        time.perf_counter() - started,
        n_var,
        n_con,
    )


def _infeasible(m: int, status: str, started: float, n_var: int, n_con: int) -> BatchSolution:
    return BatchSolution(
        [None] * m, [math.inf] * m, math.inf, status, time.perf_counter() - started, n_var, n_con
    )


def _solve(
    costs: list[float],
    rows_lo: list[float],
    rows_hi: list[float],
    entries: list[tuple[int, int, float]],
    time_limit_s: float,
) -> tuple[str, list[float] | None, float]:
    n = len(costs)
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = len(rows_lo)
    lp.col_cost_ = np.asarray(costs, dtype=np.float64)
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    inf = highspy.kHighsInf
    lp.row_lower_ = np.array([-inf if math.isinf(x) else x for x in rows_lo], dtype=np.float64)
    lp.row_upper_ = np.array([inf if math.isinf(x) else x for x in rows_hi], dtype=np.float64)
    by_col: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for r, v, value in entries:
        by_col[v].append((r, value))
    start = [0]
    index: list[int] = []
    value_list: list[float] = []
    for col in by_col:
        for r, value in col:
            index.append(r)
            value_list.append(value)
        start.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value_list, dtype=np.float64)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", 1)
    started = time.perf_counter()
    h.passModel(lp)
    h.run()
    seconds = time.perf_counter() - started
    status = h.getModelStatus()
    name = h.modelStatusToString(status).lower()
    if status != highspy.HighsModelStatus.kOptimal:
        return name, None, seconds
    values = list(h.getSolution().col_value)
    return "optimal", values, seconds
