"""How long until a facility signal reaches its failure level, from the trend of recent readings.

A straight line is fitted (least squares) to the readings of a recent window; its value now and
its slope give the time left before the line crosses the failure level. Fitting rather than
differencing two readings keeps sensor noise from turning into wild estimates. The migration
deadline is that time scaled down by a safety factor, so evacuation finishes with margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeroam.telemetry.facility import Worse


@dataclass(frozen=True, slots=True)
class Trend:
    slope: float
    """Units per second."""
    value: float
    """The fitted line's value at `at`."""
    at: float
    points: int
    span_s: float


def fit_trend(
    points: Sequence[tuple[float, float]], now: float, window_s: float, min_points: int = 3
) -> Trend | None:
    """Least-squares line through the (timestamp, value) points of [now - window_s, now].

    None when fewer than `min_points` points fall in the window or they all share one time.
    """
    if window_s <= 0 or min_points < 2:
        raise ValueError("window_s must be > 0 and min_points >= 2")
    data = np.array([p for p in points if now - window_s <= p[0] <= now], dtype=np.float64)
    if len(data) < min_points:
        return None
    t = data[:, 0] - now
    v = data[:, 1]
    span = float(t.max() - t.min())
    if span <= 0:
        return None
    t_mean = float(t.mean())
    v_mean = float(v.mean())
    dt = t - t_mean
    slope = float((dt * (v - v_mean)).sum() / (dt * dt).sum())
    value = v_mean - slope * t_mean  # the line at t = 0, i.e. at `now`
    return Trend(slope=slope, value=value, at=now, points=len(data), span_s=span)


def time_to_reach(trend: Trend, threshold: float, worse: Worse) -> float | None:
    """Seconds from `trend.at` until the line reaches `threshold` on the bad side.

    0 when it is already there; None when the line does not move towards it.
    """
    gap = trend.value - threshold
    if worse is Worse.LOW:
        if gap <= 0:
            return 0.0
        return gap / -trend.slope if trend.slope < 0 else None
    if gap >= 0:
        return 0.0
    return -gap / trend.slope if trend.slope > 0 else None


def deadline(
    now: float,
    time_left: float | None,
    *,
    safety: float,
    default_s: float,
    max_s: float,
) -> float:
    """Absolute time by which functions should have left: `safety` × time left, capped.

    Without an estimate (no trend, or not moving towards failure) `default_s` applies.
    """
    if not 0 < safety <= 1:
        raise ValueError("safety must lie in (0, 1]")
    if time_left is None or not math.isfinite(time_left):
        return now + min(default_s, max_s)
    return now + min(max(0.0, safety * time_left), max_s)


def earliest_time_left(
    points: Sequence[tuple[float, float]],
    now: float,
    threshold: float,
    worse: Worse,
    *,
    window_s: float,
    min_points: int = 3,
    splits: int = 3,
) -> tuple[float | None, Trend | None]:
    """The shortest time left over nested windows (window_s, window_s/2, window_s/4, …).

    A long window smooths noise but lags when a trend has just started (water that began
    rising a minute ago, behind a flat stretch); the recent half or quarter sees it. Taking the
    earliest estimate errs on the side of an earlier deadline.
    """
    best: float | None = None
    chosen: Trend | None = None
    for k in range(splits):
        trend = fit_trend(points, now, window_s / 2**k, min_points)
        if trend is None:
            continue
        left = time_to_reach(trend, threshold, worse)
        if left is not None and (best is None or left < best):
            best, chosen = left, trend
    return best, chosen
