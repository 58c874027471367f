"""krise: a crisis-communication command centre for Norwegian municipalities."""

__version__ = "0.1.0"
