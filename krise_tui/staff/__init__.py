"""Textual terminal for staff."""
