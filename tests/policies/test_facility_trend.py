"""Time left before failure, from synthetic trends with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.policies.facility_trend import (
    Trend,
    deadline,
    earliest_time_left,
    fit_trend,
    time_to_reach,
)
from edgeroam.telemetry.facility import Worse


def line(v0: float, slope: float, times: list[float]) -> list[tuple[float, float]]:
    return [(t, v0 + slope * t) for t in times]


def test_exact_line_gives_its_slope_value_and_time_left() -> None:
    # A battery losing 0.2 %/s from 90 %: at t=100 it is at 70 %, and reaches 10 % after
    # (70 - 10) / 0.2 = 300 s.
    points = line(90.0, -0.2, [float(t) for t in range(0, 101)])
    trend = fit_trend(points, now=100.0, window_s=120.0)
    assert trend is not None
    assert trend.slope == pytest.approx(-0.2)
    assert trend.value == pytest.approx(70.0)
    assert trend.points == 101
    assert time_to_reach(trend, 10.0, Worse.LOW) == pytest.approx(300.0)


def test_only_the_window_counts() -> None:
    # Flat for 200 s, then rising 0.05 °C/s: a 60 s window sees only the rise.
    points = [(float(t), 25.0) for t in range(0, 200)]
    points += [(float(t), 25.0 + 0.05 * (t - 200)) for t in range(200, 261)]
    trend = fit_trend(points, now=260.0, window_s=60.0)
    assert trend is not None
    assert trend.slope == pytest.approx(0.05)
    assert trend.value == pytest.approx(28.0)
    assert time_to_reach(trend, 40.0, Worse.HIGH) == pytest.approx((40.0 - 28.0) / 0.05)
    # Readings newer than `now` are ignored (the snapshot's time is the present).
    assert fit_trend([*points, (300.0, 99.0)], now=260.0, window_s=60.0) == trend


def test_not_enough_points_or_no_span_means_no_trend() -> None:
    assert fit_trend([(0.0, 1.0), (1.0, 2.0)], now=1.0, window_s=10.0, min_points=3) is None
    assert fit_trend([(5.0, 1.0)] * 5, now=5.0, window_s=10.0) is None
    with pytest.raises(ValueError):
        fit_trend([], now=0.0, window_s=0.0)


def test_moving_away_or_already_there() -> None:
    rising = Trend(slope=0.1, value=50.0, at=0.0, points=10, span_s=9.0)
    assert time_to_reach(rising, 10.0, Worse.LOW) is None  # charging: never reaches the floor
    assert time_to_reach(rising, 40.0, Worse.LOW) is None
    assert time_to_reach(rising, 60.0, Worse.HIGH) == pytest.approx(100.0)
    below = Trend(slope=-1.0, value=5.0, at=0.0, points=10, span_s=9.0)
    assert time_to_reach(below, 10.0, Worse.LOW) == 0.0
    flat = Trend(slope=0.0, value=30.0, at=0.0, points=10, span_s=9.0)
    assert time_to_reach(flat, 40.0, Worse.HIGH) is None


def test_deadline_is_the_safe_share_of_the_time_left_capped() -> None:
    assert deadline(100.0, 300.0, safety=0.7, default_s=600.0, max_s=3600.0) == pytest.approx(
        100.0 + 210.0
    )
    assert deadline(100.0, None, safety=0.7, default_s=600.0, max_s=3600.0) == 700.0
    assert deadline(100.0, math.inf, safety=0.7, default_s=600.0, max_s=300.0) == 400.0
    assert deadline(100.0, 1e9, safety=0.5, default_s=600.0, max_s=3600.0) == 3700.0
    assert deadline(100.0, 0.0, safety=0.5, default_s=600.0, max_s=3600.0) == 100.0
    with pytest.raises(ValueError):
        deadline(0.0, 1.0, safety=0.0, default_s=1.0, max_s=1.0)


@settings(max_examples=100, deadline=None)
@given(
    v0=st.floats(min_value=40, max_value=100),
    slope=st.floats(min_value=-1.0, max_value=-0.01),
    noise=st.floats(min_value=0.0, max_value=0.5),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_noisy_decline_is_estimated_within_the_noise(
    v0: float, slope: float, noise: float, seed: int
) -> None:
    """Least squares over n evenly spaced points: the slope's standard error is
    noise / sqrt(sum((t - mean)^2)); six standard errors bound it essentially always."""
    times = np.arange(0.0, 121.0)
    rng = np.random.default_rng(seed)
    values = v0 + slope * times + rng.normal(0.0, noise, len(times))
    points = list(zip(times.tolist(), values.tolist(), strict=True))
    trend = fit_trend(points, now=120.0, window_s=120.0)
    assert trend is not None
    spread = float(np.sqrt(((times - times.mean()) ** 2).sum()))
    assert abs(trend.slope - slope) <= 6 * noise / spread + 1e-9
    # The fitted value at the window's end has standard error noise * sqrt(1/n + (t - mean)^2/S).
    edge = math.sqrt(1 / len(times) + (120.0 - times.mean()) ** 2 / spread**2)
    assert abs(trend.value - (v0 + slope * 120.0)) <= 6 * noise * edge + 1e-9
    floor = v0 + slope * 120.0 - 20.0
    left = time_to_reach(trend, floor, Worse.LOW)
    assert left is not None
    assert left == pytest.approx((trend.value - floor) / -trend.slope)


def test_a_trend_that_just_started_is_seen_by_the_recent_windows() -> None:
    # Dry floor for 60 s, then water rising 1 mm/s: at t=110 a server 150 mm up has 100 mm of
    # clearance, i.e. 100 s. A 120 s fit mixes in the flat part and says much later.
    points = [(float(t), 0.0) for t in range(0, 60)]
    points += [(float(t), float(t - 60)) for t in range(60, 111)]
    clearance = [(t, 150.0 - v) for t, v in points]
    whole = fit_trend(clearance, now=110.0, window_s=120.0)
    assert whole is not None
    late = time_to_reach(whole, 0.0, Worse.LOW)
    assert late is not None and late > 150.0
    left, trend = earliest_time_left(clearance, 110.0, 0.0, Worse.LOW, window_s=120.0)
    assert trend is not None and trend.slope == pytest.approx(-1.0)
    assert left == pytest.approx(100.0)
    # Nothing moving towards the threshold: no estimate at all.
    flat = [(float(t), 50.0) for t in range(0, 121)]
    assert earliest_time_left(flat, 120.0, 0.0, Worse.LOW, window_s=120.0) == (None, None)
