"""The gateways policy: pools kept at K, claims, cold starts, tags, departures, inertness."""

from __future__ import annotations

from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.gateways.world import circuit_of
from edgeroam.model import LifecycleStage, Role
from edgeroam.policies.registry import default_registry
from tests.conftest import make_world
from tests.gateways.vrgw_world import build


def test_pools_fill_to_k_suspended_and_unowned() -> None:
    w = build(pool_size=3)
    w.run(1.0)
    for node in ("n1", "n2"):
        pooled = w.pooled(node)
        assert len(pooled) == 3
        assert all(i.role is Role.STANDBY and i.stage is LifecycleStage.MONITORING for i in pooled)
        assert all(w.driver.state_of(i.id, node) == "suspended" for i in pooled)
        assert all(circuit_of(i) is None for i in pooled)


def test_claim_applies_settings_then_pool_refills_in_background() -> None:
    w = build(pool_size=2)
    w.run(1.0)
    before = {i.id for i in w.pooled("n1") + w.pooled("n2")}
    w.subscribe("alice", "high")
    w.run(0.1)
    gw = w.vrgw("alice")
    assert gw is not None and gw.id in before  # a pooled instance was claimed, not built
    assert gw.role is Role.ACTIVE and gw.stage is LifecycleStage.MONITORING
    circuit = circuit_of(gw)
    assert circuit is not None and (circuit.access_node, circuit.s_tag, circuit.c_tag) == (
        "an1",
        1,
        1,
    )
    assert w.driver.serving_copy(gw.id) is not None
    # The claim took claim_s of virtual time after the policy saw the subscriber.
    assert w.driver.activated_at[gw.id] - 1.0 <= w.driver.timings.claim_s + 0.02
    w.run(0.5)
    assert len(w.pooled(gw.host)) == 2  # refilled to K


def test_without_pool_a_vrgw_is_built_cold() -> None:
    w = build(pool_size=0)
    w.run(0.2)
    assert w.pooled("n1") == []
    w.subscribe("bob")
    w.run(0.5)
    gw = w.vrgw("bob")
    assert gw is not None and gw.role is Role.ACTIVE
    t = w.driver.timings
    took = w.driver.activated_at[gw.id] - 0.2
    assert took >= t.build_s + t.start_s


def test_tags_are_unique_and_a_departed_customer_frees_them() -> None:
    w = build(pool_size=1)
    w.run(0.3)
    for name in ("a", "b", "c"):
        w.subscribe(name, access_node="an1")
    w.subscribe("d", access_node="an2")
    w.run(1.0)
    circuits = {n: circuit_of(w.vrgw(n)) for n in "abcd"}  # type: ignore[arg-type]
    assert {n: (c.s_tag, c.c_tag) for n, c in circuits.items() if c} == {
        "a": (1, 1),
        "b": (1, 2),
        "c": (1, 3),
        "d": (2, 1),
    }
    # b's subscription ends: its vRGW goes, and its C-tag is handed to the next customer.
    customer = w.controller.inventory.customers["b"]
    w.controller.put(
        "customer",
        customer.model_copy(update={"labels": {**customer.labels, "vrgw": "false"}}),
        w.now,
    )
    w.run(0.5)
    assert w.vrgw("b") is None
    w.subscribe("e", access_node="an1")
    w.run(0.5)
    e = circuit_of(w.vrgw("e"))  # type: ignore[arg-type]
    assert e is not None and (e.s_tag, e.c_tag) == (1, 2)


def test_exhausted_tags_leave_a_note_and_no_vrgw() -> None:
    w = build(pool_size=0, c_range=(1, 1), s_range=(1, 1))
    w.subscribe("a")
    w.subscribe("b")
    w.run(0.5)
    assert w.vrgw("a") is not None and w.vrgw("b") is None
    report = w.controller.tick(w.now + 0.01)
    assert report.proposals == 0
    notes = [e.message for e in w.controller.events.recent if "no free S-tag" in e.message]
    assert notes, "the exhaustion is explained in the event log"


def test_policy_is_disabled_by_default_and_inert_without_subscribers() -> None:
    registry = default_registry()
    assert registry.config("gateways").enabled is False
    registry.configure("gateways", {"enabled": True})
    controller = Controller(SimDriver(), registry=registry)
    make_world(controller)
    report = controller.tick(1.0)
    assert [d for d in report.decisions if d.proposal.policy == "gateways"] == []
