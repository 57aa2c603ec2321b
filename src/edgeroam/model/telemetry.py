"""A single measurement reported by an agent, a sensor or the simulator."""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from edgeroam.model.base import Model


class Reading(Model):
    source: str = Field(
        min_length=3,
        max_length=200,
        pattern=r"^(host|link|instance|site|room|function|customer|flow):[A-Za-z0-9_.:\-/]+$",
        description="kind:id, e.g. link:access-07 or host:vcpe-1",
    )
    metric: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.]*$")
    value: float
    timestamp: float = Field(ge=0, description="Seconds (epoch for real runs, virtual for sims).")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value
