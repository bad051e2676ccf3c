"""Thin Python API over the library: one call per user-level task."""
