"""The controller's in-memory view of the world, kept in step with the store.

The store is the durable truth; the inventory is what a control cycle reads, so a cycle over
10^4–10^5 hosts never touches the database. Per-host capacity and allocation are kept as numpy
columns updated incrementally, which makes building a snapshot a handful of array copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Group,
    Host,
    HostKind,
    HostState,
    Instance,
    LifecycleStage,
    Link,
    Site,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HOST_STATES = tuple(HostState)
_STATE_CODE = {state: code for code, state in enumerate(HOST_STATES)}
HOST_KINDS = tuple(HostKind)
_KIND_CODE = {kind: code for code, kind in enumerate(HOST_KINDS)}


class InventoryError(ValueError):
    """An inventory change refers to something that does not exist or conflicts."""


class HostColumns:
    """Growable columnar table of hosts: capacity, allocation and state per row."""

    def __init__(self, initial: int = 64) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.capacity: FloatArray = np.zeros((initial, 3))
        self.allocated: FloatArray = np.zeros((initial, 3))
        self.state: IntArray = np.zeros(initial, dtype=np.int64)
        self.kind: IntArray = np.zeros(initial, dtype=np.int64)
        self.lends: BoolArray = np.zeros(initial, dtype=bool)

    def _grow(self) -> None:
        size = max(64, 2 * len(self.capacity))
        self.capacity = np.resize(self.capacity, (size, 3))
        self.allocated = np.resize(self.allocated, (size, 3))
        self.state = np.resize(self.state, size)
        self.kind = np.resize(self.kind, size)
        self.lends = np.resize(self.lends, size)

    def upsert(self, host: Host) -> None:
        row = self.index.get(host.id)
        if row is None:
            if len(self.ids) >= len(self.capacity):
                self._grow()
            row = len(self.ids)
            self.ids.append(host.id)
            self.index[host.id] = row
            self.allocated[row] = 0.0
        cap = host.capacity
        self.capacity[row] = (cap.vcpu, cap.memory_mb, cap.bandwidth_mbps)
        self.state[row] = _STATE_CODE[host.state]
        self.kind[row] = _KIND_CODE[host.kind]
        self.lends[row] = host.lends_capacity

    def remove(self, host_id: str) -> None:
        """Drop a host by moving the last row into its place (keeps arrays dense)."""
        row = self.index.pop(host_id)
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.ids[row] = moved
            self.index[moved] = row
            self.capacity[row] = self.capacity[last]
            self.allocated[row] = self.allocated[last]
            self.state[row] = self.state[last]
            self.kind[row] = self.kind[last]
            self.lends[row] = self.lends[last]
        self.ids.pop()

    def allocate(self, host_id: str, amount: tuple[float, float, float], sign: float) -> None:
        row = self.index.get(host_id)
        if row is not None:
            self.allocated[row] += sign * np.asarray(amount)

    def __len__(self) -> int:
        return len(self.ids)


def _consumes(instance: Instance) -> bool:
    return instance.stage is not LifecycleStage.TERMINATED


class Inventory:
    """Sites, hosts, links, flavors, functions, customers and instances, indexed for lookups."""

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.hosts: dict[str, Host] = {}
        self.links: dict[str, Link] = {}
        self.flavors: dict[str, Flavor] = {}
        self.functions: dict[str, FunctionSpec] = {}
        self.customers: dict[str, Customer] = {}
        self.instances: dict[str, Instance] = {}
        self.groups: dict[str, Group] = {}
        self.columns = HostColumns()
        self.instances_by_host: dict[str, set[str]] = {}
        self.reservations: dict[str, list[tuple[str, tuple[float, float, float]]]] = {}
        self.cpes_by_owner: dict[str, set[str]] = {}
        self.version = 0
        self.versions: dict[str, int] = {}
        """Per-kind change counters; snapshots reuse their copies of unchanged tables."""

    def _bump(self, kind: str) -> None:
        self.version += 1
        self.versions[kind] = self.versions.get(kind, 0) + 1

    # -- references ---------------------------------------------------------------------------
    def _need(self, kind: str, table: Mapping[str, object], key: str | None, who: str) -> None:
        if key is not None and key not in table:
            raise InventoryError(f"{who}: unknown {kind} {key!r}")

    def check_host(self, host: Host) -> None:
        self._need("site", self.sites, host.site, f"host {host.id!r}")
        self._need("customer", self.customers, host.owner, f"host {host.id!r}")
        if host.room is not None:
            site = self.sites[host.site]
            if site.rooms and host.room not in site.rooms:
                raise InventoryError(
                    f"host {host.id!r}: room {host.room!r} is not one of site "
                    f"{host.site!r}'s rooms {list(site.rooms)}"
                )

    def check_link(self, link: Link) -> None:
        for end in (link.a, link.b):
            if end not in self.hosts and end not in self.sites:
                raise InventoryError(f"link {link.id!r}: end {end!r} is neither a host nor a site")

    def check_function(self, function: FunctionSpec) -> None:
        self._need("flavor", self.flavors, function.flavor, f"function {function.name!r}")

    def check_instance(self, instance: Instance) -> None:
        who = f"instance {instance.id!r}"
        self._need("function", self.functions, instance.function, who)
        self._need("host", self.hosts, instance.host, who)
        self._need("customer", self.customers, instance.owner, who)
        group = self.groups.get(instance.group) if instance.group is not None else None
        if group is not None and group.function != instance.function:
            raise InventoryError(
                f"{who}: group {group.id!r} runs function {group.function!r}, "
                f"not {instance.function!r}"
            )

    def check_group(self, group: Group) -> None:
        who = f"group {group.id!r}"
        self._need("function", self.functions, group.function, who)
        self._need("site", self.sites, group.site, who)
        self._need("group", self.groups, group.manager, who)
        if group.manager is not None:
            manager = self.groups[group.manager]
            if not manager.kind.is_manager:
                raise InventoryError(
                    f"{who}: manager {manager.id!r} is a {manager.kind.value} group, not a manager"
                )
            seen = {group.id}
            step: Group | None = manager
            while step is not None:
                if step.id in seen:
                    raise InventoryError(f"{who}: manager chain loops back through {step.id!r}")
                seen.add(step.id)
                step = self.groups.get(step.manager) if step.manager is not None else None

    # -- changes ------------------------------------------------------------------------------
    def put_site(self, site: Site) -> None:
        self.sites[site.id] = site
        self._bump("site")

    def put_customer(self, customer: Customer) -> None:
        self.customers[customer.id] = customer
        self._bump("customer")

    def put_flavor(self, flavor: Flavor) -> None:
        self.flavors[flavor.id] = flavor
        self._bump("flavor")

    def put_function(self, function: FunctionSpec) -> None:
        self.functions[function.name] = function
        self._bump("function")

    def put_group(self, group: Group) -> None:
        self.groups[group.id] = group
        self._bump("group")

    def put_host(self, host: Host) -> None:
        old = self.hosts.get(host.id)
        if old is not None and old.owner is not None:
            self.cpes_by_owner.get(old.owner, set()).discard(host.id)
        if host.owner is not None:
            self.cpes_by_owner.setdefault(host.owner, set()).add(host.id)
        self.hosts[host.id] = host
        self.columns.upsert(host)
        self.instances_by_host.setdefault(host.id, set())
        self._bump("host")

    def put_link(self, link: Link) -> None:
        self.links[link.id] = link
        self._bump("link")

    def put_instance(self, instance: Instance) -> None:
        old = self.instances.get(instance.id)
        if old is not None:
            self._account(old, -1.0)
            self.instances_by_host.get(old.host, set()).discard(old.id)
        if instance.stage is LifecycleStage.TERMINATED:
            self.instances.pop(instance.id, None)
        else:
            self.instances[instance.id] = instance
            self.instances_by_host.setdefault(instance.host, set()).add(instance.id)
            self._account(instance, +1.0)
        self._bump("instance")

    def remove(self, kind: str, key: str) -> None:
        """Delete an inventory object, refusing when something still refers to it."""
        if kind == "host":
            if self.instances_by_host.get(key):
                raise InventoryError(
                    f"host {key!r} still runs instances {sorted(self.instances_by_host[key])}"
                )
            users = self.referrers(kind, key)
            if users:
                raise InventoryError(f"host {key!r} is still used by {users[:5]}")
            host = self.hosts.pop(key)
            if host.owner is not None:
                self.cpes_by_owner.get(host.owner, set()).discard(key)
            self.columns.remove(key)
            self.instances_by_host.pop(key, None)
        elif kind == "instance":
            old = self.instances.pop(key)
            self._account(old, -1.0)
            self.instances_by_host.get(old.host, set()).discard(key)
        else:
            table = self.table(kind)
            users = self.referrers(kind, key)
            if users:
                raise InventoryError(f"{kind} {key!r} is still used by {users[:5]}")
            table.pop(key)
        self._bump(kind)

    def table(self, kind: str) -> dict[str, object]:
        tables: dict[str, dict[str, object]] = {
            "site": self.sites,  # type: ignore[dict-item]
            "host": self.hosts,  # type: ignore[dict-item]
            "link": self.links,  # type: ignore[dict-item]
            "flavor": self.flavors,  # type: ignore[dict-item]
            "function": self.functions,  # type: ignore[dict-item]
            "customer": self.customers,  # type: ignore[dict-item]
            "instance": self.instances,  # type: ignore[dict-item]
            "group": self.groups,  # type: ignore[dict-item]
        }
        if kind not in tables:
            raise InventoryError(f"unknown inventory kind {kind!r}")
        return tables[kind]

    def referrers(self, kind: str, key: str) -> list[str]:
        users: list[str] = []
        if kind == "site":
            users += [f"host {h.id}" for h in self.hosts.values() if h.site == key]
        if kind in ("site", "host"):
            users += [f"link {lk.id}" for lk in self.links.values() if key in (lk.a, lk.b)]
        if kind == "flavor":
            users += [f"function {f.name}" for f in self.functions.values() if f.flavor == key]
        if kind == "function":
            users += [f"instance {i.id}" for i in self.instances.values() if i.function == key]
            users += [f"group {g.id}" for g in self.groups.values() if g.function == key]
        if kind == "site":
            users += [f"group {g.id}" for g in self.groups.values() if g.site == key]
        if kind == "group":
            users += [f"group {g.id}" for g in self.groups.values() if g.manager == key]
            users += [f"instance {i.id}" for i in self.instances.values() if i.group == key]
        if kind == "customer":
            users += [f"host {h.id}" for h in self.hosts.values() if h.owner == key]
            users += [f"instance {i.id}" for i in self.instances.values() if i.owner == key]
        return users

    def _account(self, instance: Instance, sign: float) -> None:
        if not _consumes(instance):
            return
        function = self.functions.get(instance.function)
        flavor = self.flavors.get(function.flavor) if function else None
        if flavor is not None:
            amount = (flavor.vcpu, flavor.memory_mb, flavor.bandwidth_mbps)
            self.columns.allocate(instance.host, amount, sign)

    def reserve(self, key: str, host: str, function: str) -> None:
        """Hold a function's resources on a host while an operation moves it there."""
        flavor = self.flavor_of(function)
        amount = (flavor.vcpu, flavor.memory_mb, flavor.bandwidth_mbps)
        self.reservations.setdefault(key, []).append((host, amount))
        self.columns.allocate(host, amount, +1.0)

    def release(self, key: str) -> None:
        for host, amount in self.reservations.pop(key, []):
            self.columns.allocate(host, amount, -1.0)

    # -- queries ------------------------------------------------------------------------------
    def flavor_of(self, function: str) -> Flavor:
        return self.flavors[self.functions[function].flavor]

    def instances_on(self, host_id: str) -> list[Instance]:
        return [self.instances[i] for i in sorted(self.instances_by_host.get(host_id, ()))]

    def load(
        self,
        *,
        sites: Iterable[Site] = (),
        customers: Iterable[Customer] = (),
        flavors: Iterable[Flavor] = (),
        functions: Iterable[FunctionSpec] = (),
        hosts: Iterable[Host] = (),
        links: Iterable[Link] = (),
        instances: Iterable[Instance] = (),
        groups: Iterable[Group] = (),
    ) -> None:
        """Bulk-load in dependency order, checking every reference."""
        for site in sites:
            self.put_site(site)
        for customer in customers:
            self.put_customer(customer)
        for flavor in flavors:
            self.put_flavor(flavor)
        for function in functions:
            self.check_function(function)
            self.put_function(function)
        for host in hosts:
            self.check_host(host)
            self.put_host(host)
        for link in links:
            self.check_link(link)
            self.put_link(link)
        for group in managers_first(groups):
            self.check_group(group)
            self.put_group(group)
        for instance in instances:
            self.check_instance(instance)
            self.put_instance(instance)


def managers_first(groups: Iterable[Group]) -> list[Group]:
    """Order groups so every manager comes before the groups it manages (cycles keep their
    order and are then reported by `check_group`)."""
    pending = {g.id: g for g in groups}
    ordered: list[Group] = []
    placed: set[str] = set()

    def visit(group: Group, trail: frozenset[str]) -> None:
        if group.id in placed:
            return
        parent = pending.get(group.manager) if group.manager is not None else None
        if parent is not None and parent.id not in trail:
            visit(parent, trail | {group.id})
        placed.add(group.id)
        ordered.append(group)

    for group in list(pending.values()):
        visit(group, frozenset())
    return ordered
