"""Vectors by text on disk, so a restart does not embed every question and post again.

Batching and rumour matching embed every question and post with a small neural model
(:mod:`krise_tui.text.embed`, in their services' worker threads). :class:`EmbeddingCache`
sits in front of the model and keeps each vector in SQLite under the SHA-256 of its
text: rebuilding the batcher or the matcher after a restart reads vectors instead of
computing them again.

(A helper process for the model was measured and not kept: with ``bench/intake.py`` on
two cores it gave intake no more than the thread did, once the services step back
during storms, see :mod:`krise_tui.runtime.pacing`.)
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from krise_tui.files import create_private

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # numpy is imported when vectors are first asked for (in the services'
    # worker threads), not while the console starts: it is a fifth of a second of import.
    import numpy as np
    import numpy.typing as npt


class EmbeddingCache:
    """Vectors by text on disk (SQLite), so a restart does not embed everything again."""

    def __init__(self, path: Path, encoder: Callable[[Sequence[str]], Any]) -> None:
        self.path = path
        self._encoder = encoder
        create_private(path)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")
        self._lock = threading.Lock()
        self._said: set[str] = set()

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            try:
                for i in range(0, len(keys), 500):
                    part = keys[i : i + 500]
                    marks = ",".join("?" * len(part))
                    for key, blob in self._db.execute(
                        f"SELECT key, v FROM vectors WHERE key IN ({marks})", part
                    ):
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            except sqlite3.Error as exc:  # a damaged cache: compute instead
                self._trouble("read", exc)
        missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in found]
        if missing:
            fresh = np.asarray(self._encoder([t for _, t in missing]), dtype=np.float32)
            with self._lock:
                try:
                    with self._db:  # committed, or rolled back
                        self._db.executemany(
                            "INSERT OR REPLACE INTO vectors(key, v) VALUES (?, ?)",
                            [(k, fresh[i].tobytes()) for i, (k, _) in enumerate(missing)],
                        )
                except sqlite3.Error as exc:  # a full disk: the vectors are still good
                    self._trouble("written", exc)
            for i, (k, _) in enumerate(missing):
                found[k] = fresh[i]
        return np.stack([found[k] for k in keys]).astype(np.float32)

    def _trouble(self, what: str, exc: sqlite3.Error) -> None:
        """A cache that cannot be read or written only costs time: batching and matching
        go on (they stopped on a full disk). Said once per kind of trouble."""
        said = f"{what}: {exc}"
        if said not in self._said:
            self._said.add(said)
            log.warning("embedding cache %s cannot be %s (computing instead)", self.path, said)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
