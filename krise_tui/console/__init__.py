"""Textual console for the crisis leadership."""
