"""The list of built-in policies; each later policy module adds itself here."""

from __future__ import annotations

from edgeroam.policies.base import Policy, PolicyConfig
from edgeroam.policies.bnb import BnbLifecyclePolicy
from edgeroam.policies.elastic import ElasticPolicy
from edgeroam.policies.facility import FacilityPolicy
from edgeroam.policies.gateways import GatewaysPolicy
from edgeroam.policies.heal import HealPolicy
from edgeroam.policies.offload import OffloadPolicy
from edgeroam.policies.ratio import FailoverPolicy, RatioPolicy
from edgeroam.rules.policy import RulesPolicy


def builtin_policies() -> list[tuple[Policy, PolicyConfig | None]]:
    return [
        (HealPolicy(), None),
        (FacilityPolicy(), None),
        (OffloadPolicy(), None),
        (BnbLifecyclePolicy(), None),
        (ElasticPolicy(), None),
        (RatioPolicy(), None),
        (FailoverPolicy(), None),
        (RulesPolicy(), None),
        (GatewaysPolicy(), None),
    ]
