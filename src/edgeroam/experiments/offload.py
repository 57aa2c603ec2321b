"""`offload-large`: a ping flood from 5 % of 1,000 CPEs, with and without the offload policy.

The generated world (`offload_world`) has two vCPE servers and four functions per customer:
`nat` on vcpe-1, and `dns`, `voice` and a `security` filter on vcpe-2. The security copy on the
server blocks ICMP echo to 50.1.1.1, but only after the flood has crossed the band. Every
seventh CPE is a small box without room for another function, some flooders among them. The
experiment runs the same world twice, once with the offload policy and once with it disabled,
and plots the band's use ratio before, during and after the flood.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from edgeroam.experiments.output import save_png
from edgeroam.experiments.registry import Experiment, Progress, register
from edgeroam.sim.runner import Progress as SimProgress
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import Scenario, load_scenario, parse_scenario

TARGET = "50.1.1.1"


def offload_world(
    cpes: int = 1000,
    *,
    attack_share: float = 0.05,
    flood_mbps: float = 30.0,
    attack_start: float = 40.0,
    attack_end: float = 140.0,
    duration_s: float = 240.0,
    seed: int = 5,
    policy: bool = True,
) -> Scenario:
    """The generated world; capacities scale with `cpes` so the use ratios do not depend on it.

    Normal traffic per CPE: nat 2, security 0.5, voice 0.2, dns 0.1 Mbit/s (nat with 10 %
    noise). Every `1/attack_share`-th CPE floods 50.1.1.1 with `flood_mbps` of ICMP echo
    between `attack_start` and `attack_end`.
    """
    if cpes < 1 or not 0 < attack_share <= 1:
        raise ValueError("need at least one CPE and an attack share in (0, 1]")
    every = max(1, round(1 / attack_share))
    sites: list[dict[str, Any]] = [{"id": "dc-1", "kind": "datacenter"}]
    hosts: list[dict[str, Any]] = [
        {
            "id": "vcpe-1",
            "kind": "server",
            "site": "dc-1",
            "capacity": {"vcpu": 256, "memory_mb": 524288, "bandwidth_mbps": 3.5 * cpes},
        },
        {
            "id": "vcpe-2",
            "kind": "server",
            "site": "dc-1",
            "capacity": {"vcpu": 256, "memory_mb": 524288, "bandwidth_mbps": 1.5 * cpes},
        },
    ]
    links: list[dict[str, Any]] = [
        {"id": f"up-{s}", "a": "dc-1", "b": s, "capacity_mbps": 100000, "kind": "uplink"}
        for s in ("vcpe-1", "vcpe-2")
    ]
    customers: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    for n in range(cpes):
        cid, cpe, home = f"c{n:04d}", f"cpe-{n:04d}", f"home-{n:04d}"
        customers.append({"id": cid})
        sites.append({"id": home, "kind": "home"})
        small = n % 7 == 3
        hosts.append(
            {
                "id": cpe,
                "kind": "cpe",
                "site": home,
                "owner": cid,
                "capacity": {
                    "vcpu": 0.25 if small else 2,
                    "memory_mb": 128 if small else 1024,
                    "bandwidth_mbps": 1000,
                },
            }
        )
        links.append({"id": f"acc-{n:04d}", "a": cpe, "b": "dc-1", "capacity_mbps": 1000})
        flows += [
            {
                "id": f"nat-{n:04d}",
                "customer": cid,
                "function": "nat",
                "rate_mbps": {"kind": "constant", "mbps": 2.0, "noise_pct": 10},
            },
            {
                "id": f"web-{n:04d}",
                "customer": cid,
                "function": "security",
                "destination": "192.0.2.80",
                "protocol": "tcp-syn",
                "rate_mbps": 0.5,
            },
            {
                "id": f"sip-{n:04d}",
                "customer": cid,
                "function": "voice",
                "protocol": "sip-call",
                "rate_mbps": 0.2,
            },
            {"id": f"dns-{n:04d}", "customer": cid, "function": "dns", "rate_mbps": 0.1},
        ]
        if n % every == every // 2:
            flows.append(
                {
                    "id": f"flood-{n:04d}",
                    "customer": cid,
                    "function": "security",
                    "destination": TARGET,
                    "protocol": "icmp-echo",
                    "rate_mbps": {
                        "kind": "steps",
                        "points": [[0, 0], [attack_start, flood_mbps], [attack_end, 0]],
                    },
                }
            )
    document = {
        "name": f"offload-large-{cpes}" + ("" if policy else "-no-policy"),
        "description": f"{cpes} CPEs, ping flood from {attack_share:.0%} of them",
        "seed": seed,
        "duration_s": duration_s,
        "tick_s": 1,
        "driver": {"latency_s": 0.2},
        "band": {"pairs": True, "timeline_top": 3},
        "policies": {
            "offload": {
                "enabled": policy,
                "threshold": 0.7,
                "hold_s": 5,
                "clear_hold_s": 20,
                "scope": "cpe_function",
                "selection": "above_threshold",
                # The aggregate decides: flooders on small boxes keep loading vcpe-2, and on
                # its own band every CPE's normal filter traffic would clear the occupancy bar.
                "per_server": False,
                # 0.2 % of the band: 10 Mbit/s of one function from one CPE (the flooders).
                "occupancy_threshold": 0.002,
                # Steps of one operation run one after the other (0.2 s each, one per tick):
                # small operations run side by side and finish within seconds.
                "max_hosts_per_operation": 5,
            }
        },
        "topology": {"sites": sites, "hosts": hosts, "links": links},
        "flavors": [{"id": "small", "vcpu": 0.5, "memory_mb": 256}],
        "functions": [
            {"name": "nat", "flavor": "small", "placement": ["server"]},
            {
                "name": "dns",
                "flavor": "small",
                "placement": ["cpe", "server"],
                "traffic": {"otherwise": "answer"},
            },
            {
                "name": "voice",
                "flavor": "small",
                "placement": ["cpe", "server"],
                "traffic": {
                    "rules": [{"match": {"protocol": "sip-register"}, "action": "answer"}],
                    "otherwise": "pass",
                },
            },
            {
                "name": "security",
                "flavor": "small",
                "placement": ["cpe", "server"],
                "parameters": {"destination": {"type": "ipv4"}, "protocol": {"type": "string"}},
                "traffic": {
                    "rules": [
                        {
                            "match": {"destination": "$destination", "protocol": "$protocol"},
                            "action": "drop",
                        }
                    ],
                    "otherwise": "pass",
                },
            },
        ],
        "customers": customers,
        "instances": [
            {"id": "nat-shared", "function": "nat", "host": "vcpe-1"},
            {"id": "dns-shared", "function": "dns", "host": "vcpe-2"},
            {"id": "voice-shared", "function": "voice", "host": "vcpe-2"},
            {
                "id": "security-shared",
                "function": "security",
                "host": "vcpe-2",
                "params": {"destination": TARGET, "protocol": "icmp-echo"},
            },
        ],
        "flows": flows,
    }
    return parse_scenario(document, source=f"offload_world({cpes})")


def _phase_means(timeline: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    def mean(lo: float, hi: float) -> float:
        values = [e["use_ratio"] for e in timeline if lo <= e["t"] < hi]
        return round(sum(values) / len(values), 4) if values else 0.0

    last = timeline[-1]["t"] + 1
    return {
        "before": mean(0, start),
        "during": mean(start + 15, end),  # after the hold time and the offload have passed
        "after": mean(end + 30, last),
    }


def _grouped(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operations decided together (same time and kind) as one line: how many, how many CPEs."""
    groups: dict[tuple[float, str], dict[str, Any]] = {}
    for op in operations:
        key = (op["t"], op["operation"])
        row = groups.setdefault(
            key, {"t": op["t"], "operation": op["operation"], "operations": 0, "hosts": 0}
        )
        row["operations"] += 1
        row["hosts"] += len(op["hosts"])
    return list(groups.values())


def _every(progress: Progress, label: str, duration: float, step: float = 30.0) -> SimProgress:
    """A simulation progress callback that reports every `step` simulated seconds."""
    due = [0.0]

    def tick(t: float, _duration: float) -> None:
        if t >= due[0]:
            progress(f"{label}: t={min(t, duration):.0f}/{duration:g} s")
            due[0] += step

    return tick


def run_pair(cpes: int, progress: Progress, **kwargs: Any) -> dict[str, Any]:
    """Run the world with and without the policy; the timelines and the key figures."""
    out: dict[str, Any] = {}
    for policy in (True, False):
        label = "offload" if policy else "no-policy"
        world = offload_world(cpes, policy=policy, **kwargs)
        progress(f"{label}: {cpes} CPEs, {len(world.flows)} flows, {world.duration_s:g} s")
        tick = _every(progress, label, world.duration_s)
        result = Simulation(world).run(tick)
        timeline = result["timeline"]
        start = kwargs.get("attack_start", 40.0)
        end = kwargs.get("attack_end", 140.0)
        offloads = [op for op in result["operations"] if op["operation"] == "offload"]
        out[label] = {
            "use_ratio": _phase_means(timeline, start, end),
            "peak_use_ratio": result["summary"]["band"]["peak_use_ratio"],
            "operations_by_kind": result["summary"]["operations_by_kind"],
            "cpes_offloaded": sum(len(op["hosts"]) for op in offloads),
            "cpes_skipped": max(
                (op["reason"]["details"]["resource_check"]["skipped"]["count"] for op in offloads),
                default=0,
            ),
            "operations": _grouped(result["operations"]),
            "series": [
                (e["t"], e["use_ratio"], e["occupancy"].get("security", 0.0)) for e in timeline
            ],
        }
    return out


def _plot(runs: dict[str, Any], out: Path, threshold: float, start: float, end: float) -> None:
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
    styles = {"offload": ("tab:blue", "-"), "no-policy": ("tab:red", "--")}
    for label, run in runs.items():
        ts, ratio, security = zip(*run["series"], strict=True)
        color, line = styles[label]
        top.plot(ts, ratio, color=color, linestyle=line, label=f"use ratio, {label}")
        bottom.plot(ts, security, color=color, linestyle=line, label=f"security, {label}")
    for op in runs["offload"]["operations"]:
        color = "tab:green" if op["operation"] == "offload" else "tab:purple"
        top.axvline(op["t"], color=color, linewidth=0.8, alpha=0.6)
    top.axhline(threshold, color="black", linestyle=":", label=f"threshold {threshold:.0%}")
    for ax in (top, bottom):
        ax.axvspan(start, end, color="grey", alpha=0.1)
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=7, loc="upper right")
    top.set_ylabel("band use ratio")
    top.set_title(
        "CPE↔vCPE-server band: ping flood from 5 % of the CPEs (shaded); "
        "green = offload, purple = revert",
        fontsize=9,
    )
    bottom.set_ylabel("security occupancy")
    save_png(fig, out / "offload-large.png")


def run(out: Path | None, progress: Progress, cpes: int = 1000) -> dict[str, Any]:
    start, end = 40.0, 140.0
    runs = run_pair(cpes, progress, attack_start=start, attack_end=end)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "offload-large.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["t", "use_ratio_offload", "use_ratio_no_policy", "security_offload"])
            for a, b in zip(runs["offload"]["series"], runs["no-policy"]["series"], strict=True):
                writer.writerow([a[0], a[1], b[1], a[2]])
        _plot(runs, out, 0.7, start, end)
    return {
        "cpes": cpes,
        "runs": {k: {x: y for x, y in v.items() if x != "series"} for k, v in runs.items()},
    }


register(
    Experiment(
        "offload-large",
        "1,000 CPEs, ping flood from 5 %: band before/during/after, offload policy vs none",
        run,
    )
)


# --- the seed's worked examples -----------------------------------------------------------------

EXAMPLES = ("ntt-embodiment-1", "ntt-embodiment-2", "ntt-ping-flood")
SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"


def run_examples(out: Path | None, progress: Progress) -> dict[str, Any]:
    """Run the three shipped scenarios; the band at each move and a plot of the three runs."""
    rows: dict[str, Any] = {}
    fig = Figure(figsize=(9, 7))
    for k, name in enumerate(EXAMPLES):
        path = SCENARIO_DIR / f"{name}.yaml"
        if not path.exists():
            raise FileNotFoundError(f"scenario {name!r} not found at {path} (run from a checkout)")
        progress(name)
        result = Simulation(load_scenario(path)).run()
        timeline = result["timeline"]
        moves = []
        for op in result["operations"]:
            at = next(e for e in timeline if e["t"] == op["t"])
            after = next(e for e in timeline if e["t"] > op["t"])
            moves.append(
                {
                    "t": op["t"],
                    "operation": op["operation"],
                    "function": op["function"],
                    "hosts": op["hosts"],
                    "params": op["params"],
                    "used_mbps_before": at["used_mbps"],
                    "used_mbps_after": after["used_mbps"],
                    "occupancy_before": at["occupancy"].get(op["function"], 0.0),
                    "occupancy_after": after["occupancy"].get(op["function"], 0.0),
                }
            )
        rows[name] = moves
        ax = fig.add_subplot(len(EXAMPLES), 1, k + 1)
        ts = [e["t"] for e in timeline]
        ax.step(ts, [e["used_mbps"] for e in timeline], where="post", label="band used (Mbit/s)")
        for move in moves:
            color = "tab:green" if move["operation"] == "offload" else "tab:purple"
            ax.axvline(move["t"], color=color, linestyle="--", linewidth=1)
            ax.annotate(
                f"{move['operation']} {move['function']}\n"
                f"{move['used_mbps_before']:g} → {move['used_mbps_after']:g}",
                (move["t"], move["used_mbps_before"]),
                textcoords="offset points",
                xytext=(6, -24 if move["used_mbps_before"] > 300 else 8),
                fontsize=7,
            )
        ax.axhline(700, color="black", linestyle=":", linewidth=1, label="threshold 70 %")
        ax.set_ylim(0, 1000)
        ax.set_ylabel("Mbit/s")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.axes[-1].set_xlabel("time (s)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_png(fig, out / "offload-examples.png")
    return {"examples": rows}


register(
    Experiment(
        "offload-examples",
        "the seed's three worked examples (800→600→650, 900→600→610, 900→0) from scenarios/",
        run_examples,
    )
)
