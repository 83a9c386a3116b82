"""References and helpers shared by several test modules and the benchmarks (never imported from a test module)."""
