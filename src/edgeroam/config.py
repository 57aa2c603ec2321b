"""Controller settings: a YAML file, overridden by EDGEROAM_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from edgeroam.arbiter import ArbiterConfig
from edgeroam.lifecycle import LifecycleConfig
from edgeroam.model import Model
from edgeroam.policies.registry import format_validation_error


class SettingsError(ValueError):
    """The settings file or environment is invalid; the message says where."""


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    AGENT = "agent"


class TokenSpec(Model):
    name: str = Field(default="", max_length=64)
    token: str = Field(min_length=16, max_length=256, description="Bearer token (>= 16 chars).")
    role: Role
    host: str | None = Field(default=None, description="For agent tokens: the host it speaks for.")


class DriverSettings(Model):
    kind: str = Field(default="sim", pattern="^(sim|netns)$")
    latency_s: float = Field(default=0.5, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    state_path: Path | None = None
    # netns: agents carry out the actions (see edgeroam.drivers.netns)
    ack_timeout_s: float = Field(default=15.0, gt=0, description="netns: answer deadline.")
    redeliver_s: float = Field(default=3.0, gt=0, description="netns: hand out again after.")
    silent_after_s: float = Field(default=5.0, gt=0, description="netns: agent is silent after.")


class Settings(Model):
    database_url: str | None = None
    bind: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tick_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=30.0, gt=0)
    readings_retention_s: float = Field(default=86400.0, gt=0)
    tokens: tuple[TokenSpec, ...] = ()
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    policies_file: Path | None = None
    arbiter: ArbiterConfig = ArbiterConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    driver: DriverSettings = DriverSettings()


def _env_tokens(value: str) -> list[dict[str, Any]]:
    """EDGEROAM_TOKENS='viewer:TOKEN,operator:TOKEN,agent:TOKEN:host-id'."""
    tokens = []
    for i, item in enumerate(filter(None, (x.strip() for x in value.split(",")))):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise SettingsError(
                f"EDGEROAM_TOKENS item {i + 1}: expected role:token or agent:token:host"
            )
        spec: dict[str, Any] = {"name": f"env-{i + 1}", "role": parts[0], "token": parts[1]}
        if len(parts) == 3:
            spec["host"] = parts[2]
        tokens.append(spec)
    return tokens


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    where = str(path) if path else "settings"
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping at the top level")
        data.update(loaded)
    if env.get("EDGEROAM_DATABASE_URL"):
        data["database_url"] = env["EDGEROAM_DATABASE_URL"]
    if env.get("EDGEROAM_BIND"):
        data["bind"] = env["EDGEROAM_BIND"]
    if env.get("EDGEROAM_PORT"):
        data["port"] = env["EDGEROAM_PORT"]
    if env.get("EDGEROAM_TOKENS"):
        data["tokens"] = [*data.get("tokens", []), *_env_tokens(env["EDGEROAM_TOKENS"])]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(where, exc)) from exc
    seen: set[str] = set()
    for spec in settings.tokens:
        if spec.token in seen:
            raise SettingsError(f"{where}: the same token is configured twice")
        seen.add(spec.token)
        if spec.role is Role.AGENT and spec.host is None:
            raise SettingsError(f"{where}: agent token {spec.name!r} needs a host")
    return settings
