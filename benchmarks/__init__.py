"""Benchmarks of the write paths (``python -m benchmarks.bronze_silver``)."""
