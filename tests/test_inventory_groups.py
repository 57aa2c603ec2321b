"""Groups in the inventory, the controller and the store (migration 0002)."""

from __future__ import annotations

from typing import Any

import pytest

from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.inventory import Inventory, InventoryError, managers_first
from edgeroam.model import Group, GroupKind, Instance
from edgeroam.store import Store
from tests.conftest import load_world, make_world


def test_group_references_are_checked() -> None:
    inv = Inventory()
    load_world(inv)
    with pytest.raises(InventoryError, match="group 'g': unknown function 'nope'"):
        inv.check_group(Group(id="g", function="nope"))
    with pytest.raises(InventoryError, match="group 'g': unknown site 'mars'"):
        inv.check_group(Group(id="g", function="fw", site="mars"))
    with pytest.raises(InventoryError, match="group 'g': unknown group 'boss'"):
        inv.check_group(Group(id="g", function="fw", manager="boss"))
    inv.put_group(Group(id="fw", function="fw"))
    with pytest.raises(InventoryError, match="manager 'fw' is a function group, not a manager"):
        inv.check_group(Group(id="g", function="fw", manager="fw"))


def test_a_manager_chain_cannot_loop() -> None:
    inv = Inventory()
    load_world(inv)
    inv.put_group(Group(id="m1", function="dns", kind=GroupKind.LOCAL_MANAGER, manager="m2"))
    inv.put_group(Group(id="m2", function="dns", kind=GroupKind.CLOUD_MANAGER, manager="m1"))
    with pytest.raises(InventoryError, match="loops back"):
        inv.check_group(Group(id="m3", function="dns", kind=GroupKind.LOCAL_MANAGER, manager="m1"))


def test_bulk_load_puts_managers_before_the_groups_they_manage() -> None:
    groups = [
        Group(id="fw", function="fw", manager="lvnfm"),
        Group(id="lvnfm", function="dns", kind=GroupKind.LOCAL_MANAGER, manager="cvnfm"),
        Group(id="cvnfm", function="dns", kind=GroupKind.CLOUD_MANAGER),
    ]
    assert [g.id for g in managers_first(groups)] == ["cvnfm", "lvnfm", "fw"]
    inv = Inventory()
    load_world(inv)
    inv.load(groups=groups)
    assert sorted(inv.groups) == ["cvnfm", "fw", "lvnfm"]


def test_members_must_run_the_groups_function_and_keep_it_referenced() -> None:
    inv = Inventory()
    load_world(inv)
    inv.put_group(Group(id="web", function="fw"))
    with pytest.raises(InventoryError, match="group 'web' runs function 'fw', not 'dns'"):
        inv.check_instance(Instance(id="x", function="dns", host="edge-a", group="web"))
    inv.put_instance(Instance(id="w1", function="fw", host="edge-a", group="web"))
    assert inv.referrers("group", "web") == ["instance w1"]
    assert "group web" in inv.referrers("function", "fw")
    with pytest.raises(InventoryError, match="still used by"):
        inv.remove("group", "web")


def _controller(tmp_path: Any) -> Controller:
    return Controller(SimDriver(), store=Store(f"sqlite:///{tmp_path / 'e.db'}"))


def test_groups_are_stored_and_loaded_back(tmp_path: Any) -> None:
    first = _controller(tmp_path)
    make_world(first)
    group = Group(id="fw", function="fw", site="edge-1", min_size=2, max_size=5)
    first.put("group", group, 0.0)
    with pytest.raises(InventoryError, match="unknown site"):
        first.put("group", group.model_copy(update={"site": "nowhere"}), 0.0)
    second = _controller(tmp_path)
    second.load(0.0)
    assert second.inventory.groups == {"fw": group}
    assert second.snapshot(0.0).groups["fw"] == group
