"""Benchmarks behind `edgeroam bench …`; figures go to docs/benchmarks.md."""
