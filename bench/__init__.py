"""Bastion's benchmarks (``make bench``): figures, not tests, written to docs/benchmarks.md."""

__all__: list[str] = []
