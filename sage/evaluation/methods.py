"""The explanation methods `sage compare` knows (light: the CLI reads it without importing torch).

Definitions and sources: sage/evaluation/baselines.py and docs/methods.md.
"""

METHODS = ("one-shot", "no-probe", "mi", "sage")
#: methods `sage compare --methods` accepts beyond the defaults: `neuronpedia` (Neuronpedia's own
#: explanation of each feature, text only) needs a Neuronpedia subject or `--neuronpedia-results`
EXTRA_METHODS = ("neuronpedia",)
