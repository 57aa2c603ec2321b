"""What an agent knows about its host: a validated JSON/YAML file written by whoever deploys it.

The testbed writes one per host; on real equipment an operator would. The token may be given
inline or, better, in a separate file readable only by root.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from edgeroam.model import HostKind, Identifier, Model, Resources
from edgeroam.testbed.kinds import Implementation
from edgeroam.testbed.nsutil import check_prefix


class AgentConfigError(ValueError):
    """The agent's configuration is unusable; the message names the field."""


class FunctionEntry(Model):
    """A function this host can run: its real program and its flavor's limits."""

    implementation: Implementation
    vcpu: float = Field(default=0.0, ge=0)
    memory_mb: float = Field(default=0.0, ge=0)


class LinkEntry(Model):
    link: Identifier
    a_side: bool = Field(description="This host is the link's end `a` (a→b is what it sends).")
    capacity_mbps: float = Field(gt=0)
    band: bool = Field(
        default=False, description="Servers: the link carries CPE↔server band traffic."
    )


class LanEntry(Model):
    bridge: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,14}$")
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    pool_first: ipaddress.IPv4Address
    pool_last: ipaddress.IPv4Address

    @model_validator(mode="after")
    def _inside(self) -> LanEntry:
        for name in ("gateway", "pool_first", "pool_last"):
            if getattr(self, name) not in self.subnet:
                raise ValueError(f"{name} {getattr(self, name)} is outside {self.subnet}")
        if int(self.pool_first) > int(self.pool_last):
            raise ValueError("pool_first is after pool_last")
        return self


class AgentConfig(Model):
    host: Identifier
    kind: HostKind
    controller: str = Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    token: str | None = Field(default=None, min_length=16, max_length=256)
    token_file: Path | None = None
    interval_s: float = Field(default=1.0, ge=0.05, le=60)
    command_wait_s: float = Field(default=5.0, gt=0, le=60)
    capacity: Resources = Resources()
    links: dict[str, LinkEntry] = Field(default_factory=dict, description="By interface name.")
    upstream: str | None = Field(default=None, description="Interface towards the internet.")
    lan: LanEntry | None = None
    customer_lans: dict[Identifier, ipaddress.IPv4Network] = Field(
        default_factory=dict, description="Servers: CPE -> its LAN, for per-CPE counters."
    )
    customer_pool: ipaddress.IPv4Network | None = None
    functions: dict[Identifier, FunctionEntry] = Field(default_factory=dict)
    prefix: str = "er7-"
    state_dir: Path

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_prefix(value)

    @model_validator(mode="after")
    def _token(self) -> AgentConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of token and token_file")
        return self

    def read_token(self) -> str:
        if self.token is not None:
            return self.token
        assert self.token_file is not None
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise AgentConfigError(f"token_file {self.token_file}: {exc.strerror}") from exc
        if len(token) < 16:
            raise AgentConfigError(f"token_file {self.token_file}: the token is too short")
        return token

    @property
    def band_interfaces(self) -> list[str]:
        return [name for name, entry in self.links.items() if entry.band]


def parse_agent_config(data: Any, source: str = "agent config") -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise AgentConfigError("\n".join(lines)) from None


def load_agent_config(path: Path) -> AgentConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise AgentConfigError(f"{path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise AgentConfigError(f"{path}: {exc}") from exc
    return parse_agent_config(data, str(path))
