"""Wire formats: the one definition of every message that crosses a process boundary.

Each model here is used by both the side that writes it and the side that reads it
(console, bridges, staff terminals, the drill player). This package imports nothing
from the rest of krise, so every layer may depend on it.
"""
