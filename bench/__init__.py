"""Benchmarks that print numbers; see README.md."""
