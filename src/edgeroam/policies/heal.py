"""Built-in `heal` policy: instances whose host is down are re-created elsewhere.

The foundation's one generic reconciliation rule. A host marked down (by an operator, a
scheduled failure or missing heartbeats) leaves its instances unserved; each gets a HEAL
proposal towards a host chosen by placement, or a note explaining why none exists.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from edgeroam.model import HostState, OperationKind, Reason
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.placement import PlacementRequest, Reservations, place
from edgeroam.snapshot import Snapshot

_FAILED_STATES = frozenset({HostState.DOWN, HostState.OFF})


class HealConfig(PolicyConfig):
    precedence: int = 10
    max_per_cycle: int = Field(default=50, ge=1)


class HealPolicy:
    name: ClassVar[str] = "heal"
    config_model: ClassVar[type[PolicyConfig]] = HealConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, HealConfig)
        proposals: list[Proposal] = []
        notes: list[Reason] = []
        reserved = Reservations()
        busy = snapshot.busy
        failed_hosts = sorted(h.id for h in snapshot.hosts.values() if h.state in _FAILED_STATES)
        for host_id in failed_hosts:
            for instance_id in sorted(snapshot.instances_by_host.get(host_id, ())):
                if len(proposals) >= config.max_per_cycle or instance_id in busy:
                    continue
                instance = snapshot.instances[instance_id]
                function = snapshot.functions[instance.function]
                demand = snapshot.flavor_of(instance.function).resources
                result = place(
                    snapshot,
                    PlacementRequest(
                        function=instance.function,
                        demand=demand,
                        kinds=function.placement,
                        owner=instance.owner,
                        exclude_hosts=frozenset(failed_hosts),
                    ),
                    reserved,
                )
                state = snapshot.hosts[host_id].state.value
                if result.host is None:
                    notes.append(
                        Reason(
                            rule="heal_no_target",
                            message=f"{instance_id} is down with host {host_id} ({state}) "
                            f"and cannot be healed: {result.reason.message}",
                            details={"instance": instance_id, "host": host_id},
                        )
                    )
                    continue
                reserved.add(result.host, demand)
                proposals.append(
                    Proposal(
                        kind=OperationKind.HEAL,
                        subject=instance_id,
                        instances=(instance_id,),
                        function=instance.function,
                        owner=instance.owner,
                        hosts=(result.host,),
                        sources=(host_id,),
                        params=dict(instance.params),
                        priority=int(function.criticality),
                        policy=self.name,
                        reason=Reason(
                            rule="host_failed",
                            message=f"host {host_id} is {state}; re-create {instance_id} "
                            f"on {result.host}",
                            measured={"host_state": state},
                            details={"placement": result.reason.model_dump()},
                        ),
                    )
                )
        return PolicyResult(proposals=tuple(proposals), memory=memory, notes=tuple(notes))
