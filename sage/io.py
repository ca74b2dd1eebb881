"""Shared file mechanics: atomic writes, cache keys, append-only JSONL with one torn-line rule."""
