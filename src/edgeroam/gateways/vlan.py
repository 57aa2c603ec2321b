"""Access circuits: stacked VLAN tags in the Broadband Forum TR-101 1:1 model.

Every vRGW customer gets its own circuit from its access node to the virtualization node: an
outer S-tag (802.1ad, TPID 0x88A8) naming the access node and an inner C-tag (802.1Q, TPID
0x8100) naming the customer within it. The pair is unique network-wide; a C-tag freed by a
departing customer is handed out again (lowest free first), and an S-tag whose access node has
no customers left returns to the shared pool. When an access node fills its C-tag space it gets
another S-tag; when none is left, allocation fails with TagExhaustedError instead of reusing a
live tag.

Drivers that cannot make 802.1Q/802.1ad devices carry the pair in one 24-bit VXLAN network
identifier, `vni = s_tag * 4096 + c_tag`, which is a bijection for tags 1..4094.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

CTAG_TPID = 0x8100
STAG_TPID = 0x88A8
MIN_TAG = 1
MAX_TAG = 4094
"""VLAN ids 0 (priority tag) and 4095 (reserved) are never allocated."""


class TagError(ValueError):
    """A circuit request or record is inconsistent (bad range, conflicting tags)."""


class TagExhaustedError(TagError):
    """No free tag is left where one is needed; nothing was allocated."""


@dataclass(frozen=True, slots=True, order=True)
class Circuit:
    access_node: str
    s_tag: int
    c_tag: int

    def __post_init__(self) -> None:
        for name, tag in (("s_tag", self.s_tag), ("c_tag", self.c_tag)):
            if not MIN_TAG <= tag <= MAX_TAG:
                raise TagError(f"{name} {tag} is outside {MIN_TAG}..{MAX_TAG}")
        if not self.access_node:
            raise TagError("a circuit needs an access node")

    @property
    def vni(self) -> int:
        """The tag pair as one VXLAN network identifier (fits 24 bits)."""
        return self.s_tag * 4096 + self.c_tag

    @classmethod
    def from_vni(cls, access_node: str, vni: int) -> Circuit:
        return cls(access_node, vni // 4096, vni % 4096)


class _LowestFree:
    """Hands out the lowest free integer of [low, high]; freed numbers are reused first."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.used: set[int] = set()
        self._next = low
        self._holes: list[int] = []

    def take(self) -> int | None:
        while self._holes:
            candidate = heapq.heappop(self._holes)
            if candidate not in self.used and candidate < self._next:
                self.used.add(candidate)
                return candidate
        while self._next <= self.high and self._next in self.used:
            self._next += 1
        if self._next > self.high:
            return None
        self.used.add(self._next)
        self._next += 1
        return self._next - 1

    def mark(self, value: int) -> None:
        """Record `value` as used (rebuilding from existing circuits)."""
        self.used.add(value)

    def free(self, value: int) -> None:
        self.used.discard(value)
        if value < self._next:
            heapq.heappush(self._holes, value)

    def full(self) -> bool:
        return len(self.used) >= self.high - self.low + 1


@dataclass
class _Node:
    s_tags: list[int] = field(default_factory=list)
    c_tags: dict[int, _LowestFree] = field(default_factory=dict)


class TagAllocator:
    """Allocates and releases circuits; `allocate` is idempotent per customer."""

    def __init__(
        self,
        s_range: tuple[int, int] = (MIN_TAG, MAX_TAG),
        c_range: tuple[int, int] = (MIN_TAG, MAX_TAG),
        max_s_tags_per_node: int | None = None,
    ) -> None:
        for name, (low, high) in (("s_range", s_range), ("c_range", c_range)):
            if not MIN_TAG <= low <= high <= MAX_TAG:
                raise TagError(f"{name} {low}..{high} must lie within {MIN_TAG}..{MAX_TAG}")
        if max_s_tags_per_node is not None and max_s_tags_per_node < 1:
            raise TagError("max_s_tags_per_node must be at least 1")
        self.c_range = c_range
        self.max_s_tags_per_node = max_s_tags_per_node
        self._s = _LowestFree(*s_range)
        self._s_owner: dict[int, str] = {}
        self._nodes: dict[str, _Node] = {}
        self._circuits: dict[str, Circuit] = {}

    # -- queries ------------------------------------------------------------------------------
    def circuit(self, customer: str) -> Circuit | None:
        return self._circuits.get(customer)

    def circuits(self) -> dict[str, Circuit]:
        return dict(self._circuits)

    def s_tags_of(self, access_node: str) -> tuple[int, ...]:
        node = self._nodes.get(access_node)
        return tuple(node.s_tags) if node else ()

    def __len__(self) -> int:
        return len(self._circuits)

    # -- changes ------------------------------------------------------------------------------
    def allocate(self, customer: str, access_node: str) -> Circuit:
        """The customer's circuit on `access_node`, allocating the lowest free tags if new."""
        if not customer or not access_node:
            raise TagError("allocate needs a customer and an access node")
        existing = self._circuits.get(customer)
        if existing is not None:
            if existing.access_node != access_node:
                raise TagError(
                    f"customer {customer!r} holds circuit {existing.s_tag}/{existing.c_tag} on "
                    f"access node {existing.access_node!r}; release it before moving to "
                    f"{access_node!r}"
                )
            return existing
        node = self._nodes.setdefault(access_node, _Node())
        for s_tag in node.s_tags:
            c_tag = node.c_tags[s_tag].take()
            if c_tag is not None:
                return self._record(customer, Circuit(access_node, s_tag, c_tag))
        limit = self.max_s_tags_per_node
        if limit is not None and len(node.s_tags) >= limit:
            raise TagExhaustedError(
                f"access node {access_node!r} has used all C-tags of its {len(node.s_tags)} "
                f"S-tag(s) {node.s_tags} (limit {limit} per node)"
            )
        new_s = self._s.take()
        if new_s is None:
            if not node.s_tags:
                del self._nodes[access_node]
            raise TagExhaustedError(
                f"no free S-tag left in {self._s.low}..{self._s.high} for access node "
                f"{access_node!r} ({len(self._s_owner)} in use)"
            )
        self._s_owner[new_s] = access_node
        node.s_tags.append(new_s)
        node.c_tags[new_s] = _LowestFree(*self.c_range)
        first = node.c_tags[new_s].take()
        assert first is not None  # a fresh S-tag has its whole C range free
        return self._record(customer, Circuit(access_node, new_s, first))

    def adopt(self, customer: str, circuit: Circuit) -> None:
        """Record a circuit that already exists (rebuilding state from running vRGWs)."""
        existing = self._circuits.get(customer)
        if existing == circuit:
            return
        if existing is not None:
            raise TagError(f"customer {customer!r} already holds {existing}, not {circuit}")
        low, high = self.c_range
        if not low <= circuit.c_tag <= high or not self._s.low <= circuit.s_tag <= self._s.high:
            raise TagError(f"{circuit} lies outside the allocator's ranges")
        owner = self._s_owner.get(circuit.s_tag)
        if owner is not None and owner != circuit.access_node:
            raise TagError(
                f"S-tag {circuit.s_tag} belongs to access node {owner!r}, "
                f"not {circuit.access_node!r}"
            )
        node = self._nodes.setdefault(circuit.access_node, _Node())
        if owner is None:
            self._s.mark(circuit.s_tag)
            self._s_owner[circuit.s_tag] = circuit.access_node
            node.s_tags.append(circuit.s_tag)
            node.s_tags.sort()
            node.c_tags[circuit.s_tag] = _LowestFree(*self.c_range)
        pool = node.c_tags[circuit.s_tag]
        if circuit.c_tag in pool.used:
            holder = next(
                (
                    c
                    for c, v in self._circuits.items()
                    if v.s_tag == circuit.s_tag and v.c_tag == circuit.c_tag
                ),
                "?",
            )
            raise TagError(
                f"C-tag {circuit.c_tag} under S-tag {circuit.s_tag} is already held by {holder!r}"
            )
        pool.mark(circuit.c_tag)
        self._circuits[customer] = circuit

    def release(self, customer: str) -> Circuit | None:
        """Free the customer's tags; an S-tag left without customers returns to the pool."""
        circuit = self._circuits.pop(customer, None)
        if circuit is None:
            return None
        node = self._nodes[circuit.access_node]
        pool = node.c_tags[circuit.s_tag]
        pool.free(circuit.c_tag)
        if not pool.used:
            node.s_tags.remove(circuit.s_tag)
            del node.c_tags[circuit.s_tag]
            del self._s_owner[circuit.s_tag]
            self._s.free(circuit.s_tag)
            if not node.s_tags:
                del self._nodes[circuit.access_node]
        return circuit

    def _record(self, customer: str, circuit: Circuit) -> Circuit:
        self._circuits[customer] = circuit
        return circuit

    @classmethod
    def rebuild(
        cls,
        circuits: Iterable[tuple[str, Circuit]],
        s_range: tuple[int, int] = (MIN_TAG, MAX_TAG),
        c_range: tuple[int, int] = (MIN_TAG, MAX_TAG),
        max_s_tags_per_node: int | None = None,
    ) -> TagAllocator:
        """An allocator holding `circuits` (raises TagError on a conflict between them)."""
        allocator = cls(s_range, c_range, max_s_tags_per_node)
        for customer, circuit in sorted(circuits, key=lambda item: (item[1], item[0])):
            allocator.adopt(customer, circuit)
        return allocator
