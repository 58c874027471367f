"""The tamper-evident journal."""
