"""The agent's configuration file: validated, with the field named when it is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeroam.agent.config import AgentConfigError, load_agent_config, parse_agent_config


def config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": "cpe-1",
        "kind": "cpe",
        "controller": "http://172.31.0.1:8080",
        "token": "t" * 20,
        "state_dir": str(tmp_path),
        "links": {"acc-1": {"link": "acc-1", "a_side": True, "capacity_mbps": 100}},
        "lan": {
            "bridge": "lan0",
            "subnet": "10.128.0.0/24",
            "gateway": "10.128.0.1",
            "pool_first": "10.128.0.100",
            "pool_last": "10.128.0.199",
        },
        "functions": {"fw": {"implementation": "filter", "vcpu": 0.5, "memory_mb": 64}},
    }
    data.update(changes)
    return data


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(config(tmp_path)))
    loaded = load_agent_config(path)
    assert loaded.read_token() == "t" * 20
    assert loaded.band_interfaces == []
    assert loaded.functions["fw"].implementation.value == "filter"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token_file": "/x"}, "give exactly one of token and token_file"),
        ({"token": None}, "give exactly one of token and token_file"),
        ({"controller": "ftp://x"}, "controller: String should match pattern"),
        ({"interval_s": 0.001}, "interval_s: Input should be greater than or equal to 0.05"),
        ({"prefix": "ER7"}, "prefix: Value error, name prefix 'ER7' must look like"),
        ({"kind": "toaster"}, "kind: Input should be 'cpe', 'server' or 'cloud'"),
        ({"functions": {"fw": {"implementation": "vm"}}}, "functions.fw.implementation"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentConfigError) as info:
        parse_agent_config(config(tmp_path, **changes), "agent.json")
    assert message in str(info.value)
    assert str(info.value).startswith("agent.json: ")


def test_a_lan_must_hold_its_gateway_and_pool(tmp_path: Path) -> None:
    data = config(tmp_path)
    data["lan"]["pool_last"] = "10.129.0.9"
    outside = r"pool_last 10\.129\.0\.9 is outside 10\.128\.0\.0/24"
    with pytest.raises(AgentConfigError, match=outside):
        parse_agent_config(data)


def test_token_file_is_read_and_checked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("short\n")
    loaded = parse_agent_config(config(tmp_path, token=None, token_file=str(token)))
    with pytest.raises(AgentConfigError, match="the token is too short"):
        loaded.read_token()
    token.write_text("a-long-enough-token\n")
    assert loaded.read_token() == "a-long-enough-token"
    with pytest.raises(AgentConfigError, match=r"No such file"):
        parse_agent_config(
            config(tmp_path, token=None, token_file=str(tmp_path / "nope"))
        ).read_token()
    bad = tmp_path / "bad.yaml"
    bad.write_text("host: [unclosed")
    with pytest.raises(AgentConfigError, match=r"bad\.yaml"):
        load_agent_config(bad)
