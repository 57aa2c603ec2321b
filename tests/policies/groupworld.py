"""A small branch + cloud world with managed groups, for the elastic/failover/ratio/rules tests.

Snapshots are built directly (`build_snapshot`) so a test can hand the policy exactly the
operations it wants it to see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from edgeroam.inventory import Inventory
from edgeroam.model import (
    Flavor,
    FunctionSpec,
    Group,
    GroupKind,
    Host,
    HostKind,
    HostState,
    Instance,
    LifecycleStage,
    LoadMetric,
    OperationKind,
    OperationState,
    Ratio,
    Reading,
    Resources,
    Role,
    Site,
    SiteKind,
)
from edgeroam.snapshot import OperationSummary, Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

BRANCH_VCPU = 8.0
CLOUD_VCPU = 64.0


@dataclass
class GroupWorld:
    inventory: Inventory = field(default_factory=Inventory)
    telemetry: TelemetryCache = field(default_factory=lambda: TelemetryCache(stale_after=180.0))
    operations: list[OperationSummary] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        inv = self.inventory
        inv.load(
            sites=[
                Site(id="branch-1", kind=SiteKind.BRANCH),
                Site(id="cloud", kind=SiteKind.CLOUD),
            ],
            flavors=[Flavor(id="one", vcpu=1, memory_mb=1024)],
            functions=[
                FunctionSpec(name=f, flavor="one", placement=(HostKind.SERVER, HostKind.CLOUD))
                for f in ("fw", "ids", "vnfm", "cvnfm")
            ],
            hosts=[
                Host(
                    id="branch-srv",
                    kind=HostKind.SERVER,
                    site="branch-1",
                    capacity=Resources(vcpu=BRANCH_VCPU, memory_mb=65536, bandwidth_mbps=10000),
                ),
                Host(
                    id="cloud-1",
                    kind=HostKind.CLOUD,
                    site="cloud",
                    capacity=Resources(vcpu=CLOUD_VCPU, memory_mb=262144, bandwidth_mbps=10000),
                ),
            ],
        )

    # -- building -------------------------------------------------------------------------
    def group(
        self,
        gid: str,
        *,
        function: str = "fw",
        kind: GroupKind = GroupKind.FUNCTION,
        min_size: int = 1,
        max_size: int = 8,
        manager: str | None = None,
        ratio: Ratio | None = None,
        site: str | None = "branch-1",
        capacity: float = 1.0,
        **extra: object,
    ) -> Group:
        group = Group.model_validate(
            {
                "id": gid,
                "kind": kind,
                "function": function,
                "site": site,
                "manager": manager,
                "min_size": min_size,
                "max_size": max_size,
                "ratio": ratio,
                "metrics": [LoadMetric(name="cpu", capacity=capacity)],
                **extra,
            }
        )
        self.inventory.check_group(group)
        self.inventory.put_group(group)
        return group

    def member(
        self,
        gid: str,
        name: str | None = None,
        *,
        host: str = "branch-srv",
        role: Role = Role.ACTIVE,
        stage: LifecycleStage = LifecycleStage.MONITORING,
        created_at: float = 0.0,
    ) -> Instance:
        self.counter += 1
        group = self.inventory.groups[gid]
        inst = Instance(
            id=name or f"{gid}-{self.counter}",
            function=group.function,
            host=host,
            role=role,
            group=gid,
            stage=stage,
            created_at=created_at,
        )
        self.inventory.check_instance(inst)
        self.inventory.put_instance(inst)
        return inst

    def members(self, gid: str) -> list[Instance]:
        return sorted(
            (i for i in self.inventory.instances.values() if i.group_key == gid),
            key=lambda i: i.id,
        )

    def report(
        self,
        t: float,
        values: dict[str, float],
        *,
        metric: str = "cpu",
        health: dict[str, float] | None = None,
    ) -> None:
        """Readings at time t: `metric` per instance, and health (1 unless given)."""
        readings = [
            Reading(source=f"instance:{name}", metric=metric, value=value, timestamp=t)
            for name, value in values.items()
        ]
        health = health if health is not None else dict.fromkeys(values, 1.0)
        readings += [
            Reading(source=f"instance:{name}", metric="health", value=value, timestamp=t)
            for name, value in health.items()
        ]
        self.telemetry.ingest(readings)

    def load_group(self, gid: str, t: float, utilisation: float) -> None:
        """Every serving active member of `gid` reports the same utilisation."""
        actives = [m.id for m in self.members(gid) if m.role is Role.ACTIVE and m.serving]
        standbys = [m.id for m in self.members(gid) if m.role is Role.STANDBY and m.serving]
        self.report(t, {**dict.fromkeys(actives, utilisation), **dict.fromkeys(standbys, 0.0)})

    def operation(
        self,
        kind: OperationKind,
        subject: str,
        *,
        instances: Sequence[str] = (),
        created_at: float,
        finished_at: float | None = None,
        state: OperationState | None = None,
        policy: str = "test",
    ) -> OperationSummary:
        self.counter += 1
        if state is None:
            state = OperationState.PROCESSING if finished_at is None else OperationState.COMPLETED
        op = OperationSummary(
            id=f"op-{self.counter:06d}",
            kind=kind,
            state=state,
            subject=subject,
            instances=tuple(instances),
            hosts=(),
            sites=(),
            policy=policy,
            created_at=created_at,
            finished_at=finished_at,
        )
        self.operations.append(op)
        return op

    def host_state(self, host: str, state: HostState) -> None:
        self.inventory.put_host(self.inventory.hosts[host].model_copy(update={"state": state}))

    def snapshot(
        self, now: float, operations: Iterable[OperationSummary] | None = None
    ) -> Snapshot:
        ops = tuple(self.operations if operations is None else operations)
        return build_snapshot(now, self.inventory, self.telemetry, ops)
