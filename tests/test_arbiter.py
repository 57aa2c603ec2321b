"""Arbiter: property tests of its rules over random proposals and operation histories."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.arbiter import ArbiterConfig, Candidate, Decision, Verdict, arbitrate
from edgeroam.inventory import Inventory
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    Instance,
    OperationKind,
    OperationState,
    Reason,
    Resources,
    Site,
)
from edgeroam.policies.base import Proposal
from edgeroam.snapshot import OperationSummary, Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

NOW = 1000.0
SITES = ("s0", "s1", "s2")
HOSTS = tuple(f"h{i}" for i in range(6))
HOST_SITE = {h: SITES[i % len(SITES)] for i, h in enumerate(HOSTS)}
INSTANCES = tuple(f"i{i}" for i in range(8))
INSTANCE_HOST = {name: HOSTS[(3 * i) % len(HOSTS)] for i, name in enumerate(INSTANCES)}
GROUPS = ("g0", "g1")
NAMES = INSTANCES + GROUPS
POLICIES = ("alpha", "beta", "gamma")
KINDS = (OperationKind.MIGRATE, OperationKind.HEAL, OperationKind.SCALE_OUT, OperationKind.UPDATE)


def build_inventory() -> Inventory:
    inv = Inventory()
    inv.load(
        sites=[Site(id=s, kind="edge") for s in SITES],
        customers=[Customer(id="c")],
        flavors=[Flavor(id="f", vcpu=1, memory_mb=1)],
        functions=[FunctionSpec(name="fn", flavor="f")],
        hosts=[
            Host(id=h, kind="server", site=HOST_SITE[h], capacity=Resources(vcpu=100))
            for h in HOSTS
        ],
        instances=[
            Instance(id=i, function="fn", host=h, stage="monitoring")
            for i, h in INSTANCE_HOST.items()
        ],
    )
    return inv


INVENTORY = build_inventory()


def snapshot_with(ops: tuple[OperationSummary, ...]) -> Snapshot:
    return build_snapshot(NOW, INVENTORY, TelemetryCache(), ops)


def sites_of(hosts: tuple[str, ...], instances: tuple[str, ...]) -> set[str]:
    touched = set(hosts) | {INSTANCE_HOST[i] for i in instances if i in INSTANCE_HOST}
    return {HOST_SITE[h] for h in touched}


# -- strategies ---------------------------------------------------------------------------------
# Built once: constructing strategies inside a composite makes Hypothesis re-validate them per draw.
MOSTLY_FALSE = st.sampled_from([False, False, False, True])
STATES = st.sampled_from(list(OperationState))
OP_KINDS = st.sampled_from(KINDS)
SOME_INSTANCES = st.lists(st.sampled_from(INSTANCES), max_size=2, unique=True).map(tuple)
SOME_HOSTS = st.lists(st.sampled_from(HOSTS), max_size=2, unique=True).map(tuple)
ONE_HOST = st.lists(st.sampled_from(HOSTS), max_size=1).map(tuple)
A_NAME = st.sampled_from(NAMES)
A_POLICY = st.sampled_from(POLICIES)
FRACTION = st.floats(0, 1)
AGE = st.floats(0, 400)
SMALL = st.integers(0, 3)
PARAMS = st.sampled_from([{}, {"x": 1}])
DEADLINE = st.sampled_from([None, NOW + 10, NOW + 20])
REASON = Reason(rule="r", message="m")


@st.composite
def summaries(draw: st.DrawFn, index: int) -> OperationSummary:
    state = draw(STATES)
    instances = draw(SOME_INSTANCES)
    hosts = draw(SOME_HOSTS)
    created = NOW - draw(AGE)
    finished = created + draw(FRACTION) * (NOW - created) if state.final else None
    return OperationSummary(
        id=f"op-{index}",
        kind=draw(OP_KINDS),
        state=state,
        subject=draw(A_NAME),
        instances=instances,
        hosts=hosts,
        sites=tuple(sorted(sites_of(hosts, instances))),
        policy=draw(A_POLICY),
        created_at=created,
        finished_at=finished,
    )


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    instances = draw(SOME_INSTANCES)
    subject = draw(A_NAME)
    if instances and draw(st.booleans()):
        subject = instances[0]
    proposal = Proposal(
        kind=draw(OP_KINDS),
        subject=subject,
        instances=instances,
        hosts=draw(SOME_HOSTS),
        sources=draw(ONE_HOST),
        params=draw(PARAMS),
        priority=draw(SMALL),
        deadline=draw(DEADLINE),
        policy=draw(A_POLICY),
        reason=REASON,
    )
    return Candidate(proposal, precedence=draw(SMALL), dry_run=draw(MOSTLY_FALSE))


configs = st.builds(
    ArbiterConfig,
    dry_run=MOSTLY_FALSE,
    max_concurrent=st.integers(1, 12),
    site_rate_limit=st.integers(1, 8),
    site_rate_window_s=st.sampled_from([10.0, 60.0, 300.0]),
    cooldown_s=st.sampled_from([0.0, 30.0, 120.0]),
    cooldown_by_kind=st.sampled_from([{"heal": 0.0}, {}, {"migrate": 500.0}]),
)


@dataclass
class Case:
    ops: tuple[OperationSummary, ...]
    cands: list[Candidate]
    config: ArbiterConfig


N_OPS = st.integers(0, 12)
SUMMARIES = [summaries(i) for i in range(12)]
CANDIDATES = st.lists(candidates(), max_size=14)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_ops = draw(N_OPS)
    ops = tuple(draw(SUMMARIES[i]) for i in range(n_ops))
    cands = draw(CANDIDATES)
    return Case(ops, cands, draw(configs))


def run(case: Case) -> list[Decision]:
    return arbitrate(case.cands, snapshot_with(case.ops), case.config)


def names(p: Proposal) -> set[str]:
    return {p.subject, *p.instances}


def granted(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if d.verdict is not Verdict.REFUSED]


# -- properties ---------------------------------------------------------------------------------
# Each check takes a case and the decisions the arbiter took for it; one Hypothesis test runs them
# all on every generated cycle (generating a cycle costs more than checking it).
def check_one_decision_each(case: Case, decisions: list[Decision]) -> None:
    assert Counter(id(d.proposal) for d in decisions) == Counter(id(c.proposal) for c in case.cands)
    for d in decisions:
        assert d.rule
        assert d.message


def check_one_operation_per_instance_never_busy(case: Case, decisions: list[Decision]) -> None:
    busy = {n for op in case.ops if op.state.in_flight for n in (op.subject, *op.instances)}
    claimed: set[str] = set()
    for d in granted(decisions):
        mine = names(d.proposal)
        assert not mine & busy, f"{d} touches busy {mine & busy}"
        assert not mine & claimed, f"{d} touches {mine & claimed}, already claimed"
        claimed |= mine
    for d in decisions:
        if names(d.proposal) & busy:
            assert (d.verdict, d.rule) == (Verdict.REFUSED, "busy")


def check_superseded_lost_to_lower_precedence(case: Case, decisions: list[Decision]) -> None:
    precedence = {id(c.proposal): c.precedence for c in case.cands}
    winners = granted(decisions)
    for d in decisions:
        if d.rule != "superseded":
            continue
        rivals = [w for w in winners if names(w.proposal) & names(d.proposal)]
        assert rivals, f"{d} superseded by nobody"
        assert min(precedence[id(w.proposal)] for w in rivals) <= precedence[id(d.proposal)]


def check_cooldown(case: Case, decisions: list[Decision]) -> None:
    last: dict[str, float] = {}
    for op in case.ops:
        touched = op.finished_at if op.finished_at is not None else op.created_at
        for n in (op.subject, *op.instances):
            last[n] = max(last.get(n, float("-inf")), touched)
    for d in granted(decisions):
        cooldown = case.config.cooldown_by_kind.get(d.proposal.kind.value, case.config.cooldown_s)
        for n in names(d.proposal):
            assert NOW - last.get(n, float("-inf")) >= cooldown, f"{n} still cooling: {d}"


def check_site_rate_limit(case: Case, decisions: list[Decision]) -> None:
    window = case.config.site_rate_window_s
    recent: Counter[str] = Counter()
    for op in case.ops:
        if NOW - op.created_at < window:
            recent.update(op.sites)
    started: Counter[str] = Counter()
    for d in decisions:
        if d.verdict is Verdict.ACCEPTED:
            p = d.proposal
            started.update(sites_of((*p.hosts, *p.sources), p.instances))
    for site, count in started.items():
        assert recent[site] + count <= case.config.site_rate_limit, site


def check_max_concurrent(case: Case, decisions: list[Decision]) -> None:
    in_flight = sum(1 for op in case.ops if op.state.in_flight)
    accepted = sum(1 for d in decisions if d.verdict is Verdict.ACCEPTED)
    assert accepted <= max(0, case.config.max_concurrent - in_flight)


def check_dry_run(case: Case, decisions: list[Decision]) -> None:
    by_id = {id(c.proposal): c for c in case.cands}
    for d in decisions:
        if by_id[id(d.proposal)].dry_run or case.config.dry_run:
            assert d.verdict is not Verdict.ACCEPTED
    dry = case.config.model_copy(update={"dry_run": True})
    everything_dry = arbitrate(case.cands, snapshot_with(case.ops), dry)
    assert not [d for d in everything_dry if d.verdict is Verdict.ACCEPTED]


CHECKS = [
    check_one_decision_each,
    check_one_operation_per_instance_never_busy,
    check_superseded_lost_to_lower_precedence,
    check_cooldown,
    check_site_rate_limit,
    check_max_concurrent,
    check_dry_run,
]


@settings(max_examples=200, deadline=None)
@given(cases())
def test_arbiter_rules_hold_on_random_cycles(case: Case) -> None:
    decisions = run(case)
    for check in CHECKS:
        check(case, decisions)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_checks_can_fail(check: object) -> None:
    """Each check rejects a deliberately wrong arbiter: one that accepts everything."""
    ops = (
        OperationSummary(
            id="op-1",
            kind=OperationKind.MIGRATE,
            state=OperationState.PROCESSING,
            subject="i0",
            instances=("i0",),
            hosts=("h0",),
            sites=("s0",),
            policy="alpha",
            created_at=NOW - 1,
            finished_at=None,
        ),
        OperationSummary(
            id="op-2",
            kind=OperationKind.MIGRATE,
            state=OperationState.COMPLETED,
            subject="i1",
            instances=("i1",),
            hosts=("h0",),
            sites=("s0",),
            policy="alpha",
            created_at=NOW - 2,
            finished_at=NOW - 1,
        ),
    )
    cands = [
        Candidate(proposal("i0", hosts=("h0",)), 1),
        Candidate(proposal("i1", hosts=("h0",)), 1),
        Candidate(proposal("i2", hosts=("h0",)), 2, dry_run=True),
        Candidate(proposal("i2", hosts=("h1",)), 1),
    ]
    case = Case(ops, cands, ArbiterConfig(max_concurrent=1, site_rate_limit=1, cooldown_s=10))
    wrong = [Decision(c.proposal, Verdict.ACCEPTED, "accepted", "accepted") for c in cands]
    wrong[-1] = Decision(cands[-1].proposal, Verdict.REFUSED, "superseded", "by nobody")
    if check is check_one_decision_each:
        wrong = wrong[:-1]
    with pytest.raises(AssertionError):
        check(case, wrong)  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_input_order(case: Case, rnd: random.Random) -> None:
    def outcome(cands: list[Candidate]) -> list[tuple[str, int, bool, str, str, str]]:
        decisions = arbitrate(cands, snapshot_with(case.ops), case.config)
        meta = {id(c.proposal): c for c in cands}
        return [
            (
                d.proposal.model_dump_json(),
                meta[id(d.proposal)].precedence,
                meta[id(d.proposal)].dry_run,
                d.verdict.value,
                d.rule,
                d.message,
            )
            for d in decisions
        ]

    shuffled = list(case.cands)
    rnd.shuffle(shuffled)
    assert outcome(shuffled) == outcome(list(case.cands))


# -- examples -----------------------------------------------------------------------------------
def proposal(subject: str, *, policy: str = "alpha", priority: int = 0, **kw: object) -> Proposal:
    return Proposal(
        kind=kw.pop("kind", OperationKind.MIGRATE),  # type: ignore[arg-type]
        subject=subject,
        instances=kw.pop("instances", (subject,)),  # type: ignore[arg-type]
        hosts=kw.pop("hosts", ("h1",)),  # type: ignore[arg-type]
        policy=policy,
        priority=priority,
        reason=Reason(rule="r", message="m"),
    )


@pytest.mark.parametrize("order", [1, -1])
def test_lower_precedence_value_wins_whatever_the_order(order: int) -> None:
    strong = Candidate(proposal("i0", policy="heal", priority=0), precedence=10)
    weak = Candidate(proposal("i0", policy="balance", priority=9), precedence=20)
    decisions = arbitrate([strong, weak][::order], snapshot_with(()), ArbiterConfig())
    verdicts = {d.proposal.policy: (d.verdict, d.rule) for d in decisions}
    assert verdicts["heal"] == (Verdict.ACCEPTED, "accepted")
    assert verdicts["balance"] == (Verdict.REFUSED, "superseded")
    refused = next(d for d in decisions if d.proposal.policy == "balance")
    assert "i0" in refused.message
    assert "heal:migrate" in refused.message


def test_priority_orders_proposals_of_equal_precedence() -> None:
    low = Candidate(proposal("i0", policy="p", priority=1, hosts=("h1",)), precedence=5)
    high = Candidate(proposal("i0", policy="p", priority=3, hosts=("h2",)), precedence=5)
    decisions = arbitrate([low, high], snapshot_with(()), ArbiterConfig())
    accepted = [d for d in decisions if d.verdict is Verdict.ACCEPTED]
    assert [d.proposal.hosts for d in accepted] == [("h2",)]


def test_cooldown_refusal_names_the_subject_and_the_time() -> None:
    done = OperationSummary(
        id="op-1",
        kind=OperationKind.MIGRATE,
        state=OperationState.COMPLETED,
        subject="i0",
        instances=("i0",),
        hosts=("h1",),
        sites=(HOST_SITE["h1"],),
        policy="p",
        created_at=NOW - 50,
        finished_at=NOW - 12.5,
    )
    config = ArbiterConfig(cooldown_s=30)
    [decision] = arbitrate([Candidate(proposal("i0"), 1)], snapshot_with((done,)), config)
    assert (decision.verdict, decision.rule) == (Verdict.REFUSED, "cooldown")
    assert decision.message == "i0 had an operation 12.5 s ago (cooldown 30 s)"
    heal = proposal("i0", kind=OperationKind.HEAL)
    [decision] = arbitrate([Candidate(heal, 1)], snapshot_with((done,)), config)
    assert decision.verdict is Verdict.ACCEPTED  # healing is exempt by default


def test_rate_limit_and_concurrency_refusals_name_their_rule() -> None:
    config = ArbiterConfig(site_rate_limit=1, max_concurrent=2)
    cands = [Candidate(proposal(i, hosts=(INSTANCE_HOST[i],)), 1) for i in ("i0", "i1", "i2", "i3")]
    decisions = arbitrate(cands, snapshot_with(()), config)
    rules = Counter(d.rule for d in decisions)
    touched = [sites_of(c.proposal.hosts, c.proposal.instances) for c in cands]
    # With one start per site, the distinct sites bound the accepted count, and so does the cap.
    assert rules["accepted"] == min(2, len(set().union(*touched)))
    assert rules["accepted"] + rules["site_rate_limit"] + rules["max_concurrent"] == len(cands)


def test_dry_run_records_and_claims_without_starting() -> None:
    cands = [
        Candidate(proposal("i0", policy="a"), precedence=1, dry_run=True),
        Candidate(proposal("i0", policy="b"), precedence=2),
        Candidate(proposal("i1", policy="b"), precedence=2),
    ]
    decisions = arbitrate(cands, snapshot_with(()), ArbiterConfig(max_concurrent=1))
    by_policy_subject = {(d.proposal.policy, d.proposal.subject): d for d in decisions}
    assert by_policy_subject[("a", "i0")].verdict is Verdict.DRY_RUN
    assert by_policy_subject[("b", "i0")].rule == "superseded"
    # The dry-run did not use the single concurrency slot.
    assert by_policy_subject[("b", "i1")].verdict is Verdict.ACCEPTED
