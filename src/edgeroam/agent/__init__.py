"""The agent of a CPE or server: reports telemetry and carries out the controller's actions."""
