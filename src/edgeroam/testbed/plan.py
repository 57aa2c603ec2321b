"""From a topology to a concrete bed: every namespace, interface, address and route.

The plan is pure data computed in one pass (no system calls), written next to the bed as its
state file, and read back by `down`, `status` and the agents. Routing is static: each router
forwards a customer LAN towards the neighbour on a shortest path to that LAN's CPE and sends
everything else towards the internet; routes equal to the default are left out and adjacent
LANs sharing a next hop are merged, so a CPE carries one route and the aggregation one per CPE.

Interfaces live inside the namespaces only (both ends of every veth are created directly in
their namespaces), so the machine's own network namespace gets nothing and needs no cleanup.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from enum import StrEnum

from pydantic import Field

from edgeroam.model import HostKind, Model
from edgeroam.testbed.topology import BedTopology

IFNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,14}$")
_RESERVED = {"lo", "lan0", "mgmt0", "inet0", "eth0", "br0"}
INTERNET = "@internet"
"""Graph key of the internet node; '@' keeps it apart from every topology id."""
MGMT_BRIDGE = "br0"
LAN_BRIDGE = "lan0"
DHCP_FIRST = 100
DHCP_LAST = 199
STATIC_FIRST = 10


class NodeKind(StrEnum):
    HOST = "host"
    SITE = "site"
    TERMINAL = "terminal"
    INTERNET = "internet"
    MGMT = "mgmt"


class Iface(Model):
    name: str
    address: str | None = Field(default=None, description="CIDR, e.g. 100.64.0.1/30.")
    role: str = Field(description="link, lan-port, mgmt, mgmt-port, inet, term")
    link: str | None = Field(default=None, description="Topology link id, for role link.")
    peer_netns: str
    peer_iface: str
    rate_mbps: float | None = Field(default=None, description="Egress shaping (tbf).")
    bridge: str | None = Field(default=None, description="Bridge this port is enslaved to.")


class Route(Model):
    destination: str
    via: str


class Node(Model):
    id: str
    kind: NodeKind
    netns: str
    ifaces: tuple[Iface, ...] = ()
    routes: tuple[Route, ...] = ()
    default_via: str | None = None
    forwarding: bool = False
    bridges: dict[str, str | None] = Field(
        default_factory=dict, description="Bridge name -> its address (CIDR) or null."
    )
    loopback: tuple[str, ...] = ()
    host_kind: HostKind | None = None
    mgmt_address: str | None = None
    lan: str | None = Field(default=None, description="CPEs: the customer LAN (CIDR).")
    cpe: str | None = Field(default=None, description="Terminals: the CPE they stand behind.")
    dhcp: bool = False


class BedPlan(Model):
    name: str
    prefix: str
    nodes: dict[str, Node] = Field(description="By namespace name.")
    hosts: dict[str, str] = Field(description="Host id -> namespace.")
    sites: dict[str, str] = Field(default_factory=dict)
    terminals: dict[str, str] = Field(default_factory=dict)
    internet_netns: str
    mgmt_netns: str
    controller_address: str
    cpe_lans: dict[str, str] = Field(description="CPE id -> LAN (CIDR).")
    band_capacity_mbps: dict[str, float] = Field(
        default_factory=dict, description="Server id -> its band capacity."
    )

    def node_of_host(self, host: str) -> Node:
        return self.nodes[self.hosts[host]]

    def veths(self) -> list[tuple[str, str, str, str]]:
        """(netns a, iface a, netns b, iface b) of every veth pair, each listed once."""
        pairs = []
        for node in self.nodes.values():
            for iface in node.ifaces:
                key = (node.netns, iface.name, iface.peer_netns, iface.peer_iface)
                if (key[2], key[3]) > (key[0], key[1]):
                    pairs.append(key)
        return sorted(pairs)

    def namespaces(self) -> list[str]:
        return sorted(self.nodes)


def netns_name(prefix: str, kind: NodeKind, ident: str) -> str:
    letter = {NodeKind.HOST: "h", NodeKind.SITE: "s", NodeKind.TERMINAL: "t"}
    if kind is NodeKind.INTERNET:
        return f"{prefix}inet"
    if kind is NodeKind.MGMT:
        return f"{prefix}mgmt"
    return f"{prefix}{letter[kind]}-{ident}"


def _link_ifname(link_id: str, index: int) -> str:
    if IFNAME_RE.match(link_id) and link_id not in _RESERVED and not link_id.startswith("tp"):
        return link_id
    return f"lk{index}"


def build_plan(bed: BedTopology, prefix: str) -> BedPlan:
    topo = bed.topology
    addr = bed.addressing
    hosts = {h.id: h for h in topo.hosts}
    sites = bed.link_sites()
    ns_of: dict[str, str] = {h: netns_name(prefix, NodeKind.HOST, h) for h in hosts}
    ns_of.update({s: netns_name(prefix, NodeKind.SITE, s) for s in sites})
    inet_ns = netns_name(prefix, NodeKind.INTERNET, INTERNET)
    mgmt_ns = netns_name(prefix, NodeKind.MGMT, "")
    ifaces: dict[str, list[Iface]] = {ns: [] for ns in ns_of.values()}
    ifaces[inet_ns] = []
    ifaces[mgmt_ns] = []
    # node id -> {neighbour id: neighbour's address on the shared link}
    neighbours: dict[str, dict[str, str]] = {n: {} for n in ns_of}
    neighbours[INTERNET] = {}

    def p2p(index: int) -> tuple[str, str, int]:
        base = addr.links.network_address + 4 * index
        return str(base + 1), str(base + 2), 30

    # -- data links ----------------------------------------------------------------------------
    used_names: dict[str, set[str]] = {ns: set() for ns in ifaces}
    for k, link in enumerate(topo.links):
        a_ip, b_ip, plen = p2p(k)
        ns_a, ns_b = ns_of[link.a], ns_of[link.b]
        name = _link_ifname(link.id, k)
        if name in used_names[ns_a] or name in used_names[ns_b]:
            name = f"lk{k}"
        used_names[ns_a].add(name)
        used_names[ns_b].add(name)
        for ns, ip, peer_ns in ((ns_a, a_ip, ns_b), (ns_b, b_ip, ns_a)):
            ifaces[ns].append(
                Iface(
                    name=name,
                    address=f"{ip}/{plen}",
                    role="link",
                    link=link.id,
                    peer_netns=peer_ns,
                    peer_iface=name,
                    rate_mbps=link.capacity_mbps,
                )
            )
        neighbours[link.a][link.b] = b_ip
        neighbours[link.b][link.a] = a_ip

    # -- the internet ----------------------------------------------------------------------------
    a_ip, b_ip, plen = p2p(len(topo.links))
    attach_ns = ns_of[bed.internet.attach]
    rate = bed.internet.capacity_mbps
    ifaces[attach_ns].append(
        Iface(
            name="inet0",
            address=f"{a_ip}/{plen}",
            role="inet",
            peer_netns=inet_ns,
            peer_iface="eth0",
            rate_mbps=rate,
        )
    )
    ifaces[inet_ns].append(
        Iface(
            name="eth0",
            address=f"{b_ip}/{plen}",
            role="inet",
            peer_netns=attach_ns,
            peer_iface="inet0",
            rate_mbps=rate,
        )
    )
    neighbours[bed.internet.attach][INTERNET] = b_ip
    neighbours[INTERNET][bed.internet.attach] = a_ip

    # -- customer LANs and terminals -------------------------------------------------------------
    cpes = bed.cpes()
    lans = {
        cpe: ipaddress.IPv4Network((int(addr.lans.network_address) + 256 * i, 24))
        for i, cpe in enumerate(cpes)
    }
    terminals: dict[str, str] = {}
    terminal_nodes: list[Node] = []
    count: dict[str, int] = {}
    for t in bed.terminals:
        j = count.get(t.cpe, 0)
        count[t.cpe] = j + 1
        t_ns = netns_name(prefix, NodeKind.TERMINAL, t.id)
        terminals[t.id] = t_ns
        lan = lans[t.cpe]
        port = f"tp{j}"
        ifaces[ns_of[t.cpe]].append(
            Iface(name=port, role="lan-port", peer_netns=t_ns, peer_iface="eth0", bridge=LAN_BRIDGE)
        )
        address = None if t.dhcp else f"{lan.network_address + STATIC_FIRST + j}/24"
        terminal_nodes.append(
            Node(
                id=t.id,
                kind=NodeKind.TERMINAL,
                netns=t_ns,
                ifaces=(
                    Iface(
                        name="eth0",
                        address=address,
                        role="term",
                        peer_netns=ns_of[t.cpe],
                        peer_iface=port,
                    ),
                ),
                default_via=None if t.dhcp else str(lan.network_address + 1),
                cpe=t.cpe,
                dhcp=t.dhcp,
            )
        )

    # -- management network ----------------------------------------------------------------------
    controller = addr.management.network_address + 1
    mplen = addr.management.prefixlen
    mgmt_addresses: dict[str, str] = {}
    for k, host in enumerate(hosts):
        ip = f"{addr.management.network_address + 10 + k}/{mplen}"
        mgmt_addresses[host] = ip
        ifaces[ns_of[host]].append(
            Iface(name="mgmt0", address=ip, role="mgmt", peer_netns=mgmt_ns, peer_iface=f"m{k}")
        )
        ifaces[mgmt_ns].append(
            Iface(
                name=f"m{k}",
                role="mgmt-port",
                peer_netns=ns_of[host],
                peer_iface="mgmt0",
                bridge=MGMT_BRIDGE,
            )
        )

    # -- routes ----------------------------------------------------------------------------------
    toward = {cpe: _next_hops(neighbours, cpe) for cpe in cpes}
    to_internet = _next_hops(neighbours, INTERNET)
    nodes: dict[str, Node] = {}
    for node_id, ns in ns_of.items():
        default_nh = to_internet.get(node_id)
        default_via = neighbours[node_id][default_nh] if default_nh else None
        by_hop: dict[str, list[ipaddress.IPv4Network]] = {}
        for cpe in cpes:
            nh = toward[cpe].get(node_id)
            if cpe == node_id or nh is None or nh == default_nh:
                continue
            by_hop.setdefault(neighbours[node_id][nh], []).append(lans[cpe])
        routes = [
            Route(destination=str(net), via=via)
            for via, nets in sorted(by_hop.items())
            for net in ipaddress.collapse_addresses(nets)
        ]
        spec = hosts.get(node_id)
        is_cpe = spec is not None and spec.kind is HostKind.CPE
        nodes[ns] = Node(
            id=node_id,
            kind=NodeKind.HOST if spec is not None else NodeKind.SITE,
            netns=ns,
            ifaces=tuple(ifaces[ns]),
            routes=tuple(routes),
            default_via=default_via,
            forwarding=True,
            bridges={LAN_BRIDGE: f"{lans[node_id].network_address + 1}/24"} if is_cpe else {},
            host_kind=spec.kind if spec is not None else None,
            mgmt_address=mgmt_addresses.get(node_id),
            lan=str(lans[node_id]) if is_cpe else None,
        )
    inet_routes: list[Route] = []
    if bed.internet.routes_back:
        via = neighbours[INTERNET][bed.internet.attach]
        inet_routes = [Route(destination=str(addr.lans), via=via)]
    nodes[inet_ns] = Node(
        id="internet",
        kind=NodeKind.INTERNET,
        netns=inet_ns,
        ifaces=tuple(ifaces[inet_ns]),
        routes=tuple(inet_routes),
        loopback=tuple(f"{a}/32" for a in bed.internet.addresses),
    )
    nodes[mgmt_ns] = Node(
        id="mgmt",
        kind=NodeKind.MGMT,
        netns=mgmt_ns,
        ifaces=tuple(ifaces[mgmt_ns]),
        bridges={MGMT_BRIDGE: f"{controller}/{mplen}"},
    )
    for node in terminal_nodes:
        nodes[node.netns] = node
    return BedPlan(
        name=bed.name,
        prefix=prefix,
        nodes=nodes,
        hosts={h: ns_of[h] for h in hosts},
        sites={s: ns_of[s] for s in sites},
        terminals=terminals,
        internet_netns=inet_ns,
        mgmt_netns=mgmt_ns,
        controller_address=str(controller),
        cpe_lans={c: str(n) for c, n in lans.items()},
        band_capacity_mbps={
            h.id: h.capacity.bandwidth_mbps for h in topo.hosts if h.kind is HostKind.SERVER
        },
    )


def _next_hops(neighbours: dict[str, dict[str, str]], target: str) -> dict[str, str]:
    """For every node, the neighbour on a shortest path to `target` (BFS from the target;
    ties go to the neighbour met first, which follows the order of the topology's links)."""
    hop: dict[str, str] = {}
    seen = {target}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        for nxt in neighbours.get(node, {}):
            if nxt not in seen:
                seen.add(nxt)
                hop[nxt] = node
                queue.append(nxt)
    return hop
