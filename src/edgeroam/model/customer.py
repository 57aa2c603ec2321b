"""The people whose premises and traffic edgeroam serves."""

from __future__ import annotations

from pydantic import Field

from edgeroam.model.base import Identifier, Model


class Customer(Model):
    id: Identifier
    name: str = ""
    profile: str | None = Field(default=None, description="Service profile, e.g. 'average'.")
    labels: dict[str, str] = Field(default_factory=dict)
