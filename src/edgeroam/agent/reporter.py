"""What an agent measures every interval, turned into readings.

Link bytes come from netlink (IFLA_STATS64 through pyroute2: `ip netns exec` does not remount
/sys for us, netlink is always right), function bytes from the functions' nft counters, and
rates from the difference to the previous sample over the monotonic clock. The first sample
carries counters only: a rate needs two samples.

Readings per sample (source: metric):
- ``host:<h>``: ``heartbeat`` (1), ``sandboxes``, ``functions.running``, ``free.vcpu``,
  ``free.memory_mb`` (capacity minus the sandboxes' flavors), ``sandbox.memory_mb``;
- ``link:<id>``: ``ab_mbps``/``ba_mbps`` (a→b, b→a), ``used_mbps`` (the busier direction),
  ``use_ratio``, ``ab_bytes``/``ba_bytes`` (counters);
- ``instance:<id>``: ``fn.bytes``, ``fn.packets``, ``fn.mbps``;
- servers: ``host:<s>`` ``band.used_mbps`` (busier direction over the band links),
  ``band.fn.<f>.used_mbps``, and ``host:<s>/<cpe>`` ``band.cpe.<f>.used_mbps``;
- CPEs: ``host:<c>`` ``offload.<f>.processed_mbps`` and ``offload.<f>.local_mbps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from edgeroam.agent.config import AgentConfig
from edgeroam.model import HostKind, Reading
from edgeroam.policies.offload import (
    BAND_USED,
    copy_local_metric,
    copy_processed_metric,
    function_band_metric,
    pair_band_metric,
    pair_source,
)

LinkReader = Callable[[], dict[str, tuple[int, int]]]
"""Returns interface name -> (rx bytes, tx bytes)."""


class Counted(Protocol):
    """What the reporter reads of a running function."""

    keeps_off_band: ClassVar[bool]

    def total(self) -> tuple[int, int]: ...

    def per_cpe_bytes(self) -> dict[str, int]: ...


class Usage(Protocol):
    def usage(self) -> dict[str, float]: ...


class Sandboxed(Protocol):
    function: str

    @property
    def sandbox(self) -> Usage: ...


class Running(Protocol):
    """The part of the executor the reporter needs (an Executor, or a fake in tests)."""

    def running(self) -> Sequence[tuple[str, str, Counted]]: ...

    def sandboxes(self) -> Sequence[Sandboxed]: ...


def netlink_reader() -> LinkReader:
    """Byte counters of this namespace's interfaces over netlink."""
    from pyroute2 import IPRoute

    ipr = IPRoute()

    def read() -> dict[str, tuple[int, int]]:
        out = {}
        for msg in ipr.get_links():
            stats = msg.get("IFLA_STATS64")
            name = msg.get("IFLA_IFNAME")
            if stats is not None and name:
                out[str(name)] = (int(stats["rx_bytes"]), int(stats["tx_bytes"]))
        return out

    return read


def _mbps(delta_bytes: float, dt: float) -> float:
    return max(0.0, delta_bytes) * 8 / 1e6 / dt


@dataclass
class _Previous:
    mono: float
    links: dict[str, tuple[int, int]]
    functions: dict[str, tuple[int, int]]
    per_cpe: dict[str, dict[str, int]] = field(default_factory=dict)


class Reporter:
    def __init__(self, config: AgentConfig, executor: Running, links: LinkReader) -> None:
        self.config = config
        self.executor = executor
        self.read_links = links
        self._prev: _Previous | None = None

    def sample(self, now: float | None = None) -> list[Reading]:
        cfg = self.config
        wall = time.time() if now is None else now
        mono = time.monotonic()
        links = self.read_links()
        running = self.executor.running()
        totals = {inst: fn.total() for inst, _, fn in running}
        per_cpe = {inst: fn.per_cpe_bytes() for inst, _, fn in running}
        prev = self._prev
        self._prev = _Previous(mono, links, totals, per_cpe)
        host = f"host:{cfg.host}"
        out: list[tuple[str, str, float]] = [(host, "heartbeat", 1.0)]
        slots = self.executor.sandboxes()
        used_vcpu = sum(
            cfg.functions[s.function].vcpu for s in slots if s.function in cfg.functions
        )
        used_mem = sum(
            cfg.functions[s.function].memory_mb for s in slots if s.function in cfg.functions
        )
        out += [
            (host, "sandboxes", float(len(slots))),
            (host, "functions.running", float(len(running))),
            (host, "free.vcpu", cfg.capacity.vcpu - used_vcpu),
            (host, "free.memory_mb", cfg.capacity.memory_mb - used_mem),
            (
                host,
                "sandbox.memory_mb",
                sum(s.sandbox.usage().get("memory_mb", 0.0) for s in slots),
            ),
        ]
        for ifname, entry in cfg.links.items():
            rx, tx = links.get(ifname, (0, 0))
            ab, ba = (tx, rx) if entry.a_side else (rx, tx)
            source = f"link:{entry.link}"
            out += [(source, "ab_bytes", float(ab)), (source, "ba_bytes", float(ba))]
        for inst, (packets, octets) in totals.items():
            out += [
                (f"instance:{inst}", "fn.bytes", float(octets)),
                (f"instance:{inst}", "fn.packets", float(packets)),
            ]
        if prev is not None and mono > prev.mono:
            out += self._rates(prev, mono - prev.mono, links, totals, per_cpe)
        return [Reading(source=s, metric=m, value=v, timestamp=wall) for s, m, v in out]

    def _rates(
        self,
        prev: _Previous,
        dt: float,
        links: dict[str, tuple[int, int]],
        totals: dict[str, tuple[int, int]],
        per_cpe: dict[str, dict[str, int]],
    ) -> list[tuple[str, str, float]]:
        cfg = self.config
        out: list[tuple[str, str, float]] = []
        band_rx = band_tx = 0.0
        for ifname, entry in cfg.links.items():
            rx, tx = links.get(ifname, (0, 0))
            prx, ptx = prev.links.get(ifname, (rx, tx))
            rx_rate, tx_rate = _mbps(rx - prx, dt), _mbps(tx - ptx, dt)
            ab, ba = (tx_rate, rx_rate) if entry.a_side else (rx_rate, tx_rate)
            source = f"link:{entry.link}"
            used = max(ab, ba)
            out += [
                (source, "ab_mbps", ab),
                (source, "ba_mbps", ba),
                (source, "used_mbps", used),
                (source, "use_ratio", used / entry.capacity_mbps),
            ]
            if entry.band:
                band_rx += rx_rate
                band_tx += tx_rate
        host = f"host:{cfg.host}"
        fn_rate: dict[str, float] = {}
        for inst, function, fn in self.executor.running():
            octets = totals.get(inst, (0, 0))[1]
            before = prev.functions.get(inst)
            if before is None:
                continue  # started since the last sample: no rate yet
            rate = _mbps(octets - before[1], dt)
            out.append((f"instance:{inst}", "fn.mbps", rate))
            fn_rate[function] = fn_rate.get(function, 0.0) + rate
            if cfg.kind is HostKind.SERVER:
                old = prev.per_cpe.get(inst, {})
                for cpe, value in per_cpe.get(inst, {}).items():
                    out.append(
                        (
                            pair_source(cfg.host, cpe),
                            pair_band_metric(function),
                            _mbps(value - old.get(cpe, value), dt),
                        )
                    )
            elif cfg.kind is HostKind.CPE:
                out.append((host, copy_processed_metric(function), rate))
                out.append((host, copy_local_metric(function), rate if fn.keeps_off_band else 0.0))
        if cfg.kind is HostKind.SERVER and cfg.band_interfaces:
            out.append((host, BAND_USED, max(band_rx, band_tx)))
            for function, rate in fn_rate.items():
                out.append((host, function_band_metric(function), rate))
        return _merge_pairs(out)


def _merge_pairs(items: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Two copies of one function on a host report one sum per (source, metric)."""
    merged: dict[tuple[str, str], float] = {}
    for source, metric, value in items:
        key = (source, metric)
        summed = metric.startswith(("band.cpe.", "offload."))
        merged[key] = merged.get(key, 0.0) + value if summed else value
    return [(s, m, v) for (s, m), v in merged.items()]
