"""SAGE: explain sparse-autoencoder features by experiment.

Public API: `load_subject`, `explain`, `explain_batch` (the latter two import the agent lazily).
"""

from __future__ import annotations

from sage.version import __version__

__all__ = ["__version__", "explain", "explain_batch", "load_subject"]


def load_subject(*args, **kwargs):
    from sage.model.subject import load_subject as _load

    return _load(*args, **kwargs)


def explain(*args, **kwargs):
    from sage.runs import explain as _explain

    return _explain(*args, **kwargs)


def explain_batch(*args, **kwargs):
    from sage.runs import explain_batch as _batch

    return _batch(*args, **kwargs)
