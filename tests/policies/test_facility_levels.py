"""Levels of facility signals: threshold validation, overrides, and the hysteresis machine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeroam.policies.facility import FacilityConfig
from edgeroam.policies.facility_levels import (
    DEFAULT_THRESHOLDS,
    LevelState,
    ThresholdColumns,
    ThresholdOverride,
    ThresholdPatch,
    Thresholds,
    step_levels,
    thresholds_for,
)
from edgeroam.telemetry.facility import SIGNALS, Level, Worse


def columns(t: Thresholds, n: int = 1) -> ThresholdColumns:
    return ThresholdColumns.build([t] * n)


def run(series: list[tuple[float, float | None]], t: Thresholds, worse: Worse) -> list[int]:
    """Feed one host's readings one at a time; the level after each."""
    state = LevelState.fresh(1)
    th = columns(t)
    out = []
    for now, value in series:
        known = np.array([value is not None])
        values = np.array([np.nan if value is None else value])
        state = step_levels(state, values, known, th, worse, now)
        out.append(int(state.level[0]))
    return out


def reference(series: list[tuple[float, float | None]], t: Thresholds, worse: Worse) -> list[int]:
    """The rules written out for one host, reading by reading (the oracle)."""

    def beyond(x: float, limit: float | None) -> bool:
        return limit is not None and (x <= limit if worse is Worse.LOW else x >= limit)

    def short_of(x: float, clear: float | None) -> bool:
        return clear is not None and (x < clear if worse is Worse.LOW else x > clear)

    level, raise_since, clear_since = 0, None, None
    out = []
    for now, v in series:
        if v is None:
            raise_since = clear_since = None
        else:
            up = 2 if beyond(v, t.failed) else 1 if beyond(v, t.degraded) else 0
            if up > level:
                clear_since = None
                raise_since = now if raise_since is None else raise_since
                if now - raise_since >= t.raise_hold_s:
                    level, raise_since = up, None
            else:
                raise_since = None
                held = (
                    2
                    if short_of(v, t.effective("failed_clear"))
                    else 1
                    if short_of(v, t.effective("degraded_clear"))
                    else 0
                )
                if min(level, held) < level:
                    clear_since = now if clear_since is None else clear_since
                    if now - clear_since >= t.clear_hold_s:
                        level, clear_since = min(level, held), None
                else:
                    clear_since = None
        out.append(level)
    return out


BATTERY = DEFAULT_THRESHOLDS["battery_pct"]  # low is worse: Deg 50/80, failed 10/20
TEMPERATURE = DEFAULT_THRESHOLDS["temperature_c"]  # high is worse: Deg 32/27, failed 40/35


def test_battery_falls_through_degraded_to_failed_and_recovers_after_the_hold() -> None:
    hold = BATTERY.clear_hold_s
    series: list[tuple[float, float | None]] = [
        (0, 95.0),
        (1, 50.0),  # at the Deg level: degraded at once (no raise hold by default)
        (2, 30.0),
        (3, 10.0),  # Min: failed
        (4, 15.0),  # above failed but below its clear level (20): still failed
        (5, 25.0),  # above 20: a clear to degraded is pending
        (5 + hold, 25.0),  # …held long enough
        (6 + hold, 85.0),  # above the degraded clear level (80): pending
        (6 + 2 * hold, 85.0),
    ]
    assert run(series, BATTERY, Worse.LOW) == [0, 1, 1, 2, 2, 2, 1, 1, 0]


def test_values_inside_the_dead_band_never_change_the_level() -> None:
    # Temperature between the clear level (27) and the raise level (32) keeps whatever level
    # it has: normal stays normal, degraded stays degraded — no flapping on a noisy sensor.
    calm = [(float(i), 27.5 + (i % 5)) for i in range(200)]
    assert set(run(calm, TEMPERATURE, Worse.HIGH)) == {0}
    hot = [(0.0, 33.0)] + [(float(i), 27.5 + (i % 5) * 0.9) for i in range(1, 200)]
    assert set(run(hot, TEMPERATURE, Worse.HIGH)) == {1}


def test_unknown_readings_keep_the_level_and_restart_a_pending_clear() -> None:
    hold = TEMPERATURE.clear_hold_s
    series: list[tuple[float, float | None]] = [(0, 33.0)]
    series += [(float(t), 25.0) for t in range(1, int(hold))]  # clear pending, not yet held
    series += [(hold, None)]  # sensor silent: unknown, never "normal"
    series += [(hold + 1 + k, 25.0) for k in range(int(hold) + 1)]
    levels = run(series, TEMPERATURE, Worse.HIGH)
    assert levels[: int(hold) + 1] == [1] * (int(hold) + 1)
    # The clock started over after the gap: cleared exactly `hold` seconds after it.
    first_normal = next(t for (t, _), lv in zip(series, levels, strict=True) if lv == 0)
    assert first_normal == hold + 1 + hold


def test_a_raise_hold_rides_out_short_excursions() -> None:
    mains = DEFAULT_THRESHOLDS["mains"]  # degraded after 300 s without mains
    blip = [(0.0, 1.0), (1.0, 0.0), (100.0, 0.0), (101.0, 1.0), (200.0, 0.0), (499.0, 0.0)]
    assert run(blip, mains, Worse.LOW) == [0, 0, 0, 0, 0, 0]
    outage = [(0.0, 0.0), (299.0, 0.0), (300.0, 0.0)]
    assert run(outage, mains, Worse.LOW) == [0, 0, 1]


def test_a_disabled_signal_stays_normal() -> None:
    off = TEMPERATURE.model_copy(update={"enabled": False})
    assert run([(0.0, 90.0), (1.0, 90.0)], off, Worse.HIGH) == [0, 0]


_values = st.one_of(st.none(), st.floats(min_value=-5, max_value=120))


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_values, min_size=1, max_size=60),
    steps=st.lists(st.floats(min_value=0.5, max_value=40), min_size=60, max_size=60),
    signal=st.sampled_from(["battery_pct", "temperature_c", "water_clearance_mm", "mains"]),
    raise_hold=st.sampled_from([0.0, 5.0, 30.0]),
    clear_hold=st.sampled_from([0.0, 10.0, 60.0]),
)
def test_matches_the_rules_written_out(
    values: list[float | None],
    steps: list[float],
    signal: str,
    raise_hold: float,
    clear_hold: float,
) -> None:
    t = DEFAULT_THRESHOLDS[signal].model_copy(
        update={"raise_hold_s": raise_hold, "clear_hold_s": clear_hold}
    )
    times = np.cumsum(steps[: len(values)])
    series = [(float(now), v) for now, v in zip(times, values, strict=True)]
    worse = SIGNALS[signal].worse
    assert run(series, t, worse) == reference(series, t, worse)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(_values, min_size=20, max_size=20), min_size=2, max_size=6))
def test_hosts_are_independent_columns(per_host: list[list[float | None]]) -> None:
    n = len(per_host)
    state = LevelState.fresh(n)
    th = columns(TEMPERATURE, n)
    together = []
    for k in range(20):
        values = np.array([np.nan if h[k] is None else h[k] for h in per_host])
        known = np.array([h[k] is not None for h in per_host])
        state = step_levels(state, values, known, th, Worse.HIGH, float(k))
        together.append(state.level.tolist())
    for i, series in enumerate(per_host):
        alone = run([(float(k), v) for k, v in enumerate(series)], TEMPERATURE, Worse.HIGH)
        assert [row[i] for row in together] == alone


# --- configuration -------------------------------------------------------------------------------


def test_clear_level_on_the_wrong_side_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError) as info:
        FacilityConfig.model_validate({"thresholds": {"battery_pct": {"degraded_clear": 40}}})
    message = str(info.value)
    assert "thresholds.battery_pct.degraded_clear (40) must be >= degraded (50)" in message
    assert "worse when lower" in message


def test_degraded_beyond_failed_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        FacilityConfig.model_validate({"thresholds": {"temperature_c": {"degraded": 45}}})
    assert "temperature_c.degraded (45) must be <= failed (40)" in str(info.value)


def test_unknown_signal_and_bad_override_are_located() -> None:
    with pytest.raises(ValidationError) as info:
        FacilityConfig.model_validate(
            {
                "thresholds": {"humidity": {"degraded": 1}},
                "overrides": [{"site": "dc-1", "thresholds": {"smoke": {"degraded": 1}}}],
            }
        )
    message = str(info.value)
    assert "thresholds.humidity: unknown signal" in message
    assert "overrides[0].thresholds.smoke: unknown signal" in message
    with pytest.raises(ValidationError, match="needs a site, a host_class or both"):
        ThresholdOverride.model_validate({"thresholds": {}})
    with pytest.raises(ValidationError, match=r"overrides\[0\]\.thresholds\.temperature_c"):
        FacilityConfig.model_validate(
            {"overrides": [{"host_class": "x", "thresholds": {"temperature_c": {"failed": 30}}}]}
        )


def test_a_patch_changes_only_what_it_names() -> None:
    patched = ThresholdPatch.model_validate({"degraded": 60}).apply(BATTERY)
    assert patched.degraded == 60
    assert patched.failed == BATTERY.failed
    assert patched.effective("degraded_clear") == BATTERY.effective("degraded_clear")
    with pytest.raises(ValueError, match="clear_hold_s cannot be null"):
        ThresholdPatch.model_validate({"clear_hold_s": None}).apply(BATTERY)


def test_more_specific_overrides_win() -> None:
    overrides = (
        ThresholdOverride.model_validate(
            {
                "site": "dc-1",
                "host_class": "rugged",
                "thresholds": {"temperature_c": {"failed": 55}},
            }
        ),
        ThresholdOverride.model_validate(
            {"host_class": "rugged", "thresholds": {"temperature_c": {"failed": 50}}}
        ),
        ThresholdOverride.model_validate(
            {"site": "dc-1", "thresholds": {"temperature_c": {"degraded": 30, "failed": 45}}}
        ),
    )

    def failed_at(site: str, cls: str | None) -> float | None:
        return thresholds_for(DEFAULT_THRESHOLDS, overrides, site, cls)["temperature_c"].failed

    assert failed_at("other", None) == TEMPERATURE.failed
    assert failed_at("dc-1", None) == 45
    assert failed_at("other", "rugged") == 50
    assert failed_at("dc-1", "rugged") == 55
    # The site override's degraded level still applies under the more specific one.
    both = thresholds_for(DEFAULT_THRESHOLDS, overrides, "dc-1", "rugged")["temperature_c"]
    assert both.degraded == 30


def test_thresholds_must_be_finite() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Thresholds(degraded=math.inf)


def test_every_signal_has_consistent_defaults() -> None:
    assert set(DEFAULT_THRESHOLDS) == set(SIGNALS)
    for name, t in DEFAULT_THRESHOLDS.items():
        assert t.problems(name) == [], name
    assert Level.FAILED > Level.DEGRADED > Level.NORMAL
