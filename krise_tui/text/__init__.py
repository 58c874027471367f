"""Shared text representation for question batching and rumour matching."""
