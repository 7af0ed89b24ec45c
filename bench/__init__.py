"""Benchmarks of the engine, the store, the run view and the local model.

Not part of the test suite: run them with `make bench` or one at a time with
`python -m bench.<name>` (see BENCHMARKS.md).
"""
