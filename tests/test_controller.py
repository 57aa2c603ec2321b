"""Controller: the tick (policies → arbiter → engine), decision events, dry-run, inventory."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from edgeroam.arbiter import ArbiterConfig, Verdict
from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.inventory import InventoryError
from edgeroam.model import (
    Customer,
    EventCategory,
    Flavor,
    FunctionSpec,
    Host,
    HostState,
    Instance,
    LifecycleStage,
    Link,
    OperationKind,
    OperationRequest,
    OperationState,
    ParameterError,
    Reason,
    Resources,
    Severity,
)
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.heal import HealPolicy
from edgeroam.policies.registry import PolicyRegistry
from edgeroam.snapshot import Snapshot
from edgeroam.store import Store
from tests.conftest import make_world, reason


class Scripted:
    """A policy that proposes what it was given; subclasses set the name."""

    name: ClassVar[str] = "scripted"
    config_model: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, proposals: list[Proposal], notes: tuple[Reason, ...] = ()) -> None:
        self.proposals = proposals
        self.notes = notes
        self.seen_memory: list[Any] = []

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        self.seen_memory.append(memory)
        return PolicyResult(
            proposals=tuple(self.proposals), memory=(memory or 0) + 1, notes=self.notes
        )


class Broken:
    name: ClassVar[str] = "broken"
    config_model: ClassVar[type[PolicyConfig]] = PolicyConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        raise ZeroDivisionError("thresholds divided by zero")


def scripted(name: str, proposals: list[Proposal], **kw: Any) -> Scripted:
    cls = type(f"Scripted_{name}", (Scripted,), {"name": name})
    policy: Scripted = cls(proposals, **kw)
    return policy


def migrate(name: str, target: str, why: str = "balance the load") -> Proposal:
    return Proposal(
        kind=OperationKind.MIGRATE,
        subject=name,
        instances=(name,),
        hosts=(target,),
        reason=Reason(rule="test_rule", message=why),
    )


def controller(
    registry: PolicyRegistry,
    store: Store | None = None,
    arbiter: ArbiterConfig | None = None,
) -> Controller:
    c = Controller(SimDriver(), store=store, registry=registry, arbiter=arbiter)
    make_world(c)
    return c


def seed(c: Controller, name: str, function: str, host: str, **kw: Any) -> Instance:
    return c.seed_instance(Instance(id=name, function=function, host=host, **kw), 0.0)


def decision_events(c: Controller) -> list[Any]:
    return [e for e in c.events.recent if e.category is EventCategory.DECISION]


# -- the tick -----------------------------------------------------------------------------------
def test_tick_heals_an_instance_of_a_down_host_end_to_end(sqlite_store: Store) -> None:
    registry = PolicyRegistry()
    registry.register(HealPolicy())
    c = controller(registry, store=sqlite_store)
    seed(c, "fw.1", "fw", "edge-a", owner="alice")
    c.put("host", c.inventory.hosts["edge-a"].model_copy(update={"state": HostState.DOWN}), 1.0)

    report = c.tick(2.0)
    assert report.proposals == 1
    [decision] = report.decisions
    assert decision.verdict is Verdict.ACCEPTED
    [op] = report.started
    assert op.kind is OperationKind.HEAL
    assert report.accepted == 1
    assert report.errors == []
    [event] = decision_events(c)
    assert event.data["verdict"] == "accepted"
    assert event.data["operation"] == op.id
    assert decision.proposal.reason.message in event.message
    assert event.tags == ("heal", "heal", "accepted", "accepted")

    final = c.operation(op.id)
    assert final is not None
    assert final.state is OperationState.COMPLETED  # zero latency: done within the tick
    target = op.hosts[0]
    assert c.inventory.instances["fw.1"].host == target != "edge-a"
    assert ("fw.1", target) in c.driver.observe().running
    stored = {i.id: i for i in sqlite_store.load("instance")}
    assert stored["fw.1"].host == target  # type: ignore[attr-defined]
    # Nothing left to heal: the next tick proposes nothing.
    assert c.tick(3.0).proposals == 0


def test_every_decision_becomes_an_event_with_its_reason() -> None:
    registry = PolicyRegistry()
    registry.register(
        scripted("first", [migrate("fw.1", "edge-b", "edge-a is hot")]), PolicyConfig(precedence=10)
    )
    registry.register(
        scripted("second", [migrate("fw.1", "cloud-1", "cloud is cheap")]),
        PolicyConfig(precedence=20),
    )
    registry.register(
        scripted("third", [migrate("dns.1", "cloud-1", "try the cloud")]),
        PolicyConfig(precedence=30, dry_run=True),
    )
    c = controller(registry)
    seed(c, "fw.1", "fw", "edge-a")
    seed(c, "dns.1", "dns", "edge-a")
    c.events.flush()

    report = c.tick(100.0)
    verdicts = {d.proposal.policy: d.verdict for d in report.decisions}
    assert verdicts == {
        "first": Verdict.ACCEPTED,
        "second": Verdict.REFUSED,
        "third": Verdict.DRY_RUN,
    }
    events = {e.data["proposal"]["policy"]: e for e in decision_events(c)}
    assert set(events) == set(verdicts)
    for policy, event in events.items():
        assert event.data["verdict"] == verdicts[policy].value
        assert event.data["proposal"]["reason"]["message"] in (
            "edge-a is hot",
            "cloud is cheap",
            "try the cloud",
        )
        assert policy in event.tags
    assert "edge-a is hot" in events["first"].message
    assert events["first"].data["operation"] == report.started[0].id
    assert events["first"].severity is Severity.INFO

    refused = events["second"]
    assert refused.data["rule"] == "superseded"
    assert refused.data["operation"] is None
    assert refused.severity is Severity.WARNING
    assert "superseded" in refused.message
    assert "fw.1" in refused.data["detail"]

    dry = events["third"]
    assert dry.data["rule"] == "dry_run"
    assert "would migrate dns.1" in dry.message
    assert "try the cloud" in dry.message
    assert c.inventory.instances["dns.1"].host == "edge-a"  # the dry-run changed nothing


def test_engine_refusal_is_recorded_as_a_refused_decision() -> None:
    registry = PolicyRegistry()
    registry.register(scripted("mover", [migrate("fw.1", "cloud-1")]))
    c = controller(registry)
    seed(c, "fw.1", "fw", "edge-a")
    c.put("host", c.inventory.hosts["cloud-1"].model_copy(update={"state": HostState.CORDONED}), 0)
    report = c.tick(100.0)
    [decision] = report.decisions
    assert decision.verdict is Verdict.ACCEPTED  # the arbiter let it through ...
    assert report.started == []  # ... the engine did not
    [event] = decision_events(c)
    assert event.data["verdict"] == "refused"
    assert event.data["rule"] == "engine"
    assert "cordoned" in event.data["detail"]


def test_a_broken_policy_is_an_error_event_and_the_others_still_run() -> None:
    registry = PolicyRegistry()
    registry.register(Broken(), PolicyConfig(precedence=1))
    worker = scripted("worker", [migrate("fw.1", "edge-b")])
    registry.register(worker, PolicyConfig(precedence=2))
    c = controller(registry)
    seed(c, "fw.1", "fw", "edge-a")

    report = c.tick(100.0)
    assert len(report.errors) == 1
    assert "broken" in report.errors[0]
    assert "ZeroDivisionError" in report.errors[0]
    assert [d.proposal.policy for d in report.decisions] == ["worker"]
    assert report.decisions[0].verdict is Verdict.ACCEPTED
    errors = [e for e in c.events.recent if e.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].category is EventCategory.SYSTEM
    assert errors[0].tags == ("broken", "policy_error")
    assert "thresholds divided by zero" in errors[0].message
    # The broken policy keeps failing on later ticks without stopping the loop.
    assert len(c.tick(101.0).errors) == 1


@pytest.mark.parametrize("where", ["policy", "arbiter"])
def test_dry_run_records_decisions_without_operations(sqlite_store: Store, where: str) -> None:
    registry = PolicyRegistry()
    registry.register(
        scripted("mover", [migrate("fw.1", "edge-b")]),
        PolicyConfig(dry_run=where == "policy"),
    )
    c = controller(registry, store=sqlite_store, arbiter=ArbiterConfig(dry_run=where == "arbiter"))
    seed(c, "fw.1", "fw", "edge-a")
    report = c.tick(100.0)
    assert [d.verdict for d in report.decisions] == [Verdict.DRY_RUN]
    assert report.started == []
    assert c.engine.active == {}
    assert sqlite_store.operations() == []
    assert c.inventory.instances["fw.1"].host == "edge-a"
    stored = sqlite_store.events(category="decision")
    assert [e.data["verdict"] for e in stored] == ["dry_run"]


def test_policy_memory_and_notes() -> None:
    note = Reason(rule="armed", message="load rising on edge-a, watching")
    policy = scripted("watcher", [], notes=(note,))
    registry = PolicyRegistry()
    registry.register(policy)
    c = controller(registry)
    for t in (1.0, 2.0, 3.0):
        c.tick(t)
    assert policy.seen_memory == [None, 1, 2]
    notes = [e for e in decision_events(c) if "note" in e.tags]
    assert len(notes) == 3
    assert notes[0].message == note.message
    assert notes[0].tags == ("watcher", "armed", "note")


def test_disabled_policies_do_not_run() -> None:
    policy = scripted("sleeper", [migrate("fw.1", "edge-b")])
    registry = PolicyRegistry()
    registry.register(policy, PolicyConfig(enabled=False))
    c = controller(registry)
    seed(c, "fw.1", "fw", "edge-a")
    assert c.tick(1.0).decisions == []
    assert policy.seen_memory == []


# -- inventory through the controller -----------------------------------------------------------
DANGLING: list[tuple[str, BaseModel, str]] = [
    (
        "host",
        Host(id="h9", kind="server", site="atlantis", capacity=Resources(vcpu=1)),
        "unknown site 'atlantis'",
    ),
    (
        "host",
        Host(id="cpe-9", kind="cpe", site="home-a", owner="zed", capacity=Resources()),
        "unknown customer 'zed'",
    ),
    ("link", Link(id="l9", a="edge-a", b="nowhere", capacity_mbps=1), "'nowhere'"),
    ("function", FunctionSpec(name="ids", flavor="huge"), "unknown flavor 'huge'"),
    ("instance", Instance(id="fw.9", function="fw", host="mars"), "unknown host 'mars'"),
    ("instance", Instance(id="x.9", function="nope", host="edge-a"), "unknown function 'nope'"),
    (
        "instance",
        Instance(id="fw.9", function="fw", host="edge-a", owner="zed"),
        "unknown customer 'zed'",
    ),
]


@pytest.mark.parametrize(("kind", "obj", "message"), DANGLING)
def test_put_rejects_dangling_references_and_changes_nothing(
    sqlite_store: Store, kind: str, obj: BaseModel, message: str
) -> None:
    c = controller(PolicyRegistry(), store=sqlite_store)
    version = c.inventory.version
    table = dict(c.inventory.table(kind))
    stored = sqlite_store.load(kind)
    events = len(sqlite_store.events(limit=10_000))
    with pytest.raises(InventoryError, match=message):
        c.put(kind, obj, 5.0)
    c.events.flush()
    assert c.inventory.version == version
    assert dict(c.inventory.table(kind)) == table
    assert sqlite_store.load(kind) == stored
    assert len(sqlite_store.events(limit=10_000)) == events


def test_put_validates_instance_params_and_fills_defaults(sqlite_store: Store) -> None:
    c = controller(PolicyRegistry(), store=sqlite_store)
    with pytest.raises(ParameterError, match="'paranoid'"):
        c.put(
            "instance",
            Instance(id="fw.9", function="fw", host="edge-a", params={"mode": "paranoid"}),
            0.0,
        )
    assert "fw.9" not in c.inventory.instances
    assert sqlite_store.load("instance") == []
    stored = c.put("instance", Instance(id="fw.9", function="fw", host="edge-a"), 0.0)
    spec = c.inventory.functions["fw"].parameters
    defaults = {name: p.default for name, p in spec.items() if p.default is not None}
    assert stored.params == defaults  # type: ignore[attr-defined]
    assert sqlite_store.load("instance") == [stored]


def test_put_revalidates_objects_built_without_validation() -> None:
    c = controller(PolicyRegistry())
    sneaky = Customer.model_construct(id="bad id!", name="x")
    with pytest.raises(ValueError, match="id"):
        c.put("customer", sneaky, 0.0)
    assert "bad id!" not in c.inventory.customers


def test_put_unknown_kind() -> None:
    c = controller(PolicyRegistry())
    with pytest.raises(InventoryError, match="unknown inventory kind 'planet'"):
        c.put("planet", Flavor(id="f", vcpu=1, memory_mb=1), 0.0)


def test_remove_checks_references_and_operations(sqlite_store: Store) -> None:
    c = Controller(SimDriver(latency_s=10.0), store=sqlite_store, registry=PolicyRegistry())
    make_world(c)
    seed(c, "fw.1", "fw", "edge-a")
    with pytest.raises(KeyError, match="no host 'mars'"):
        c.remove("host", "mars", 1.0)
    with pytest.raises(InventoryError, match=r"fw\.1"):
        c.remove("host", "edge-a", 1.0)
    op = c.request(
        OperationRequest(
            kind=OperationKind.MIGRATE,
            subject="fw.1",
            instances=("fw.1",),
            hosts=("edge-b",),
            reason=reason(),
        ),
        1.0,
    )
    assert op.state is OperationState.PROCESSING
    with pytest.raises(InventoryError, match="operation in flight"):
        c.remove("instance", "fw.1", 2.0)
    c.remove("link", "uplink-edge", 2.0)
    assert "uplink-edge" not in c.inventory.links
    assert [lk.id for lk in sqlite_store.load("link")] == ["access-alice"]  # type: ignore[attr-defined]


def test_load_rebuilds_the_inventory_from_the_store(sqlite_store: Store) -> None:
    first = controller(PolicyRegistry(), store=sqlite_store)
    seed(first, "fw.1", "fw", "edge-a")
    second = Controller(SimDriver(), store=sqlite_store, registry=PolicyRegistry())
    assert second.load(10.0) == []
    for kind in ("site", "customer", "flavor", "function", "host", "link", "instance"):
        assert second.inventory.table(kind) == first.inventory.table(kind), kind
    assert second.inventory.instances["fw.1"].stage is LifecycleStage.MONITORING
    for host in first.inventory.hosts:
        rows = [inv.columns.index[host] for inv in (first.inventory, second.inventory)]
        assert list(second.inventory.columns.allocated[rows[1]]) == list(
            first.inventory.columns.allocated[rows[0]]
        ), host
    startup = sqlite_store.events(tags=["startup"])
    assert len(startup) == 1


def test_request_skips_policies_but_not_the_engine_rules() -> None:
    c = Controller(SimDriver(latency_s=1.0), registry=PolicyRegistry())
    make_world(c)
    seed(c, "fw.1", "fw", "edge-a")
    op = c.request(
        OperationRequest(
            kind=OperationKind.MIGRATE,
            subject="fw.1",
            instances=("fw.1",),
            hosts=("edge-b",),
            reason=reason(),
        ),
        0.0,
    )
    assert op.state is OperationState.PROCESSING
    assert c.operation(op.id) == op
    c.tick(1.0)
    c.tick(2.0)
    c.tick(3.0)
    c.tick(4.0)
    assert c.operation(op.id).state is OperationState.COMPLETED  # type: ignore[union-attr]
    assert c.operation("op-424242") is None
