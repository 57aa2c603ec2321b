"""The foundation's traffic model: which links and instances each customer flow loads.

A flow leaves its customer's CPE and travels to the host of the instance that serves it, along
the shortest path (by hops) of an undirected graph whose nodes are host and site ids and whose
edges are links. Every link of the path carries the flow's whole rate, in both directions
counted together. The model is pure: the same inputs (and generator state) give the same sample,
which keeps runs reproducible and lets tests check numbers by hand.

Serving choice, routing and accounting are separate small functions so later work (e.g. what a
function does to traffic when it is offloaded to the CPE) can change one step without the rest.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeroam.model import (
    CpeAction,
    FunctionSpec,
    Host,
    HostKind,
    HostState,
    Instance,
    Link,
    Reading,
    Role,
)
from edgeroam.sim.scenario import Flow

Route = tuple[str, ...]
"""The link ids a flow crosses, from its CPE to the serving host; empty when they coincide."""

_UNAVAILABLE = frozenset({HostState.DOWN, HostState.OFF})


@dataclass(frozen=True)
class TrafficSample:
    """The load every element carries at one instant, in Mbit/s."""

    t: float
    link_used_mbps: dict[str, float]
    """Every link, 0 when idle; both directions summed."""
    instance_processed_mbps: dict[str, float]
    """Every instance given, 0 when it serves nothing."""
    host_processed_mbps: dict[str, float]
    """Every host: the sum over its instances."""
    function_used_mbps: dict[tuple[str, str], float]
    """(link id, function) -> Mbit/s, only pairs that carry traffic."""
    cpe_function_mbps: dict[tuple[str, str], float]
    """(CPE host id, function) -> what the CPE sends for that function, served or not."""
    unserved_mbps: dict[str, float]
    """Flow id -> rate of each flow no instance could serve."""
    flow_rates: dict[str, float]
    """Flow id -> offered rate of every flow."""
    served_by: dict[str, str] = field(default_factory=dict)
    """Flow id -> id of the instance serving it (served flows only)."""
    handled_on_cpe: dict[str, tuple[str, CpeAction]] = field(default_factory=dict)
    """Flow id -> (copy on the sending CPE, what it did) for flows such a copy took on."""
    transit_to: dict[str, str] = field(default_factory=dict)
    """Flow id -> host a CPE copy forwarded the flow to (it crosses links, nobody serves it)."""

    @property
    def total_unserved_mbps(self) -> float:
        return sum(self.unserved_mbps.values())


# --- routing ------------------------------------------------------------------------------------


def _link_signature(links: Iterable[Link]) -> frozenset[tuple[str, str, str]]:
    return frozenset((link.id, link.a, link.b) for link in links)


class Router:
    """Shortest paths by hop count over the links, cached until the wiring changes.

    For each destination one breadth-first search yields every node's next hop, so routing a
    thousand CPEs to the same server costs one search, not a thousand. Among equally short
    paths the next hop is the neighbour with the smallest id (then the smallest link id), which
    makes routes independent of the order links are listed in. Capacity changes do not affect
    routes, so `matches` compares only ids and ends.

    Nodes in `blocked` (hosts that are down) are never crossed in transit. The cache is kept for
    one blocked set at a time, since that set changes rarely.
    """

    def __init__(self, links: Iterable[Link]) -> None:
        links = list(links)
        self._signature = _link_signature(links)
        adjacency: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for link in links:
            adjacency[link.a].append((link.b, link.id))
            adjacency[link.b].append((link.a, link.id))
        self._adjacency = {node: sorted(edges) for node, edges in adjacency.items()}
        self._blocked: frozenset[str] = frozenset()
        self._next_hops: dict[str, dict[str, tuple[str, str]]] = {}
        self._routes: dict[tuple[str, str], Route | None] = {}

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset(self._adjacency)

    def matches(self, links: Iterable[Link]) -> bool:
        """True when `links` have the same ids and ends as the ones this router was built on."""
        return _link_signature(links) == self._signature

    def route(self, src: str, dst: str, blocked: frozenset[str] = frozenset()) -> Route | None:
        """Link ids from `src` to `dst`; () when they are the same node, None if unreachable."""
        if blocked != self._blocked:
            self._blocked = blocked
            self._next_hops.clear()
            self._routes.clear()
        key = (src, dst)
        if key not in self._routes:
            self._routes[key] = self._walk(src, dst)
        return self._routes[key]

    def _walk(self, src: str, dst: str) -> Route | None:
        if src == dst:
            return ()
        if dst in self._blocked:
            return None
        hops = self._next_hops.get(dst)
        if hops is None:
            hops = self._next_hops[dst] = self._search(dst)
        path: list[str] = []
        node = src
        while node != dst:
            hop = hops.get(node)
            if hop is None:
                return None
            node, link_id = hop
            path.append(link_id)
        return tuple(path)

    def _search(self, dst: str) -> dict[str, tuple[str, str]]:
        """Breadth-first search from `dst`: for each node, the (node, link) one hop closer."""
        distance = {dst: 0}
        next_hop: dict[str, tuple[str, str]] = {}
        queue = deque([dst])
        while queue:
            node = queue.popleft()
            if node != dst and node in self._blocked:
                continue  # reachable itself, but carries nothing further
            for neighbour, link_id in self._adjacency.get(node, ()):
                candidate = (node, link_id)
                if neighbour not in distance:
                    distance[neighbour] = distance[node] + 1
                    next_hop[neighbour] = candidate
                    queue.append(neighbour)
                elif distance[neighbour] == distance[node] + 1 and candidate < next_hop[neighbour]:
                    next_hop[neighbour] = candidate
        return next_hop


# --- serving ------------------------------------------------------------------------------------


def unavailable_hosts(hosts: Iterable[Host]) -> frozenset[str]:
    """Hosts that are DOWN or OFF: they send, forward and serve nothing."""
    return frozenset(h.id for h in hosts if h.state in _UNAVAILABLE)


def customer_cpes(hosts: Iterable[Host]) -> dict[str, str]:
    """Customer id -> the CPE its flows leave from (the lowest id if it has several)."""
    cpes: dict[str, str] = {}
    for h in hosts:
        if h.kind is HostKind.CPE and h.owner is not None:
            current = cpes.get(h.owner)
            if current is None or h.id < current:
                cpes[h.owner] = h.id
    return cpes


ServingIndex = dict[tuple[str, str | None], list[Instance]]
"""(function, owner or None for shared) -> instances able to serve, by id."""


def serving_index(instances: Iterable[Instance], unavailable: frozenset[str]) -> ServingIndex:
    """Group the instances that can serve traffic now: active, in a serving stage, host up."""
    index: ServingIndex = defaultdict(list)
    for inst in instances:
        if inst.role is Role.ACTIVE and inst.serving and inst.host not in unavailable:
            index[(inst.function, inst.owner)].append(inst)
    for group in index.values():
        group.sort(key=lambda i: i.id)
    return dict(index)


def candidates(index: ServingIndex, function: str, customer: str) -> list[Instance]:
    """Instances that may serve a customer's flow, best first: its own, then shared ones.

    `choose_instance` walks the same order without building the list.
    """
    return index.get((function, customer), []) + index.get((function, None), [])


def choose_instance(
    index: ServingIndex,
    router: Router,
    function: str,
    customer: str,
    cpe: str,
    unavailable: frozenset[str],
    exclude_host: str | None = None,
) -> tuple[Instance, Route] | None:
    """The first candidate the CPE can reach, with the route to it; None if none can serve.

    The customer's own copy on the sending CPE comes first (an offloaded copy serves its
    owner's flows even if a copy elsewhere has a smaller id); `exclude_host` leaves out the
    copies on one host, which is how a flow a CPE copy passes on finds the server copy.
    """
    if exclude_host != cpe:
        for inst in index.get((function, customer), ()):
            if inst.host == cpe:
                return inst, ()
    for owner in (customer, None):
        for inst in index.get((function, owner), ()):
            if inst.host == exclude_host:
                continue
            route = router.route(cpe, inst.host, unavailable)
            if route is not None:
                return inst, route
    return None


# --- the sample ---------------------------------------------------------------------------------


def compute_traffic(
    hosts: Sequence[Host],
    links: Sequence[Link],
    instances: Sequence[Instance],
    flows: Sequence[Flow],
    t: float,
    rng: np.random.Generator | None = None,
    router: Router | None = None,
    functions: Mapping[str, FunctionSpec] | None = None,
) -> TrafficSample:
    """Load every link, instance and host with the flows' rates at time `t`.

    Pass a `router` built on the same links to reuse cached routes across ticks (see
    `TrafficModel`). Noise is drawn from `rng` flow by flow in the order of `flows`.
    A flow is unserved when its CPE is down, no active serving instance of its function is on a
    host that is up, or none of those is reachable; its rate then loads no link.

    With `functions`, a flow reaching a copy of its function on its own CPE meets that
    function's `traffic` rules (see `edgeroam.model.traffic`): answered or dropped flows end
    there, forwarded ones continue to the host the flow would otherwise go to (loading the
    links, processed by nobody there), passed ones are served as if the CPE copy did not exist.
    Without it every CPE copy answers, as before functions declared rules.
    """
    if router is None or not router.matches(links):
        router = Router(links)
    unavailable = unavailable_hosts(hosts)
    cpes = customer_cpes(hosts)
    index = serving_index(instances, unavailable)

    link_used = dict.fromkeys((link.id for link in links), 0.0)
    processed = dict.fromkeys((inst.id for inst in instances), 0.0)
    function_used: dict[tuple[str, str], float] = defaultdict(float)
    cpe_function: dict[tuple[str, str], float] = defaultdict(float)
    unserved: dict[str, float] = {}
    rates: dict[str, float] = {}
    served_by: dict[str, str] = {}
    handled: dict[str, tuple[str, CpeAction]] = {}
    transit_to: dict[str, str] = {}

    for flow in flows:
        rate = flow.rate_mbps.rate(t, rng)
        rates[flow.id] = rate
        cpe = cpes.get(flow.customer)
        if cpe is None or cpe in unavailable:
            unserved[flow.id] = rate
            continue
        cpe_function[(cpe, flow.function)] += rate
        choice = choose_instance(index, router, flow.function, flow.customer, cpe, unavailable)
        if choice is None:
            unserved[flow.id] = rate
            continue
        inst, route = choice
        spec = functions.get(flow.function) if functions is not None else None
        if spec is not None and inst.host == cpe:
            action = spec.traffic.action_for(flow.destination, flow.protocol, inst.params)
            if action.handled_on_cpe:
                handled[flow.id] = (inst.id, action)
                served_by[flow.id] = inst.id
                processed[inst.id] = processed.get(inst.id, 0.0) + rate
            if action.keeps_off_band:
                continue
            onward = choose_instance(
                index, router, flow.function, flow.customer, cpe, unavailable, exclude_host=cpe
            )
            if onward is None:
                if action is CpeAction.PASS:
                    unserved[flow.id] = rate
                continue  # forwarded with nowhere modelled to go: it leaves at the CPE's site
            inst, route = onward
            if action is CpeAction.FORWARD:
                transit_to[flow.id] = inst.host
                for link_id in route:
                    link_used[link_id] += rate
                    function_used[(link_id, flow.function)] += rate
                continue
        served_by[flow.id] = inst.id
        processed[inst.id] = processed.get(inst.id, 0.0) + rate
        for link_id in route:
            link_used[link_id] += rate
            function_used[(link_id, flow.function)] += rate

    host_processed = dict.fromkeys((h.id for h in hosts), 0.0)
    for inst in instances:
        host_processed[inst.host] = host_processed.get(inst.host, 0.0) + processed[inst.id]

    return TrafficSample(
        t=t,
        link_used_mbps=link_used,
        instance_processed_mbps=processed,
        host_processed_mbps=host_processed,
        function_used_mbps={k: v for k, v in function_used.items() if v != 0},
        cpe_function_mbps=dict(cpe_function),
        unserved_mbps=unserved,
        flow_rates=rates,
        served_by=served_by,
        handled_on_cpe=handled,
        transit_to=transit_to,
    )


class TrafficModel:
    """Keeps one `Router` across ticks and rebuilds it only when the links' wiring changes."""

    def __init__(self) -> None:
        self._router: Router | None = None

    @property
    def router(self) -> Router | None:
        """The router of the last sample, None before the first."""
        return self._router

    def sample(
        self,
        hosts: Sequence[Host],
        links: Sequence[Link],
        instances: Sequence[Instance],
        flows: Sequence[Flow],
        t: float,
        rng: np.random.Generator | None = None,
        functions: Mapping[str, FunctionSpec] | None = None,
    ) -> TrafficSample:
        if self._router is None or not self._router.matches(links):
            self._router = Router(links)
        return compute_traffic(hosts, links, instances, flows, t, rng, self._router, functions)


# --- readings -----------------------------------------------------------------------------------

_NOT_METRIC_CHAR = re.compile(r"[^a-z0-9_]")


def metric_part(name: str) -> str:
    """Make a name usable inside a metric: lowercase, and any char not in [a-z0-9_] becomes _.

    Function names are identifiers that may hold upper case, '-', '.' or ':', which the
    Reading metric pattern does not allow (and '.' would add a level). Two names that differ
    only in those characters map to the same metric, and their values are added up.
    """
    return _NOT_METRIC_CHAR.sub("_", name.lower())


def function_metric(function: str) -> str:
    """The per-link metric of one function's traffic, e.g. ``function.nat.used_mbps``."""
    return f"function.{metric_part(function)}.used_mbps"


def sample_to_readings(sample: TrafficSample, links: Iterable[Link], t: float) -> list[Reading]:
    """Readings as an agent would report them: per link, per instance, per host.

    ``use_ratio`` is used / capacity and is not clipped, so an overload shows as a value > 1.
    """
    readings: list[Reading] = []
    for link in links:
        used = sample.link_used_mbps.get(link.id, 0.0)
        source = f"link:{link.id}"
        readings.append(Reading(source=source, metric="used_mbps", value=used, timestamp=t))
        readings.append(
            Reading(source=source, metric="use_ratio", value=used / link.capacity_mbps, timestamp=t)
        )
    per_function: dict[tuple[str, str], float] = defaultdict(float)
    for (link_id, function), used in sample.function_used_mbps.items():
        if used != 0:
            per_function[(link_id, function_metric(function))] += used
    for (link_id, metric), used in sorted(per_function.items()):
        readings.append(Reading(source=f"link:{link_id}", metric=metric, value=used, timestamp=t))
    for inst_id, value in sample.instance_processed_mbps.items():
        readings.append(
            Reading(source=f"instance:{inst_id}", metric="processed_mbps", value=value, timestamp=t)
        )
    for host_id, value in sample.host_processed_mbps.items():
        readings.append(
            Reading(source=f"host:{host_id}", metric="processed_mbps", value=value, timestamp=t)
        )
    return readings
