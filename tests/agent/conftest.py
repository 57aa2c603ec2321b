"""The real-testbed fixtures (see tests/testbed/fixtures.py)."""

from tests.testbed.fixtures import _nothing_left_behind, prefix, root

__all__ = ["_nothing_left_behind", "prefix", "root"]
