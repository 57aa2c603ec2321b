"""Fixtures of the real-testbed tests (marked `root`), imported by the conftests that need them.

Not root: they skip, saying so. Root but a prerequisite missing (a command, the nftables
binding, a cgroup controller): they fail, naming it — CI runs as root and must not pass by
skipping. Every bed a test builds gets a prefix of its own and is torn down by a finalizer,
whatever the test did; a session finalizer then checks that no namespace, cgroup or process of
the tests' prefix is left.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator

import pytest

from edgeroam.testbed import cgroups, prereqs
from edgeroam.testbed.builder import Bed, teardown
from edgeroam.testbed.nsutil import NETNS_DIR, list_netns, pids_in_netns
from edgeroam.testbed.topology import BedTopology

#: Test beds of this process: er7t<pid>x<n>- — not under `er7-`, so `edgeroam testbed down`
#: never removes a running test's bed, and concurrent test runs never remove each other's.
TEST_PREFIX = f"er7t{os.getpid() % 100_000}x"
_counter = itertools.count(1)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the testbed creates network namespaces, nftables and cgroups")
    missing = prereqs.missing()
    if missing:
        pytest.fail(
            "testbed prerequisite(s) missing: "
            + "; ".join(map(str, missing))
            + " — run: bash scripts/ensure-testbed-deps.sh",
            pytrace=False,
        )


@pytest.fixture
def root() -> None:
    require_root()


def leftovers(prefix: str) -> list[str]:
    names = list_netns(prefix)
    found = [f"netns {n}" for n in names]
    found += [f"pid {p} in {ns}" for ns, pids in pids_in_netns(names).items() for p in pids]
    found += [f"cgroup {c}" for c in cgroups.find_all(prefix)]
    return found


@pytest.fixture
def prefix(root: None) -> Iterator[str]:
    """A prefix of this test's own; everything under it is removed afterwards."""
    value = f"{TEST_PREFIX}{next(_counter)}-"
    assert not leftovers(value), f"{value} is already in use: {leftovers(value)}"
    yield value
    teardown(value)


@pytest.fixture
def make_bed(prefix: str) -> Iterator[Callable[[BedTopology], Bed]]:
    beds: list[Bed] = []

    def make(topology: BedTopology) -> Bed:
        bed = Bed.up(topology, prefix)
        beds.append(bed)
        return bed

    yield make
    for bed in beds:
        bed.down()


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """After the whole session: no namespace or cgroup of this process's prefixes remains."""
    yield
    if os.geteuid() != 0:
        return
    pattern = re.compile(rf"^{TEST_PREFIX}\d+-")
    netns = sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else []
    left = [n for n in netns if pattern.match(n)]
    left += [
        f"{c}/{entry}"
        for c in cgroups.CONTROLLERS
        if (cgroups.CGROUP_ROOT / c).is_dir()
        for entry in os.listdir(cgroups.CGROUP_ROOT / c)
        if pattern.match(entry + "-")
    ]
    for tag in {m.group(0) for item in left if (m := pattern.match(item.split("/")[-1] + "-"))}:
        teardown(tag)
    assert not left, f"testbed tests left behind: {left}"
