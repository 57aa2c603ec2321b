"""Testbed topology files: edgeroam's own inventory plus what a real bed needs on top of it.

The inventory part (``topology``, ``flavors``, ``functions``, ``customers``, ``instances``) has
exactly the shape of a simulation scenario and is checked by the same code, so one world can be
simulated and built for real. The testbed part says which real implementation runs each
function, which terminals stand behind which CPE, where the "internet" hangs off, and which
private address pools the bed uses. Every problem is reported as ``file: location: message``.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from edgeroam.model import Customer, Flavor, FunctionSpec, HostKind, Model
from edgeroam.model.base import Positive
from edgeroam.sim.scenario import (
    InstanceSeed,
    Scenario,
    ScenarioError,
    Topology,
    _problems,
    _UniqueKeyLoader,
    _yaml_problem,
)
from edgeroam.testbed.kinds import Implementation

#: Ids become parts of namespace, interface and cgroup names: keep them short and plain.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TERMINALS_PER_CPE = 90

__all__ = ["BedTopology", "Implementation", "TopologyError", "load_topology", "parse_topology"]


class TopologyError(ScenarioError):
    """A testbed topology (or scenario) file cannot be used; one line per problem."""


class Terminal(Model):
    """A customer device behind a CPE (its own namespace on the CPE's LAN segment)."""

    id: str
    cpe: str
    dhcp: bool = Field(
        default=False, description="Start without an address; a DHCP function must serve it."
    )


class Internet(Model):
    attach: str = Field(description="Host the internet namespace is connected to.")
    addresses: tuple[ipaddress.IPv4Address, ...] = (
        ipaddress.IPv4Address("50.1.1.1"),
        ipaddress.IPv4Address("50.1.1.2"),
    )
    capacity_mbps: Positive | None = Field(
        default=None, description="Shape the attach link; null leaves it unshaped."
    )
    routes_back: bool = Field(
        default=True,
        description="The internet routes the customers' LANs back (no NAT function needed); "
        "false makes a NAT function the only way out and in.",
    )

    @field_validator("addresses")
    @classmethod
    def _public(cls, value: tuple[ipaddress.IPv4Address, ...]) -> tuple[ipaddress.IPv4Address, ...]:
        if not value:
            raise ValueError("the internet needs at least one address")
        for address in value:
            if address.is_loopback or address.is_multicast or address.is_unspecified:
                raise ValueError(f"{address} cannot be an internet host address")
        return value


class Addressing(Model):
    lans: ipaddress.IPv4Network = ipaddress.IPv4Network("10.128.0.0/9")
    """One /24 per CPE, in the order of the hosts."""
    links: ipaddress.IPv4Network = ipaddress.IPv4Network("100.64.0.0/10")
    """One /30 per link (and the internet link)."""
    management: ipaddress.IPv4Network = ipaddress.IPv4Network("172.31.0.0/16")
    """The agents' network; the controller listens on its first address."""


class BedTopology(Model):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    topology: Topology
    flavors: tuple[Flavor, ...] = ()
    functions: tuple[FunctionSpec, ...] = ()
    customers: tuple[Customer, ...] = ()
    instances: tuple[InstanceSeed, ...] = ()
    implementations: dict[str, Implementation] = Field(
        default_factory=dict, description="Function name -> the real program that runs it."
    )
    terminals: tuple[Terminal, ...] = ()
    internet: Internet
    addressing: Addressing = Addressing()

    # -- derived views ------------------------------------------------------------------------
    def cpes(self) -> list[str]:
        return [h.id for h in self.topology.hosts if h.kind is HostKind.CPE]

    def hosts(self) -> list[str]:
        return [h.id for h in self.topology.hosts]

    def link_sites(self) -> list[str]:
        """Sites that are link ends: each becomes an aggregation router."""
        hosts = set(self.hosts())
        ends = {end for link in self.topology.links for end in (link.a, link.b)}
        return [s.id for s in self.topology.sites if s.id in ends and s.id not in hosts]


def _problems_of(bed: BedTopology) -> list[str]:
    """Checks the inventory half cannot make: names, pools, terminals, reachability."""
    problems: list[str] = []
    topo = bed.topology
    host_kind = {h.id: h.kind for h in topo.hosts}
    for i, h in enumerate(topo.hosts):
        if not NAME_RE.match(h.id):
            problems.append(
                f"topology.hosts[{i}].id: {h.id!r} is not a testbed name (lowercase letters, "
                "digits, '-' and '_', at most 40 characters)"
            )
        if h.kind is HostKind.CLOUD:
            problems.append(f"topology.hosts[{i}].kind: cloud hosts cannot be built on a testbed")
    for i, s in enumerate(topo.sites):
        if not NAME_RE.match(s.id):
            problems.append(f"topology.sites[{i}].id: {s.id!r} is not a testbed name")
    for i, fn in enumerate(bed.functions):
        if fn.name not in bed.implementations:
            problems.append(
                f"functions[{i}].name: {fn.name!r} has no entry in implementations "
                f"(one of {[m.value for m in Implementation]})"
            )
    known = {fn.name for fn in bed.functions}
    for name in bed.implementations:
        if name not in known:
            problems.append(f"implementations.{name}: no function named {name!r}")
    seen: set[str] = set()
    per_cpe: dict[str, int] = {}
    for i, t in enumerate(bed.terminals):
        where = f"terminals[{i}]"
        if not NAME_RE.match(t.id):
            problems.append(f"{where}.id: {t.id!r} is not a testbed name")
        if t.id in seen or t.id in host_kind:
            problems.append(f"{where}.id: duplicate id {t.id!r}")
        seen.add(t.id)
        if host_kind.get(t.cpe) is not HostKind.CPE:
            problems.append(f"{where}.cpe: {t.cpe!r} is not a CPE of the topology")
        per_cpe[t.cpe] = per_cpe.get(t.cpe, 0) + 1
        if per_cpe[t.cpe] == MAX_TERMINALS_PER_CPE + 1:
            problems.append(f"{where}: more than {MAX_TERMINALS_PER_CPE} terminals behind {t.cpe}")
    if bed.internet.attach not in host_kind:
        problems.append(f"internet.attach: unknown host {bed.internet.attach!r}")
    problems += _pool_problems(bed)
    if not problems:
        problems += _reachability_problems(bed)
    return problems


def _pool_problems(bed: BedTopology) -> list[str]:
    a = bed.addressing
    problems = []
    pools = {"lans": a.lans, "links": a.links, "management": a.management}
    for name, net in pools.items():
        if not net.is_private and not net.subnet_of(ipaddress.IPv4Network("100.64.0.0/10")):
            problems.append(f"addressing.{name}: {net} is not a private range")
    names = list(pools)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            if pools[x].overlaps(pools[y]):
                problems.append(f"addressing.{y}: {pools[y]} overlaps addressing.{x} {pools[x]}")
        for address in bed.internet.addresses:
            if address in pools[x]:
                problems.append(f"internet.addresses: {address} lies in addressing.{x}")
    cpes = len(bed.cpes())
    if a.lans.prefixlen > 24 or 2 ** (24 - a.lans.prefixlen) < cpes:
        problems.append(f"addressing.lans: {a.lans} has room for fewer than {cpes} /24 LANs")
    links = len(bed.topology.links) + 1
    if a.links.prefixlen > 30 or 2 ** (30 - a.links.prefixlen) < links:
        problems.append(f"addressing.links: {a.links} has room for fewer than {links} /30 links")
    if a.management.num_addresses < len(bed.hosts()) + 16:
        problems.append(f"addressing.management: {a.management} is too small for the hosts")
    return problems


def _reachability_problems(bed: BedTopology) -> list[str]:
    """Every host must reach the internet's host over links (routes follow shortest paths)."""
    graph: dict[str, set[str]] = {}
    for link in bed.topology.links:
        graph.setdefault(link.a, set()).add(link.b)
        graph.setdefault(link.b, set()).add(link.a)
    start = bed.internet.attach
    seen = {start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    cut_off = [h for h in bed.hosts() if h not in seen]
    if cut_off:
        return [f"topology.links: no path from {start} (internet.attach) to {', '.join(cut_off)}"]
    return []


def parse_topology(data: Any, source: str = "<topology>") -> BedTopology:
    if not isinstance(data, dict):
        raise TopologyError(source, [f"the document must be a mapping, not {type(data).__name__}"])
    try:
        bed = BedTopology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(source, _problems(exc, data)) from None
    # The inventory half is a scenario's: reuse its cross-reference checks verbatim.
    inventory = {
        k: data[k]
        for k in ("topology", "flavors", "functions", "customers", "instances")
        if k in data
    }
    try:
        Scenario.model_validate({"name": bed.name, "duration_s": 1, **inventory})
    except ValidationError as exc:
        raise TopologyError(source, _problems(exc, inventory)) from None
    problems = _problems_of(bed)
    if problems:
        raise TopologyError(source, problems)
    return bed


def load_yaml(path: str | Path) -> Any:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # safe: a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TopologyError(source, [_yaml_problem(exc)]) from None


def load_topology(path: str | Path) -> BedTopology:
    return parse_topology(load_yaml(path), str(path))


def generate_topology(
    cpes: int, terminals_per_cpe: int = 1, band_mbps: float = 1000.0
) -> BedTopology:
    """A star of `cpes` CPEs behind one aggregation site and one vCPE server (benchmarks)."""
    if cpes < 1 or terminals_per_cpe < 0:
        raise ValueError("need at least one CPE and a non-negative number of terminals")
    sites: list[dict[str, Any]] = [{"id": "dc", "kind": "datacenter"}]
    hosts: list[dict[str, Any]] = [
        {
            "id": "vcpe",
            "kind": "server",
            "site": "dc",
            "capacity": {"vcpu": 32, "memory_mb": 65536, "bandwidth_mbps": band_mbps},
        }
    ]
    links: list[dict[str, Any]] = [
        {"id": "band", "a": "dc", "b": "vcpe", "capacity_mbps": band_mbps, "kind": "uplink"}
    ]
    customers = []
    terminals = []
    for i in range(1, cpes + 1):
        sites.append({"id": f"home-{i}", "kind": "home"})
        customers.append({"id": f"cust-{i}"})
        hosts.append(
            {
                "id": f"cpe-{i}",
                "kind": "cpe",
                "site": f"home-{i}",
                "owner": f"cust-{i}",
                "capacity": {"vcpu": 2, "memory_mb": 1024, "bandwidth_mbps": 100},
            }
        )
        links.append({"id": f"acc-{i}", "a": f"cpe-{i}", "b": "dc", "capacity_mbps": 100})
        terminals += [{"id": f"t{i}-{j}", "cpe": f"cpe-{i}"} for j in range(terminals_per_cpe)]
    data = {
        "name": f"star-{cpes}",
        "topology": {"sites": sites, "hosts": hosts, "links": links},
        "customers": customers,
        "terminals": terminals,
        "internet": {"attach": "vcpe"},
    }
    return parse_topology(data, f"<generated star of {cpes} CPEs>")
