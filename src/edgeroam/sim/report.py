"""Write a simulation result as files a person can open: CSV tables, a JSON summary, plots.

The result is a plain dict (``timeline``, ``operations``, ``summary``) so this module does not
depend on the runner's classes. Plots are drawn on matplotlib's Agg canvas directly, without
pyplot, so reports work headless and never touch a global backend or figure state.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_SERIES = 12
"""Most lines in one plot; beyond that a legend is unreadable, so the top peaks are kept."""

_OPERATION_COLUMNS = (
    "t",
    "operation",
    "instance",
    "function",
    "hosts",
    "params",
    "reason",
    "operationState",
)


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys: ``{"links": {"a": {"used_mbps": 1}}}`` ->
    ``{"links.a.used_mbps": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _cell(value: Any) -> Any:
    """A CSV cell: scalars as they are, lists joined by ';', mappings as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    if isinstance(value, list | tuple | set | frozenset):
        return ";".join(str(v) for v in value)
    return value


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> Path:
    columns: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        columns.update(dict.fromkeys(row))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


Series = dict[str, list[float]]


def _series(
    timeline: Sequence[Mapping[str, Any]], group: str, metric: str
) -> tuple[list[float], Series]:
    """Times and, per element of `group` (e.g. "links"), the values of `metric` (NaN if absent)."""
    times = [_number(row.get("t")) for row in timeline]
    ids: dict[str, None] = {}
    for row in timeline:
        elements = row.get(group)
        if isinstance(elements, Mapping):
            for ident, metrics in elements.items():
                if isinstance(metrics, Mapping) and metric in metrics:
                    ids[str(ident)] = None
    series: Series = {}
    for ident in ids:
        values = []
        for row in timeline:
            elements = row.get(group)
            metrics = elements.get(ident) if isinstance(elements, Mapping) else None
            values.append(
                _number(metrics.get(metric)) if isinstance(metrics, Mapping) else math.nan
            )
        series[ident] = values
    return times, series


def _top(series: Series, limit: int = MAX_SERIES) -> Series:
    """The `limit` series with the highest peaks, in id order; NaNs are ignored."""

    def peak(values: list[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        return max(finite) if finite else -math.inf

    chosen = sorted(series, key=lambda k: (-peak(series[k]), k))[:limit]
    return {k: series[k] for k in sorted(chosen)}


def _metrics_of(timeline: Sequence[Mapping[str, Any]], group: str) -> list[str]:
    names: set[str] = set()
    for row in timeline:
        elements = row.get(group)
        if isinstance(elements, Mapping):
            for metrics in elements.values():
                if isinstance(metrics, Mapping):
                    names.update(str(k) for k, v in metrics.items() if not math.isnan(_number(v)))
    return sorted(names)


def _draw(
    ax: Any,
    times: list[float],
    series: Series,
    operation_times: Iterable[float],
    title: str,
    ylabel: str,
    total: int,
) -> None:
    for ident, values in series.items():
        ax.plot(times, values, label=ident, linewidth=1.2)
    for i, t in enumerate(sorted(set(operation_times))):
        ax.axvline(
            t,
            color="grey",
            linestyle="--",
            linewidth=0.7,
            alpha=0.6,
            label="operation" if i == 0 else None,
        )
    shown = f" (top {len(series)} of {total} by peak)" if total > len(series) else ""
    ax.set_title(title + shown)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(loc="upper left", fontsize="small", ncol=2 if len(series) > 6 else 1)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_group(
    path: Path,
    timeline: Sequence[Mapping[str, Any]],
    group: str,
    metric: str,
    operation_times: list[float],
    title: str,
    ylabel: str,
    capacity_line: bool = False,
) -> Path:
    times, series = _series(timeline, group, metric)
    fig = Figure(figsize=(11, 5.5))
    ax = fig.add_subplot()
    _draw(ax, times, _top(series), operation_times, title, ylabel, len(series))
    if capacity_line:
        ax.axhline(1.0, color="red", linewidth=0.8, alpha=0.7)
    return _save(fig, path)


def _plot_hosts(
    path: Path,
    timeline: Sequence[Mapping[str, Any]],
    metrics: list[str],
    operation_times: list[float],
) -> Path:
    fig = Figure(figsize=(11, 3.5 * len(metrics)))
    for i, metric in enumerate(metrics, start=1):
        times, series = _series(timeline, "hosts", metric)
        ax = fig.add_subplot(len(metrics), 1, i)
        _draw(
            ax, times, _top(series), operation_times, f"Hosts: {metric}", _unit(metric), len(series)
        )
    return _save(fig, path)


def _unit(metric: str) -> str:
    if metric.endswith("_mbps"):
        return f"{metric} (Mbit/s)"
    if metric.endswith(("_ratio", "ratio")):
        return f"{metric} (fraction)"
    if metric.endswith("_pct"):
        return f"{metric} (%)"
    return metric


def write_report(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write timeline.csv, operations.csv, summary.json and the plots; return their paths.

    ``links.png`` and ``use_ratio.png`` are always written (saying "no data" if the timeline
    has no link metrics) so a report directory always has the same core files; ``hosts.png``
    only when the timeline has host metrics (one panel per metric, the first six by name).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timeline: list[Mapping[str, Any]] = list(result.get("timeline") or [])
    operations: list[Mapping[str, Any]] = list(result.get("operations") or [])
    summary: Mapping[str, Any] = result.get("summary") or {}

    written = [
        _write_csv(out_dir / "timeline.csv", [flatten(r) for r in timeline], ["t"]),
        _write_csv(out_dir / "operations.csv", operations, _OPERATION_COLUMNS),
    ]
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    written.append(summary_path)

    op_times = [t for t in (_number(op.get("t")) for op in operations) if not math.isnan(t)]
    written.append(
        _plot_group(
            out_dir / "links.png",
            timeline,
            "links",
            "used_mbps",
            op_times,
            "Link load",
            "used (Mbit/s)",
        )
    )
    written.append(
        _plot_group(
            out_dir / "use_ratio.png",
            timeline,
            "links",
            "use_ratio",
            op_times,
            "Link use ratio (red line: capacity)",
            "used / capacity",
            capacity_line=True,
        )
    )
    host_metrics = _metrics_of(timeline, "hosts")
    if host_metrics:
        written.append(_plot_hosts(out_dir / "hosts.png", timeline, host_metrics[:6], op_times))
    return written
