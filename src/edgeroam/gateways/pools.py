"""Pools of pre-built, suspended vRGWs per virtualization node (seed 003, Sec. IV-D).

A pooled vRGW has everything built that does not depend on the customer (namespace or VM,
uplink, sandbox, programs) and is frozen, so activating a customer is: claim one, apply the
customer's settings and circuit, thaw. The gateways policy keeps K of them per node: it counts
pooled instances (serving ones are claimable; ones still being built count towards K), claims
the oldest claimable one for a new subscriber and proposes new ones for the deficit; the
lifecycle engine builds them in the background like any other operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgeroam.gateways.world import is_pooled
from edgeroam.model import Instance


@dataclass(frozen=True, slots=True)
class NodePool:
    node: str
    target: int
    ready: tuple[str, ...]
    """Claimable pooled instances (built, suspended, no operation in flight), oldest first."""
    building: int
    """Pooled instances still being built (or otherwise busy)."""

    @property
    def size(self) -> int:
        return len(self.ready) + self.building

    @property
    def deficit(self) -> int:
        return max(0, self.target - self.size)

    @property
    def surplus(self) -> int:
        return max(0, self.size - self.target)


def pools(
    instances: Mapping[str, Instance],
    instances_by_host: Mapping[str, Iterable[str]],
    nodes: Iterable[str],
    function: str,
    target: int,
    busy: frozenset[str],
) -> dict[str, NodePool]:
    """Pool state of each node (K = `target`)."""
    out: dict[str, NodePool] = {}
    for node in sorted(nodes):
        ready: list[Instance] = []
        building = 0
        for name in instances_by_host.get(node, ()):
            inst = instances.get(name)
            if inst is None or not is_pooled(inst, function):
                continue
            if inst.serving and name not in busy:
                ready.append(inst)
            else:
                building += 1
        ready.sort(key=lambda i: (i.created_at, i.id))
        out[node] = NodePool(node, target, tuple(i.id for i in ready), building)
    return out


def claimable(pool: NodePool, taken: set[str]) -> str | None:
    """The oldest ready pooled instance of `pool` not already taken this cycle."""
    return next((name for name in pool.ready if name not in taken), None)
