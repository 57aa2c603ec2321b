"""The agent's executor on a real host namespace: sandboxes (cgroups), nft functions, idempotency.

Everything runs in a thread inside a namespace of the test's own, so the nftables tables land
there and never in the machine's namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from edgeroam.agent.config import AgentConfig, parse_agent_config
from edgeroam.agent.executor import Executor
from edgeroam.agent.functions import table_name
from edgeroam.drivers.netns import AgentAction
from edgeroam.testbed.cgroups import CGROUP_ROOT, Sandbox
from edgeroam.testbed.nft import Nft
from edgeroam.testbed.nsutil import call_in_netns, create_netns, run

pytestmark = pytest.mark.root
T = TypeVar("T")


@pytest.fixture
def inside(prefix: str) -> Iterator[Callable[[Callable[[], T]], T]]:
    name = f"{prefix}h-cpe-1"
    create_netns([name], prefix)  # removed with everything of the prefix by its finalizer

    def call(fn: Callable[[], T]) -> T:
        return call_in_netns(name, fn)

    yield call


def agent_config(tmp_path: Path, prefix: str) -> AgentConfig:
    return parse_agent_config(
        {
            "host": "cpe-1",
            "kind": "server",
            "controller": "http://127.0.0.1:1",
            "token": "x" * 16,
            "state_dir": str(tmp_path / "state"),
            "prefix": prefix,
            "customer_lans": {"cpe-1": "10.128.0.0/24", "cpe-2": "10.128.1.0/24"},
            "functions": {
                "fw": {"implementation": "filter", "vcpu": 0.5, "memory_mb": 64},
                "empty": {"implementation": "noop"},
            },
        }
    )


def act(key: str, action: str, **args: Any) -> AgentAction:
    return AgentAction(key=key, action=action, args={"host": "cpe-1", **args})


def test_sandboxes_functions_and_repeated_keys(
    tmp_path: Path, prefix: str, inside: Callable[[Callable[[], Any]], Any]
) -> None:
    config = agent_config(tmp_path, prefix)
    table = table_name(prefix, "f", "fw.1")

    def scenario() -> dict[str, Any]:
        ex = Executor(config, Nft())
        out: dict[str, Any] = {}
        out["create"] = ex.execute(act("k1", "create_sandbox", instance="fw.1", function="fw"))
        out["again"] = ex.execute(act("k1", "create_sandbox", instance="fw.1", function="fw"))
        params = {"destination": "50.1.1.1", "protocol": "icmp-echo"}
        out["start"] = ex.execute(
            act("k2", "start_function", instance="fw.1", function="fw", params=params)
        )
        out["tables"] = ex.nft.tables()
        out["ruleset"] = run(["nft", "list", "table", "ip", table])
        out["bad"] = ex.execute(
            act("k3", "update_function", instance="fw.1", params={"protocol": "gre"})
        )
        out["other_host"] = ex.execute(
            AgentAction(key="k4", action="stop_function", args={"host": "srv", "instance": "x"})
        )
        out["no_sandbox"] = ex.execute(
            act("k5", "start_function", instance="y.1", function="fw", params={})
        )
        out["unknown_fn"] = ex.execute(act("k6", "create_sandbox", instance="z", function="vm"))
        out["state"] = ex.state()
        return out

    out = inside(scenario)
    assert out["create"].outcome == "done"
    assert out["again"] is out["create"]  # answered from memory
    sandbox = Sandbox(prefix, "cpe-1", "fw.1")
    assert (sandbox.path("cpu") / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert int((sandbox.path("memory") / "memory.limit_in_bytes").read_text()) == 64 * 2**20
    assert out["start"].outcome == "done", out["start"].message
    assert table in out["tables"]
    assert "icmp type echo-request" in out["ruleset"]
    assert (
        'ip saddr 10.128.1.0/24 counter name "cpe_cpe-2" drop'.replace("cpe-2", "cpe_2")
        in (out["ruleset"])
    )
    # The machine's own namespace got nothing.
    assert table not in run(["nft", "list", "tables"])
    assert out["bad"].outcome == "failed" and "protocol: 'gre' is not one of" in out["bad"].message
    assert "reached the agent of 'cpe-1'" in out["other_host"].message
    assert "y.1 has no sandbox on cpe-1" in out["no_sandbox"].message
    assert "function 'vm' is not installed on cpe-1" in out["unknown_fn"].message
    assert out["state"].sandboxes == ("fw.1",) and out["state"].running == ("fw.1",)

    def restart_and_remove() -> dict[str, Any]:
        again = Executor(config, Nft())
        problems = again.restore()  # a restarted agent takes its functions over
        result = {"problems": problems, "state": again.state()}
        result["removed"] = again.execute(act("k9", "remove_sandbox", instance="fw.1"))
        result["removed_again"] = again.execute(act("k10", "remove_sandbox", instance="fw.1"))
        result["tables"] = again.nft.tables()
        return result

    after = inside(restart_and_remove)
    assert after["problems"] == [] and after["state"].running == ("fw.1",)
    assert after["removed"].outcome == "done"
    assert after["removed_again"].message == "no sandbox (already removed)"
    assert table not in after["tables"]
    assert not sandbox.exists()
    assert not (CGROUP_ROOT / "cpu" / sandbox.relative).exists()
