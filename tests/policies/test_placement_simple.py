"""Simple placement: the vectorised choice equals a plain-Python reference on random tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.inventory import Inventory
from edgeroam.model import Customer, Host, HostKind, HostState, Resources, Site
from edgeroam.policies.placement import PlacementRequest, Reservations, place
from edgeroam.snapshot import Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

SITES = ("s0", "s1", "s2")
OWNERS = ("c1", "c2")
AMOUNTS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0])


@dataclass(frozen=True)
class Row:
    host: Host
    allocated: tuple[float, float, float]


HOST_KINDS = st.sampled_from(list(HostKind))
STATES = st.sampled_from([HostState.READY] * 3 + list(HostState))
A_SITE = st.sampled_from(SITES)
AN_OWNER = st.sampled_from(OWNERS)
ID_NUMBER = st.integers(0, 99)
KIND_SETS = st.lists(HOST_KINDS, min_size=1, unique=True).map(tuple)
REQUEST_OWNER = st.sampled_from([None, *OWNERS, "c3"])
PICKS = st.lists(st.integers(0, 10), max_size=3)  # indexes into the host ids (+ an unknown)
SITE_SETS = st.lists(A_SITE, max_size=2).map(frozenset)


@st.composite
def rows(draw: st.DrawFn, index: int) -> Row:
    kind = draw(HOST_KINDS)
    cpe = kind is HostKind.CPE
    host = Host(
        id=f"h{draw(ID_NUMBER):02d}-{index}",  # ids do not follow row order
        kind=kind,
        site=draw(A_SITE),
        owner=draw(AN_OWNER) if cpe else None,
        lends_capacity=draw(st.booleans()) if cpe else False,
        state=draw(STATES),
        capacity=Resources(
            vcpu=draw(AMOUNTS), memory_mb=draw(AMOUNTS), bandwidth_mbps=draw(AMOUNTS)
        ),
    )
    return Row(host, (draw(AMOUNTS), draw(AMOUNTS), draw(AMOUNTS)))


ROWS = [rows(i) for i in range(10)]
TABLE_SIZE = st.integers(0, len(ROWS))


@st.composite
def tables(draw: st.DrawFn) -> list[Row]:
    return [draw(ROWS[i]) for i in range(draw(TABLE_SIZE))]


def requests(draw: st.DrawFn, ids: list[str]) -> tuple[PlacementRequest, Reservations]:
    pool = [*ids, "not-a-host"]

    def pick() -> list[str]:
        return [pool[i % len(pool)] for i in draw(PICKS)]

    request = PlacementRequest(
        function="fn",
        demand=Resources(vcpu=draw(AMOUNTS), memory_mb=draw(AMOUNTS), bandwidth_mbps=draw(AMOUNTS)),
        kinds=draw(KIND_SETS),
        owner=draw(REQUEST_OWNER),
        exclude_hosts=frozenset(pick()),
        avoid_sites=draw(SITE_SETS),
        allow_bnb=draw(st.booleans()),
    )
    reserved = Reservations()
    for host in pick():
        reserved.add(host, Resources(vcpu=draw(AMOUNTS), memory_mb=draw(AMOUNTS)))
    return request, reserved


def snapshot_of(table: list[Row]) -> Snapshot:
    inv = Inventory()
    inv.load(
        sites=[Site(id=s, kind="edge") for s in SITES],
        customers=[Customer(id=c) for c in OWNERS],
        hosts=[r.host for r in table],
    )
    for r in table:
        inv.columns.allocate(r.host.id, r.allocated, +1.0)
    return build_snapshot(0.0, inv, TelemetryCache())


def reference(
    table: list[Row], request: PlacementRequest, reserved: Reservations
) -> tuple[str | None, dict[str, int]]:
    """The placement rules written host by host, without numpy."""
    want = (request.demand.vcpu, request.demand.memory_mb, request.demand.bandwidth_mbps)

    def free(r: Row) -> list[float]:
        cap = r.host.capacity
        res = reserved.by_host.get(r.host.id, Resources())
        return [
            (cap.vcpu - r.allocated[0]) - res.vcpu,
            (cap.memory_mb - r.allocated[1]) - res.memory_mb,
            (cap.bandwidth_mbps - r.allocated[2]) - res.bandwidth_mbps,
        ]

    def cpe_ok(h: Host) -> bool:
        if h.kind is not HostKind.CPE:
            return True
        if request.owner is None:
            return False
        return h.owner == request.owner or (request.allow_bnb and h.lends_capacity)

    filters = [
        ("state_ready", lambda r: r.host.state is HostState.READY),
        ("host_kind", lambda r: r.host.kind in request.kinds),
        ("cpe_access", lambda r: cpe_ok(r.host)),
        ("not_excluded", lambda r: r.host.id not in request.exclude_hosts),
        ("fits_resources", lambda r: all(f >= d for f, d in zip(free(r), want, strict=True))),
    ]
    alive = list(table)
    verdicts: dict[str, int] = {}
    for name, keep in filters:
        verdicts[name] = sum(1 for r in alive if not keep(r))
        alive = [r for r in alive if keep(r)]
    if not alive:
        return None, verdicts
    pool = [r for r in alive if r.host.site not in request.avoid_sites] or alive
    share = {r.host.id: free(r)[0] / max(r.host.capacity.vcpu, 1e-9) for r in pool}
    top = max(share.values())
    return min(h for h, s in share.items() if s >= top - 1e-12), verdicts


TABLES = tables()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_place_matches_the_reference(data: st.DataObject) -> None:
    table = data.draw(TABLES)
    request, reserved = requests(data.draw, [r.host.id for r in table])
    result = place(snapshot_of(table), request, reserved)
    host, verdicts = reference(table, request, reserved)
    assert result.host == host
    assert result.reason.details["filters"] == verdicts
    if host is None:
        assert result.reason.rule == "no_eligible_host"
        for name, removed in verdicts.items():
            assert f"{name} removed {removed}" in result.reason.message
    else:
        assert result.reason.rule == "most_free_share"
        assert host in result.reason.message


def build(hosts: list[Host]) -> Snapshot:
    return snapshot_of([Row(h, (0.0, 0.0, 0.0)) for h in hosts])


def server(hid: str, vcpu: float, site: str = "s0", **kw: object) -> Host:
    return Host(id=hid, kind="server", site=site, capacity=Resources(vcpu=vcpu, memory_mb=64), **kw)  # type: ignore[arg-type]


def test_largest_free_share_wins_not_largest_absolute_free() -> None:
    snap = snapshot_of(
        [
            Row(server("big", 64), (48.0, 0.0, 0.0)),  # 16 free of 64: 25 %
            Row(server("small", 4), (1.0, 0.0, 0.0)),  # 3 free of 4: 75 %
        ]
    )
    request = PlacementRequest(function="fn", demand=Resources(vcpu=1), kinds=(HostKind.SERVER,))
    result = place(snap, request)
    assert result.host == "small"
    assert result.reason.measured["free_vcpu_share"] == pytest.approx(3 / 4)


def test_ties_go_to_the_smallest_host_id() -> None:
    snap = build([server("b", 8), server("a", 8), server("c", 8)])
    request = PlacementRequest(function="fn", demand=Resources(vcpu=1), kinds=(HostKind.SERVER,))
    assert place(snap, request).host == "a"


def test_reservations_of_the_same_cycle_count() -> None:
    snap = build([server("a", 8), server("b", 8)])
    request = PlacementRequest(function="fn", demand=Resources(vcpu=2), kinds=(HostKind.SERVER,))
    reserved = Reservations()
    first = place(snap, request, reserved).host
    assert first is not None
    reserved.add(first, request.demand)
    second = place(snap, request, reserved).host
    assert {first, second} == {"a", "b"}


def test_avoided_sites_are_a_last_resort() -> None:
    snap = build([server("near", 8, site="s0"), server("far", 2, site="s1")])
    request = PlacementRequest(
        function="fn",
        demand=Resources(vcpu=1),
        kinds=(HostKind.SERVER,),
        avoid_sites=frozenset({"s0"}),
    )
    assert place(snap, request).host == "far"
    full = PlacementRequest(
        function="fn",
        demand=Resources(vcpu=4),
        kinds=(HostKind.SERVER,),
        avoid_sites=frozenset({"s0"}),
    )
    assert place(snap, full).host == "near"


def test_cpe_access_rules() -> None:
    def cpe(hid: str, owner: str, lends: bool) -> Host:
        return Host(
            id=hid,
            kind="cpe",
            site="s0",
            owner=owner,
            lends_capacity=lends,
            capacity=Resources(vcpu=2, memory_mb=64),
        )

    snap = build([cpe("cpe-c1", "c1", False), cpe("cpe-c2", "c2", True)])
    kinds = (HostKind.CPE,)

    def where(owner: str | None, allow_bnb: bool = True) -> str | None:
        request = PlacementRequest(
            function="fn", demand=Resources(vcpu=1), kinds=kinds, owner=owner, allow_bnb=allow_bnb
        )
        return place(snap, request).host

    assert where(None) is None  # shared functions never land on a customer's CPE
    assert where("c1") == "cpe-c1"  # equal shares: the id decides between own CPE and B&B
    assert where("c1", allow_bnb=False) == "cpe-c1"
    assert where("c3") == "cpe-c2"  # only the lender
    assert where("c3", allow_bnb=False) is None
