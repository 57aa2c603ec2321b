"""Merges the proposals of all policies into the operations that will actually run.

Rules, applied in order of policy precedence (then proposal priority, then a stable key):
one operation per instance at a time (in flight, or already claimed this cycle), cooldown after
the last operation on a subject, a cap on concurrent operations, a per-site rate limit, and
dry-run. Every proposal comes out as a Decision — accepted, refused (with the rule that refused
it) or dry-run — so refusals are as visible as actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from edgeroam.model import Model
from edgeroam.policies.base import Proposal
from edgeroam.snapshot import Snapshot


class ArbiterConfig(Model):
    dry_run: bool = False
    max_concurrent: int = Field(default=64, ge=1, description="Operations in flight at once.")
    site_rate_limit: int = Field(
        default=20, ge=1, description="Operations that may start per site per window."
    )
    site_rate_window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(
        default=30.0, ge=0, description="Quiet time on a subject after its last operation."
    )
    cooldown_by_kind: dict[str, float] = Field(
        default_factory=lambda: {
            "heal": 0.0,
            "promote": 0.0,
            "cordon": 0.0,
            "uncordon": 0.0,
            "power-off": 0.0,
            "power-on": 0.0,
            "update": 0.0,
        },
        description="Overrides of cooldown_s for the next operation's kind: healing a dead "
        "instance, promoting a standby in its place and the host-state steps of an evacuation "
        "(cordon, power-off, power-on, uncordon) should not wait, nor should a settings update "
        "(it moves nothing).",
    )


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class Candidate:
    proposal: Proposal
    precedence: int
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    proposal: Proposal
    verdict: Verdict
    rule: str
    message: str


def _sites(proposal: Proposal, snapshot: Snapshot) -> set[str]:
    hosts = set(proposal.hosts) | set(proposal.sources)
    for name in proposal.instances:
        instance = snapshot.instances.get(name)
        if instance is not None:
            hosts.add(instance.host)
    return {snapshot.hosts[h].site for h in hosts if h in snapshot.hosts}


def arbitrate(
    candidates: Sequence[Candidate], snapshot: Snapshot, config: ArbiterConfig
) -> list[Decision]:
    now = snapshot.now
    busy = snapshot.busy
    in_flight = sum(1 for op in snapshot.operations if op.state.in_flight)
    last_touch: dict[str, float] = {}
    site_starts: dict[str, int] = {}
    for op in snapshot.operations:
        touched = op.finished_at if op.finished_at is not None else op.created_at
        for name in (op.subject, *op.instances):
            last_touch[name] = max(last_touch.get(name, -float("inf")), touched)
        if now - op.created_at < config.site_rate_window_s:
            for site in op.sites:
                site_starts[site] = site_starts.get(site, 0) + 1

    ordered = sorted(
        candidates,
        key=lambda c: (
            c.precedence,
            -c.proposal.priority,
            c.proposal.deadline if c.proposal.deadline is not None else float("inf"),
            c.proposal.policy,
            c.proposal.kind.value,
            c.proposal.subject,
            # Full tie-break, so the decisions never depend on the order proposals arrived in.
            c.dry_run,
            c.proposal.model_dump_json(),
        ),
    )
    claimed: dict[str, str] = {}
    decisions: list[Decision] = []
    for cand in ordered:
        p = cand.proposal
        names = (p.subject, *p.instances)

        def refuse(rule: str, message: str, p: Proposal = p) -> None:
            decisions.append(Decision(p, Verdict.REFUSED, rule, message))

        busy_names = sorted(n for n in names if n in busy)
        if busy_names:
            refuse("busy", f"{', '.join(busy_names)} already has an operation in flight")
            continue
        taken = sorted(n for n in names if n in claimed)
        if taken:
            winner = claimed[taken[0]]
            refuse("superseded", f"{taken[0]} is already claimed this cycle by {winner}")
            continue
        cooldown = config.cooldown_by_kind.get(p.kind.value, config.cooldown_s)
        cooling = [n for n in names if now - last_touch.get(n, -float("inf")) < cooldown]
        if cooling:
            since = now - last_touch[cooling[0]]
            refuse(
                "cooldown",
                f"{cooling[0]} had an operation {since:.1f} s ago (cooldown {cooldown:g} s)",
            )
            continue
        sites = _sites(p, snapshot)
        limited = sorted(s for s in sites if site_starts.get(s, 0) >= config.site_rate_limit)
        if limited:
            refuse(
                "site_rate_limit",
                f"site {limited[0]} reached {config.site_rate_limit} operations per "
                f"{config.site_rate_window_s:g} s",
            )
            continue
        dry = config.dry_run or cand.dry_run
        if not dry and in_flight >= config.max_concurrent:
            refuse("max_concurrent", f"{in_flight} operations already in flight")
            continue
        for name in names:
            claimed[name] = f"{p.policy}:{p.kind.value}"
        if dry:
            decisions.append(
                Decision(p, Verdict.DRY_RUN, "dry_run", "dry-run: recorded, not executed")
            )
            continue
        for site in sites:
            site_starts[site] = site_starts.get(site, 0) + 1
        in_flight += 1
        decisions.append(Decision(p, Verdict.ACCEPTED, "accepted", "accepted"))
    return decisions
