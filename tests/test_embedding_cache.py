"""The vector cache in front of the embedding model: a cache, never a reason to stop."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from krise_tui.runtime.embedding import EmbeddingCache
from tests.conftest import disk_full, disk_room


class CountingEncoder:
    """Vectors from the text itself (length, vowels): enough to tell texts apart."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += texts
        return np.array([[len(t), sum(c in "aeiouyæøå" for c in t)] for t in texts], "f4")


def test_vectors_come_from_the_file_after_a_restart(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "v.sqlite3", encoder)
    first = cache(["Er vannet trygt?", "Hvilke veier er stengt?"])
    cache.close()
    again = EmbeddingCache(tmp_path / "v.sqlite3", encoder)
    assert np.array_equal(again(["Hvilke veier er stengt?"]), first[1:])
    assert encoder.encoded == ["Er vannet trygt?", "Hvilke veier er stengt?"]  # not again
    again.close()


def test_a_full_disk_under_the_cache_does_not_stop_batching(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache's write failed with the disk full, and the error went up to batching
    and rumour matching, which stopped (SQLite's page limit stands in for the disk)."""
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "v.sqlite3", encoder)
    cache(["Er vannet trygt?"])
    disk_full(cache._db)
    texts = [f"Spørsmål nummer {i} om flommen i sentrum" for i in range(400)]
    with caplog.at_level(logging.WARNING):
        vectors = cache(texts)
        cache(texts)  # computed again: nothing was stored
    assert np.array_equal(vectors, encoder(texts))
    said = [r.getMessage() for r in caplog.records if "embedding cache" in r.getMessage()]
    assert len(said) == 1 and "cannot be written: database or disk is full" in said[0]
    disk_room(cache._db)  # room again: stored
    cache(texts)
    before = len(encoder.encoded)
    assert np.array_equal(cache(texts), vectors) and len(encoder.encoded) == before
    cache.close()
