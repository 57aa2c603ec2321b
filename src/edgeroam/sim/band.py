"""World model `band`: the CPE↔vCPE-server band as the servers and CPEs would report it.

Each tick the traffic model says which instance served every flow and what CPE copies did with
the flows they met (see `edgeroam.model.traffic`). From that this model derives the telemetry
the offload policy reads, with the names defined in `edgeroam.policies.offload`:

- a monitored server reports the band it uses (``band.used_mbps``), per function
  (``band.fn.<f>.used_mbps``) and per CPE×function (``band.cpe.<f>.used_mbps`` from source
  ``host:<server>/<cpe>``). Traffic a CPE copy forwarded counts in the server's band but under
  no function: no copy on the server processes it.
- a CPE reports, per function with a copy on it, what the copy handles
  (``offload.<f>.processed_mbps``) and the part it answers or drops itself
  (``offload.<f>.local_mbps``), i.e. what would come back to the band without the copy.

It adds the band's ``used_mbps``, ``use_ratio`` and per-function ``occupancy`` to every
timeline entry, with per-server values and the busiest CPEs and pairs under ``band``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeroam.model import Host, HostKind, Instance, OperationKind, Reading
from edgeroam.policies.offload import (
    BAND_USED,
    OffloadConfig,
    copy_local_metric,
    copy_processed_metric,
    function_band_metric,
    pair_band_metric,
    pair_source,
)
from edgeroam.sim.band_config import BandSection, monitored_servers
from edgeroam.sim.models import register_world_model
from edgeroam.sim.scenario import Flow
from edgeroam.sim.traffic import TrafficSample, customer_cpes

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario


@dataclass
class BandMeasurement:
    """The band at one instant, in Mbit/s."""

    servers: list[str]
    capacity: dict[str, float]
    used: dict[str, float] = field(default_factory=dict)
    transit: dict[str, float] = field(default_factory=dict)
    """Server -> band used by traffic CPE copies forwarded (processed by no server copy)."""
    by_function: dict[tuple[str, str], float] = field(default_factory=dict)
    """(server, function) -> band used by the flows the server's copies of it served."""
    pairs: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(server, cpe, function) -> part of that which one CPE sent."""
    copy_processed: dict[tuple[str, str], float] = field(default_factory=dict)
    """(cpe, function) -> what the CPE's copy handled, for every copy on a CPE."""
    copy_local: dict[tuple[str, str], float] = field(default_factory=dict)
    """(cpe, function) -> the part of it the copy answered or dropped."""

    @property
    def total_capacity(self) -> float:
        return sum(self.capacity.values())

    @property
    def total_used(self) -> float:
        return sum(self.used.values())

    @property
    def use_ratio(self) -> float:
        cap = self.total_capacity
        return self.total_used / cap if cap > 0 else 0.0

    def occupancy(
        self, functions: Sequence[str], servers: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Function -> its band over the capacity of `servers` (all monitored by default)."""
        chosen = self.servers if servers is None else list(servers)
        cap = sum(self.capacity[s] for s in chosen)
        return {
            f: (sum(self.by_function.get((s, f), 0.0) for s in chosen) / cap if cap > 0 else 0.0)
            for f in functions
        }

    def cpe_band(self) -> dict[str, float]:
        """CPE -> band its traffic uses at the monitored servers (forwarded traffic aside)."""
        out: dict[str, float] = defaultdict(float)
        for (_, cpe, _), value in self.pairs.items():
            out[cpe] += value
        return dict(out)


def measure_band(
    sample: TrafficSample,
    flows: Mapping[str, Flow],
    hosts: Mapping[str, Host],
    instances: Mapping[str, Instance],
    servers: Sequence[str],
) -> BandMeasurement:
    """What the monitored servers and the CPEs measure for one traffic sample."""
    monitored = set(servers)
    m = BandMeasurement(
        servers=list(servers),
        capacity={s: hosts[s].capacity.bandwidth_mbps for s in servers},
        used=dict.fromkeys(servers, 0.0),
        transit=dict.fromkeys(servers, 0.0),
    )
    by_function: dict[tuple[str, str], float] = defaultdict(float)
    pairs: dict[tuple[str, str, str], float] = defaultdict(float)
    processed: dict[tuple[str, str], float] = defaultdict(float)
    local: dict[tuple[str, str], float] = defaultdict(float)
    for inst in instances.values():
        host = hosts.get(inst.host)
        if host is not None and host.kind is HostKind.CPE:
            processed[(inst.host, inst.function)] += 0.0
            local[(inst.host, inst.function)] += 0.0
    cpes = customer_cpes(hosts.values())
    for flow_id, rate in sample.flow_rates.items():
        flow = flows.get(flow_id)
        cpe = cpes.get(flow.customer) if flow is not None else None
        if flow is None or cpe is None:
            continue
        handled = sample.handled_on_cpe.get(flow_id)
        if handled is not None:
            copy, action = handled
            where = instances[copy].host
            processed[(where, flow.function)] += rate
            if action.keeps_off_band:
                local[(where, flow.function)] += rate
            target = sample.transit_to.get(flow_id)
            if target in monitored:
                m.used[target] += rate
                m.transit[target] += rate
            continue
        served = sample.served_by.get(flow_id)
        server = instances[served].host if served is not None else None
        if server in monitored and server != cpe:
            m.used[server] += rate
            by_function[(server, flow.function)] += rate
            pairs[(server, cpe, flow.function)] += rate
    m.by_function = dict(by_function)
    m.pairs = dict(pairs)
    m.copy_processed = dict(processed)
    m.copy_local = dict(local)
    return m


def _r(x: float) -> float:
    return round(x, 6)


class BandWorld:
    name = "band"

    def __init__(self, scenario: Scenario, section: BandSection) -> None:
        self.section = section
        self.servers = monitored_servers(scenario)
        settings = scenario.policies.get("offload", {})
        self.threshold = OffloadConfig.model_validate(settings).threshold
        self.pair_keys: set[tuple[str, str, str]] = set()
        self.last: BandMeasurement | None = None
        self.series: list[tuple[float, float]] = []

    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        inv = sim.controller.inventory
        sample = sim.last_sample
        assert sample is not None  # the runner samples traffic before asking world models
        m = measure_band(sample, sim.flows, inv.hosts, inv.instances, self.servers)
        self.last = m
        functions = sorted(inv.functions)
        values: dict[tuple[str, str], float] = defaultdict(float)
        for server in self.servers:
            source = f"host:{server}"
            values[(source, BAND_USED)] += m.used[server]
            for function in functions:
                metric = function_band_metric(function)
                values[(source, metric)] += m.by_function.get((server, function), 0.0)
        if self.section.pairs:
            self.pair_keys.update(m.pairs)
            for key in self.pair_keys:  # a pair gone quiet reports 0, not silence
                server, cpe, function = key
                metric = pair_band_metric(function)
                values[(pair_source(server, cpe), metric)] += m.pairs.get(key, 0.0)
        for (cpe, function), value in m.copy_processed.items():
            source = f"host:{cpe}"
            values[(source, copy_processed_metric(function))] += value
            values[(source, copy_local_metric(function))] += m.copy_local[(cpe, function)]
        # Sources and metrics are built from validated ids and values are sums of validated
        # rates, so the readings skip re-validation (10^4 of them per tick at 10^3 CPEs).
        return [
            Reading.model_construct(source=source, metric=metric, value=value, timestamp=t)
            for (source, metric), value in sorted(values.items())
        ]

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        m = self.last
        if m is None:
            return
        functions = sorted(sim.controller.inventory.functions)
        cap = m.total_capacity
        entry["used_mbps"] = _r(m.total_used)
        entry["use_ratio"] = _r(m.use_ratio)
        entry["occupancy"] = {f: _r(v) for f, v in m.occupancy(functions).items()}
        self.series.append((t, m.use_ratio))
        top = self.section.timeline_top
        cpe_band = m.cpe_band()
        busiest = sorted(
            ((c, v) for c, v in cpe_band.items() if v > 0), key=lambda kv: (-kv[1], kv[0])
        )[:top]
        pair_band: dict[tuple[str, str], float] = defaultdict(float)
        for (_, cpe, function), value in m.pairs.items():
            pair_band[(cpe, function)] += value
        fn_band = {f: sum(m.by_function.get((s, f), 0.0) for s in m.servers) for f in functions}
        hot = sorted(
            ((k, v) for k, v in pair_band.items() if v > 0), key=lambda kv: (-kv[1], kv[0])
        )[:top]
        copies: dict[str, dict[str, float]] = {}
        for (cpe, function), value in sorted(m.copy_processed.items()):
            row = copies.setdefault(
                function, {"copies": 0, "processed_mbps": 0.0, "local_mbps": 0.0}
            )
            row["copies"] += 1
            row["processed_mbps"] += value
            row["local_mbps"] += m.copy_local[(cpe, function)]
        entry["band"] = {
            "capacity_mbps": _r(cap),
            "transit_mbps": _r(sum(m.transit.values())),
            "servers": {
                s: {
                    "used_mbps": _r(m.used[s]),
                    "use_ratio": _r(m.used[s] / m.capacity[s]),
                    "occupancy": {
                        f: _r(v) for f, v in m.occupancy(functions, [s]).items() if v > 0
                    },
                }
                for s in m.servers
            },
            "cpes": [{"cpe": c, "used_mbps": _r(v), "occupancy": _r(v / cap)} for c, v in busiest],
            "pairs": [
                {
                    "cpe": c,
                    "function": f,
                    "used_mbps": _r(v),
                    "occupancy": _r(v / cap),
                    "share_of_cpe": _r(v / cpe_band[c]) if cpe_band.get(c) else 0.0,
                    "share_of_function": _r(v / fn_band[f]) if fn_band.get(f) else 0.0,
                }
                for (c, f), v in hot
            ],
            "cpe_copies": {
                f: {k: _r(v) if isinstance(v, float) else v for k, v in row.items()}
                for f, row in copies.items()
            },
        }

    def summary(self, sim: Simulation) -> dict[str, Any]:
        tick = sim.scenario.tick_s
        peak = max(self.series, key=lambda p: (p[1], -p[0]), default=(None, 0.0))
        ops = sim.operations()
        return {
            "band": {
                "servers": self.servers,
                "capacity_mbps": _r(self.last.total_capacity) if self.last else 0.0,
                "threshold": self.threshold,
                "peak_use_ratio": {"value": _r(peak[1]), "t": peak[0]},
                "mean_use_ratio": _r(sum(r for _, r in self.series) / len(self.series))
                if self.series
                else 0.0,
                "time_above_threshold_s": _r(
                    sum(tick for _, r in self.series if r > self.threshold)
                ),
                "offloads": sum(1 for op in ops if op.kind is OperationKind.OFFLOAD),
                "reverts": sum(1 for op in ops if op.kind is OperationKind.REVERT),
            }
        }


@register_world_model
def _factory(scenario: Scenario) -> BandWorld | None:
    return None if scenario.band is None else BandWorld(scenario, scenario.band)
