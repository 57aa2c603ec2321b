"""What a function's copy on a customer's CPE does with the traffic it receives.

Moving a function from the vCPE server to the CPE only relieves the CPE↔server band if the CPE
copy keeps traffic off it. A DHCP copy answers requests itself; a security filter discards the
attack; a NAT still sends everything on. Each function declares this as an ordered list of
rules matched against a flow's destination and protocol; a rule value written ``$name`` takes
the copy's parameter `name`, so a filter offloaded with ``destination: 50.1.1.1`` matches exactly
the flows it was started for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from edgeroam.model.base import Model


class CpeAction(StrEnum):
    """The fate of one flow at a CPE copy of its function."""

    ANSWER = "answer"
    """Served on the CPE: nothing crosses the band (DHCP, a cache hit, a registrar)."""
    DROP = "drop"
    """Discarded on the CPE: nothing crosses the band (a filter blocking an attack)."""
    FORWARD = "forward"
    """Processed on the CPE and sent on: the band still carries it, no server copy handles it."""
    PASS = "pass"
    """Not for the CPE copy: it goes to the server copy exactly as before the offload."""

    @property
    def keeps_off_band(self) -> bool:
        return self in (CpeAction.ANSWER, CpeAction.DROP)

    @property
    def handled_on_cpe(self) -> bool:
        return self is not CpeAction.PASS


_MATCH_FIELDS = ("destination", "protocol")


class FlowMatch(Model):
    """Which flows a rule applies to; an unset field matches any flow."""

    destination: str | None = Field(
        default=None, min_length=1, description="Destination address, or $param of the copy."
    )
    protocol: str | None = Field(
        default=None, min_length=1, description="Protocol name, or $param of the copy."
    )

    @field_validator("destination", "protocol")
    @classmethod
    def _reference_is_named(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("$") and len(value) == 1:
            raise ValueError("'$' must be followed by a parameter name")
        return value

    def references(self) -> set[str]:
        """Names of the copy's parameters this match reads."""
        found = set()
        for name in _MATCH_FIELDS:
            value = getattr(self, name)
            if value is not None and value.startswith("$"):
                found.add(value[1:])
        return found

    def matches(
        self, destination: str | None, protocol: str | None, params: dict[str, Any]
    ) -> bool:
        """True when every set field equals the flow's; a reference to an unset parameter
        matches nothing, so a filter started without a destination filters nothing."""
        for wanted, actual in ((self.destination, destination), (self.protocol, protocol)):
            if wanted is None:
                continue
            if wanted.startswith("$"):
                resolved = params.get(wanted[1:])
                if resolved is None:
                    return False
                wanted = str(resolved)
            if actual != wanted:
                return False
        return True


class TrafficRule(Model):
    match: FlowMatch = FlowMatch()
    action: CpeAction


class TrafficBehaviour(Model):
    """Rules tried in order; the first whose match fits decides, `otherwise` decides the rest.

    The default (no rules, answer everything) is what a copy on the CPE did before functions
    declared anything: the flow ends at the CPE.
    """

    rules: tuple[TrafficRule, ...] = ()
    otherwise: CpeAction = CpeAction.ANSWER

    def action_for(
        self, destination: str | None, protocol: str | None, params: dict[str, Any]
    ) -> CpeAction:
        for rule in self.rules:
            if rule.match.matches(destination, protocol, params):
                return rule.action
        return self.otherwise

    def references(self) -> set[str]:
        found: set[str] = set()
        for rule in self.rules:
            found |= rule.match.references()
        return found

    @property
    def can_relieve(self) -> bool:
        """Whether a CPE copy can keep any traffic off the band (answer or drop some of it)."""
        actions = {rule.action for rule in self.rules} | {self.otherwise}
        return any(action.keeps_off_band for action in actions)
