"""What runs: flavors (resource profiles) and function specifications."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from edgeroam.model.base import Identifier, Model, NonNegative
from edgeroam.model.topology import HostKind, Resources
from edgeroam.model.traffic import TrafficBehaviour


class Flavor(Model):
    id: Identifier
    vcpu: NonNegative
    memory_mb: NonNegative
    bandwidth_mbps: NonNegative = 0.0
    max_delay_ms: NonNegative | None = Field(
        default=None, description="Largest delay to the function the customer tolerates."
    )

    @property
    def resources(self) -> Resources:
        return Resources(
            vcpu=self.vcpu, memory_mb=self.memory_mb, bandwidth_mbps=self.bandwidth_mbps
        )


class Criticality(IntEnum):
    """Higher is more important; used to order evacuations and arbitration ties."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


_PARAM_TYPES = {"string", "integer", "number", "boolean", "ipv4", "cidr", "port", "list"}


class ParameterSpec(Model):
    type: str = "string"
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] | None = None
    description: str = ""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _PARAM_TYPES:
            raise ValueError(f"unknown parameter type {value!r}; use one of {sorted(_PARAM_TYPES)}")
        return value


class FunctionSpec(Model):
    name: Identifier
    flavor: Identifier
    placement: tuple[HostKind, ...] = (HostKind.SERVER, HostKind.CLOUD)
    criticality: Criticality = Criticality.NORMAL
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    description: str = ""
    traffic: TrafficBehaviour = Field(
        default_factory=TrafficBehaviour,
        description="What a copy on the customer's CPE does with the function's flows.",
    )

    @model_validator(mode="after")
    def _traffic_refers_to_parameters(self) -> FunctionSpec:
        unknown = sorted(self.traffic.references() - set(self.parameters))
        if unknown:
            raise ValueError(
                f"traffic rules refer to undeclared parameter(s) {unknown}; "
                f"declared: {sorted(self.parameters)}"
            )
        return self

    @field_validator("criticality", mode="before")
    @classmethod
    def _criticality_by_name(cls, value: Any) -> Any:
        """Accept `critical` as well as 3, so files can say what they mean."""
        if isinstance(value, str) and not value.isdigit():
            if value.upper() not in Criticality.__members__:
                names = ", ".join(c.name.lower() for c in Criticality)
                raise ValueError(f"unknown criticality {value!r}; use one of {names} (or 0-3)")
            return Criticality[value.upper()]
        return value

    @field_validator("placement")
    @classmethod
    def _some_placement(cls, value: tuple[HostKind, ...]) -> tuple[HostKind, ...]:
        if not value:
            raise ValueError("a function must be allowed to run on at least one host kind")
        return value
