"""Cost strategies on controller snapshots: ids, incentives, cloud links, telemetry, reasons."""

from __future__ import annotations

import pytest

from edgeroam.model import Flavor, FunctionSpec, HostKind, HostState, Reading, Resources
from edgeroam.policies.placement import (
    CostModel,
    DelayCheck,
    PlacementMode,
    PlacementRequest,
    Placer,
    Reservations,
    Strategy,
    place,
    place_batch,
)
from edgeroam.policies.placement.simple import place as place_spread
from edgeroam.telemetry.cache import TelemetryCache
from tests.policies.placement.edge_world import (
    CHEAP,
    CLOUD_CAPACITY,
    DEAR,
    IOT,
    SERVER_CAPACITY,
    add,
    edge_inventory,
    snapshot,
)

ALL_KINDS = (HostKind.CPE, HostKind.SERVER, HostKind.CLOUD)
COST = CostModel()


def request(owner: str | None = "c1", **kw: object) -> PlacementRequest:
    values: dict[str, object] = {
        "function": "iot",
        "demand": IOT.resources,
        "kinds": ALL_KINDS,
        "owner": owner,
        "strategy": Strategy.EXHAUSTIVE,
    }
    values.update(kw)
    return PlacementRequest(**values)  # type: ignore[arg-type]


def incentive(prices: object) -> float:
    p = prices
    return (
        p.per_vcpu * IOT.vcpu  # type: ignore[attr-defined]
        + p.per_memory_mb * IOT.memory_mb  # type: ignore[attr-defined]
        + p.per_bandwidth_mbps * IOT.bandwidth_mbps  # type: ignore[attr-defined]
    )


def pool_cost(free: Resources, link_left: float | None = None) -> float:
    bandwidth = free.bandwidth_mbps if link_left is None else link_left
    return (
        1000 * IOT.vcpu / free.vcpu
        + 1000 * IOT.memory_mb / free.memory_mb
        + 1000 * IOT.bandwidth_mbps / bandwidth
    )


def fill_own_cpe(inv: object) -> None:
    for k in range(3):  # 4 vCPU, strict headroom: three 1-vCPU instances fit
        add(inv, f"own-{k}", "cpe-1")  # type: ignore[arg-type]


def test_the_owners_cpe_is_free_and_chosen_first() -> None:
    result = place(snapshot(edge_inventory()), request())
    assert result.host == "cpe-1"
    assert result.reason.measured["cost"] == 0
    assert result.reason.measured["place"] == "own"
    assert result.reason.rule == "placement_exhaustive"


def test_when_the_owners_cpe_is_full_the_cheapest_place_wins() -> None:
    inv = edge_inventory()
    fill_own_cpe(inv)
    snap = snapshot(inv)
    expected = {
        "cpe-2": incentive(CHEAP),
        "cpe-3": incentive(DEAR),
        "edge-1": pool_cost(SERVER_CAPACITY),
        "cloud-1": pool_cost(CLOUD_CAPACITY, link_left=1000),
    }
    result = place(snap, request())
    assert result.host == min(expected, key=expected.__getitem__) == "cpe-2"
    assert result.reason.measured["cost"] == pytest.approx(expected["cpe-2"])
    no_bnb = place(snap, request(allow_bnb=False))
    pools = {k: v for k, v in expected.items() if not k.startswith("cpe")}
    assert no_bnb.host == min(pools, key=pools.__getitem__)
    assert no_bnb.reason.measured["cost"] == pytest.approx(min(pools.values()))


def test_redundancy_multiplies_the_incentives() -> None:
    inv = edge_inventory(server=False)
    fill_own_cpe(inv)
    cloud = pool_cost(CLOUD_CAPACITY, link_left=1000)
    factor = cloud / incentive(CHEAP) + 1  # make the cheap B&B node dearer than the cloud
    result = place(snapshot(inv), request(), cost=CostModel(redundancy_factor=factor))
    assert result.host == "cloud-1"
    assert result.reason.measured["cost"] == pytest.approx(cloud)


def test_the_heuristic_takes_the_roomiest_bnb_node() -> None:
    inv = edge_inventory(server=False)
    fill_own_cpe(inv)
    add(inv, "guest", "cpe-2", owner="c4")  # cpe-2 (cheap) is now less roomy than cpe-3
    result = place(snapshot(inv), request(strategy=Strategy.HEURISTIC))
    assert result.host == "cpe-3"
    assert result.reason.measured["cost"] == pytest.approx(incentive(DEAR))
    assert place(snapshot(inv), request()).host == "cpe-2"  # exhaustive: the cheapest


def test_shared_functions_never_land_on_a_cpe_and_local_mode_only_on_the_owners() -> None:
    snap = snapshot(edge_inventory())
    shared = place(snap, request(owner=None, function="dns"))
    assert shared.host in ("edge-1", "cloud-1")
    local = place(snap, request(owner="c2", mode=PlacementMode.LOCAL))
    assert local.host == "cpe-2"
    inv = edge_inventory()
    fill_own_cpe(inv)
    failed = place(snapshot(inv), request(mode=PlacementMode.LOCAL))
    assert failed.host is None
    assert failed.reason.details["filters"]["placement_mode"] == 5  # every host but cpe-1


def test_hosts_that_are_not_ready_are_never_candidates() -> None:
    inv = edge_inventory()
    for state, host in ((HostState.CORDONED, "cpe-1"), (HostState.DOWN, "cpe-2")):
        inv.put_host(inv.hosts[host].model_copy(update={"state": state}))
    result = place(snapshot(inv), request())
    assert result.host not in ("cpe-1", "cpe-2")
    assert result.host == "cpe-3"  # the dear lender still beats the server and the cloud


def core_threshold(max_delay: float, link_delay: float, external: float = 0.0) -> float:
    """R must exceed this: 50,000 / (R + 1) + link delay + external < max delay."""
    return 50_000 / (max_delay - link_delay - external) - 1


def test_the_cloud_core_delay_follows_the_links_remaining_bandwidth() -> None:
    """A 300 Mbit/s core link: each cloud instance takes 10 Mbit/s of it; the cloud qualifies
    while 50,000 / (R + 1) + 5 ms < 200 ms, i.e. R > 255.4, i.e. 5 instances (R = 300..260)."""
    threshold = core_threshold(IOT.max_delay_ms or 0, 5)
    expected = sum(1 for k in range(100) if 300 - 10 * k > threshold)
    inv = edge_inventory(link_mbps=300, server=False)
    only_cloud = request(kinds=(HostKind.CLOUD,))
    placed = 0
    while True:
        result = place(snapshot(inv), only_cloud)
        if result.host is None:
            break
        add(inv, f"cloud-{placed}", result.host)
        placed += 1
    assert placed == expected == 5
    assert result.reason.rule == "no_eligible_host"
    assert result.reason.details["filters"]["cloud_core_delay"] == 1
    assert "cloud_core_delay removed 1" in result.reason.message
    assert "core delay" in result.reason.message


def test_a_fresh_external_delay_reading_overrides_the_constant() -> None:
    inv = edge_inventory(link_mbps=300, server=False)
    only_cloud = request(kinds=(HostKind.CLOUD,))
    telemetry = TelemetryCache(stale_after=30)
    # 50,000 / 301 + 5 = 171 ms: fine alone, too slow with 40 ms from elsewhere.
    telemetry.ingest(
        [Reading(source="site:cloud", metric="external_delay_ms", value=40, timestamp=90)]
    )
    assert place(snapshot(inv, 100, telemetry), only_cloud).host is None
    assert place(snapshot(inv, 200, telemetry), only_cloud).host == "cloud-1"  # stale: constant
    assert place(snapshot(inv, 100), only_cloud, cost=CostModel(external_delay=40)).host is None


def test_without_a_strategy_place_keeps_the_spread_rule() -> None:
    inv = edge_inventory()
    snap = snapshot(inv)
    plain = request(strategy=None)
    assert place(snap, plain) == place_spread(snap, plain)
    assert place(snap, plain, strategy="exhaustive").host == "cpe-1"


def test_reservations_and_commits_make_later_decisions_see_earlier_ones() -> None:
    inv = edge_inventory(server=False)
    snap = snapshot(inv)
    reserved = Reservations()
    reserved.add("cpe-1", Resources(vcpu=3, memory_mb=0, bandwidth_mbps=0))
    assert place(snap, request(), reserved).host == "cpe-2"  # 4 − 3 = 1 vCPU: not > 1
    placer = Placer(snap)
    hosts = [placer.place(request()).host for _ in range(7)]
    assert hosts == ["cpe-1"] * 3 + ["cpe-2"] * 3 + ["cpe-3"]


def test_avoided_sites_are_used_only_when_nothing_else_qualifies() -> None:
    snap = snapshot(edge_inventory())
    assert place(snap, request(avoid_sites=frozenset({"home-1"}))).host == "cpe-2"
    alone = request(avoid_sites=frozenset({"home-1"}), mode=PlacementMode.LOCAL)
    assert place(snap, alone).host == "cpe-1"


def test_resident_cost_counts_the_instances_own_share_back() -> None:
    inv = edge_inventory(server=False)
    add(inv, "in-cloud", "cloud-1")
    placer = Placer(snapshot(inv))
    assert placer.resident_cost(request(), "cloud-1") == pytest.approx(
        pool_cost(CLOUD_CAPACITY, link_left=1000)
    )
    assert placer.resident_cost(request(), "cpe-1") == 0
    assert placer.resident_cost(request(), "cpe-3") == pytest.approx(incentive(DEAR))


def test_a_batch_is_placed_jointly_within_capacity() -> None:
    inv = edge_inventory(server=False)
    snap = snapshot(inv)
    batch = [request() for _ in range(8)] + [request(owner="c2")]
    results = place_batch(snap, batch)
    hosts = [r.host for r in results]
    assert hosts.count("cpe-1") == 3 and hosts.count("cpe-2") == 3  # c2's one goes home
    assert all(r.reason.rule == "placement_optimal" for r in results)
    total = sum(r.reason.measured["cost"] for r in results)
    sequential = Placer(snap)
    greedy = sum(sequential.place(r).reason.measured["cost"] for r in batch)
    assert total <= greedy + 1e-9
    too_many = place_batch(snapshot(edge_inventory(link_mbps=20, server=False)), [request()] * 20)
    assert all(r.host is None and r.reason.rule == "batch_infeasible" for r in too_many)


def test_protect_keeps_the_delay_within_every_residents_limit() -> None:
    """A resident that tolerates 180 ms: `before` only checks each newcomer's 200 ms on the link
    as it is; `protect` checks the link after the newcomer against 180 ms too."""
    inv = edge_inventory(server=False)
    big = Resources(vcpu=1000, memory_mb=1_000_000, bandwidth_mbps=1000)  # only the link binds
    inv.put_host(inv.hosts["cloud-1"].model_copy(update={"capacity": big}))
    inv.put_flavor(Flavor(id="strict", vcpu=1, memory_mb=1024, bandwidth_mbps=10, max_delay_ms=180))
    inv.put_function(FunctionSpec(name="strictfn", flavor="strict", placement=(HostKind.CLOUD,)))
    add(inv, "resident", "cloud-1", function="strictfn")
    only_cloud = request(kinds=(HostKind.CLOUD,))
    left = 1000 - 10  # link budget minus the resident's bandwidth

    def count(check: DelayCheck) -> int:
        placer = Placer(snapshot(inv), cost=CostModel(delay_check=check))
        placed = 0
        while placer.place(only_cloud).host is not None:
            placed += 1
        return placed

    before = sum(1 for k in range(200) if left - 10 * k > core_threshold(200, 5))
    protect = sum(1 for k in range(200) if left - 10 * (k + 1) > core_threshold(180, 5))
    assert count(DelayCheck.BEFORE) == before
    assert count(DelayCheck.PROTECT) == protect < before
