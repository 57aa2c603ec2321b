"""Readings an agent derives from link and function counters (fake counters, real arithmetic)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgeroam.agent.config import AgentConfig, parse_agent_config
from edgeroam.agent.reporter import Reporter
from edgeroam.model import Reading


@dataclass
class FakeFunction:
    """Counters as a real function would expose them (bytes so far, per CPE on servers)."""

    keeps_off_band: ClassVar[bool] = True
    octets: int = 0
    cpes: dict[str, int] = field(default_factory=dict)

    def total(self) -> tuple[int, int]:
        return self.octets // 1000, self.octets

    def per_cpe_bytes(self) -> dict[str, int]:
        return dict(self.cpes)


@dataclass
class FakeSlot:
    function: str
    sandbox: Any


class FakeSandbox:
    def usage(self) -> dict[str, float]:
        return {"memory_mb": 3.0}


@dataclass
class FakeExecutor:
    functions: dict[str, tuple[str, FakeFunction]]

    def running(self) -> list[tuple[str, str, FakeFunction]]:
        return [(i, f, fn) for i, (f, fn) in self.functions.items()]

    def sandboxes(self) -> list[FakeSlot]:
        return [FakeSlot(f, FakeSandbox()) for f, _ in self.functions.values()]


def make(tmp_path: Path, kind: str, links: dict[str, Any], **extra: Any) -> AgentConfig:
    return parse_agent_config(
        {
            "host": "srv" if kind == "server" else "cpe-1",
            "kind": kind,
            "controller": "http://127.0.0.1:1",
            "token": "x" * 16,
            "state_dir": str(tmp_path),
            "capacity": {"vcpu": 4, "memory_mb": 1000, "bandwidth_mbps": 100},
            "links": links,
            "functions": {"security": {"implementation": "filter", "vcpu": 1, "memory_mb": 100}},
            **extra,
        }
    )


def values(readings: list[Reading]) -> dict[tuple[str, str], float]:
    return {(r.source, r.metric): r.value for r in readings}


class Counters:
    def __init__(self) -> None:
        self.now: dict[str, tuple[int, int]] = {}

    def __call__(self) -> dict[str, tuple[int, int]]:
        return dict(self.now)


def two_samples(
    reporter: Reporter, counters: Counters, update: Any, gap: float = 0.2
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float], float]:
    first = values(reporter.sample())
    began = time.monotonic()
    time.sleep(gap)
    update()
    second = values(reporter.sample())
    return first, second, time.monotonic() - began


def test_a_server_reports_its_band_per_function_and_per_cpe(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        "server",
        {"band": {"link": "band", "a_side": False, "capacity_mbps": 100, "band": True}},
        customer_lans={"cpe-1": "10.128.0.0/24", "cpe-2": "10.128.1.0/24"},
    )
    fn = FakeFunction(octets=5_000, cpes={"cpe-1": 0, "cpe-2": 5_000})
    counters = Counters()
    counters.now = {"band": (1_000_000, 200_000), "lo": (0, 0)}
    reporter = Reporter(config, FakeExecutor({"security-shared": ("security", fn)}), counters)

    def update() -> None:
        counters.now = {"band": (3_500_000, 300_000), "lo": (0, 0)}
        fn.octets += 2_000_000
        fn.cpes["cpe-2"] += 2_000_000

    first, second, gap = two_samples(reporter, counters, update)
    assert first[("host:srv", "heartbeat")] == 1.0
    assert ("host:srv", "band.used_mbps") not in first  # no rate from one sample
    assert first[("link:band", "ab_bytes")] == 1_000_000  # b side: a->b is what it receives
    rate = second[("host:srv", "band.used_mbps")]
    # Busier direction: 2.5 MB received over the sample gap (upper bound on the gap).
    assert rate == pytest.approx(2_500_000 * 8 / 1e6 / gap, rel=0.15)
    assert second[("link:band", "ab_mbps")] == rate
    assert second[("link:band", "use_ratio")] == pytest.approx(rate / 100)
    fn_rate = second[("host:srv", "band.fn.security.used_mbps")]
    assert fn_rate == pytest.approx(2_000_000 * 8 / 1e6 / gap, rel=0.15)
    assert second[("host:srv/cpe-2", "band.cpe.security.used_mbps")] == fn_rate
    assert second[("host:srv/cpe-1", "band.cpe.security.used_mbps")] == 0.0
    assert second[("instance:security-shared", "fn.bytes")] == 2_005_000
    assert second[("host:srv", "free.vcpu")] == 3.0
    assert second[("host:srv", "sandbox.memory_mb")] == 3.0


def test_a_cpe_reports_what_its_copy_keeps_off_the_band(tmp_path: Path) -> None:
    config = make(
        tmp_path, "cpe", {"acc-1": {"link": "acc-1", "a_side": True, "capacity_mbps": 100}}
    )
    fn = FakeFunction()
    counters = Counters()
    counters.now = {"acc-1": (0, 0)}
    reporter = Reporter(config, FakeExecutor({"security.7": ("security", fn)}), counters)

    def update() -> None:
        counters.now = {"acc-1": (10_000, 1_000_000)}
        fn.octets = 4_000_000

    _, second, gap = two_samples(reporter, counters, update)
    processed = second[("host:cpe-1", "offload.security.processed_mbps")]
    assert processed == pytest.approx(4_000_000 * 8 / 1e6 / gap, rel=0.15)
    assert second[("host:cpe-1", "offload.security.local_mbps")] == processed
    # a side: a->b is what the CPE sends.
    assert second[("link:acc-1", "ab_mbps")] > second[("link:acc-1", "ba_mbps")]
    assert not any(m.startswith("band.") for _, m in second)
