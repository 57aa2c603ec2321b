"""OFFLOAD and REVERT plans: per-CPE owners, retiring server copies, restoring them first."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edgeroam.drivers.sim import SimDriver
from edgeroam.events import EventLog
from edgeroam.lifecycle import LifecycleConfig, LifecycleEngine
from edgeroam.lifecycle.plans import PlanError, build_plan
from edgeroam.model import (
    Instance,
    LifecycleStage,
    OperationKind,
    OperationRequest,
    OperationState,
    Reason,
)
from edgeroam.policies.offload import offload_group
from tests.policies.offload_world import World, owner

WHY = Reason(rule="test", message="test")


def offload(hosts: tuple[str, ...], **params: object) -> OperationRequest:
    return OperationRequest(
        kind=OperationKind.OFFLOAD,
        subject=f"fa@{hosts[0]}",
        function="fa",
        hosts=hosts,
        params=dict(params),
        reason=WHY,
    )


def names() -> Callable[[str], str]:
    counter = iter(range(1, 100))
    return lambda function: f"{function}.{next(counter)}"


def test_each_new_copy_belongs_to_its_cpes_owner() -> None:
    hosts = ("cpe-1", "cpe-2")
    owners = [owner(h) for h in hosts]
    plan = build_plan(
        offload(hosts, _owners=owners, _group=offload_group("fa"), level=3),
        5.0,
        {},
        names(),
        lambda h: True,
    )
    assert [(i.host, i.owner, i.group) for i in plan.new_instances] == [
        (h, o, offload_group("fa")) for h, o in zip(hosts, owners, strict=True)
    ]
    assert all(i.params == {"level": 3} for i in plan.new_instances)  # "_" params stay out
    assert [s.action for s in plan.steps] == ["create_sandbox", "start_function"] * 2


def test_owners_must_match_the_hosts_one_to_one() -> None:
    with pytest.raises(PlanError, match="_owners has 1 entries for 2 hosts"):
        build_plan(
            offload(("cpe-1", "cpe-2"), _owners=["c-cpe-1"]),
            0.0,
            {},
            names(),
            lambda h: True,
        )


SERVER_COPY = Instance(
    id="fa-own", function="fa", owner=owner("cpe-1"), host="vcpe-1", stage=LifecycleStage.MONITORING
)


def test_an_offload_listing_server_copies_stops_them_after_the_cpe_copies_start() -> None:
    request = offload(("cpe-1",), _owners=[owner("cpe-1")]).model_copy(
        update={"instances": ("fa-own",)}
    )
    plan = build_plan(request, 0.0, {"fa-own": SERVER_COPY}, names(), lambda h: True)
    assert [(s.action, s.args["host"]) for s in plan.steps] == [
        ("create_sandbox", "cpe-1"),
        ("start_function", "cpe-1"),
        ("stop_function", "vcpe-1"),
        ("remove_sandbox", "vcpe-1"),
    ]
    assert plan.steps[-1].effect == {"terminate": "fa-own"}


def test_a_revert_with_restore_recreates_the_server_copy_before_stopping_the_cpe_copy() -> None:
    cpe_copy = Instance(
        id="fa.9",
        function="fa",
        owner=owner("cpe-1"),
        host="cpe-1",
        group=offload_group("fa"),
        stage=LifecycleStage.MONITORING,
    )
    request = OperationRequest(
        kind=OperationKind.REVERT,
        subject="fa@cpe-1",
        function="fa",
        instances=("fa.9",),
        hosts=("cpe-1",),
        params={"_restore": [{"host": "vcpe-1", "owner": owner("cpe-1"), "params": {"x": 1}}]},
        reason=WHY,
    )
    plan = build_plan(request, 0.0, {"fa.9": cpe_copy}, names(), lambda h: True)
    assert [(s.action, s.args["host"]) for s in plan.steps] == [
        ("create_sandbox", "vcpe-1"),
        ("start_function", "vcpe-1"),
        ("stop_function", "cpe-1"),
        ("remove_sandbox", "cpe-1"),
    ]
    (restored,) = plan.new_instances
    assert (restored.host, restored.owner, restored.params) == ("vcpe-1", owner("cpe-1"), {"x": 1})


def test_offload_then_revert_through_the_engine() -> None:
    inv = World(cpes={"cpe-1": 2, "cpe-2": 2}).inventory()
    eng = LifecycleEngine(None, inv, SimDriver(), EventLog(None), LifecycleConfig())
    hosts = ("cpe-1", "cpe-2")
    op = eng.submit(
        offload(hosts, _owners=[owner(h) for h in hosts], _group=offload_group("fa")), 0.0
    )
    eng.advance(0.0)
    done = next(o for o in eng.finished if o.id == op.id)
    assert done.state is OperationState.COMPLETED
    copies = [inv.instances[i] for i in done.created_instances]
    assert [(c.host, c.owner, c.stage) for c in copies] == [
        (h, owner(h), LifecycleStage.MONITORING) for h in hosts
    ]
    used = inv.columns.allocated[inv.columns.index["cpe-1"], 0]
    assert used == inv.flavor_of("fa").vcpu
    back = eng.submit(
        OperationRequest(
            kind=OperationKind.REVERT,
            subject="fa@cpe-1",
            function="fa",
            instances=done.created_instances,
            hosts=hosts,
            reason=WHY,
        ),
        1.0,
    )
    eng.advance(1.0)
    assert next(o for o in eng.finished if o.id == back.id).state is OperationState.COMPLETED
    assert not set(done.created_instances) & set(inv.instances)
    assert inv.columns.allocated[inv.columns.index["cpe-1"], 0] == 0
