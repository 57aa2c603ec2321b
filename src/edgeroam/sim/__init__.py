"""Discrete-time simulator of an edge network: clocks, rate profiles, scenarios, traffic, reports.

The building blocks here are pure (no I/O except scenario loading and report writing) so the
runner can replay a scenario deterministically from its seed and tests can check each piece
on small hand-made inputs.
"""
