"""Telemetry: validation, the latest-value cache with ages, and short histories."""
