"""`edgeroam bench offload` in a small configuration: the cases decide what they should."""

from __future__ import annotations

import json
import math

import numpy as np
from typer.testing import CliRunner

import edgeroam.cli.bench  # noqa: F401  (registers the `bench` commands)
from edgeroam.bench.offload import bench_world, run_offload_bench
from edgeroam.cli.app import app
from edgeroam.model import HostKind


def test_each_case_targets_what_the_generated_band_calls_for() -> None:
    cpes, functions = 1000, 4
    result = run_offload_bench(cpes, functions, cycles=2, flood_share=0.05)
    snapshot, facts = bench_world(cpes, functions, 0.05)
    table = snapshot.host_table
    cpe_rows = np.flatnonzero(table.kind_mask((HostKind.CPE,)))
    roomy = cpe_rows[table.free[cpe_rows, 0] >= 0.5]
    # Flooders: CPEs whose security traffic carries the 20 Mbit/s flood.
    view = snapshot.telemetry.column("band.cpe.security.used_mbps")
    assert view is not None
    flooders = {s.split("/")[1] for s, v in zip(view.ids, view.values, strict=True) if v > 20}
    roomy_ids = {table.ids[r] for r in roomy}
    cases = result["cases"]
    assert result["flooding_cpes"] == facts["flooding_cpes"] == len(flooders)
    assert cases["quiet"]["proposals"] == 0
    assert cases["pairs"]["cpes_targeted"] == len(flooders & roomy_ids)
    assert cases["all"]["cpes_targeted"] == len(roomy)
    assert cases["all"]["proposals"] == math.ceil(len(roomy) / 100)
    assert result["use_ratio"] > 0.7


def test_the_command_prints_json() -> None:
    args = ["bench", "offload", "--cpes", "300", "--functions", "2", "--cycles", "1"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    document = json.loads(out.stdout)
    assert set(document["cases"]) == {"quiet", "pairs", "all"}
    assert document["target_ms"] == 100
