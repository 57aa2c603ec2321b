"""Snapshots: copies of the numeric columns, read-only tables, telemetry freshness, busy set."""

from __future__ import annotations

import numpy as np
import pytest

from edgeroam.inventory import HOST_KINDS, HOST_STATES, Inventory
from edgeroam.model import (
    HostKind,
    HostState,
    Instance,
    OperationKind,
    OperationState,
    Reading,
    Resources,
)
from edgeroam.snapshot import OperationSummary, TableCache, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache
from tests.conftest import load_world


@pytest.fixture
def inv() -> Inventory:
    inventory = Inventory()
    load_world(inventory)
    return inventory


def summary(op_id: str, state: OperationState, subject: str, *instances: str) -> OperationSummary:
    return OperationSummary(
        id=op_id,
        kind=OperationKind.MIGRATE,
        state=state,
        subject=subject,
        instances=instances,
        hosts=(),
        sites=(),
        policy="test",
        created_at=0.0,
        finished_at=None if state.in_flight else 1.0,
    )


def test_host_table_mirrors_the_inventory(inv: Inventory) -> None:
    inv.put_instance(Instance(id="fw.1", function="fw", host="edge-a"))
    snap = build_snapshot(10.0, inv, TelemetryCache())
    table = snap.host_table
    assert set(table.ids) == set(inv.hosts)
    flavor = inv.flavor_of("fw")
    for host_id, host in inv.hosts.items():
        row = table.index[host_id]
        assert table.ids[row] == host_id
        cap = host.capacity
        assert list(table.capacity[row]) == [cap.vcpu, cap.memory_mb, cap.bandwidth_mbps]
        assert HOST_STATES[table.state[row]] is host.state
        assert HOST_KINDS[table.kind[row]] is host.kind
        assert bool(table.lends[row]) is host.lends_capacity
        used = (
            [flavor.vcpu, flavor.memory_mb, flavor.bandwidth_mbps]
            if host_id == "edge-a"
            else [0] * 3
        )
        assert list(table.allocated[row]) == used
        assert list(table.free[row]) == [
            c - u for c, u in zip(table.capacity[row], used, strict=True)
        ]
    edge = inv.hosts["edge-a"].capacity
    assert table.free_of("edge-a") == Resources(
        vcpu=edge.vcpu - flavor.vcpu,
        memory_mb=edge.memory_mb - flavor.memory_mb,
        bandwidth_mbps=edge.bandwidth_mbps - flavor.bandwidth_mbps,
    )


def test_free_of_never_reports_negative_resources(inv: Inventory) -> None:
    cap = inv.hosts["cpe-alice"].capacity
    inv.columns.allocate("cpe-alice", (cap.vcpu + 3, 0.0, cap.bandwidth_mbps + 1), +1.0)
    free = build_snapshot(0.0, inv, TelemetryCache()).host_table.free_of("cpe-alice")
    assert free == Resources(vcpu=0, memory_mb=cap.memory_mb, bandwidth_mbps=0)


def test_masks(inv: Inventory) -> None:
    down = inv.hosts["edge-b"].model_copy(update={"state": HostState.DOWN})
    inv.put_host(down)
    table = build_snapshot(0.0, inv, TelemetryCache()).host_table
    ready = {table.ids[r] for r in np.flatnonzero(table.ready_mask())}
    assert ready == {h.id for h in inv.hosts.values() if h.state is HostState.READY}
    servers = {table.ids[r] for r in np.flatnonzero(table.kind_mask((HostKind.SERVER,)))}
    assert servers == {h.id for h in inv.hosts.values() if h.kind is HostKind.SERVER}


def test_snapshot_does_not_change_when_the_inventory_does(inv: Inventory) -> None:
    snap = build_snapshot(0.0, inv, TelemetryCache())
    allocated = snap.host_table.allocated.copy()
    inv.put_instance(Instance(id="fw.1", function="fw", host="edge-a"))
    inv.put_host(inv.hosts["edge-b"].model_copy(update={"state": HostState.DOWN}))
    assert "fw.1" not in snap.instances
    assert snap.hosts["edge-b"].state is HostState.READY
    assert np.array_equal(snap.host_table.allocated, allocated)
    assert HOST_STATES[snap.host_table.state[snap.host_table.index["edge-b"]]] is HostState.READY


def test_snapshot_tables_are_read_only(inv: Inventory) -> None:
    snap = build_snapshot(0.0, inv, TelemetryCache())
    with pytest.raises(TypeError):
        snap.hosts["x"] = inv.hosts["edge-a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.instances_by_host["edge-a"] = frozenset()  # type: ignore[index]
    assert isinstance(snap.cpes_by_owner["alice"], frozenset)


def test_table_cache_reuses_unchanged_tables_only(inv: Inventory) -> None:
    cache = TableCache()
    first = build_snapshot(0.0, inv, TelemetryCache(), cache=cache)
    second = build_snapshot(1.0, inv, TelemetryCache(), cache=cache)
    assert second.sites is first.sites
    inv.put_instance(Instance(id="fw.1", function="fw", host="edge-a"))
    third = build_snapshot(2.0, inv, TelemetryCache(), cache=cache)
    assert third.sites is first.sites
    assert "fw.1" in third.instances
    assert "fw.1" not in first.instances


def test_instances_by_host_and_cpes_by_owner(inv: Inventory) -> None:
    inv.put_instance(Instance(id="fw.1", function="fw", host="edge-a"))
    inv.put_instance(Instance(id="fw.2", function="fw", host="edge-a"))
    snap = build_snapshot(0.0, inv, TelemetryCache())
    assert snap.instances_by_host["edge-a"] == frozenset({"fw.1", "fw.2"})
    assert set(snap.instances_by_host) == {"edge-a"}  # hosts without instances are left out
    assert snap.instances_by_host.get("edge-b") is None
    assert "edge-b" not in snap.instances_by_host
    assert len(snap.instances_by_host) == 1
    with pytest.raises(KeyError):
        snap.instances_by_host["edge-b"]
    assert snap.cpes_by_owner["alice"] == frozenset({"cpe-alice"})
    assert snap.site_of("edge-a") == inv.hosts["edge-a"].site
    assert snap.flavor_of("fw") == inv.flavor_of("fw")


def test_busy_holds_subjects_and_instances_of_in_flight_operations_only(inv: Inventory) -> None:
    ops = (
        summary("op-1", OperationState.PROCESSING, "grp", "fw.1", "fw.2"),
        summary("op-2", OperationState.FAILED_TEMP, "fw.3", "fw.3"),
        summary("op-3", OperationState.COMPLETED, "fw.4", "fw.4"),
        summary("op-4", OperationState.ROLLED_BACK, "fw.5"),
    )
    snap = build_snapshot(0.0, inv, TelemetryCache(), ops)
    assert snap.busy == {"grp", "fw.1", "fw.2", "fw.3"}


def test_telemetry_values_go_unknown_when_stale() -> None:
    cache = TelemetryCache(stale_after=10.0)
    cache.stale_overrides["slow"] = 100.0
    cache.ingest(
        [
            Reading(source="host:a", metric="cpu", value=0.5, timestamp=95.0),
            Reading(source="host:b", metric="cpu", value=0.9, timestamp=80.0),
            Reading(source="host:b", metric="slow", value=3.0, timestamp=20.0),
        ]
    )
    now = 100.0
    snap = build_snapshot(now, Inventory(), cache)
    tel = snap.telemetry
    assert tel.value("host:a", "cpu") == 0.5
    assert tel.value("host:b", "cpu") is None  # 20 s old, limit 10 s: unknown, not 0.9
    assert tel.value("host:b", "slow") == 3.0  # per-metric limit of 100 s
    assert tel.value("host:c", "cpu") is None
    assert tel.value("host:a", "nothing") is None
    sample = tel.sample("host:b", "cpu")
    assert sample is not None
    assert sample.stale
    assert sample.value == 0.9
    assert sample.age == pytest.approx(now - 80.0)
    assert sample.timestamp == pytest.approx(80.0)
    column = tel.column("cpu")
    assert column is not None
    assert set(column.ids) == {"host:a", "host:b"}


def test_telemetry_history_is_bounded_by_the_snapshot_time() -> None:
    cache = TelemetryCache(stale_after=10.0)
    points = [(float(t), float(t) / 10) for t in range(0, 50, 5)]
    cache.ingest([Reading(source="link:l", metric="load", value=v, timestamp=t) for t, v in points])
    snap = build_snapshot(30.0, Inventory(), cache)
    assert snap.telemetry.history("link:l", "load") == tuple(p for p in points if p[0] <= 30.0)
    assert snap.telemetry.history("link:l", "load", since=20.0) == tuple(
        p for p in points if 20.0 <= p[0] <= 30.0
    )
    # Later readings reach the cache, not the snapshot's telemetry values.
    cache.ingest([Reading(source="link:l", metric="load", value=9.0, timestamp=31.0)])
    assert snap.telemetry.value("link:l", "load") == points[-1][1]


def test_late_reading_never_overwrites_a_newer_one() -> None:
    cache = TelemetryCache()
    cache.ingest([Reading(source="host:a", metric="cpu", value=0.7, timestamp=10.0)])
    cache.ingest([Reading(source="host:a", metric="cpu", value=0.1, timestamp=5.0)])
    assert build_snapshot(10.0, Inventory(), cache).telemetry.value("host:a", "cpu") == 0.7
    assert cache.discarded_late == 1
