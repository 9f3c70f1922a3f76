"""Operator and developer scripts (shell and Python); Python ones run as ``python -m scripts.X``."""
