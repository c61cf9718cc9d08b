"""Micro-benchmarks of the custom kernels: Triton vs torch eager vs torch.compile on the same inputs."""
