"""Service profiles of vRGW customers: the ITU triple-play bundles of seed 003's Table I.

Each profile is a set of downstream services with a bitrate and the transport the seed's
testbed used for it: video and telephony are constant-rate UDP streams, Internet access is
TCP that takes whatever capacity is left. Telephony in the seed's measurements was three
G.711a calls rather than the ITU 0.1 Mbit/s, so a profile can give its "as measured" rates
too; both are kept so the requirement and the load stay distinct.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from edgeroam.model import Model
from edgeroam.model.base import NonNegative, Positive


class Transport(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class Service(StrEnum):
    INTERNET = "internet"
    TELEPHONY = "telephony"
    SDTV = "sdtv"
    HDTV = "hdtv"


#: IP bitrate of one G.711 call with 20 ms packets: 160 B voice + 12 RTP + 8 UDP + 20 IP
#: bytes, 50 packets per second.
G711_CALL_MBPS = (160 + 12 + 8 + 20) * 8 * 50 / 1e6


class Component(Model):
    service: Service
    mbps: NonNegative = Field(description="Downstream bitrate the profile requires.")
    transport: Transport
    channels: int = Field(default=0, ge=0, description="TV channels (0 for other services).")


class ServiceProfile(Model):
    """A customer's downstream service bundle; `total_mbps` is what the profile requires."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    components: tuple[Component, ...]
    telephony_calls: int = Field(
        default=3, ge=0, description="G.711a calls offered as telephony load in experiments."
    )
    load_scale: float = Field(
        default=1.0, gt=0, description="Factor applied by `scaled` (to the calls' load too)."
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> ServiceProfile:
        services = [c.service for c in self.components]
        if len(set(services)) != len(services):
            raise ValueError(f"profile {self.name!r} lists a service twice: {services}")
        if not self.components:
            raise ValueError(f"profile {self.name!r} has no services")
        return self

    def component(self, service: Service) -> Component | None:
        return next((c for c in self.components if c.service is service), None)

    @property
    def total_mbps(self) -> float:
        return round(sum(c.mbps for c in self.components), 6)

    @property
    def udp_mbps(self) -> float:
        """Constant-rate UDP the profile requires (telephony and TV)."""
        return round(sum(c.mbps for c in self.components if c.transport is Transport.UDP), 6)

    @property
    def tcp_mbps(self) -> float:
        return round(sum(c.mbps for c in self.components if c.transport is Transport.TCP), 6)

    def offered_udp_mbps(self) -> float:
        """UDP load of the seed's measurement: TV as required, telephony as G.711a calls."""
        tv = sum(
            c.mbps
            for c in self.components
            if c.transport is Transport.UDP and c.service is not Service.TELEPHONY
        )
        calls = self.telephony_calls * G711_CALL_MBPS if self.component(Service.TELEPHONY) else 0
        return round(tv + calls * self.load_scale, 6)

    def scaled(self, factor: Positive) -> ServiceProfile:
        """The same bundle with every bitrate multiplied by `factor` (testbeds slower than the
        seed's 1 Gbit/s trunk scale the profile with the link, keeping its proportions)."""
        return self.model_copy(
            update={
                "components": tuple(
                    c.model_copy(update={"mbps": c.mbps * factor}) for c in self.components
                ),
                "load_scale": self.load_scale * factor,
            }
        )


AVERAGE = ServiceProfile(
    name="average",
    components=(
        Component(service=Service.INTERNET, mbps=5.0, transport=Transport.TCP),
        Component(service=Service.TELEPHONY, mbps=0.1, transport=Transport.UDP),
        Component(service=Service.SDTV, mbps=3.0, transport=Transport.UDP, channels=2),
        Component(service=Service.HDTV, mbps=8.0, transport=Transport.UDP, channels=1),
    ),
)

HIGH = ServiceProfile(
    name="high",
    components=(
        Component(service=Service.INTERNET, mbps=10.0, transport=Transport.TCP),
        Component(service=Service.TELEPHONY, mbps=0.1, transport=Transport.UDP),
        Component(service=Service.SDTV, mbps=3.0, transport=Transport.UDP, channels=2),
        Component(service=Service.HDTV, mbps=16.0, transport=Transport.UDP, channels=2),
    ),
)

PROFILES: dict[str, ServiceProfile] = {p.name: p for p in (AVERAGE, HIGH)}

#: The trunk speed the seed's testbed ran its profiles over (1 Gbit/s Ethernet).
SEED_LINK_MBPS = 1000.0


class ProfileError(ValueError):
    """An unknown profile name."""


def profile(name: str | None, default: str = "average") -> ServiceProfile:
    """The profile called `name` (None means `default`), or ProfileError naming the known ones."""
    key = (name or default).lower()
    if key not in PROFILES:
        raise ProfileError(f"unknown service profile {name!r}; known: {sorted(PROFILES)}")
    return PROFILES[key]
