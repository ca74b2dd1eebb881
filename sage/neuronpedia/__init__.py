"""Neuronpedia interop: its public SAEs as an activation source (`source`, over the API client `api`),
and its explanation export layout (`interop`). Formats and sources: docs/neuronpedia.md."""
