"""Synthetic linear-regression data with a known least-squares solution."""
