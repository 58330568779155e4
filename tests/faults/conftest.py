"""Fixtures of the fault and load tests (the transport ones share the core tests' helpers)."""
