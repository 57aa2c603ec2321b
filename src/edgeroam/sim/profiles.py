"""Traffic rate profiles: how many Mbit/s a flow offers as a function of simulated time.

Profiles are small declarative models so a scenario file can describe demand without code.
A bare number in a scenario means a constant rate (``rate_mbps: 300``). Randomness is never
drawn from global state: the caller passes a seeded ``numpy.random.Generator`` so a run can be
replayed exactly.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from bisect import bisect_right
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, TypeAdapter, field_validator

from edgeroam.model.base import Model, NonNegative, Positive

Point = tuple[float, NonNegative]
"""(time in seconds, rate in Mbit/s)."""


class _BaseProfile(Model):
    """Common part of all profiles: optional multiplicative gaussian noise."""

    noise_pct: NonNegative = Field(
        default=0.0, description="Standard deviation of the multiplicative noise, in percent."
    )

    @abstractmethod
    def base_rate(self, t: float) -> float:
        """The noiseless rate at time `t`, in Mbit/s."""

    def rate(self, t: float, rng: np.random.Generator | None = None) -> float:
        """The rate at time `t` in Mbit/s, never negative.

        Noise is drawn only when a generator is given and `noise_pct` > 0, so a noiseless
        profile consumes no random numbers and does not shift the sequence of other flows.
        """
        value = self.base_rate(t)
        if rng is not None and self.noise_pct > 0:
            value *= 1.0 + (self.noise_pct / 100.0) * float(rng.standard_normal())
        return value if value > 0.0 else 0.0


class ConstantProfile(_BaseProfile):
    kind: Literal["constant"] = "constant"
    mbps: NonNegative

    def base_rate(self, t: float) -> float:
        return self.mbps


def _check_increasing(points: tuple[Point, ...]) -> tuple[Point, ...]:
    for i in range(1, len(points)):
        if points[i][0] <= points[i - 1][0]:
            raise ValueError(
                f"points must be sorted by strictly increasing time: point [{i}] at "
                f"t={points[i][0]} does not come after point [{i - 1}] at t={points[i - 1][0]}"
            )
    return points


class StepsProfile(_BaseProfile):
    """Piecewise constant: each point's rate holds until the next point; 0 before the first."""

    kind: Literal["steps"]
    points: tuple[Point, ...] = Field(min_length=1)

    _sorted = field_validator("points")(_check_increasing)

    def base_rate(self, t: float) -> float:
        i = bisect_right([p[0] for p in self.points], t)
        return 0.0 if i == 0 else self.points[i - 1][1]


class RampProfile(_BaseProfile):
    """Piecewise linear between points; the first/last rate holds before/after them."""

    kind: Literal["ramp"]
    points: tuple[Point, ...] = Field(min_length=1)

    _sorted = field_validator("points")(_check_increasing)

    def base_rate(self, t: float) -> float:
        points = self.points
        i = bisect_right([p[0] for p in points], t)
        if i == 0:
            return points[0][1]
        if i == len(points):
            return points[-1][1]
        (t0, v0), (t1, v1) = points[i - 1], points[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


class DiurnalProfile(_BaseProfile):
    """A daily (or any period) sine wave around `base`, never below `floor`."""

    kind: Literal["diurnal"]
    base: NonNegative
    amplitude: float
    period_s: Positive = 86400.0
    phase_s: float = 0.0
    floor: NonNegative = 0.0

    def base_rate(self, t: float) -> float:
        wave = math.sin(2.0 * math.pi * (t - self.phase_s) / self.period_s)
        value = self.base + self.amplitude * wave
        return value if value > self.floor else self.floor


class BurstsProfile(_BaseProfile):
    """`base` rate with bursts at `peak` during [start, start + duration_s) of each start."""

    kind: Literal["bursts"]
    base: NonNegative
    peak: NonNegative
    starts: tuple[float, ...] = ()
    duration_s: Positive

    def base_rate(self, t: float) -> float:
        in_burst = any(s <= t < s + self.duration_s for s in self.starts)
        return self.peak if in_burst else self.base


def _number_means_constant(value: Any) -> Any:
    """Let a scenario write ``rate_mbps: 300`` for a constant profile."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"kind": "constant", "mbps": value}
    return value


Profile = Annotated[
    ConstantProfile | StepsProfile | RampProfile | DiurnalProfile | BurstsProfile,
    Field(discriminator="kind"),
    BeforeValidator(_number_means_constant),
]
"""Any rate profile; a bare number is read as a constant profile."""

_PROFILE_ADAPTER: TypeAdapter[Profile] = TypeAdapter(Profile)


def parse_profile(value: Any) -> Profile:
    """Validate a profile given as a number or a mapping; raises pydantic's ValidationError."""
    return _PROFILE_ADAPTER.validate_python(value)
