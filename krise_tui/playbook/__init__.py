"""Playbooks and the organisation file: the rules of each incident, as validated data."""
