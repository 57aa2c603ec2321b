"""Named policies and their configuration, loaded from YAML."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgeroam.policies.base import Policy, PolicyConfig


class PolicyConfigError(ValueError):
    """A policy configuration is invalid; the message names the policy and the field."""


def format_validation_error(prefix: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ""
        for part in item["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        lines.append(f"{prefix}{'.' + loc if loc else ''}: {item['msg']}")
    return "\n".join(lines)


class PolicyRegistry:
    """Policies known to the controller, each with its current validated config."""

    def __init__(self) -> None:
        self._policies: dict[str, Policy] = {}
        self._configs: dict[str, PolicyConfig] = {}

    def register(self, policy: Policy, config: PolicyConfig | None = None) -> None:
        if policy.name in self._policies:
            raise ValueError(f"policy {policy.name!r} is already registered")
        self._policies[policy.name] = policy
        self._configs[policy.name] = config or policy.config_model()

    def __contains__(self, name: object) -> bool:
        return name in self._policies

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._policies, key=lambda n: (self._configs[n].precedence, n)))

    def policy(self, name: str) -> Policy:
        if name not in self._policies:
            raise KeyError(f"unknown policy {name!r}; known: {sorted(self._policies)}")
        return self._policies[name]

    def config(self, name: str) -> PolicyConfig:
        self.policy(name)
        return self._configs[name]

    def validate(self, name: str, data: Mapping[str, Any]) -> PolicyConfig:
        policy = self.policy(name)
        try:
            return policy.config_model.model_validate(dict(data))
        except ValidationError as exc:
            raise PolicyConfigError(format_validation_error(f"policies.{name}", exc)) from exc

    def configure(self, name: str, data: Mapping[str, Any], *, merge: bool = True) -> PolicyConfig:
        """Validate and apply a config; with merge, unspecified fields keep their values."""
        base = self.config(name).model_dump() if merge else {}
        config = self.validate(name, {**base, **dict(data)})
        self._configs[name] = config
        return config

    def configure_all(self, data: Mapping[str, Any]) -> None:
        """Apply a `{policy: {...}}` mapping atomically: all valid, or nothing changes."""
        if not isinstance(data, Mapping):
            raise PolicyConfigError("policies: expected a mapping of policy name to settings")
        staged: dict[str, PolicyConfig] = {}
        errors: list[str] = []
        for name, settings in data.items():
            if name not in self._policies:
                errors.append(f"policies.{name}: unknown policy; known: {sorted(self._policies)}")
                continue
            if not isinstance(settings, Mapping):
                errors.append(f"policies.{name}: expected a mapping of settings")
                continue
            try:
                base = self._configs[name].model_dump()
                staged[name] = self.validate(name, {**base, **dict(settings)})
            except PolicyConfigError as exc:
                errors.append(str(exc))
        if errors:
            raise PolicyConfigError("\n".join(errors))
        self._configs.update(staged)

    def load_yaml(self, path: Path) -> None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyConfigError(f"{path}: {exc}") from exc
        policies = data.get("policies", data) if isinstance(data, Mapping) else data
        try:
            self.configure_all(policies)
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"{path}: {exc}") from exc

    def enabled(self) -> list[tuple[Policy, PolicyConfig]]:
        return [(self._policies[n], self._configs[n]) for n in self if self._configs[n].enabled]


def default_registry() -> PolicyRegistry:
    """A registry with every built-in policy, each with its default config."""
    from edgeroam.policies.builtin import builtin_policies

    registry = PolicyRegistry()
    for policy, config in builtin_policies():
        registry.register(policy, config)
    return registry
