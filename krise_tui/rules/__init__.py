"""Pure rules (no I/O): message lint, ID numbers, SMS segments, triage, batching."""
