"""Shared building blocks of the domain model.

Every model is immutable (frozen) so a snapshot handed to a policy cannot be changed behind the
controller's back, and rejects unknown fields so a typo in a scenario or API body is an error
instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
        description="Letters, digits and _ . : - ; starts with a letter or digit.",
    ),
]

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class Model(BaseModel):
    """Base of every domain object: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
