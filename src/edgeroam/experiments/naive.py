"""The baseline the `elastic` experiment compares against: a naive threshold autoscaler.

What a first autoscaler usually is, on purpose: one alarm per instance (every member past the
overload level asks for one more member, every member under the underload level asks to be
removed), each sample acted on at once (no occurrence count, no hysteresis beyond the two
levels), no cooldown, and no idea of lifecycle operations (it reads the load as measured, also
while an operation inflates it, and acts whatever else runs). Its minimum/maximum check counts
the group's members and the alarms it already acted on in the cycle, so it never empties a
group in one go; but it does not know what operations in flight are doing (a member being
removed still counts, and asking to remove it again is refused), so it can overshoot both while
members come and go. It has no health checks. Used only by the experiment; never registered as
a built-in.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from edgeroam.model import OperationKind, Reason
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.elastic import MemberPlacement
from edgeroam.policies.groupstate import group_index
from edgeroam.snapshot import Snapshot


class NaiveConfig(PolicyConfig):
    precedence: int = 40
    overload: float = Field(default=0.8, gt=0, description="Per-instance alarm level.")
    underload: float = Field(default=0.35, ge=0)
    branch_limit: float = Field(default=0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> NaiveConfig:
        if self.underload >= self.overload:
            raise ValueError(f"underload {self.underload} must be below overload {self.overload}")
        return self


class NaiveAutoscaler:
    name: ClassVar[str] = "naive"
    config_model: ClassVar[type[PolicyConfig]] = NaiveConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, NaiveConfig)
        if not snapshot.groups:
            return PolicyResult(memory=memory)
        index = group_index(snapshot)
        placement = MemberPlacement(snapshot, config.branch_limit)
        utilisation = np.full(len(index.inst_ids), np.nan)
        for row, name in enumerate(index.inst_ids):
            if not (index.inst_active[row] and index.inst_serving[row]):
                continue
            group = index.groups[int(index.inst_group[row])]
            values = [snapshot.telemetry.value(f"instance:{name}", m.name) for m in group.metrics]
            known = [
                v / m.capacity for v, m in zip(values, group.metrics, strict=True) if v is not None
            ]
            if any(v is not None for v in values):
                utilisation[row] = max(known, default=0.0)
        proposals: list[Proposal] = []
        for g, group in enumerate(index.groups):
            rows = np.flatnonzero((index.inst_group == g) & index.inst_active)
            size = len(rows)
            for found in rows:
                row = int(found)
                util = utilisation[row]
                if np.isnan(util):
                    continue
                name = index.inst_ids[row]
                if util > config.overload and size < group.max_size:
                    size += 1
                    result = placement.place(group)
                    if result.host is None:
                        continue
                    proposals.append(
                        Proposal(
                            kind=OperationKind.SCALE_OUT,
                            subject=name,
                            function=group.function,
                            hosts=(result.host,),
                            params={"_group": group.id},
                            reason=Reason(
                                rule="instance_overloaded",
                                message=f"{name} of {group.id} at {util:.2f} > "
                                f"{config.overload}: add a member on {result.host}",
                                measured={"utilisation": round(float(util), 4)},
                                thresholds={"overload": config.overload},
                            ),
                        )
                    )
                elif util < config.underload and size > group.min_size:
                    size -= 1
                    proposals.append(
                        Proposal(
                            kind=OperationKind.SCALE_IN,
                            subject=name,
                            instances=(name,),
                            function=group.function,
                            reason=Reason(
                                rule="instance_underloaded",
                                message=f"{name} of {group.id} at {util:.2f} < "
                                f"{config.underload}: remove it",
                                measured={"utilisation": round(float(util), 4)},
                                thresholds={"underload": config.underload},
                            ),
                        )
                    )
        return PolicyResult(proposals=tuple(proposals), memory=memory)
