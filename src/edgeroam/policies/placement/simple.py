"""First placement strategy: the eligible host with the most free vCPU share.

Filters are evaluated column-wise over the snapshot's host table; when no host survives, the
reason lists how many hosts each filter removed, Nova-style, so "nowhere to go" is explained.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgeroam.model import HostKind, Reason
from edgeroam.policies.placement.base import PlacementRequest, PlacementResult, Reservations
from edgeroam.snapshot import Snapshot


def cpe_access_mask(snapshot: Snapshot, request: PlacementRequest) -> npt.NDArray[np.bool_]:
    """Non-CPE hosts pass; a CPE passes for its owner's functions, or as a B&B node for
    another customer's. Shared functions (no owner) never land on a customer's box."""
    table = snapshot.host_table
    is_cpe = table.kind_mask((HostKind.CPE,))
    allowed = ~is_cpe
    if request.owner is not None:
        if request.allow_bnb:
            allowed = allowed | (is_cpe & table.lends)
        for host in snapshot.cpes_by_owner.get(request.owner, ()):
            row = table.index.get(host)
            if row is not None:
                allowed[row] = True
    mask: npt.NDArray[np.bool_] = allowed
    return mask


def place(
    snapshot: Snapshot, request: PlacementRequest, reserved: Reservations | None = None
) -> PlacementResult:
    table = snapshot.host_table
    n = len(table.ids)
    free = table.free.copy()
    if reserved is not None:
        for host, amount in reserved.by_host.items():
            row = table.index.get(host)
            if row is not None:
                free[row] -= (amount.vcpu, amount.memory_mb, amount.bandwidth_mbps)
    demand = np.array(
        [request.demand.vcpu, request.demand.memory_mb, request.demand.bandwidth_mbps]
    )
    verdicts: dict[str, int] = {}
    alive = np.ones(n, dtype=bool)

    def apply(name: str, mask: np.ndarray) -> None:
        nonlocal alive
        verdicts[name] = int(np.count_nonzero(alive & ~mask))
        alive = alive & mask

    apply("state_ready", table.ready_mask())
    apply("host_kind", table.kind_mask(request.kinds))
    apply("cpe_access", cpe_access_mask(snapshot, request))
    excluded = np.zeros(n, dtype=bool)
    for host in request.exclude_hosts:
        row = table.index.get(host)
        if row is not None:
            excluded[row] = True
    apply("not_excluded", ~excluded)
    apply("fits_resources", np.all(free >= demand, axis=1))
    survivors = np.flatnonzero(alive)
    if survivors.size == 0:
        return PlacementResult(
            None,
            Reason(
                rule="no_eligible_host",
                message=f"no host can take {request.function}: "
                + ", ".join(f"{k} removed {v}" for k, v in verdicts.items()),
                measured={"hosts": n},
                details={"filters": verdicts, "demand": request.demand.model_dump()},
            ),
        )
    preferred = [
        int(r) for r in survivors if snapshot.hosts[table.ids[r]].site not in request.avoid_sites
    ]
    pool = np.array(preferred) if preferred else survivors
    share = free[pool, 0] / np.maximum(table.capacity[pool, 0], 1e-9)
    # Highest free share; ties broken by host id so the choice is deterministic.
    top = pool[share >= share.max() - 1e-12]
    best = min((int(r) for r in top), key=lambda r: table.ids[r])
    host = table.ids[best]
    return PlacementResult(
        host,
        Reason(
            rule="most_free_share",
            message=f"{host} has the largest free vCPU share among {len(pool)} eligible hosts",
            measured={"free_vcpu_share": round(float(share[pool == best][0]), 4)},
            details={"filters": verdicts, "eligible": int(survivors.size)},
        ),
    )
