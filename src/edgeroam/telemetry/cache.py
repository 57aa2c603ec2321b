"""Latest value and short history of every (source, metric), stored column-wise per metric.

A policy over 10^5 CPEs wants one array per metric, not 10^5 dictionary look-ups, so each
metric is a column: source ids, an index, a values array and a timestamps array. Ages are
computed at snapshot time; a value older than the metric's staleness limit is *unknown*.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeroam.model import Reading

FloatArray = npt.NDArray[np.float64]


class MetricColumn:
    """All sources' latest values for one metric."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.values: FloatArray = np.zeros(16)
        self.stamps: FloatArray = np.full(16, -np.inf)

    def row(self, source: str) -> int:
        row = self.index.get(source)
        if row is None:
            row = len(self.ids)
            if row >= len(self.values):
                size = 2 * len(self.values)
                self.values = np.resize(self.values, size)
                stamps = np.full(size, -np.inf)
                stamps[:row] = self.stamps[:row]
                self.stamps = stamps
            self.ids.append(source)
            self.index[source] = row
        return row

    def set(self, source: str, value: float, timestamp: float) -> bool:
        row = self.row(source)
        if timestamp < self.stamps[row]:
            return False  # an older reading arriving late never overwrites a newer one
        self.values[row] = value
        self.stamps[row] = timestamp
        return True


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    timestamp: float
    age: float
    stale: bool


class TelemetryCache:
    """Mutable store of latest readings; the controller copies it into each snapshot."""

    def __init__(self, stale_after: float = 30.0, history: int = 128) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self.stale_after = stale_after
        self.stale_overrides: dict[str, float] = {}
        self.columns: dict[str, MetricColumn] = {}
        self.history_length = history
        self._history: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self.received = 0
        self.discarded_late = 0

    def staleness(self, metric: str) -> float:
        return self.stale_overrides.get(metric, self.stale_after)

    def ingest(self, readings: Iterable[Reading]) -> int:
        count = 0
        for reading in readings:
            self.put(reading.source, reading.metric, reading.value, reading.timestamp)
            count += 1
        return count

    def put(self, source: str, metric: str, value: float, timestamp: float) -> None:
        column = self.columns.get(metric)
        if column is None:
            column = self.columns[metric] = MetricColumn(metric)
        self.received += 1
        if not column.set(source, value, timestamp):
            self.discarded_late += 1
            return
        key = (source, metric)
        series = self._history.get(key)
        if series is None:
            series = self._history[key] = deque(maxlen=self.history_length)
        series.append((timestamp, value))

    def history(self, source: str, metric: str) -> tuple[tuple[float, float], ...]:
        return tuple(self._history.get((source, metric), ()))
