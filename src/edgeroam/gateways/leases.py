"""DHCP leases of a vRGW: the state a migration must carry so terminals keep their addresses.

dnsmasq keeps its leases in a text file, one per line: ``expiry mac ip hostname client-id``
(expiry in Unix seconds, ``*`` for unknown hostname or client id). A vRGW started with that
file answers its clients' renewals with the same addresses, so a migration that copies it keeps
every terminal's address; one that does not makes terminals re-negotiate (and possibly get
another address) at their next renewal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from pydantic import Field, field_validator

from edgeroam.model import Model

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class LeaseError(ValueError):
    """A lease line or record is malformed."""


class Lease(Model):
    mac: str
    ip: ipaddress.IPv4Address
    expires_at: float = Field(ge=0, description="Unix time; 0 means infinite.")
    hostname: str = "*"
    client_id: str = "*"

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        value = value.lower()
        if not _MAC.match(value):
            raise ValueError(f"{value!r} is not a MAC address")
        return value


def parse_dnsmasq(text: str) -> list[Lease]:
    """Leases from a dnsmasq lease file; raises LeaseError naming the bad line."""
    leases = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or line.startswith("duid "):
            continue  # blank lines and the DHCPv6 server id line
        if len(fields) < 3:
            raise LeaseError(f"lease line {number}: expected 'expiry mac ip …', got {line!r}")
        try:
            leases.append(
                Lease(
                    expires_at=float(fields[0]),
                    mac=fields[1],
                    ip=ipaddress.IPv4Address(fields[2]),
                    hostname=fields[3] if len(fields) > 3 else "*",
                    client_id=fields[4] if len(fields) > 4 else "*",
                )
            )
        except ValueError as exc:
            raise LeaseError(f"lease line {number}: {exc}") from None
    return leases


def render_dnsmasq(leases: Iterable[Lease]) -> str:
    """A dnsmasq lease file holding `leases` (sorted by address)."""
    lines = [
        f"{int(lease.expires_at)} {lease.mac} {lease.ip} {lease.hostname} {lease.client_id}"
        for lease in sorted(leases, key=lambda x: int(x.ip))
    ]
    return "".join(line + "\n" for line in lines)


def by_mac(leases: Iterable[Lease]) -> dict[str, ipaddress.IPv4Address]:
    return {lease.mac: lease.ip for lease in leases}


def lost(
    before: Iterable[Lease], after: Iterable[Lease], now: float | None = None
) -> dict[str, str]:
    """Terminals whose (unexpired) address did not survive: mac → what happened."""
    kept = by_mac(after)
    out = {}
    for lease in before:
        if now is not None and 0 < lease.expires_at <= now:
            continue
        got = kept.get(lease.mac)
        if got is None:
            out[lease.mac] = f"lease for {lease.ip} missing"
        elif got != lease.ip:
            out[lease.mac] = f"address changed {lease.ip} -> {got}"
    return out
