"""Errors of whole documents (scenario files, rules files): every problem with its location."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence


class DocumentError(ValueError):
    """A document cannot be used; the message names the source and each faulty location."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


def duplicate_problems(where: str, ids: Iterable[Hashable], what: str = "id") -> list[str]:
    """One problem per repeated id, located at its second and later occurrences."""
    values = list(ids)
    counts = Counter(values)
    seen: set[Hashable] = set()
    problems = []
    for i, ident in enumerate(values):
        if counts[ident] > 1 and ident in seen:
            problems.append(f"{where}[{i}].{what}: duplicate {what} {ident!r}")
        seen.add(ident)
    return problems
