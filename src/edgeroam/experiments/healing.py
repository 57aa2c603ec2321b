"""`healing`: how fast service returns after a vCPE server dies, as the driver gets worse.

The demo world's vCPE server fails; the built-in heal policy re-creates its functions in the
cloud. Sweeping the driver's action latency and failure rate shows what retries with backoff
cost in unserved traffic — a baseline every later policy is measured against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from edgeroam.experiments.output import save_png, write_csv
from edgeroam.experiments.registry import Experiment, Progress, register
from edgeroam.sim.runner import Simulation
from edgeroam.sim.worlds import demo_world

LATENCIES = (0.5, 2.0)
FAILURE_RATES = (0.0, 0.2, 0.4)
FAILURE_AT = 30.0


def _run_one(latency: float, failure_rate: float, seed: int) -> dict[str, Any]:
    world = demo_world(
        20, duration_s=150, server_failure_at=FAILURE_AT, server_repair_at=None, seed=seed
    )
    world = world.model_copy(
        update={
            "driver": world.driver.model_copy(
                update={"latency_s": latency, "failure_rate": failure_rate, "seed": seed}
            )
        }
    )
    sim = Simulation(world)
    result = sim.run()
    restored = next(
        (e["t"] for e in result["timeline"] if e["t"] > FAILURE_AT and e["unserved_mbps"] == 0),
        None,
    )
    return {
        "latency_s": latency,
        "failure_rate": failure_rate,
        "seed": seed,
        "restored_after_s": None if restored is None else restored - FAILURE_AT,
        "unserved_mbit": result["summary"]["unserved_mbit"],
        "operations": result["summary"]["operations"],
        "operations_by_state": result["summary"]["operations_by_state"],
        "timeline": [(e["t"], e["unserved_mbps"]) for e in result["timeline"]],
    }


def run(out: Path | None, progress: Progress) -> dict[str, Any]:
    rows = []
    for latency in LATENCIES:
        for rate in FAILURE_RATES:
            progress(f"latency {latency} s, failure rate {rate:.0%}")
            rows.append(_run_one(latency, rate, seed=11))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(
            out / "healing.csv",
            ["latency_s", "failure_rate", "restored_after_s", "unserved_mbit", "operations"],
            [
                [
                    r["latency_s"],
                    r["failure_rate"],
                    r["restored_after_s"],
                    r["unserved_mbit"],
                    r["operations"],
                ]
                for r in rows
            ],
        )
        fig = Figure(figsize=(8, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        for r in rows:
            ts, vs = zip(*r["timeline"], strict=True)
            ax.plot(ts, vs, label=f"latency {r['latency_s']} s, failures {r['failure_rate']:.0%}")
        ax.axvline(FAILURE_AT, color="black", linestyle=":", label="vCPE server fails")
        restored = [r["restored_after_s"] for r in rows if r["restored_after_s"] is not None]
        ax.set_xlim(FAILURE_AT - 10, FAILURE_AT + max(restored, default=60) + 15)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("unserved traffic (Mbit/s)")
        ax.set_title("Service restoration by the heal policy")
        ax.legend(fontsize=7)
        save_png(fig, out / "healing.png")
    return {"runs": [{k: v for k, v in r.items() if k != "timeline"} for r in rows]}


register(
    Experiment(
        "healing",
        "service restoration after a vCPE server failure vs driver latency and failure rate",
        run,
    )
)
