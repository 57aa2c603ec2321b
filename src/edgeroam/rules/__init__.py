"""Operator rules (seed 002 ¶0054–0061): conditions over metrics, states and operations that
trigger built-in or custom actions; see docs/elastic.md."""

from edgeroam.rules.model import RulesError, RuleSet, load_rules, parse_rules
from edgeroam.rules.reload import reload_rules

__all__ = ["RuleSet", "RulesError", "load_rules", "parse_rules", "reload_rules"]
