"""SimDriver: idempotent keys, virtual latency, failure injection, world effects, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeroam.drivers import ACTIONS, Outcome, reverse
from edgeroam.drivers.sim import SimDriver

SLOT = {"instance": "fw.1", "host": "edge-a", "function": "fw"}


def run(driver: SimDriver, key: str, action: str, now: float = 0.0, **args: object) -> Outcome:
    driver.submit(key, action, {**SLOT, **args}, now)
    return driver.poll(key, now + driver.latency_s).outcome


def test_unknown_key_polls_unknown() -> None:
    assert SimDriver().poll("never", 0.0).outcome is Outcome.UNKNOWN


def test_action_completes_after_its_latency() -> None:
    d = SimDriver(latency_s=2.0)
    d.submit("k", "create_sandbox", SLOT, now=10.0)
    assert d.poll("k", 10.0).outcome is Outcome.PENDING
    assert d.poll("k", 10.0 + d.latency_s - 1e-6).outcome is Outcome.PENDING
    assert ("fw.1", "edge-a") not in d.sandboxes
    assert d.poll("k", 10.0 + d.latency_s).outcome is Outcome.DONE
    assert ("fw.1", "edge-a") in d.sandboxes
    assert d.log == [(10.0 + d.latency_s, "k", "done")]


def test_submitting_a_key_twice_does_the_work_once() -> None:
    d = SimDriver(latency_s=1.0)
    d.submit("k", "create_sandbox", SLOT, 0.0)
    d.submit("k", "create_sandbox", SLOT, 0.5)  # ignored: due time stays at 1.0
    assert d.poll("k", 1.0).outcome is Outcome.DONE
    d.submit("k", "create_sandbox", SLOT, 2.0)  # done keys stay done
    assert d.poll("k", 2.0).outcome is Outcome.DONE
    assert len(d.log) == 1


def test_failed_key_can_be_resubmitted() -> None:
    d = SimDriver()
    d.fail_next("create_sandbox")
    assert run(d, "k", "create_sandbox") is Outcome.FAILED
    assert d.poll("k", 0.0).message == "simulated failure of create_sandbox"
    assert run(d, "k", "create_sandbox") is Outcome.DONE


def test_fail_next_counts_executions() -> None:
    d = SimDriver()
    d.fail_next("start_function", times=2)
    run(d, "sb", "create_sandbox")
    outcomes = [run(d, f"k{i}", "start_function") for i in range(3)]
    assert outcomes == [Outcome.FAILED, Outcome.FAILED, Outcome.DONE]


def test_failure_rate_applies_to_listed_actions_only() -> None:
    d = SimDriver(failure_rate=1.0, fail_actions=("start_function",))
    assert run(d, "a", "create_sandbox") is Outcome.DONE
    assert run(d, "b", "start_function") is Outcome.FAILED
    everything = SimDriver(failure_rate=1.0)
    assert run(everything, "a", "create_sandbox") is Outcome.FAILED


def test_failure_rate_is_seeded() -> None:
    def outcomes(seed: int) -> list[Outcome]:
        d = SimDriver(failure_rate=0.5, seed=seed)
        return [run(d, f"k{i}", "noop") for i in range(40)]

    assert outcomes(7) == outcomes(7)
    assert {Outcome.DONE, Outcome.FAILED} <= set(outcomes(7))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"latency_s": -1}, "latency_s"), ({"failure_rate": 1.5}, "failure_rate")],
)
def test_constructor_validates(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SimDriver(**kwargs)  # type: ignore[arg-type]


def test_unknown_actions_are_rejected() -> None:
    d = SimDriver()
    with pytest.raises(ValueError, match="unknown action 'reboot'"):
        d.submit("k", "reboot", {}, 0.0)
    with pytest.raises(ValueError, match="unknown action 'reboot'"):
        d.fail_next("reboot")


def test_function_lifecycle_effects() -> None:
    d = SimDriver()
    assert run(d, "s0", "start_function", params={"a": 1}) is Outcome.FAILED
    assert "no sandbox" in d.poll("s0", 0.0).message
    assert run(d, "c", "create_sandbox") is Outcome.DONE
    assert run(d, "s1", "start_function", params={"a": 1}) is Outcome.DONE
    assert d.running == {("fw.1", "edge-a"): {"a": 1}}
    assert run(d, "u", "update_function", params={"a": 2}) is Outcome.DONE
    assert d.running[("fw.1", "edge-a")] == {"a": 2}
    assert run(d, "st", "stop_function") is Outcome.DONE
    assert d.running == {}
    assert d.sandboxes == {("fw.1", "edge-a")}
    run(d, "s2", "start_function")
    assert run(d, "r", "remove_sandbox") is Outcome.DONE
    assert d.sandboxes == set()
    assert d.running == {}  # removing the sandbox stops what ran in it
    view = d.observe()
    assert view.sandboxes == frozenset()
    assert view.hosts_of("fw.1") == []


def test_power_off_stops_functions_and_blocks_new_ones() -> None:
    d = SimDriver()
    run(d, "c", "create_sandbox")
    run(d, "s", "start_function")
    assert run(d, "off", "power_off", host="edge-a") is Outcome.DONE
    assert d.running == {}
    assert d.observe().powered_off == frozenset({"edge-a"})
    assert run(d, "s2", "start_function") is Outcome.FAILED
    assert run(d, "c2", "create_sandbox", instance="fw.2") is Outcome.FAILED
    assert "powered off" in d.poll("c2", 0.0).message
    assert run(d, "on", "power_on", host="edge-a") is Outcome.DONE
    assert run(d, "s3", "start_function") is Outcome.DONE


def test_failed_host_accepts_only_cleanup() -> None:
    d = SimDriver()
    run(d, "c", "create_sandbox")
    run(d, "s", "start_function")
    d.set_host_alive("edge-a", False)
    assert d.running == {}
    assert run(d, "s2", "start_function") is Outcome.FAILED
    assert run(d, "st", "stop_function") is Outcome.DONE
    assert run(d, "r", "remove_sandbox") is Outcome.DONE
    d.set_host_alive("edge-a", True)
    assert run(d, "c2", "create_sandbox") is Outcome.DONE


def test_every_action_has_an_undo_and_updates_swap_params() -> None:
    for action, undo in ACTIONS.items():
        assert undo in ACTIONS
        assert ACTIONS[undo] == action or action == undo
    args = {"instance": "i", "params": {"v": 2}, "previous": {"v": 1}}
    assert reverse("update_function", args) == (
        "update_function",
        {"instance": "i", "params": {"v": 1}, "previous": {"v": 2}},
    )
    assert reverse("create_sandbox", {"host": "h"}) == ("remove_sandbox", {"host": "h"})


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    first = SimDriver(latency_s=1.0, state_path=path)
    run(first, "c", "create_sandbox")
    run(first, "s", "start_function", params={"mode": "strict"})
    run(first, "off", "power_off", host="cloud-1")
    first.submit("pending", "create_sandbox", {**SLOT, "instance": "fw.2"}, 10.0)

    second = SimDriver(latency_s=1.0, state_path=path)
    assert second.sandboxes == first.sandboxes
    assert second.running == first.running
    assert second.powered_off == first.powered_off
    assert second.poll("c", 50.0).outcome is Outcome.DONE  # a finished key stays finished
    assert second.poll("pending", 10.5).outcome is Outcome.PENDING
    assert second.poll("pending", 11.0).outcome is Outcome.DONE
    assert ("fw.2", "edge-a") in second.sandboxes
    # The completion was persisted too.
    third = SimDriver(state_path=path)
    assert ("fw.2", "edge-a") in third.sandboxes
    assert not list(tmp_path.glob("*.tmp"))


def test_adopt_records_a_running_function(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    d = SimDriver(state_path=path)
    d.adopt("fw.9", "edge-b", {"mode": "open"})
    assert SimDriver(state_path=path).running == {("fw.9", "edge-b"): {"mode": "open"}}


def test_host_failure_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    d = SimDriver(state_path=path)
    run(d, "c", "create_sandbox")
    run(d, "s", "start_function")
    d.set_host_alive("edge-a", False)
    again = SimDriver(state_path=path)
    assert again.running == {}  # the function died with its host
    assert again.failed_hosts == {"edge-a"}
    again.set_host_alive("edge-a", True)
    assert SimDriver(state_path=path).failed_hosts == set()


def test_health() -> None:
    ok, message = SimDriver().health()
    assert ok
    assert message
