"""vRGW settings under Broadband Forum TR-181 parameter names, and who may change them.

Settings are held as a typed `GatewaySettings`; the outside world (API, instance parameters)
sees them as a flat mapping of TR-181 names to values, e.g.
``Device.DHCPv4.Server.Pool.1.MinAddress``. Each name is either customer-writable (the home
network: LAN subnet, DHCP pool, Wi-Fi, port forwards, firewall level), operator-only (the
access circuit, which template parts run, the upstream resolver) or read-only (values derived
from others). Changes are checked name by name (known, writable by the caller, well typed) and
then as a whole (pool inside the subnet, passphrase length, forwards not overlapping…), and
every problem names the TR-181 parameter(s) involved. Port forwards are the multi-instance
object ``Device.NAT.PortMapping.{i}``: writing a leaf of a new instance number creates it,
writing ``None`` to ``Device.NAT.PortMapping.{i}.`` deletes it; numbers are stable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError

from edgeroam.gateways.vlan import CTAG_TPID, MAX_TAG, STAG_TPID
from edgeroam.model import Model

IPv4 = ipaddress.IPv4Address


class Access(StrEnum):
    """Who may write a parameter; operators may write everything writable."""

    CUSTOMER = "customer"
    OPERATOR = "operator"
    READ_ONLY = "read-only"


class Writer(StrEnum):
    """The party asking for a change."""

    CUSTOMER = "customer"
    OPERATOR = "operator"


SecurityMode = Literal["None", "WPA2-Personal", "WPA3-Personal", "WPA2-WPA3-Personal"]
FirewallLevel = Literal["Low", "High"]
Protocol = Literal["TCP", "UDP"]

_PRIVATE = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
_MIN_LEASE_S = 120
_MAX_LEASE_S = 7 * 86400


class PortMapping(Model):
    """One ``Device.NAT.PortMapping.{i}`` entry (a port forward to a LAN host)."""

    instance: int = Field(ge=1, le=65535)
    enable: bool = True
    description: str = Field(default="", max_length=256)
    protocol: Protocol = "TCP"
    external_port: int = Field(ge=1, le=65535)
    external_port_end_range: int = Field(
        default=0, ge=0, le=65535, description="Last port of a range; 0 for a single port."
    )
    internal_port: int = Field(ge=1, le=65535)
    internal_client: IPv4

    @property
    def last_port(self) -> int:
        return self.external_port_end_range or self.external_port


class GatewaySettings(Model):
    """Everything one customer's vRGW is configured from (defaults: a typical home router,
    Wi-Fi off until the customer gives it a passphrase)."""

    lan_address: IPv4 = IPv4("192.168.1.1")
    lan_mask: IPv4 = IPv4("255.255.255.0")
    dhcp_server_enable: bool = True
    dhcp_enable: bool = True
    dhcp_min: IPv4 = IPv4("192.168.1.100")
    dhcp_max: IPv4 = IPv4("192.168.1.199")
    dns_servers: tuple[IPv4, ...] = ()
    domain_name: str = Field(default="lan", max_length=64)
    lease_time_s: int = 86400
    dns_relay_enable: bool = True
    dns_upstream: tuple[IPv4, ...] = ()
    dns_cache_size: int = Field(default=150, ge=0, le=10000)
    nat_enable: bool = True
    firewall_enable: bool = True
    firewall_level: FirewallLevel = "Low"
    wifi_enable: bool = False
    ssid: str = "edgeroam"
    security_mode: SecurityMode = "WPA2-Personal"
    passphrase: str = ""
    port_mappings: tuple[PortMapping, ...] = ()
    c_tag: int = Field(default=0, ge=0, le=MAX_TAG, description="0 until a circuit is assigned.")
    s_tag: int = Field(default=0, ge=0, le=MAX_TAG)
    access_node: str = Field(default="", max_length=64)
    subscriber: str = Field(default="", max_length=128)

    @property
    def lan(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.lan_address}/{self.lan_mask}", strict=False)

    @property
    def lan_interface(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.lan_address}/{self.lan.prefixlen}")

    @property
    def served_dns(self) -> tuple[IPv4, ...]:
        """DNS servers handed to terminals: the customer's list, else the vRGW itself."""
        return self.dns_servers or (self.lan_address,)


# -- the parameter table -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    field: str | None
    """GatewaySettings field it maps to; None for derived (read-only) values."""
    type: str
    """TR-106 type: string, boolean, unsignedInt, IPv4Address (lists are comma-separated)."""
    access: Access
    description: str
    write_only: bool = False
    """Read back as an empty string, as TR-181 requires of passphrases."""


def _p(name: str, field: str | None, type_: str, access: Access, text: str, **kw: Any) -> Parameter:
    return Parameter(name, field, type_, access, text, **kw)


C, OP, R = Access.CUSTOMER, Access.OPERATOR, Access.READ_ONLY
_LAN = "Device.IP.Interface.1.IPv4Address.1."
_POOL = "Device.DHCPv4.Server.Pool.1."
_AP = "Device.WiFi.AccessPoint.1.Security."

PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        _p(f"{_LAN}IPAddress", "lan_address", "IPv4Address", C, "vRGW address on the LAN"),
        _p(f"{_LAN}SubnetMask", "lan_mask", "IPv4Address", C, "LAN subnet mask (/8 to /30)"),
        _p(
            "Device.DHCPv4.Server.Enable",
            "dhcp_server_enable",
            "boolean",
            OP,
            "Template part: DHCP server in this vRGW (off when a relay serves the LAN)",
        ),
        _p(f"{_POOL}Enable", "dhcp_enable", "boolean", C, "Hand out addresses from the pool"),
        _p(f"{_POOL}MinAddress", "dhcp_min", "IPv4Address", C, "First address of the pool"),
        _p(f"{_POOL}MaxAddress", "dhcp_max", "IPv4Address", C, "Last address of the pool"),
        _p(f"{_POOL}SubnetMask", None, "IPv4Address", R, "Mask handed out (the LAN's)"),
        _p(f"{_POOL}IPRouters", None, "IPv4Address", R, "Router handed out (the vRGW)"),
        _p(
            f"{_POOL}DNSServers",
            "dns_servers",
            "IPv4Address[]",
            C,
            "DNS servers handed out, comma-separated; empty means the vRGW's DNS cache",
        ),
        _p(f"{_POOL}DomainName", "domain_name", "string", C, "Domain name handed out"),
        _p(
            f"{_POOL}LeaseTime",
            "lease_time_s",
            "unsignedInt",
            C,
            f"Lease time in seconds ({_MIN_LEASE_S}..{_MAX_LEASE_S})",
        ),
        _p(
            "Device.DNS.Relay.Enable",
            "dns_relay_enable",
            "boolean",
            OP,
            "Template part: DNS cache in this vRGW",
        ),
        _p(
            "Device.DNS.Relay.Forwarding.1.DNSServer",
            "dns_upstream",
            "IPv4Address[]",
            OP,
            "Upstream resolvers of the DNS cache, comma-separated",
        ),
        _p(
            "Device.DNS.Relay.X_EDGEROAM_CacheSize",
            "dns_cache_size",
            "unsignedInt",
            OP,
            "Entries of the DNS cache (0..10000)",
        ),
        _p(
            "Device.NAT.InterfaceSetting.1.Enable",
            "nat_enable",
            "boolean",
            OP,
            "Template part: NAT (masquerade and port forwards) in this vRGW",
        ),
        _p(
            "Device.NAT.PortMappingNumberOfEntries",
            None,
            "unsignedInt",
            R,
            "Number of port forwards",
        ),
        _p(
            "Device.Firewall.Enable",
            "firewall_enable",
            "boolean",
            OP,
            "Template part: stateful firewall in this vRGW",
        ),
        _p(
            "Device.Firewall.Config",
            "firewall_level",
            "string",
            C,
            "Low: unsolicited inbound dropped; High: outbound limited to common services too",
        ),
        _p("Device.WiFi.SSID.1.Enable", "wifi_enable", "boolean", C, "Wi-Fi on the home bridge"),
        _p("Device.WiFi.SSID.1.SSID", "ssid", "string", C, "Network name (1-32 bytes)"),
        _p(
            f"{_AP}ModeEnabled",
            "security_mode",
            "string",
            C,
            "None, WPA2-Personal, WPA3-Personal or WPA2-WPA3-Personal",
        ),
        _p(
            f"{_AP}KeyPassphrase",
            "passphrase",
            "string",
            C,
            "8-63 printable ASCII characters (or 64 hex digits); reads back empty",
            write_only=True,
        ),
        _p(
            "Device.Ethernet.VLANTermination.1.VLANID",
            "c_tag",
            "unsignedInt",
            OP,
            "Inner (customer) VLAN id, C-tag",
        ),
        _p(
            "Device.Ethernet.VLANTermination.1.TPID",
            None,
            "unsignedInt",
            R,
            "33024 (0x8100, 802.1Q)",
        ),
        _p(
            "Device.Ethernet.VLANTermination.2.VLANID",
            "s_tag",
            "unsignedInt",
            OP,
            "Outer (service) VLAN id, S-tag",
        ),
        _p(
            "Device.Ethernet.VLANTermination.2.TPID",
            None,
            "unsignedInt",
            R,
            "34984 (0x88A8, 802.1ad)",
        ),
        _p(
            "Device.X_EDGEROAM_Subscriber",
            "subscriber",
            "string",
            OP,
            "Customer whose line the circuit serves (empty for a pooled vRGW)",
        ),
        _p(
            "Device.X_EDGEROAM_AccessNode",
            "access_node",
            "string",
            OP,
            "Access node the customer's circuit starts at",
        ),
    )
}

PORT_MAPPING = "Device.NAT.PortMapping."
PORT_MAPPING_FIELDS: dict[str, Parameter] = {
    p.name: p
    for p in (
        _p("Enable", "enable", "boolean", C, "Forward is active"),
        _p("Description", "description", "string", C, "Free text"),
        _p("Protocol", "protocol", "string", C, "TCP or UDP"),
        _p("ExternalPort", "external_port", "unsignedInt", C, "Port on the vRGW's WAN address"),
        _p(
            "ExternalPortEndRange",
            "external_port_end_range",
            "unsignedInt",
            C,
            "Last port of a range (0: single port)",
        ),
        _p("InternalPort", "internal_port", "unsignedInt", C, "Port on the LAN host"),
        _p("InternalClient", "internal_client", "IPv4Address", C, "LAN host address"),
    )
}
_REQUIRED_NEW = ("ExternalPort", "InternalPort", "InternalClient")
_FIELD_NAME = {p.field: name for name, p in PARAMETERS.items() if p.field}
_PM_FIELD_NAME = {p.field: leaf for leaf, p in PORT_MAPPING_FIELDS.items() if p.field}
_PM_KEY = re.compile(r"^Device\.NAT\.PortMapping\.(\d+)\.(\w*)$")


def _pm_name(instance: int, leaf: str = "") -> str:
    return f"{PORT_MAPPING}{instance}.{leaf}"


# -- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    parameter: str
    message: str

    def __str__(self) -> str:
        return f"{self.parameter}: {self.message}"


class SettingsError(ValueError):
    """Settings or a change to them are invalid; nothing was changed."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class SettingsForbidden(SettingsError):
    """The caller may not write (some of) the named parameters."""


# -- whole-settings validation -----------------------------------------------------------------


def _mask_problem(mask: IPv4) -> str | None:
    value = int(mask)
    inverted = ~value & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return f"{mask} is not a contiguous subnet mask"
    prefix = 32 - inverted.bit_length()
    if not 8 <= prefix <= 30:
        return f"{mask} (/{prefix}) must give a /8 to /30 LAN"
    return None


def check(settings: GatewaySettings) -> list[Problem]:
    """Every rule across parameters; empty when the settings can be applied."""
    n = _FIELD_NAME
    problems: list[Problem] = []

    def add(field: str, message: str) -> None:
        problems.append(Problem(n[field], message))

    mask_issue = _mask_problem(settings.lan_mask)
    if mask_issue:
        add("lan_mask", mask_issue)
        return problems
    lan = settings.lan
    lan_text = f"the LAN {lan} ({n['lan_address']} with {n['lan_mask']})"
    if not any(lan.subnet_of(p) for p in _PRIVATE):
        add("lan_address", f"{lan} is not inside a private range (10/8, 172.16/12, 192.168/16)")
    edges = (lan.network_address, lan.broadcast_address)
    if settings.lan_address in edges:
        add("lan_address", f"{settings.lan_address} is the network or broadcast address of {lan}")
    for field in ("dhcp_min", "dhcp_max"):
        value = getattr(settings, field)
        if value not in lan:
            add(field, f"{value} is outside {lan_text}")
        elif value in edges:
            add(field, f"{value} is the network or broadcast address of {lan}")
    if settings.dhcp_min > settings.dhcp_max:
        add("dhcp_min", f"{settings.dhcp_min} comes after {n['dhcp_max']} {settings.dhcp_max}")
    elif settings.dhcp_min <= settings.lan_address <= settings.dhcp_max:
        add(
            "dhcp_min",
            f"the pool {settings.dhcp_min}-{settings.dhcp_max} contains the vRGW's own "
            f"address {settings.lan_address} ({n['lan_address']})",
        )
    if not _MIN_LEASE_S <= settings.lease_time_s <= _MAX_LEASE_S:
        add("lease_time_s", f"{settings.lease_time_s} s is outside {_MIN_LEASE_S}..{_MAX_LEASE_S}")
    for field in ("dns_servers", "dns_upstream"):
        for address in getattr(settings, field):
            if address.is_multicast or address.is_unspecified or address.is_loopback:
                add(field, f"{address} cannot be a DNS server")
    if settings.domain_name and not re.match(
        r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.?)*$", settings.domain_name
    ):
        add("domain_name", f"{settings.domain_name!r} is not a domain name")
    ssid_bytes = len(settings.ssid.encode())
    if not 1 <= ssid_bytes <= 32:
        add("ssid", f"an SSID has 1 to 32 bytes, not {ssid_bytes}")
    problems += _passphrase_problems(settings)
    problems += _port_mapping_problems(settings, lan)
    if (settings.c_tag == 0) != (settings.s_tag == 0):
        add("c_tag", "the C-tag and the S-tag are assigned together (both 0 or both 1..4094)")
    if settings.c_tag and not settings.access_node:
        add("access_node", "a circuit with tags needs its access node")
    return problems


def _passphrase_problems(settings: GatewaySettings) -> list[Problem]:
    name = _FIELD_NAME["passphrase"]
    key = settings.passphrase
    needed = settings.wifi_enable and settings.security_mode != "None"
    if not key:
        if needed:
            return [
                Problem(
                    name,
                    f"Wi-Fi with {settings.security_mode} needs a passphrase (8-63 characters)",
                )
            ]
        return []
    if _HEX64.match(key):
        return []
    if not all(0x20 <= ord(ch) <= 0x7E for ch in key):
        return [Problem(name, "only printable ASCII characters are allowed")]
    if not 8 <= len(key) <= 63:
        return [Problem(name, f"a passphrase has 8 to 63 characters, not {len(key)}")]
    return []


def _port_mapping_problems(settings: GatewaySettings, lan: ipaddress.IPv4Network) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[int, PortMapping] = {}
    for pm in settings.port_mappings:
        if pm.instance in seen:
            problems.append(Problem(_pm_name(pm.instance), "instance number used twice"))
        seen[pm.instance] = pm
        if pm.external_port_end_range and pm.external_port_end_range < pm.external_port:
            problems.append(
                Problem(
                    _pm_name(pm.instance, "ExternalPortEndRange"),
                    f"{pm.external_port_end_range} is below ExternalPort {pm.external_port}",
                )
            )
        if pm.external_port_end_range and pm.internal_port != pm.external_port:
            problems.append(
                Problem(
                    _pm_name(pm.instance, "InternalPort"),
                    f"a port range forward keeps its port numbers: InternalPort must equal "
                    f"ExternalPort {pm.external_port}, not {pm.internal_port}",
                )
            )
        client = pm.internal_client
        if client not in lan:
            problems.append(
                Problem(
                    _pm_name(pm.instance, "InternalClient"),
                    f"{client} is outside the LAN {lan}",
                )
            )
        elif client in (lan.network_address, lan.broadcast_address, settings.lan_address):
            problems.append(
                Problem(
                    _pm_name(pm.instance, "InternalClient"),
                    f"{client} is the network, broadcast or vRGW address",
                )
            )
    ordered = sorted(settings.port_mappings, key=lambda p: (p.protocol, p.external_port))
    widest: PortMapping | None = None  # the earlier entry reaching furthest, same protocol
    for pm in ordered:
        if widest is not None and widest.protocol == pm.protocol:
            if pm.external_port <= widest.last_port:
                problems.append(
                    Problem(
                        _pm_name(pm.instance, "ExternalPort"),
                        f"{pm.protocol} ports {pm.external_port}-{pm.last_port} overlap port "
                        f"mapping {widest.instance} ({widest.external_port}-{widest.last_port})",
                    )
                )
            if pm.last_port > widest.last_port:
                widest = pm
        else:
            widest = pm
    return problems


def validated(settings: GatewaySettings) -> GatewaySettings:
    problems = check(settings)
    if problems:
        raise SettingsError(problems)
    return settings


# -- flat TR-181 view --------------------------------------------------------------------------


def _render(value: Any) -> Any:
    if isinstance(value, IPv4):
        return str(value)
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return value


def to_flat(settings: GatewaySettings, *, reveal: bool = False) -> dict[str, Any]:
    """Every parameter by TR-181 name; write-only ones read as "" unless `reveal`."""
    flat: dict[str, Any] = {}
    for name, p in PARAMETERS.items():
        if p.field is None:
            continue
        value = _render(getattr(settings, p.field))
        flat[name] = "" if p.write_only and not reveal else value
    flat[f"{_POOL}SubnetMask"] = str(settings.lan_mask)
    flat[f"{_POOL}IPRouters"] = str(settings.lan_address)
    flat["Device.NAT.PortMappingNumberOfEntries"] = len(settings.port_mappings)
    flat["Device.Ethernet.VLANTermination.1.TPID"] = CTAG_TPID
    flat["Device.Ethernet.VLANTermination.2.TPID"] = STAG_TPID
    for pm in sorted(settings.port_mappings, key=lambda p: p.instance):
        for leaf, p in PORT_MAPPING_FIELDS.items():
            assert p.field is not None
            flat[_pm_name(pm.instance, leaf)] = _render(getattr(pm, p.field))
    return dict(sorted(flat.items()))


def select(flat: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The entries named, where a name ending in '.' is a partial path (TR-069 style)."""
    wanted = list(names)
    if not wanted:
        return dict(flat)
    out: dict[str, Any] = {}
    unknown = []
    for name in wanted:
        hits = {
            k: v
            for k, v in flat.items()
            if k == name or (name.endswith(".") and k.startswith(name))
        }
        if not hits:
            unknown.append(Problem(name, "no such parameter (or partial path)"))
        out.update(hits)
    if unknown:
        raise SettingsError(unknown)
    return out


def _type_problem(name: str, p: Parameter, value: Any) -> str | None:
    if value is None:
        return "a value is required"
    if p.type == "boolean":
        if isinstance(value, bool) or value in ("true", "false", "1", "0", 0, 1):
            return None
        return f"{value!r} is not a boolean"
    if p.type == "unsignedInt":
        if isinstance(value, bool):
            return f"{value!r} is not an unsigned integer"
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return None if int(value) >= 0 else f"{value!r} is negative"
        return f"{value!r} is not an unsigned integer"
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    return None


def _coerce(p: Parameter, value: Any) -> Any:
    if p.type == "boolean":
        return value if isinstance(value, bool) else value in ("true", "1", 1)
    if p.type == "unsignedInt":
        return int(value)
    if p.type == "IPv4Address[]":
        return tuple(part.strip() for part in str(value).split(",") if part.strip())
    return value


def apply_changes(
    current: GatewaySettings, changes: Mapping[str, Any], writer: Writer
) -> GatewaySettings:
    """`current` with `changes` (TR-181 names → values) applied, validated as a whole.

    Raises SettingsForbidden when the writer may not set one of the names (nothing else is
    checked then), SettingsError listing every other problem.
    """
    forbidden: list[Problem] = []
    problems: list[Problem] = []
    scalar: dict[str, Any] = {}
    mappings: dict[int, dict[str, Any]] = {
        pm.instance: pm.model_dump() for pm in current.port_mappings
    }
    deleted: set[int] = set()
    created: set[int] = set()
    for name, value in changes.items():
        match = _PM_KEY.match(name)
        if match is not None:
            instance, leaf = int(match.group(1)), match.group(2)
            if instance < 1:
                problems.append(Problem(name, "instance numbers start at 1"))
                continue
            if leaf == "":
                if value is not None:
                    problems.append(Problem(name, "write null to delete the object"))
                elif instance not in mappings:
                    problems.append(Problem(name, "no such port mapping"))
                else:
                    deleted.add(instance)
                continue
            p = PORT_MAPPING_FIELDS.get(leaf)
            if p is None:
                problems.append(
                    Problem(
                        name, f"unknown parameter; port mappings have {list(PORT_MAPPING_FIELDS)}"
                    )
                )
                continue
        else:
            p = PARAMETERS.get(name)
            if p is None:
                problems.append(Problem(name, "unknown parameter"))
                continue
        if p.access is Access.READ_ONLY:
            problems.append(Problem(name, "read-only"))
            continue
        if p.access is Access.OPERATOR and writer is not Writer.OPERATOR:
            forbidden.append(Problem(name, "only the operator may change this parameter"))
            continue
        issue = _type_problem(name, p, value)
        if issue:
            problems.append(Problem(name, issue))
            continue
        assert p.field is not None
        if match is not None:
            instance = int(match.group(1))
            if instance not in mappings:
                mappings[instance] = {"instance": instance}
                created.add(instance)
            mappings[instance][p.field] = _coerce(p, value)
        else:
            scalar[p.field] = _coerce(p, value)
    if forbidden:
        raise SettingsForbidden(forbidden)
    for instance in sorted(created):
        fields = mappings[instance]
        missing = [f for f in _REQUIRED_NEW if PORT_MAPPING_FIELDS[f].field not in fields]
        if missing and instance not in deleted:
            problems.append(
                Problem(_pm_name(instance), f"a new port mapping needs {', '.join(missing)}")
            )
    if problems:
        raise SettingsError(problems)
    data = current.model_dump()
    data.update(scalar)
    # Deleting an entry and changing it in the same request: the delete wins.
    kept = [m for i, m in sorted(mappings.items()) if i not in deleted]
    data["port_mappings"] = kept
    try:
        result = GatewaySettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_from_validation(exc, [int(m["instance"]) for m in kept])) from None
    return validated(result)


def _from_validation(exc: ValidationError, instances: list[int] | None = None) -> list[Problem]:
    """Pydantic's errors renamed to TR-181 names (port mappings by instance number)."""
    out = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] == "port_mappings" and len(loc) >= 3:
            position = int(loc[1])
            number = (
                instances[position] if instances and position < len(instances) else position + 1
            )
            leaf = _PM_FIELD_NAME.get(str(loc[2]), str(loc[2]))
            name = _pm_name(number, leaf)
        else:
            name = _FIELD_NAME.get(str(loc[0]), str(loc[0])) if loc else "settings"
        out.append(Problem(name, error["msg"]))
    return out


# -- instance parameters -----------------------------------------------------------------------

PORT_MAPPING_PARAM = "Device.NAT.PortMapping"
"""Instance parameter holding the port mappings as a list of TR-181 leaf dicts."""


def to_params(settings: GatewaySettings) -> dict[str, Any]:
    """The settings as a vRGW instance's parameters (writable names plus the mapping list)."""
    params: dict[str, Any] = {}
    for name, p in PARAMETERS.items():
        if p.field is not None:
            params[name] = _render(getattr(settings, p.field))
    params[PORT_MAPPING_PARAM] = [
        {"instance": pm.instance}
        | {leaf: _render(getattr(pm, str(p.field))) for leaf, p in PORT_MAPPING_FIELDS.items()}
        for pm in sorted(settings.port_mappings, key=lambda m: m.instance)
    ]
    return params


def from_params(params: Mapping[str, Any]) -> GatewaySettings:
    """Settings from instance parameters (missing names take their defaults)."""
    data: dict[str, Any] = {}
    for name, p in PARAMETERS.items():
        if p.field is not None and name in params:
            data[p.field] = _coerce(p, params[name])
    mappings = []
    for entry in params.get(PORT_MAPPING_PARAM) or []:
        item = {"instance": entry.get("instance")}
        for leaf, p in PORT_MAPPING_FIELDS.items():
            if leaf in entry:
                item[str(p.field)] = _coerce(p, entry[leaf])
        mappings.append(item)
    data["port_mappings"] = mappings
    try:
        return GatewaySettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_from_validation(exc)) from None


def parameter_table() -> list[dict[str, Any]]:
    """The supported names with type, access and description (for the API and the docs)."""
    rows = [
        {
            "name": p.name,
            "type": p.type,
            "access": p.access.value,
            "description": p.description,
        }
        for p in PARAMETERS.values()
    ]
    rows += [
        {
            "name": f"{PORT_MAPPING}{{i}}.{leaf}",
            "type": p.type,
            "access": p.access.value,
            "description": p.description,
        }
        for leaf, p in PORT_MAPPING_FIELDS.items()
    ]
    return rows
