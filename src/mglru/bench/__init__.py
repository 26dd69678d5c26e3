"""Benchmarks of the simulated kernel (one fresh interpreter per measured size)."""
