"""Benchmarks: run the closure once → oracle → time it → memory → the schema'd record in extra_info."""
