"""TR-181 settings: who writes what, precise validation, flat/structured round trips."""

from __future__ import annotations

from typing import Any

import pytest

from edgeroam.gateways.settings import (
    PARAMETERS,
    GatewaySettings,
    SettingsError,
    SettingsForbidden,
    Writer,
    apply_changes,
    from_params,
    select,
    to_flat,
    to_params,
)
from edgeroam.gateways.template import TEMPLATES, changes, vrgw_function
from edgeroam.model import validate_params

POOL = "Device.DHCPv4.Server.Pool.1."
LAN = "Device.IP.Interface.1.IPv4Address.1."
KEY = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
PM = "Device.NAT.PortMapping."


def base() -> GatewaySettings:
    return TEMPLATES["full"].settings()


def forward(i: int, port: int, client: str = "192.168.1.20", **more: Any) -> dict[str, Any]:
    return {
        f"{PM}{i}.ExternalPort": port,
        f"{PM}{i}.InternalPort": 80,
        f"{PM}{i}.InternalClient": client,
        **{f"{PM}{i}.{k}": v for k, v in more.items()},
    }


def problems(exc: SettingsError) -> dict[str, str]:
    found: dict[str, str] = {}
    for p in exc.problems:
        found[p.parameter] = f"{found.get(p.parameter, '')} | {p.message}".strip(" |")
    return found


def test_customer_may_change_the_home_network() -> None:
    new = apply_changes(
        base(),
        {
            f"{LAN}IPAddress": "10.20.0.1",
            f"{LAN}SubnetMask": "255.255.0.0",
            f"{POOL}MinAddress": "10.20.1.1",
            f"{POOL}MaxAddress": "10.20.1.254",
            "Device.WiFi.SSID.1.SSID": "Casa",
            "Device.WiFi.SSID.1.Enable": "true",
            KEY: "correct horse",
            **forward(1, 8080, "10.20.1.5"),
        },
        Writer.CUSTOMER,
    )
    assert str(new.lan) == "10.20.0.0/16"
    assert new.ssid == "Casa" and new.wifi_enable and new.passphrase == "correct horse"
    flat = to_flat(new)
    assert flat[f"{POOL}SubnetMask"] == "255.255.0.0"
    assert flat[f"{POOL}IPRouters"] == "10.20.0.1"
    assert flat[KEY] == ""  # TR-181: passphrases read back empty
    assert flat["Device.NAT.PortMappingNumberOfEntries"] == 1
    assert flat[f"{PM}1.InternalClient"] == "10.20.1.5"


def test_operator_only_parameters_are_refused_to_customers_and_nothing_changes() -> None:
    current = base()
    with pytest.raises(SettingsForbidden) as caught:
        apply_changes(
            current,
            {
                "Device.Ethernet.VLANTermination.1.VLANID": 7,
                "Device.DNS.Relay.Enable": False,
                "Device.WiFi.SSID.1.SSID": "fine",
            },
            Writer.CUSTOMER,
        )
    assert set(problems(caught.value)) == {
        "Device.Ethernet.VLANTermination.1.VLANID",
        "Device.DNS.Relay.Enable",
    }
    assert current == base()
    changed = apply_changes(current, {"Device.DNS.Relay.Enable": False}, Writer.OPERATOR)
    assert changed.dns_relay_enable is False


@pytest.mark.parametrize(
    ("change", "name", "fragment"),
    [
        ({f"{POOL}MinAddress": "192.168.2.10"}, f"{POOL}MinAddress", "outside the LAN"),
        ({f"{POOL}MaxAddress": "192.168.1.255"}, f"{POOL}MaxAddress", "broadcast"),
        (
            {f"{POOL}MinAddress": "192.168.1.150", f"{POOL}MaxAddress": "192.168.1.140"},
            f"{POOL}MinAddress",
            "comes after",
        ),
        ({f"{POOL}MinAddress": "192.168.1.1"}, f"{POOL}MinAddress", "own address"),
        ({f"{LAN}SubnetMask": "255.0.255.0"}, f"{LAN}SubnetMask", "not a contiguous"),
        ({f"{LAN}SubnetMask": "255.255.255.252"}, f"{POOL}MinAddress", "outside"),
        ({f"{LAN}IPAddress": "8.8.8.1"}, f"{LAN}IPAddress", "not inside a private range"),
        ({f"{POOL}LeaseTime": 30}, f"{POOL}LeaseTime", "outside 120..604800"),
        ({KEY: "short", "Device.WiFi.SSID.1.Enable": True}, KEY, "8 to 63 characters, not 5"),
        ({KEY: "x" * 64, "Device.WiFi.SSID.1.Enable": True}, KEY, "not 64"),
        ({KEY: "pässwörd-long", "Device.WiFi.SSID.1.Enable": True}, KEY, "printable ASCII"),
        ({"Device.WiFi.SSID.1.Enable": True}, KEY, "needs a passphrase"),
        ({"Device.WiFi.SSID.1.SSID": ""}, "Device.WiFi.SSID.1.SSID", "1 to 32 bytes"),
        ({"Device.WiFi.SSID.1.SSID": "ü" * 17}, "Device.WiFi.SSID.1.SSID", "not 34"),
        ({"Device.Firewall.Config": "Paranoid"}, "Device.Firewall.Config", "Low"),
        ({f"{POOL}LeaseTime": "soon"}, f"{POOL}LeaseTime", "not an unsigned integer"),
        ({f"{POOL}MinAddress": "192.168.1.300"}, f"{POOL}MinAddress", "IPv4"),
        ({"Device.Bogus.Thing": 1}, "Device.Bogus.Thing", "unknown parameter"),
        ({f"{POOL}SubnetMask": "255.255.0.0"}, f"{POOL}SubnetMask", "read-only"),
        (forward(1, 80, "192.168.5.5"), f"{PM}1.InternalClient", "outside the LAN"),
        (forward(1, 80, "192.168.1.1"), f"{PM}1.InternalClient", "vRGW address"),
        ({f"{PM}1.ExternalPort": 80}, f"{PM}1.", "needs InternalPort, InternalClient"),
        (forward(1, 70000), f"{PM}1.ExternalPort", "less than or equal to 65535"),
        (
            forward(1, 5000, ExternalPortEndRange=4000),
            f"{PM}1.ExternalPortEndRange",
            "below ExternalPort",
        ),
        (
            forward(1, 5000, ExternalPortEndRange=5010),
            f"{PM}1.InternalPort",
            "keeps its port numbers",
        ),
        ({f"{PM}9.": None}, f"{PM}9.", "no such port mapping"),
    ],
)
def test_invalid_changes_name_the_parameter(
    change: dict[str, Any], name: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        apply_changes(base(), change, Writer.OPERATOR)
    found = problems(caught.value)
    assert name in found, found
    assert fragment in found[name], found


def test_overlapping_forwards_are_refused_even_when_not_adjacent() -> None:
    wide = forward(1, 1000, ExternalPortEndRange=2000, InternalPort=1000)
    wide[f"{PM}1.InternalPort"] = 1000
    ok = apply_changes(base(), {**wide, **forward(2, 3000)}, Writer.CUSTOMER)
    with pytest.raises(SettingsError) as caught:
        apply_changes(ok, forward(3, 1500) | forward(4, 2500), Writer.CUSTOMER)
    found = problems(caught.value)
    assert list(found) == [f"{PM}3.ExternalPort"]
    assert "overlap port mapping 1 (1000-2000)" in found[f"{PM}3.ExternalPort"]
    # The same port on the other protocol is a different forward.
    udp = apply_changes(ok, forward(3, 1500, Protocol="UDP"), Writer.CUSTOMER)
    assert len(udp.port_mappings) == 3


def test_port_mappings_keep_their_numbers_and_can_be_deleted() -> None:
    s = apply_changes(base(), forward(1, 81) | forward(5, 85), Writer.CUSTOMER)
    s = apply_changes(s, {f"{PM}1.": None, f"{PM}5.Enable": False}, Writer.CUSTOMER)
    assert [(pm.instance, pm.enable) for pm in s.port_mappings] == [(5, False)]


def test_instance_params_round_trip_and_match_the_function_schema() -> None:
    s = apply_changes(
        base(),
        forward(2, 2222) | {KEY: "a" * 64, "Device.WiFi.SSID.1.Enable": True},
        Writer.CUSTOMER,
    )
    params = to_params(s)
    assert from_params(params) == s
    function = vrgw_function()
    assert validate_params(function, params) == params
    writable = {n for n, p in PARAMETERS.items() if p.field is not None}
    assert writable <= set(function.parameters)


def test_select_by_name_and_partial_path() -> None:
    flat = to_flat(base())
    assert select(flat, [f"{POOL}MinAddress"]) == {f"{POOL}MinAddress": "192.168.1.100"}
    wifi = select(flat, ["Device.WiFi."])
    assert set(wifi) == {n for n in flat if n.startswith("Device.WiFi.")} and len(wifi) == 4
    with pytest.raises(SettingsError, match="no such parameter"):
        select(flat, ["Device.Nope."])


def test_change_plan_restarts_only_what_it_must() -> None:
    s = base()
    wifi = apply_changes(
        s,
        {"Device.WiFi.SSID.1.SSID": "x", KEY: "12345678", "Device.WiFi.SSID.1.Enable": True},
        Writer.CUSTOMER,
    )
    plan = changes(s, wifi)
    assert plan.push_wifi and not plan.restart_dnsmasq and not plan.reload_nftables
    fw = apply_changes(s, forward(1, 8080), Writer.CUSTOMER)
    plan = changes(s, fw)
    assert plan.reload_nftables and plan.restarts == ()
    pool = apply_changes(s, {f"{POOL}MinAddress": "192.168.1.50"}, Writer.CUSTOMER)
    plan = changes(s, pool)
    assert plan.restarts == ("dnsmasq",) and not plan.reload_nftables and not plan.readdress
