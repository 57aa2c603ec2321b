"""Tag allocation: unique pairs, reuse after release, S-tag per access node, exhaustion."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.gateways.netns_vrgw import lan_mac, stacked_vlan_lines, vxlan_line
from edgeroam.gateways.vlan import (
    MAX_TAG,
    Circuit,
    TagAllocator,
    TagError,
    TagExhaustedError,
)

NODES = ("an1", "an2", "an3")

# A program of allocate/release steps: ("alloc", customer, node) or ("free", customer).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 40), st.sampled_from(NODES)),
        st.tuples(st.just("free"), st.integers(0, 40), st.just("")),
    ),
    max_size=120,
)


@given(steps)
@settings(max_examples=80, deadline=None)
def test_pairs_stay_unique_and_per_node_stags_disjoint(program: list[tuple[str, int, str]]) -> None:
    alloc = TagAllocator(s_range=(10, 14), c_range=(1, 6))
    home: dict[str, str] = {}
    for op, number, node in program:
        customer = f"c{number}"
        if op == "alloc":
            node = home.get(customer, node)
            try:
                circuit = alloc.allocate(customer, node)
            except TagExhaustedError:
                continue
            home[customer] = node
            assert circuit.access_node == node
        else:
            alloc.release(customer)
            home.pop(customer, None)
        held = alloc.circuits()
        pairs = [(c.s_tag, c.c_tag) for c in held.values()]
        assert len(pairs) == len(set(pairs)), "a tag pair is held twice"
        owner_of_s: dict[int, str] = {}
        for c in held.values():
            assert owner_of_s.setdefault(c.s_tag, c.access_node) == c.access_node
            assert 10 <= c.s_tag <= 14 and 1 <= c.c_tag <= 6
        assert set(held) == set(home)


@given(st.lists(st.integers(0, 29), unique=True, min_size=1, max_size=30))
@settings(max_examples=50, deadline=None)
def test_released_c_tags_are_reused_lowest_first(gone: list[int]) -> None:
    alloc = TagAllocator()
    for i in range(30):
        alloc.allocate(f"c{i}", "an1")
    freed = sorted(alloc.circuit(f"c{i}").c_tag for i in gone)  # type: ignore[union-attr]
    for i in gone:
        alloc.release(f"c{i}")
    again = [alloc.allocate(f"new{k}", "an1").c_tag for k in range(len(gone))]
    assert again == freed
    assert alloc.allocate("one-more", "an1").c_tag == 31


def test_stag_is_per_access_node_and_returns_to_the_pool() -> None:
    alloc = TagAllocator()
    a = alloc.allocate("alice", "an1")
    b = alloc.allocate("bob", "an1")
    c = alloc.allocate("carol", "an2")
    assert (a.s_tag, a.c_tag) == (1, 1)
    assert (b.s_tag, b.c_tag) == (1, 2)
    assert (c.s_tag, c.c_tag) == (2, 1)
    assert alloc.allocate("alice", "an1") == a  # idempotent
    alloc.release("carol")
    assert alloc.s_tags_of("an2") == ()
    d = alloc.allocate("dave", "an3")
    assert d.s_tag == 2  # an2's S-tag was returned and is reused


def test_a_full_access_node_gets_a_second_stag() -> None:
    alloc = TagAllocator(c_range=(1, 3))
    tags = [alloc.allocate(f"c{i}", "an1") for i in range(5)]
    assert [(t.s_tag, t.c_tag) for t in tags] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert alloc.s_tags_of("an1") == (1, 2)


def test_exhaustion_is_an_error_and_allocates_nothing() -> None:
    alloc = TagAllocator(s_range=(5, 5), c_range=(1, 2))
    alloc.allocate("a", "an1")
    alloc.allocate("b", "an1")
    with pytest.raises(TagExhaustedError, match=r"no free S-tag left in 5\.\.5"):
        alloc.allocate("c", "an1")
    with pytest.raises(TagExhaustedError, match="no free S-tag"):
        alloc.allocate("d", "an2")
    assert alloc.circuit("c") is None and alloc.circuit("d") is None
    assert len(alloc) == 2
    alloc.release("a")
    assert alloc.allocate("c", "an1") == Circuit("an1", 5, 1)


def test_limit_of_stags_per_node() -> None:
    alloc = TagAllocator(c_range=(1, 1), max_s_tags_per_node=2)
    alloc.allocate("a", "an1")
    alloc.allocate("b", "an1")
    with pytest.raises(TagExhaustedError, match="limit 2 per node"):
        alloc.allocate("c", "an1")


def test_moving_customer_must_release_first() -> None:
    alloc = TagAllocator()
    alloc.allocate("a", "an1")
    with pytest.raises(TagError, match="release it before moving"):
        alloc.allocate("a", "an2")


def test_rebuild_detects_conflicts() -> None:
    ok = TagAllocator.rebuild([("a", Circuit("an1", 3, 7)), ("b", Circuit("an1", 3, 8))])
    assert ok.allocate("c", "an1") == Circuit("an1", 3, 1)
    assert ok.allocate("d", "an2").s_tag == 1
    with pytest.raises(TagError, match="already held by"):
        TagAllocator.rebuild([("a", Circuit("an1", 3, 7)), ("b", Circuit("an1", 3, 7))])
    with pytest.raises(TagError, match="belongs to access node"):
        TagAllocator.rebuild([("a", Circuit("an1", 3, 7)), ("b", Circuit("an2", 3, 8))])


@given(st.integers(1, MAX_TAG), st.integers(1, MAX_TAG))
def test_vni_mapping_is_a_24_bit_bijection(s_tag: int, c_tag: int) -> None:
    circuit = Circuit("an1", s_tag, c_tag)
    assert 0 < circuit.vni < 2**24
    assert Circuit.from_vni("an1", circuit.vni) == circuit


@pytest.mark.parametrize("tag", [0, 4095])
def test_reserved_vlan_ids_are_refused(tag: int) -> None:
    with pytest.raises(TagError, match=r"outside 1\.\.4094"):
        Circuit("an1", tag, 1)


def test_circuit_realisations_carry_both_tags() -> None:
    circuit = Circuit("an1", 1, 5)
    line = vxlan_line("vx4101", circuit, ipaddress.IPv4Address("10.0.0.1"), "")
    assert f"id {circuit.vni} " in line and circuit.vni == 4101 and "nolearning" in line
    assert stacked_vlan_lines("tk0", circuit) == [
        "link add link tk0 name tk0.s1 type vlan proto 802.1ad id 1",
        "link set tk0.s1 up",
        "link add link tk0.s1 name c4101 type vlan proto 802.1Q id 5",
    ]
    assert lan_mac(circuit) == "02:e8:00:10:05:01"
