"""`edgeroam gateways parameters` prints the TR-181 table the code supports."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import edgeroam.cli.gateways  # noqa: F401  (registers the commands)
from edgeroam.cli.app import app
from edgeroam.gateways.settings import PARAMETERS, PORT_MAPPING_FIELDS


def test_parameters_json_lists_every_name_with_its_writer() -> None:
    result = CliRunner().invoke(app, ["gateways", "parameters", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == len(PARAMETERS) + len(PORT_MAPPING_FIELDS)
    access = {r["name"]: r["access"] for r in rows}
    assert access["Device.DHCPv4.Server.Pool.1.MinAddress"] == "customer"
    assert access["Device.Ethernet.VLANTermination.1.VLANID"] == "operator"
    assert access["Device.DHCPv4.Server.Pool.1.IPRouters"] == "read-only"
