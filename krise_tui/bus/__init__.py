"""The MQTT bus: topics, signed envelopes, the session and the brokers."""
