import csv
import json
from pathlib import Path
from typing import Any

from edgeroam.sim.report import flatten, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(with_hosts: bool = True, n_links: int = 2) -> dict[str, Any]:
    timeline = []
    for t in range(5):
        row: dict[str, Any] = {
            "t": float(t),
            "unserved_mbps": 0.0,
            "links": {
                f"access-{i}": {"used_mbps": 10.0 * t + i, "use_ratio": (10.0 * t + i) / 100}
                for i in range(n_links)
            },
        }
        if with_hosts:
            row["hosts"] = {"vcpe-1": {"processed_mbps": 20.0 * t, "cpu_pct": 5.0 * t}}
        timeline.append(row)
    operations = [
        {
            "t": 2.0,
            "operation": "scale-out",
            "instance": "nat-2",
            "function": "nat",
            "hosts": ["vcpe-1", "cloud-1"],
            "params": {"b": 2, "a": 1},
            "reason": "overload",
            "operationState": "COMPLETED",
        }
    ]
    return {"timeline": timeline, "operations": operations, "summary": {"ticks": 5, "ok": True}}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_flatten_joins_nested_keys_with_dots() -> None:
    row = {"t": 1, "links": {"access-1": {"used_mbps": 3, "use_ratio": 0.5}}, "x": [1]}
    assert flatten(row) == {
        "t": 1,
        "links.access-1.used_mbps": 3,
        "links.access-1.use_ratio": 0.5,
        "x": [1],
    }


def test_report_writes_tables_summary_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "run" / "report"
    paths = write_report(result(), out)
    names = sorted(p.name for p in paths)
    assert names == [
        "hosts.png",
        "links.png",
        "operations.csv",
        "summary.json",
        "timeline.csv",
        "use_ratio.png",
    ]
    for path in paths:
        assert path.parent == out
        assert path.stat().st_size > 0
    for name in ("links.png", "use_ratio.png", "hosts.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)


def test_timeline_csv_has_flattened_columns_and_values(tmp_path: Path) -> None:
    write_report(result(), tmp_path)
    rows = read_csv(tmp_path / "timeline.csv")
    assert len(rows) == 5
    assert next(iter(rows[0])) == "t"
    assert "links.access-1.used_mbps" in rows[0]
    assert "hosts.vcpe-1.cpu_pct" in rows[0]
    assert float(rows[3]["links.access-1.used_mbps"]) == 10.0 * 3 + 1
    assert float(rows[3]["links.access-1.use_ratio"]) == (10.0 * 3 + 1) / 100


def test_operations_csv_and_summary(tmp_path: Path) -> None:
    write_report(result(), tmp_path)
    [op] = read_csv(tmp_path / "operations.csv")
    assert list(op)[:8] == [
        "t",
        "operation",
        "instance",
        "function",
        "hosts",
        "params",
        "reason",
        "operationState",
    ]
    assert op["hosts"] == "vcpe-1;cloud-1"
    assert json.loads(op["params"]) == {"a": 1, "b": 2}
    assert op["operationState"] == "COMPLETED"
    assert json.loads((tmp_path / "summary.json").read_text()) == {"ticks": 5, "ok": True}


def test_no_host_metrics_means_no_hosts_plot(tmp_path: Path) -> None:
    paths = write_report(result(with_hosts=False), tmp_path)
    assert "hosts.png" not in {p.name for p in paths}
    assert not (tmp_path / "hosts.png").exists()


def test_many_links_and_an_empty_result_still_plot(tmp_path: Path) -> None:
    many = write_report(result(n_links=30), tmp_path / "many")
    assert all(p.stat().st_size > 0 for p in many)
    empty = write_report({"timeline": [], "operations": [], "summary": {}}, tmp_path / "empty")
    assert {p.name for p in empty} == {
        "timeline.csv",
        "operations.csv",
        "summary.json",
        "links.png",
        "use_ratio.png",
    }
    assert (tmp_path / "empty" / "links.png").read_bytes().startswith(PNG_MAGIC)


def test_rows_with_missing_elements_leave_cells_empty(tmp_path: Path) -> None:
    data = result(with_hosts=False)
    data["timeline"][0]["links"].pop("access-1")
    write_report(data, tmp_path)
    rows = read_csv(tmp_path / "timeline.csv")
    assert rows[0]["links.access-1.used_mbps"] == ""
    assert float(rows[1]["links.access-1.used_mbps"]) == 11.0
