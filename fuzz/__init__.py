"""Fuzzing lkm's parsers: ``python -m fuzz TARGET --runs N --seed S`` (see README.md)."""
