"""The IoT-B&B evaluation world (seed 001 §5, restored in shared/reference/iotbnb-model.md).

Resources come in abstract levels 1..20; a CPE at level L offers L units of vCPU, memory and
bandwidth and charges an incentive of ``21 − L`` per unit (scarce nodes are dear). The edge is
a 10 × 10 grid read row by row whose last cell is the cloud, so 99 CPEs. Coordinates only
place cells on heat maps. Experiments, benchmarks and tests build their `EdgeState` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeroam.policies.placement.costs import CostModel, PlacementMode
from edgeroam.policies.placement.edge import CLOUD, CPE, Demand, EdgeState, LinkGroup, Request

NUM_RESOURCE_LEVELS = 20

#: The paper's Figure 9 grid, row by row; the missing last cell of row 9 is the cloud.
REFERENCE_LEVELS: tuple[tuple[int, ...], ...] = (
    (20, 13, 16, 1, 6, 5, 12, 1, 18, 4),
    (14, 14, 5, 19, 6, 8, 15, 17, 14, 19),
    (1, 5, 14, 10, 5, 10, 8, 14, 3, 11),
    (3, 5, 16, 16, 15, 11, 10, 5, 15, 14),
    (2, 1, 12, 10, 16, 11, 11, 1, 9, 14),
    (13, 14, 17, 10, 17, 7, 19, 16, 13, 2),
    (5, 11, 19, 9, 17, 6, 10, 12, 13, 5),
    (3, 10, 13, 18, 6, 15, 13, 14, 14, 6),
    (11, 18, 1, 18, 17, 19, 10, 13, 2, 19),
    (19, 20, 4, 13, 13, 12, 12, 15, 5),
)

CLOUD_BUDGET = (2000.0, 2000.0, 200.0)
"""The cloud's vCPU, memory and bandwidth budgets for this edge."""
LINK_BUDGET = 200.0
"""Bandwidth of the edge↔cloud link."""


@dataclass(frozen=True)
class ReferenceFlavor:
    name: str
    vcpu: float
    memory: float
    bandwidth: float
    max_delay: float

    @property
    def demand(self) -> Demand:
        return (self.vcpu, self.memory, self.bandwidth)


#: The paper's Table 2.
FLAVORS: tuple[ReferenceFlavor, ...] = (
    ReferenceFlavor("TINY", 1, 1, 1, 1000),
    ReferenceFlavor("SMALL_LOW_DELAY", 2, 2, 2, 100),
    ReferenceFlavor("SMALL_MODERATE_DELAY", 2, 2, 2, 1000),
    ReferenceFlavor("SMALL_HIGH_DELAY", 2, 2, 2, 10000),
    ReferenceFlavor("MEDIUM_LOW_DELAY", 4, 4, 4, 100),
    ReferenceFlavor("MEDIUM_MODERATE_DELAY", 4, 4, 4, 1000),
    ReferenceFlavor("MEDIUM_HIGH_DELAY", 4, 4, 4, 10000),
    ReferenceFlavor("LARGE_LOW_DELAY", 8, 8, 8, 100),
    ReferenceFlavor("LARGE_MODERATE_DELAY", 8, 8, 8, 1000),
    ReferenceFlavor("LARGE_HIGH_DELAY", 8, 8, 8, 10000),
)
FLAVOR_BY_NAME = {f.name: f for f in FLAVORS}


def flavor(name: str) -> ReferenceFlavor:
    try:
        return FLAVOR_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown flavour {name!r}; known: {list(FLAVOR_BY_NAME)}") from None


def unit_price(level: float) -> float:
    """The incentive per resource unit of a node at `level`: scarce nodes are dear."""
    return float(NUM_RESOURCE_LEVELS + 1 - level)


def grid_levels(grid: tuple[tuple[int, ...], ...] = REFERENCE_LEVELS) -> list[int]:
    return [level for row in grid for level in row]


def grid_coordinates(grid: tuple[tuple[int, ...], ...] = REFERENCE_LEVELS) -> list[tuple[int, int]]:
    """(x, y) of every CPE followed by the cloud's cell (the first free cell after them)."""
    cells = [(x, y) for x, row in enumerate(grid) for y in range(len(row))]
    width = max(len(row) for row in grid)
    last = len(cells)
    cells.append((last // width, last % width))
    return cells


def random_grid(
    rng: np.random.Generator, rows: int = 10, cols: int = 10
) -> tuple[tuple[int, ...], ...]:
    """A grid like the paper's: random levels 1..20, the last cell left for the cloud."""
    levels = rng.integers(1, NUM_RESOURCE_LEVELS + 1, size=rows * cols - 1).tolist()
    out = [tuple(levels[r * cols : (r + 1) * cols]) for r in range(rows)]
    return tuple(row for row in out if row)


def build_edge(
    levels: list[int] | npt.NDArray[np.int64],
    cost: CostModel | None = None,
    *,
    cloud: bool = True,
    lends: bool = True,
) -> EdgeState:
    """CPE i (owned by customer i) at `levels[i]`, then the cloud behind its link."""
    cost = cost or CostModel()
    lv = np.asarray(levels, dtype=np.float64)
    n = len(lv)
    rows = n + (1 if cloud else 0)
    capacity = np.zeros((rows, 3))
    capacity[:n] = lv[:, None]
    prices = np.zeros((rows, 3))
    prices[:n] = (NUM_RESOURCE_LEVELS + 1 - lv)[:, None]
    kind = np.full(rows, CPE, dtype=np.int64)
    owner = np.full(rows, -1, dtype=np.int64)
    owner[:n] = np.arange(n)
    group = np.full(rows, -1, dtype=np.int64)
    groups: list[LinkGroup] = []
    if cloud:
        capacity[n] = CLOUD_BUDGET
        kind[n] = CLOUD
        group[n] = 0
        groups.append(LinkGroup("edge-cloud", LINK_BUDGET))
    ids = [f"cpe-{i}" for i in range(n)] + (["cloud"] if cloud else [])
    return EdgeState(
        ids=ids,
        kind=kind,
        capacity=capacity,
        cost=cost,
        prices=prices,
        lends=np.r_[np.full(n, lends), np.zeros(rows - n, bool)],
        owner=owner,
        group=group,
        groups=groups,
    )


def request(
    f: ReferenceFlavor, owner: int = 0, mode: PlacementMode = PlacementMode.LOCAL_CLOUD_BNB
) -> Request:
    return Request(demand=f.demand, owner=owner, max_delay=f.max_delay, mode=mode)
