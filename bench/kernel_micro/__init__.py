"""Kernel micro-benchmarks on a CUDA GPU: `python -m genrec_bench.bench.kernel_micro --json OUT.json`."""
