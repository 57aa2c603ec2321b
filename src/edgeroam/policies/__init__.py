"""Decision makers: pure functions from a snapshot and a config to proposals with reasons."""

from edgeroam.policies.base import Policy, PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.registry import PolicyRegistry, default_registry

__all__ = [
    "Policy",
    "PolicyConfig",
    "PolicyRegistry",
    "PolicyResult",
    "Proposal",
    "default_registry",
]
