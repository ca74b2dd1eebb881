"""The explanation methods `sage compare` knows (light: the CLI reads it without importing torch).

Definitions and sources: sage/evaluation/baselines.py and docs/methods.md.
"""

METHODS = ("one-shot", "no-probe", "mi", "sage")
