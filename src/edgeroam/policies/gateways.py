"""Built-in `gateways` policy: a vRGW for every subscriber, K pooled vRGWs per node (seed 003).

Each cycle, from the snapshot alone:

* every subscriber (see `gateways.world`) without a vRGW gets one: its circuit's tags are
  allocated (TR-101 1:1: S-tag per access node, C-tag per customer, rebuilt each cycle from the
  circuits recorded in running vRGWs, so a departed customer's tags are free again), a node is
  chosen by placement among the virtualization nodes (demand: the profile's bandwidth), and the
  oldest ready pooled vRGW there is claimed (an UPDATE that applies the settings, hands the
  instance to the customer and makes it active) — or, with none ready, a vRGW is instantiated;
* each node's pool is brought back to K (new standby instances, built in the background) or
  trimmed (newest first);
* vRGWs of customers whose subscription was switched off (label ``vrgw`` no longer true) are
  terminated, and their tags become free.

Disabled by default, and inert without virtualization nodes and subscribers, so no other
scenario changes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from edgeroam.gateways.capacity import demand
from edgeroam.gateways.pools import NodePool, claimable, pools
from edgeroam.gateways.profiles import ProfileError, profile
from edgeroam.gateways.settings import to_params
from edgeroam.gateways.template import FUNCTION, TEMPLATES
from edgeroam.gateways.vlan import MAX_TAG, MIN_TAG, TagAllocator, TagError
from edgeroam.gateways.world import (
    SUBSCRIBER_LABEL,
    access_node,
    circuits,
    is_node,
    is_pooled,
    is_subscriber,
    vrgws_by_owner,
)
from edgeroam.model import Customer, HostState, Instance, OperationKind, Reason, Resources, Role
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.placement import PlacementRequest, Reservations, place
from edgeroam.snapshot import Snapshot


class GatewaysConfig(PolicyConfig):
    enabled: bool = False
    precedence: int = 45
    function: str = Field(default=FUNCTION, description="Name of the vRGW function.")
    pool_size: int = Field(default=2, ge=0, le=1000, description="K: pooled vRGWs per node.")
    template: Literal["full", "lean"] = "full"
    max_activations_per_cycle: int = Field(default=50, ge=1)
    max_pool_changes_per_cycle: int = Field(default=20, ge=1)
    terminate_departed: bool = True
    s_range: tuple[int, int] = (MIN_TAG, MAX_TAG)
    c_range: tuple[int, int] = (MIN_TAG, MAX_TAG)
    strategy: str | None = Field(default=None, description="Placement strategy (None: spread).")

    @model_validator(mode="after")
    def _ranges(self) -> GatewaysConfig:
        for name in ("s_range", "c_range"):
            low, high = getattr(self, name)
            if not MIN_TAG <= low <= high <= MAX_TAG:
                raise ValueError(f"{name} {low}..{high} must lie within {MIN_TAG}..{MAX_TAG}")
        return self


def subject_of(customer: str) -> str:
    """Subject of the operation giving `customer` its vRGW (one at a time per customer)."""
    return f"vrgw:{customer}"


class GatewaysPolicy:
    name: ClassVar[str] = "gateways"
    config_model: ClassVar[type[PolicyConfig]] = GatewaysConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, GatewaysConfig)
        fn = config.function
        nodes = sorted(h.id for h in snapshot.hosts.values() if is_node(h))
        subscribers = sorted(
            (c for c in snapshot.customers.values() if is_subscriber(c)), key=lambda c: c.id
        )
        if not nodes and not subscribers:
            return PolicyResult(memory=memory)
        notes: list[Reason] = []
        if fn not in snapshot.functions:
            notes.append(
                Reason(
                    rule="vrgw_function_missing",
                    message=f"no function {fn!r} in the inventory: no vRGWs can be built",
                )
            )
            return PolicyResult(memory=memory, notes=tuple(notes))
        busy = snapshot.busy
        owned = vrgws_by_owner(snapshot.instances.values(), fn)
        reserved = Reservations()
        for owner, inst in owned.items():
            customer = snapshot.customers.get(owner)
            try:
                vcpu, mbps = demand(profile(customer.profile if customer else None))
            except ProfileError:
                vcpu, mbps = 0.0, 0.0
            reserved.add(inst.host, Resources(vcpu=vcpu, bandwidth_mbps=mbps))
        node_pools = pools(
            snapshot.instances, snapshot.instances_by_host, nodes, fn, config.pool_size, busy
        )
        proposals: list[Proposal] = []
        taken: set[str] = set()
        activations = self._activations(
            snapshot, config, subscribers, owned, nodes, node_pools, reserved, taken, notes
        )
        proposals += activations
        proposals += self._pools(snapshot, config, node_pools, taken, reserved, notes)
        if config.terminate_departed:
            proposals += self._departed(snapshot, config, owned, busy)
        return PolicyResult(proposals=tuple(proposals), memory=memory, notes=tuple(notes))

    # -- new subscribers ------------------------------------------------------------------------
    def _activations(
        self,
        snapshot: Snapshot,
        config: GatewaysConfig,
        subscribers: list[Customer],
        owned: dict[str, Instance],
        nodes: list[str],
        node_pools: dict[str, NodePool],
        reserved: Reservations,
        taken: set[str],
        notes: list[Reason],
    ) -> list[Proposal]:
        fn = config.function
        waiting = [
            c for c in subscribers if c.id not in owned and subject_of(c.id) not in snapshot.busy
        ]
        if not waiting:
            return []
        try:
            tags = TagAllocator.rebuild(
                circuits(snapshot.instances, fn), config.s_range, config.c_range
            )
        except TagError as exc:
            notes.append(
                Reason(
                    rule="vrgw_tags_inconsistent",
                    message=f"circuits recorded in running vRGWs conflict: {exc}",
                )
            )
            return []
        flavor = snapshot.flavor_of(fn)
        function = snapshot.functions[fn]
        not_nodes = frozenset(h for h in snapshot.hosts if h not in set(nodes))
        template = TEMPLATES[config.template]
        out: list[Proposal] = []
        for customer in waiting[: config.max_activations_per_cycle]:
            an = access_node(customer)
            try:
                wanted = profile(customer.profile)
            except ProfileError as exc:
                notes.append(Reason(rule="vrgw_profile_unknown", message=f"{customer.id}: {exc}"))
                continue
            if an is None:
                notes.append(
                    Reason(
                        rule="vrgw_no_access_node",
                        message=f"subscriber {customer.id} has no 'access-node' label",
                        details={"customer": customer.id},
                    )
                )
                continue
            vcpu, mbps = demand(wanted)
            need = Resources(vcpu=vcpu, memory_mb=flavor.memory_mb, bandwidth_mbps=mbps)
            result = place(
                snapshot,
                PlacementRequest(
                    function=fn,
                    demand=need,
                    kinds=function.placement,
                    owner=customer.id,
                    exclude_hosts=not_nodes,
                    allow_bnb=False,
                ),
                reserved,
                strategy=config.strategy,
            )
            if result.host is None:
                notes.append(
                    Reason(
                        rule="vrgw_no_node",
                        message=f"no virtualization node can take {customer.id}'s vRGW "
                        f"({wanted.name}, {wanted.total_mbps} Mbit/s): {result.reason.message}",
                        details={"customer": customer.id, "placement": result.reason.model_dump()},
                    )
                )
                continue
            try:
                circuit = tags.allocate(customer.id, an)
            except TagError as exc:
                notes.append(
                    Reason(
                        rule="vrgw_tags_exhausted",
                        message=f"{customer.id}: {exc}",
                        details={"customer": customer.id, "access_node": an},
                    )
                )
                continue
            node = result.host
            settings = template.settings(
                c_tag=circuit.c_tag,
                s_tag=circuit.s_tag,
                access_node=circuit.access_node,
                subscriber=customer.id,
            )
            params = to_params(settings)
            measured = {
                "profile": wanted.name,
                "profile_mbps": wanted.total_mbps,
                "s_tag": circuit.s_tag,
                "c_tag": circuit.c_tag,
            }
            pooled = claimable(node_pools[node], taken) if node in node_pools else None
            if pooled is not None:
                taken.add(pooled)
                reserved.add(node, Resources(vcpu=vcpu, bandwidth_mbps=mbps))
                out.append(
                    Proposal(
                        kind=OperationKind.UPDATE,
                        subject=subject_of(customer.id),
                        instances=(pooled,),
                        function=fn,
                        owner=customer.id,
                        hosts=(node,),
                        params=params,
                        priority=2,
                        policy=self.name,
                        reason=Reason(
                            rule="vrgw_claim",
                            message=f"subscriber {customer.id} claims pooled vRGW {pooled} on "
                            f"{node} (circuit S{circuit.s_tag}/C{circuit.c_tag} at {an})",
                            measured=measured,
                            details={"placement": result.reason.model_dump()},
                        ),
                    )
                )
            else:
                reserved.add(node, need)
                out.append(
                    Proposal(
                        kind=OperationKind.INSTANTIATE,
                        subject=subject_of(customer.id),
                        function=fn,
                        owner=customer.id,
                        hosts=(node,),
                        params=params,
                        priority=1,
                        policy=self.name,
                        reason=Reason(
                            rule="vrgw_cold_start",
                            message=f"subscriber {customer.id} gets a new vRGW on {node} "
                            f"(no pooled vRGW ready; circuit S{circuit.s_tag}/C{circuit.c_tag} "
                            f"at {an})",
                            measured=measured,
                            details={"placement": result.reason.model_dump()},
                        ),
                    )
                )
        return out

    # -- pools ----------------------------------------------------------------------------------
    def _pools(
        self,
        snapshot: Snapshot,
        config: GatewaysConfig,
        node_pools: dict[str, NodePool],
        taken: set[str],
        reserved: Reservations,
        notes: list[Reason],
    ) -> list[Proposal]:
        fn = config.function
        flavor = snapshot.flavor_of(fn)
        template = TEMPLATES[config.template]
        defaults = to_params(template.settings())
        out: list[Proposal] = []
        budget = config.max_pool_changes_per_cycle
        for node, pool in node_pools.items():
            host = snapshot.hosts[node]
            if host.state is not HostState.READY:
                continue
            size = pool.size - len([p for p in pool.ready if p in taken])
            measured = {"pooled": size, "target": pool.target}
            if size < pool.target:
                free = snapshot.host_table.free_of(node).memory_mb
                free -= reserved.by_host.get(node, Resources()).memory_mb
                for k in range(pool.target - size):
                    if len(out) >= budget:
                        break
                    if free < flavor.memory_mb:
                        notes.append(
                            Reason(
                                rule="vrgw_pool_no_memory",
                                message=f"pool of {node} stays at {size + k} of {pool.target}: "
                                f"no memory for another vRGW",
                                measured={"free_memory_mb": free},
                            )
                        )
                        break
                    free -= flavor.memory_mb
                    reserved.add(node, Resources(memory_mb=flavor.memory_mb))
                    out.append(
                        Proposal(
                            kind=OperationKind.INSTANTIATE,
                            subject=f"vrgw-pool:{node}@{snapshot.now:.3f}#{k}",
                            function=fn,
                            hosts=(node,),
                            params={**defaults, "_role": Role.STANDBY.value},
                            priority=0,
                            policy=self.name,
                            reason=Reason(
                                rule="vrgw_pool_refill",
                                message=f"pool of {node} has {size} of {pool.target} "
                                "pre-built vRGWs: build one more (suspended)",
                                measured=measured,
                                thresholds={"pool_size": pool.target},
                            ),
                        )
                    )
            elif pool.surplus > 0:
                spare = [p for p in reversed(pool.ready) if p not in taken][: pool.surplus]
                for name in spare:
                    if len(out) >= budget:
                        break
                    out.append(
                        Proposal(
                            kind=OperationKind.TERMINATE,
                            subject=name,
                            instances=(name,),
                            function=fn,
                            priority=0,
                            policy=self.name,
                            reason=Reason(
                                rule="vrgw_pool_trim",
                                message=f"pool of {node} has {pool.size} pre-built vRGWs, "
                                f"more than {pool.target}: remove {name}",
                                measured=measured,
                                thresholds={"pool_size": pool.target},
                            ),
                        )
                    )
        return out

    # -- departures -----------------------------------------------------------------------------
    def _departed(
        self,
        snapshot: Snapshot,
        config: GatewaysConfig,
        owned: dict[str, Instance],
        busy: frozenset[str],
    ) -> list[Proposal]:
        out = []
        for owner, inst in sorted(owned.items()):
            customer = snapshot.customers.get(owner)
            # Only a subscription switched off (label present, not true) ends a vRGW: one
            # made by hand for a customer who never had the label is left alone.
            if customer is not None and (
                is_subscriber(customer) or SUBSCRIBER_LABEL not in customer.labels
            ):
                continue
            if inst.id in busy or is_pooled(inst, config.function):
                continue
            out.append(
                Proposal(
                    kind=OperationKind.TERMINATE,
                    subject=inst.id,
                    instances=(inst.id,),
                    function=config.function,
                    owner=owner,
                    priority=0,
                    policy=self.name,
                    reason=Reason(
                        rule="vrgw_departed",
                        message=f"{owner} is no longer a vRGW subscriber: remove {inst.id} "
                        "(its circuit's tags become free)",
                        details={"customer": owner},
                    ),
                )
            )
        return out
