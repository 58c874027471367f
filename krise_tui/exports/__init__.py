"""Exports of messages and the journal (CAP 1.2, Noark 5, JSON/CSV)."""
