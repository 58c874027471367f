"""The headless core: events, state fold, engine and outbox. Never imports textual."""
