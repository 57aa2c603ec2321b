"""Names shared by the topology files and the agents, kept free of heavy imports (agents start
in a fraction of a second)."""

from __future__ import annotations

from enum import StrEnum


class Implementation(StrEnum):
    """The real programs behind a function name."""

    FILTER = "filter"
    """Security filter / firewall: an nftables table whose rules come from the parameters."""
    NAT = "nat"
    """Masquerade of the customers' LANs plus optional port forwards (nftables)."""
    DNSMASQ = "dnsmasq"
    """DHCP and DNS for the customer segment of the host it runs on (dnsmasq)."""
    NOOP = "noop"
    """A sandbox with nothing in it (placement experiments)."""
