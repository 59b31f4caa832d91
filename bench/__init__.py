"""Benchmarks of accuracy and speed; each prints a table with the machine and settings."""
