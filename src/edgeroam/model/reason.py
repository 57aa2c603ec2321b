"""Why a decision was taken: the rule, the measured values and the thresholds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgeroam.model.base import Model


class Reason(Model):
    rule: str = Field(description="Short machine-friendly name of the rule that fired.")
    message: str = Field(description="One sentence an operator can read.")
    measured: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
