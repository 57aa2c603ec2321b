"""Levels of the facility signals — normal, degraded, failed — with hysteresis.

Each signal has a raise level and a clear level for *degraded* and for *failed*, a hold time
before raising (to ride out a blip, e.g. mains flickering while a generator starts) and a hold
time before clearing (the value must stay on the safe side that long, with fresh readings all
along). Unknown values change nothing: a level stays where it is until the sensor speaks again,
and a pending clear starts over.

The state machine works on whole columns (one row per monitored host) so a cycle over thousands
of servers is a few numpy expressions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from edgeroam.model import Identifier, Model
from edgeroam.model.base import NonNegative
from edgeroam.telemetry.facility import SIGNALS, Level, Worse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_LEVEL_FIELDS = ("degraded", "degraded_clear", "failed", "failed_clear")


class Thresholds(Model):
    """Levels of one signal. None disables a level (e.g. a 0/1 sensor has no *failed*)."""

    enabled: bool = True
    degraded: float | None = None
    degraded_clear: float | None = Field(
        default=None, description="Back to normal once on the safe side of this; default degraded."
    )
    failed: float | None = None
    failed_clear: float | None = Field(
        default=None, description="Back to degraded once on the safe side of this; default failed."
    )
    raise_hold_s: NonNegative = Field(
        default=0.0, description="How long a level must be reached before it is raised."
    )
    clear_hold_s: NonNegative = Field(
        default=60.0, description="How long readings must stay on the safe side before clearing."
    )

    @model_validator(mode="after")
    def _finite(self) -> Thresholds:
        for name in _LEVEL_FIELDS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number or null")
        return self

    def effective(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        if value is None and name.endswith("_clear"):
            value = getattr(self, name.removesuffix("_clear"))
        return value

    def problems(self, signal: str) -> list[str]:
        """Ordering mistakes, named the way a person reads the config."""
        worse = SIGNALS[signal].worse
        safe = ">=" if worse is Worse.LOW else "<="
        side = "lower" if worse is Worse.LOW else "higher"
        found: list[str] = []

        def check(a: str, b: str, why: str) -> None:
            x, y = self.effective(a), self.effective(b)
            if x is None or y is None:
                return
            ok = x >= y if worse is Worse.LOW else x <= y
            if not ok:
                found.append(
                    f"{signal}.{a} ({x:g}) must be {safe} {b} ({y:g}): {signal} is worse when "
                    f"{side}, and {why}"
                )

        check("degraded", "failed", "degraded comes before failed")
        check("degraded_clear", "degraded", "the clear level lies on the safe side of the raise")
        check("failed_clear", "failed", "the clear level lies on the safe side of the raise")
        if self.degraded_clear is not None and self.degraded is None:
            found.append(f"{signal}.degraded_clear is set but degraded is null")
        if self.failed_clear is not None and self.failed is None:
            found.append(f"{signal}.failed_clear is set but failed is null")
        return found


class ThresholdPatch(Model):
    """Changes to a signal's thresholds; only the fields written are changed."""

    enabled: bool | None = None
    degraded: float | None = None
    degraded_clear: float | None = None
    failed: float | None = None
    failed_clear: float | None = None
    raise_hold_s: NonNegative | None = None
    clear_hold_s: NonNegative | None = None

    def apply(self, base: Thresholds) -> Thresholds:
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        for name in ("enabled", "raise_hold_s", "clear_hold_s"):
            if name in changes and changes[name] is None:
                raise ValueError(f"{name} cannot be null")
        return Thresholds.model_validate({**base.model_dump(), **changes})


def _t(**kwargs: Any) -> Thresholds:
    return Thresholds.model_validate(kwargs)


DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    # Mains alone only degrades after 5 minutes: generators take over within seconds and UPS
    # batteries last far longer, so the battery's own levels are what usually trigger.
    "mains": _t(degraded=0.5, raise_hold_s=300.0, clear_hold_s=60.0),
    "battery_pct": _t(degraded=50, degraded_clear=80, failed=10, failed_clear=20),
    "power_margin": _t(degraded=1.1, degraded_clear=1.2, failed=1.0, failed_clear=1.05),
    "temperature_c": _t(degraded=32, degraded_clear=27, failed=40, failed_clear=35),
    "cooling": _t(degraded=0.5, clear_hold_s=60.0),
    "water_clearance_mm": _t(degraded=100, degraded_clear=120, failed=0, failed_clear=20),
    "gas_lel_pct": _t(degraded=10, degraded_clear=5, failed=25, failed_clear=20),
    "intrusion": _t(degraded=0.5, clear_hold_s=300.0),
    **{
        name: _t(degraded=1, degraded_clear=0, failed=2, failed_clear=1)
        for name in SIGNALS
        if name.startswith("code_")
    },
}
"""Defaults per signal (seed figures: battery Normal/Deg/Min, temperature Normal/Deg/Haut)."""


class ThresholdOverride(Model):
    """Thresholds for the hosts of a site, of a host class (host label ``class``), or both."""

    site: Identifier | None = None
    host_class: str | None = Field(default=None, min_length=1, max_length=64)
    thresholds: dict[str, ThresholdPatch]

    @model_validator(mode="after")
    def _selects(self) -> ThresholdOverride:
        if self.site is None and self.host_class is None:
            raise ValueError("an override needs a site, a host_class or both")
        return self

    @property
    def specificity(self) -> int:
        return (self.site is not None) + 2 * (self.host_class is not None)


def signal_problems(patches: Mapping[str, ThresholdPatch], where: str) -> list[str]:
    unknown = sorted(set(patches) - set(SIGNALS))
    return [f"{where}.{name}: unknown signal; known: {sorted(SIGNALS)}" for name in unknown]


def thresholds_for(
    base: Mapping[str, Thresholds],
    overrides: tuple[ThresholdOverride, ...],
    site: str,
    host_class: str | None,
) -> dict[str, Thresholds]:
    """Per-signal thresholds of one host: defaults, then site, then class, then site+class."""
    result = dict(base)
    matching = [
        o
        for o in overrides
        if (o.site is None or o.site == site)
        and (o.host_class is None or o.host_class == host_class)
    ]
    for override in sorted(matching, key=lambda o: o.specificity):
        for name, patch in override.thresholds.items():
            result[name] = patch.apply(result[name])
    return result


@dataclass(frozen=True, slots=True)
class ThresholdColumns:
    """One signal's thresholds for every monitored host; NaN means the level is disabled."""

    degraded: FloatArray
    degraded_clear: FloatArray
    failed: FloatArray
    failed_clear: FloatArray
    raise_hold_s: FloatArray
    clear_hold_s: FloatArray
    enabled: BoolArray

    @classmethod
    def build(cls, per_host: list[Thresholds]) -> ThresholdColumns:
        def column(name: str) -> FloatArray:
            values = [t.effective(name) for t in per_host]
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

        return cls(
            degraded=column("degraded"),
            degraded_clear=column("degraded_clear"),
            failed=column("failed"),
            failed_clear=column("failed_clear"),
            raise_hold_s=np.array([t.raise_hold_s for t in per_host], dtype=np.float64),
            clear_hold_s=np.array([t.clear_hold_s for t in per_host], dtype=np.float64),
            enabled=np.array([t.enabled for t in per_host], dtype=bool),
        )


# --- the state machine ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelState:
    """Per host: current level, pending raise/clear timers (NaN = none), last change."""

    level: IntArray
    raise_since: FloatArray
    clear_since: FloatArray
    changed_at: FloatArray
    pending: bool = False
    """Some raise or clear timer is running (lets a silent signal skip its update)."""

    @classmethod
    def fresh(cls, n: int) -> LevelState:
        return cls(
            level=np.zeros(n, dtype=np.int64),
            raise_since=np.full(n, np.nan),
            clear_since=np.full(n, np.nan),
            changed_at=np.full(n, np.nan),
        )

    def quiet(self) -> LevelState:
        """The same levels with every pending timer stopped (nothing was observed)."""
        if not self.pending:
            return self
        n = len(self.level)
        return LevelState(
            level=self.level,
            raise_since=np.full(n, np.nan),
            clear_since=np.full(n, np.nan),
            changed_at=self.changed_at,
        )

    def take(self, rows: IntArray) -> LevelState:
        """Rows picked by index; -1 gives a fresh row (used when the host list changes)."""
        fresh = LevelState.fresh(len(rows))
        have = rows >= 0
        safe = np.where(have, rows, 0)

        def pick(old: npt.NDArray[Any], new: npt.NDArray[Any]) -> npt.NDArray[Any]:
            if len(old) == 0:
                return new
            return np.where(have, old[safe], new)

        raise_since = pick(self.raise_since, fresh.raise_since)
        clear_since = pick(self.clear_since, fresh.clear_since)
        return LevelState(
            level=pick(self.level, fresh.level).astype(np.int64),
            raise_since=raise_since,
            clear_since=clear_since,
            changed_at=pick(self.changed_at, fresh.changed_at),
            pending=bool(np.isfinite(raise_since).any() or np.isfinite(clear_since).any()),
        )


def _past(values: FloatArray, threshold: FloatArray, worse: Worse) -> BoolArray:
    """values at or beyond threshold on the bad side (False where the threshold is NaN)."""
    with np.errstate(invalid="ignore"):
        result: BoolArray = values <= threshold if worse is Worse.LOW else values >= threshold
    return result


def raised_level(values: FloatArray, th: ThresholdColumns, worse: Worse) -> IntArray:
    """The level the raise thresholds call for right now."""
    failed = _past(values, th.failed, worse)
    degraded = _past(values, th.degraded, worse)
    result: IntArray = np.where(
        failed, int(Level.FAILED), np.where(degraded, int(Level.DEGRADED), int(Level.NORMAL))
    ).astype(np.int64)
    return result


def held_level(values: FloatArray, th: ThresholdColumns, worse: Worse) -> IntArray:
    """The highest level the clear thresholds still justify (not yet back on the safe side)."""
    with np.errstate(invalid="ignore"):
        if worse is Worse.LOW:
            keep_failed = values < th.failed_clear
            keep_degraded = values < th.degraded_clear
        else:
            keep_failed = values > th.failed_clear
            keep_degraded = values > th.degraded_clear
    result: IntArray = np.where(
        keep_failed,
        int(Level.FAILED),
        np.where(keep_degraded, int(Level.DEGRADED), int(Level.NORMAL)),
    ).astype(np.int64)
    return result


def step_levels(
    state: LevelState,
    values: FloatArray,
    known: BoolArray,
    th: ThresholdColumns,
    worse: Worse,
    now: float,
) -> LevelState:
    """Advance every host's level of one signal by one observation at time `now`."""
    known = known & th.enabled
    current = np.where(th.enabled, state.level, int(Level.NORMAL)).astype(np.int64)
    up = raised_level(values, th, worse)
    down = np.minimum(current, held_level(values, th, worse))

    rising = known & (up > current)
    raise_since = np.where(
        rising, np.where(np.isnan(state.raise_since), now, state.raise_since), np.nan
    )
    do_raise = rising & (now - raise_since >= th.raise_hold_s)

    falling = known & ~rising & (down < current)
    clear_since = np.where(
        falling, np.where(np.isnan(state.clear_since), now, state.clear_since), np.nan
    )
    do_clear = falling & (now - clear_since >= th.clear_hold_s)

    level = np.where(do_raise, up, np.where(do_clear, down, current)).astype(np.int64)
    changed = do_raise | do_clear
    raise_since = np.where(do_raise, np.nan, raise_since)
    clear_since = np.where(do_clear, np.nan, clear_since)
    return LevelState(
        level=level,
        raise_since=raise_since,
        clear_since=clear_since,
        changed_at=np.where(changed, now, state.changed_at),
        pending=bool(np.isfinite(raise_since).any() or np.isfinite(clear_since).any()),
    )
