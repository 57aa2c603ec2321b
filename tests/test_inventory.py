"""Inventory: allocation columns, reservations, referential checks and the host columns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.inventory import HOST_KINDS, HOST_STATES, HostColumns, Inventory, InventoryError
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    HostState,
    Instance,
    LifecycleStage,
    Link,
    Resources,
    Site,
)
from tests.conftest import load_world


@pytest.fixture
def inv() -> Inventory:
    inventory = Inventory()
    load_world(inventory)
    return inventory


def demand(inv: Inventory, function: str) -> np.ndarray:
    f = inv.flavor_of(function)
    return np.array([f.vcpu, f.memory_mb, f.bandwidth_mbps])


def allocated(inv: Inventory, host: str) -> np.ndarray:
    return inv.columns.allocated[inv.columns.index[host]].copy()


def expected_allocation(inv: Inventory, host: str) -> np.ndarray:
    """Sum of the flavors of the instances on `host`, from the instances themselves."""
    total = np.zeros(3)
    for inst in inv.instances.values():
        if inst.host == host:
            total += demand(inv, inst.function)
    return total


def inst(name: str, host: str, function: str = "fw", **kw: object) -> Instance:
    return Instance(id=name, function=function, host=host, **kw)  # type: ignore[arg-type]


# -- allocation ---------------------------------------------------------------------------------
def test_allocation_follows_adds_moves_and_removals(inv: Inventory) -> None:
    hosts = list(inv.hosts)
    assert all(not allocated(inv, h).any() for h in hosts)
    inv.put_instance(inst("fw.1", "edge-a"))
    inv.put_instance(inst("fw.2", "edge-a"))
    inv.put_instance(inst("cache.1", "edge-b", function="cache"))
    for h in hosts:
        assert allocated(inv, h) == pytest.approx(expected_allocation(inv, h))
    assert allocated(inv, "edge-a") == pytest.approx(2 * demand(inv, "fw"))

    inv.put_instance(inst("fw.1", "edge-b"))  # move
    assert allocated(inv, "edge-a") == pytest.approx(demand(inv, "fw"))
    assert allocated(inv, "edge-b") == pytest.approx(demand(inv, "fw") + demand(inv, "cache"))
    assert inv.instances_by_host["edge-a"] == {"fw.2"}
    assert inv.instances_by_host["edge-b"] == {"fw.1", "cache.1"}

    inv.remove("instance", "fw.2")
    assert not allocated(inv, "edge-a").any()
    # Terminated instances leave the inventory and free their resources.
    inv.put_instance(inst("cache.1", "edge-b", function="cache", stage=LifecycleStage.TERMINATED))
    assert "cache.1" not in inv.instances
    assert allocated(inv, "edge-b") == pytest.approx(demand(inv, "fw"))
    assert [i.id for i in inv.instances_on("edge-b")] == ["fw.1"]


def test_stage_changes_do_not_double_count(inv: Inventory) -> None:
    inv.put_instance(inst("fw.1", "edge-a"))
    for stage in (LifecycleStage.DEPLOYMENT, LifecycleStage.MONITORING, LifecycleStage.UPDATE):
        inv.put_instance(inst("fw.1", "edge-a", stage=stage))
    assert allocated(inv, "edge-a") == pytest.approx(demand(inv, "fw"))


def test_version_increases_on_every_change(inv: Inventory) -> None:
    before = inv.version
    inv.put_instance(inst("fw.1", "edge-a"))
    inv.remove("instance", "fw.1")
    assert inv.version == before + 2


def test_reservations_hold_and_release(inv: Inventory) -> None:
    inv.reserve("op-1", "edge-b", "cache")
    inv.reserve("op-1", "cloud-1", "fw")
    inv.reserve("op-2", "edge-b", "fw")
    assert allocated(inv, "edge-b") == pytest.approx(demand(inv, "cache") + demand(inv, "fw"))
    inv.release("op-1")
    assert allocated(inv, "edge-b") == pytest.approx(demand(inv, "fw"))
    assert not allocated(inv, "cloud-1").any()
    inv.release("op-1")  # releasing twice changes nothing
    inv.release("never-reserved")
    assert allocated(inv, "edge-b") == pytest.approx(demand(inv, "fw"))
    inv.release("op-2")
    assert not allocated(inv, "edge-b").any()


# -- references ---------------------------------------------------------------------------------
def test_load_checks_references() -> None:
    inv = Inventory()
    with pytest.raises(InventoryError, match="host 'h1': unknown site 'nowhere'"):
        inv.load(hosts=[Host(id="h1", kind="server", site="nowhere", capacity=Resources(vcpu=1))])


def test_instance_references_are_checked(inv: Inventory) -> None:
    with pytest.raises(InventoryError, match="unknown function 'nope'"):
        inv.check_instance(inst("x", "edge-a", function="nope"))
    with pytest.raises(InventoryError, match="unknown host 'mars'"):
        inv.check_instance(inst("x", "mars"))
    with pytest.raises(InventoryError, match="unknown customer 'zed'"):
        inv.check_instance(inst("x", "edge-a", owner="zed"))


def test_host_room_must_belong_to_its_site(inv: Inventory) -> None:
    host = Host(id="h9", kind="server", site="edge-1", room="r9", capacity=Resources(vcpu=1))
    with pytest.raises(InventoryError, match="room 'r9'"):
        inv.check_host(host)


def test_link_end_must_exist(inv: Inventory) -> None:
    with pytest.raises(InventoryError, match="end 'ghost'"):
        inv.check_link(Link(id="l9", a="edge-a", b="ghost", capacity_mbps=1))


@pytest.mark.parametrize(
    ("kind", "key", "user"),
    [
        ("site", "edge-1", "host edge-a"),
        ("site", "dc-1", "link uplink-edge"),
        ("flavor", "small", "function fw"),
        ("customer", "alice", "host cpe-alice"),
    ],
)
def test_removal_is_refused_while_referenced(
    inv: Inventory, kind: str, key: str, user: str
) -> None:
    before = (inv.version, dict(inv.table(kind)))
    with pytest.raises(InventoryError) as exc:
        inv.remove(kind, key)
    assert user in str(exc.value)
    assert (inv.version, dict(inv.table(kind))) == before


def test_function_and_customer_in_use_by_instances_stay(inv: Inventory) -> None:
    inv.put_instance(inst("dns.1", "edge-a", function="dns", owner="bob"))
    with pytest.raises(InventoryError, match=r"instance dns\.1"):
        inv.remove("function", "dns")
    with pytest.raises(InventoryError, match=r"instance dns\.1"):
        inv.remove("customer", "bob")
    inv.remove("instance", "dns.1")
    inv.remove("function", "dns")
    inv.remove("customer", "bob")
    assert "dns" not in inv.functions
    assert "bob" not in inv.customers


def test_host_with_instances_cannot_be_removed(inv: Inventory) -> None:
    inv.put_instance(inst("fw.1", "edge-b"))
    with pytest.raises(InventoryError, match=r"host 'edge-b' still runs instances \['fw.1'\]"):
        inv.remove("host", "edge-b")
    assert "edge-b" in inv.hosts
    assert "edge-b" in inv.columns.index


def test_host_with_links_cannot_be_removed(inv: Inventory) -> None:
    with pytest.raises(InventoryError, match="link access-alice"):
        inv.remove("host", "cpe-alice")
    assert "cpe-alice" in inv.hosts
    assert "cpe-alice" in inv.columns.index


def test_removing_a_host_keeps_the_columns_of_the_others(inv: Inventory) -> None:
    inv.put_instance(inst("fw.1", "cloud-1"))
    inv.remove("host", "edge-a")  # not the last row: the last host moves into its place
    assert "edge-a" not in inv.columns.index
    assert len(inv.columns) == len(inv.hosts)
    for host_id, host in inv.hosts.items():
        row = inv.columns.index[host_id]
        assert inv.columns.ids[row] == host_id
        cap = host.capacity
        assert list(inv.columns.capacity[row]) == [cap.vcpu, cap.memory_mb, cap.bandwidth_mbps]
        assert allocated(inv, host_id) == pytest.approx(expected_allocation(inv, host_id))


def test_unknown_kind(inv: Inventory) -> None:
    with pytest.raises(InventoryError, match="unknown inventory kind 'planet'"):
        inv.table("planet")


def test_a_leaf_object_can_be_removed(inv: Inventory) -> None:
    inv.remove("link", "uplink-edge")
    assert "uplink-edge" not in inv.links
    site = Site(id="lonely", kind="branch")
    inv.put_site(site)
    inv.remove("site", "lonely")
    assert "lonely" not in inv.sites
    inv.put_customer(Customer(id="carol"))
    inv.put_flavor(Flavor(id="tiny", vcpu=0.1, memory_mb=16))
    inv.put_function(FunctionSpec(name="probe", flavor="tiny"))
    inv.remove("function", "probe")
    inv.remove("flavor", "tiny")
    inv.remove("customer", "carol")


# -- HostColumns against a dictionary model --------------------------------------------------
HOST_IDS = [f"h{i}" for i in range(12)]

host_strategy = st.builds(
    lambda hid, kind, state, v, m, b: Host(
        id=hid,
        kind=kind,
        site="s",
        owner="o" if kind is HostKind.CPE else None,
        state=state,
        capacity=Resources(vcpu=v, memory_mb=m, bandwidth_mbps=b),
    ),
    st.sampled_from(HOST_IDS),
    st.sampled_from(list(HostKind)),
    st.sampled_from(list(HostState)),
    st.floats(0, 1e4),
    st.floats(0, 1e6),
    st.floats(0, 1e5),
)

column_ops = st.one_of(
    st.tuples(st.just("upsert"), host_strategy),
    st.tuples(st.just("remove"), st.sampled_from(HOST_IDS)),
    st.tuples(
        st.just("allocate"),
        st.tuples(
            st.sampled_from([*HOST_IDS, "unknown"]),
            st.tuples(*[st.integers(0, 64).map(float)] * 3),
            st.sampled_from([1.0, -1.0]),
        ),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(column_ops, max_size=60), st.integers(1, 4))
def test_host_columns_match_a_dictionary_model(ops: list[tuple[str, object]], initial: int) -> None:
    cols = HostColumns(initial=initial)
    model: dict[str, dict[str, object]] = {}
    for action, arg in ops:
        if action == "upsert":
            assert isinstance(arg, Host)
            row = model.setdefault(arg.id, {"allocated": np.zeros(3)})
            row.update(capacity=arg.capacity, state=arg.state, kind=arg.kind)
            cols.upsert(arg)
        elif action == "remove":
            assert isinstance(arg, str)
            if arg in model:
                del model[arg]
                cols.remove(arg)
            else:
                with pytest.raises(KeyError):
                    cols.remove(arg)
        else:
            host_id, amount, sign = arg  # type: ignore[misc]
            if host_id in model:
                model[host_id]["allocated"] = model[host_id]["allocated"] + sign * np.array(amount)
            cols.allocate(host_id, amount, sign)

        assert len(cols) == len(model)
        assert sorted(cols.ids) == sorted(model)
        assert cols.index == {h: i for i, h in enumerate(cols.ids)}
        for host_id, expected in model.items():
            row = cols.index[host_id]
            cap = expected["capacity"]
            assert isinstance(cap, Resources)
            assert list(cols.capacity[row]) == [cap.vcpu, cap.memory_mb, cap.bandwidth_mbps]
            assert list(cols.allocated[row]) == list(expected["allocated"])  # type: ignore[call-overload]
            assert HOST_STATES[cols.state[row]] is expected["state"]
            assert HOST_KINDS[cols.kind[row]] is expected["kind"]
