"""Online batching of citizen questions: one shared answer per batch of same-meaning questions.

Questions arrive one at a time (SMS, Facebook, Mastodon, the website form). Each either
joins an existing *batch* (a group of questions that one answer serves) or opens a new
one. The playbook's anticipated questions pre-exist as *seeded* batches, and operators
correct the result (merge, split, move); later assignments respect their corrections.

How a question is placed (measured on the dev sets, see ``bench/batching.py``):

1. Text → vector. :func:`prepare` rewrites nynorsk and dialect spellings to bokmål
   (:mod:`krise_tui.text.normalise`) and the result is embedded with multilingual e5
   ("query: " prefix, :mod:`krise_tui.text.embed`).
2. Centring per language. Raw e5 cosines sit in a narrow band (0.75–0.95) whose offset
   depends on the language and on the incident's topic, and an English and a Norwegian
   question about the same thing score lower than two unrelated Norwegian ones. Each
   vector is therefore centred on a running mean of its language (``no``, ``en``,
   ``sv``, ``unknown``), estimated online from everything seen so far and shrunk towards
   the mean of a small built-in set of everyday municipal questions
   (:data:`BACKGROUND_QUESTIONS`) while few posts have arrived. This removes the shared
   "incident" direction and the language direction; on the Norwegian dev set it raised
   the best online B-cubed F1 from about 0.55 to over 0.6.
3. Score against groups. A batch holds one or more *groups* (prototypes). A new question
   is scored against each group by average cosine to the group's members (average
   linkage; more stable than a centroid or the single nearest member) and the best group
   wins. It joins that group's batch when the score reaches the threshold (step 4),
   otherwise it opens a new batch. Each seeded phrasing, each
   merged-in batch and each operator-moved question is its own group, so a merged batch
   keeps both "centroids" and a moved question attracts its look-alikes to its new batch.
4. Thresholds (:data:`DEFAULT_THRESHOLDS`) depend on language: 0.42 for English and
   Swedish, 0.30 for Norwegian and unrecognised text. A question is compared with the
   lower of its own language's threshold and that of the best group's first member, so
   an English question can join a Norwegian batch as easily as a Norwegian one. This
   small model gives same-meaning Norwegian questions (dialect, nynorsk, typos) and
   cross-language pairs (Polish, Ukrainian, Sami, English) lower scores than English
   paraphrases; the bench shows the measured curves and how flat they are.

Everything is deterministic: the same operations in the same order give the same
batches, ties go to the oldest group, and the encoder is bit-for-bit reproducible.

Persistence: every mutating call appends an :data:`Operation` to
:attr:`Batcher.operations`; the console journals each one (``op.to_dict()``) and after a
restart rebuilds the batcher with :meth:`Batcher.replay`. A replayed ``Added`` keeps the
batch that was journaled (it is not re-decided), so a rebuild after a software or
threshold change still shows what operators saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from krise_tui.text import embed
from krise_tui.text.normalise import Language, guess_language, standard_text, words

__all__ = [
    "BACKGROUND_QUESTIONS",
    "DEFAULT_THRESHOLDS",
    "Added",
    "Assignment",
    "Batcher",
    "BatcherSettings",
    "BatchingError",
    "Encoder",
    "Merged",
    "Moved",
    "Operation",
    "Seeded",
    "Split",
    "operation_from_dict",
    "prepare",
    "warm_up",
]

Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Maps prepared texts to L2-normalised float32 rows; the default is e5 via :mod:`embed`."""

BatchIdFactory = Callable[[str], str]
"""Given the post id (or seed id) that opens a batch, return the new batch's id."""

_LANGUAGES: Final[tuple[Language, ...]] = ("no", "en", "sv", "unknown")

DEFAULT_THRESHOLDS: Final[Mapping[Language, float]] = {
    "en": 0.42,
    "sv": 0.42,
    "no": 0.30,
    "unknown": 0.30,
}

# Everyday municipal questions, deliberately *not* about any incident: their mean per
# language is the prior for the running means (step 2 above) before enough posts have
# arrived. Changing them changes every score a little; keep them generic and balanced.
BACKGROUND_QUESTIONS: Final[Mapping[Language, tuple[str, ...]]] = {
    "no": (
        "Når blir søpla henta denne veka?",
        "Hvor kan jeg levere hageavfall?",
        "Er biblioteket åpent i påsken?",
        "Hvordan søker jeg om barnehageplass?",
        "Kor søkjer eg om byggeløyve til garasje?",
        "Når blir vegen brøyta?",
        "Kan jeg parkere på torget om kvelden?",
        "Hvem kontakter jeg om hull i veien?",
        "Kva kostar det å leige idrettshallen?",
        "Når er fristen for å søke skoleskyss?",
        "Hvor finner jeg timeplanen for bussen?",
        "Er det mulig å få hjemmehjelp for eldre?",
        "Korleis klagar eg på eigedomsskatten?",
        "Hvorfor har vannregningen blitt dyrere?",
        "Kan eg ta med hunden på stranda?",
        "Får man fritak fra kommunale avgifter?",
        "Hvor er nærmeste legevakt?",
        "Når åpner svømmehallen igjen etter ferien?",
        "Kven har ansvar for gatelysa i bustadfeltet?",
        "Er det bålforbud i skogen nå?",
    ),
    "en": (
        "When is the rubbish collected this week?",
        "Where can I drop off garden waste?",
        "Is the library open during Easter?",
        "How do I apply for a kindergarten place?",
        "How do I apply for a building permit for a garage?",
        "When will the road be cleared of snow?",
        "Can I park in the town square in the evening?",
        "Who do I contact about a pothole?",
        "How much does it cost to rent the sports hall?",
        "What is the deadline for school transport applications?",
        "Where can I find the bus timetable?",
        "Can elderly people get help at home?",
        "How do I appeal my property tax?",
        "Why has the water bill gone up?",
        "Can I bring my dog to the beach?",
        "Where is the nearest emergency clinic?",
        "When does the swimming pool reopen after the holidays?",
        "Is it allowed to light a campfire in the forest now?",
    ),
    "sv": (
        "När hämtas soporna den här veckan?",
        "Var kan jag lämna trädgårdsavfall?",
        "Är biblioteket öppet under påsken?",
        "Hur ansöker jag om förskoleplats?",
        "När plogas vägen?",
        "Vem kontaktar jag om ett hål i vägen?",
        "Var hittar jag busstidtabellen?",
        "Varför har vattenräkningen blivit dyrare?",
        "Var ligger närmaste akutmottagning?",
        "Är det eldningsförbud i skogen nu?",
    ),
}


class BatchingError(ValueError):
    """An operation that does not fit the current state (unknown id, duplicate post...)."""


def prepare(text: str) -> str:
    """The text given to the encoder: bokmål-standardised, capitalised, ending in "?".

    Phrasing every post as a question helps e5 ("will covid ever end" and "will covid
    ever end?" are not embedded alike, and the question form matched better on the dev
    sets); the capital letter likewise, since the model is case-sensitive.
    """
    std = standard_text(text)
    return f"{std[:1].upper()}{std[1:]}?"


def _language(text: str) -> Language:
    return guess_language(words(text))


def _default_encoder(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    return embed.encode(texts, kind="query")


@dataclass(frozen=True)
class BatcherSettings:
    """Tunable parameters; the defaults are what ``krise batch`` and the console use.

    ``thresholds``: minimum score (centred cosine, average linkage) for joining a batch,
    by the incoming question's language. ``prior_weight``: how many posts' worth the
    background mean counts for the overall running mean. ``language_weight``: likewise,
    how many posts' worth the overall mean counts for each language's mean.
    """

    thresholds: Mapping[Language, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    prior_weight: float = 32.0
    language_weight: float = 4.0

    def threshold(self, language: Language) -> float:
        return self.thresholds.get(language, self.thresholds.get("unknown", 0.3))


# --- operations (the journal's records) -------------------------------------------------


class _Record:
    """JSON form of an operation, for the journal (inverse: :func:`operation_from_dict`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in vars(self).items()
        }


@dataclass(frozen=True)
class Seeded(_Record):
    """Anticipated question ``batch_id`` with its phrasings (from the playbook)."""

    batch_id: str
    texts: tuple[str, ...]
    kind: Literal["seed"] = "seed"


@dataclass(frozen=True)
class Added(_Record):
    """Post ``post_id`` arrived with ``text`` and was placed in ``batch_id``."""

    post_id: str
    text: str
    batch_id: str
    new: bool
    kind: Literal["add"] = "add"


@dataclass(frozen=True)
class Merged(_Record):
    """Operator merged batch ``absorbed`` into ``kept``; ``absorbed`` now names ``kept``."""

    kept: str
    absorbed: str
    kind: Literal["merge"] = "merge"


@dataclass(frozen=True)
class Moved(_Record):
    """Operator moved post ``post_id`` to batch ``batch_id``."""

    post_id: str
    batch_id: str
    kind: Literal["move"] = "move"


@dataclass(frozen=True)
class Split(_Record):
    """Operator split ``post_ids`` out of their batches into the new batch ``batch_id``."""

    post_ids: tuple[str, ...]
    batch_id: str
    kind: Literal["split"] = "split"


Operation = Seeded | Added | Merged | Moved | Split


def operation_from_dict(data: Mapping[str, Any]) -> Operation:
    """Inverse of ``op.to_dict()``: rebuild an operation from its journaled JSON form."""
    kind = data.get("kind")
    try:
        if kind == "seed":
            return Seeded(str(data["batch_id"]), tuple(str(t) for t in data["texts"]))
        if kind == "add":
            return Added(
                str(data["post_id"]), str(data["text"]), str(data["batch_id"]), bool(data["new"])
            )
        if kind == "merge":
            return Merged(str(data["kept"]), str(data["absorbed"]))
        if kind == "move":
            return Moved(str(data["post_id"]), str(data["batch_id"]))
        if kind == "split":
            return Split(tuple(str(p) for p in data["post_ids"]), str(data["batch_id"]))
    except (KeyError, TypeError) as exc:
        raise BatchingError(f"malformed {kind!r} operation: {exc}") from exc
    raise BatchingError(f"unknown operation kind {kind!r}")


@dataclass(frozen=True)
class Assignment:
    """Where a post went. ``score`` is its best group score (also when it opened a batch:
    then it is the nearest miss, useful to show "closest existing batch")."""

    post_id: str
    batch_id: str
    score: float
    new: bool


# --- the batcher ---------------------------------------------------------------------------

_default_prior: npt.NDArray[np.float64] | None = None
_prior_lock = threading.Lock()


def _compute_background_means(encoder: Encoder) -> npt.NDArray[np.float64]:
    rows: list[npt.NDArray[np.float64]] = []
    for lang in ("no", "en", "sv"):
        texts = [prepare(t) for t in BACKGROUND_QUESTIONS[lang]]
        rows.append(np.asarray(encoder(texts), dtype=np.float64).mean(axis=0))
    return np.vstack([*rows, np.mean(rows, axis=0)])


def _background_means(encoder: Encoder) -> npt.NDArray[np.float64]:
    """Per-language background means (rows in ``_LANGUAGES`` order; unknown = overall).

    Computed once per process for the default encoder (about 50 short texts, a fraction
    of a second), per batcher for any other encoder.
    """
    global _default_prior
    if encoder is not _default_encoder:
        return _compute_background_means(encoder)
    with _prior_lock:
        if _default_prior is None:
            _default_prior = _compute_background_means(encoder)
        return _default_prior


def warm_up() -> embed.BackendInfo:
    """Load the model and the background prior now (about a second on two cores) instead
    of on the first post; call it from a worker thread at console start-up."""
    info = embed.load()
    _background_means(_default_encoder)
    return info


class Batcher:
    """Online question batcher. Not thread-safe: call it from one task/thread.

    ``new_batch_id`` names batches opened by posts and splits (given the opening post's
    id); by default batches are numbered ``b1``, ``b2``, ... skipping ids already in use.
    ``encoder`` maps prepared texts to unit vectors (default: e5 via :mod:`embed`).
    """

    def __init__(
        self,
        *,
        settings: BatcherSettings | None = None,
        encoder: Encoder | None = None,
        new_batch_id: BatchIdFactory | None = None,
    ) -> None:
        self.settings = settings or BatcherSettings()
        self._encoder: Encoder = encoder or _default_encoder
        self._new_batch_id = new_batch_id
        self._dim = 0
        self._vectors: npt.NDArray[np.float64] = np.zeros((0, 0))
        self._size = 0  # items (posts and seed phrasings) so far
        # Per item, in arrays that grow with _vectors: language (index into _LANGUAGES) and
        # group (-1 only while an item is being placed).
        self._lang = np.zeros(0, dtype=np.int64)
        self._group = np.zeros(0, dtype=np.int64)
        self._group_batch: list[str] = []  # batch id per group
        self._group_lang: list[Language] = []  # language of each group's first item
        self._post_item: dict[str, int] = {}
        self._item_post: list[str | None] = []  # post id per item (None for seed phrasings)
        self._batches: dict[str, list[int]] = {}  # live batch id -> its groups
        self._alias: dict[str, str] = {}  # merged-away id -> id it was merged into
        self._opened = 0  # batches opened by posts or splits (for the default ids)
        self._lang_sum: npt.NDArray[np.float64] = np.zeros((0, 0))
        self._lang_count = np.zeros(len(_LANGUAGES))
        self._prior: npt.NDArray[np.float64] | None = None
        self._ops: list[Operation] = []

    # -- public queries ---------------------------------------------------------------------

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation so far, in order: journal ``op.to_dict()`` for each new one."""
        return tuple(self._ops)

    def resolve(self, batch_id: str) -> str:
        """The live id for ``batch_id`` (follows merges); raises for an unknown id."""
        seen = batch_id
        while seen in self._alias:
            seen = self._alias[seen]
        if seen not in self._batches:
            raise BatchingError(f"unknown batch {batch_id!r}")
        return seen

    def batch_of(self, post_id: str) -> str:
        """The batch post ``post_id`` is in."""
        item = self._item(post_id)
        return self._group_batch[int(self._group[item])]

    def batches(self) -> dict[str, tuple[str, ...]]:
        """Live batches (including empty seeded ones) → their post ids in arrival order."""
        out: dict[str, list[str]] = {b: [] for b in self._batches}
        for item, post in enumerate(self._item_post):
            group = int(self._group[item])
            if post is not None and group >= 0:
                out[self._group_batch[group]].append(post)
        return {b: tuple(posts) for b, posts in out.items()}

    def members(self, batch_id: str) -> tuple[str, ...]:
        """Post ids in ``batch_id`` (merged ids are followed)."""
        return self.batches()[self.resolve(batch_id)]

    def state(self) -> dict[str, list[list[str]]]:
        """Canonical state for comparisons: batch → groups → item keys (seeds as ``#k``)."""
        keys = [post if post is not None else f"#{i}" for i, post in enumerate(self._item_post)]
        groups: dict[int, list[str]] = {}
        for item, group in enumerate(self._group[: self._size].tolist()):
            if group >= 0:
                groups.setdefault(group, []).append(keys[item])
        return {b: [groups.get(g, []) for g in gs] for b, gs in sorted(self._batches.items())}

    # -- operations -------------------------------------------------------------------------

    def seed(self, batch_id: str, texts: Sequence[str]) -> None:
        """Create (or extend) the anticipated batch ``batch_id``; each phrasing is a group."""
        phrasings = tuple(t for t in texts if t.strip())
        if batch_id in self._alias:
            raise BatchingError(f"batch {batch_id!r} was merged into {self.resolve(batch_id)!r}")
        vectors = self._encode(phrasings)
        self._batches.setdefault(batch_id, [])
        for text, vector in zip(phrasings, vectors, strict=True):
            language = _language(text)
            item = self._new_item(vector, language, None)
            self._group[item] = self._new_group(batch_id, language)
        self._ops.append(Seeded(batch_id, phrasings))

    def add(self, post_id: str, text: str) -> Assignment:
        """Place a new post: join the best batch or open a new one."""
        return self._add(post_id, text, self._encode([text])[0])

    def add_many(
        self,
        posts: Iterable[tuple[str, str]],
        *,
        chunk: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[Assignment]:
        """Add posts in order, embedding them ``chunk`` at a time (faster than :meth:`add`).

        The result is exactly what calling :meth:`add` for each post gives: vectors do not
        depend on how texts are grouped. ``progress`` is called with the number of posts
        placed after each chunk.
        """
        pending = list(posts)
        out: list[Assignment] = []
        for start in range(0, len(pending), chunk):
            part = pending[start : start + chunk]
            vectors = self._encode([text for _, text in part])
            for (post_id, text), vector in zip(part, vectors, strict=True):
                out.append(self._add(post_id, text, vector))
            if progress is not None:
                progress(len(out))
        return out

    def merge(self, kept: str, absorbed: str) -> None:
        """Merge batch ``absorbed`` into ``kept``; both keep their groups, ``kept`` its id."""
        keep, gone = self.resolve(kept), self.resolve(absorbed)
        if keep == gone:
            raise BatchingError(f"cannot merge batch {keep!r} into itself")
        for group in self._batches.pop(gone):
            self._group_batch[group] = keep
            self._batches[keep].append(group)
        self._alias[gone] = keep
        self._ops.append(Merged(keep, gone))

    def move(self, post_id: str, batch_id: str) -> None:
        """Move a post to another batch, as a group of its own there (it then attracts
        questions like itself to that batch)."""
        item = self._item(post_id)
        target = self.resolve(batch_id)
        self._group[item] = self._new_group(target, _LANGUAGES[self._lang[item]])
        self._ops.append(Moved(post_id, target))

    def split(self, post_ids: Sequence[str], batch_id: str | None = None) -> str:
        """Take ``post_ids`` out of their batches into one new batch; returns its id."""
        if not post_ids:
            raise BatchingError("split needs at least one post")
        if len(set(post_ids)) != len(post_ids):
            raise BatchingError("split lists a post twice")
        items = [self._item(p) for p in post_ids]
        new_id = self._claim_batch_id(post_ids[0], batch_id)
        group = self._new_group(new_id, _LANGUAGES[self._lang[items[0]]])
        for item in items:
            self._group[item] = group
        self._ops.append(Split(tuple(post_ids), new_id))
        return new_id

    # -- rebuilding -------------------------------------------------------------------------

    @classmethod
    def replay(
        cls,
        operations: Iterable[Operation],
        *,
        settings: BatcherSettings | None = None,
        encoder: Encoder | None = None,
        new_batch_id: BatchIdFactory | None = None,
    ) -> Batcher:
        """Rebuild a batcher from journaled operations (posts re-embedded in bulk)."""
        batcher = cls(settings=settings, encoder=encoder, new_batch_id=new_batch_id)
        ops = list(operations)
        texts = [op.text for op in ops if isinstance(op, Added)]
        vectors = iter(batcher._encode(texts)) if texts else iter(())
        for op in ops:
            if isinstance(op, Added):
                batcher._replay_add(op, next(vectors))
            else:
                batcher.apply(op)
        return batcher

    def apply(self, op: Operation) -> None:
        """Apply one journaled operation; an ``Added`` goes to its journaled batch."""
        if isinstance(op, Seeded):
            self.seed(op.batch_id, op.texts)
        elif isinstance(op, Added):
            self._replay_add(op, self._encode([op.text])[0])
        elif isinstance(op, Merged):
            self.merge(op.kept, op.absorbed)
        elif isinstance(op, Moved):
            self.move(op.post_id, op.batch_id)
        else:
            self.split(op.post_ids, op.batch_id)

    # -- internals --------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if not texts:
            return np.zeros((0, self._dim))
        vectors = np.asarray(self._encoder([prepare(t) for t in texts]), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise BatchingError(f"encoder returned shape {vectors.shape} for {len(texts)} texts")
        if self._dim == 0:
            self._init_storage(vectors.shape[1])
        return vectors

    def _init_storage(self, dim: int) -> None:
        self._dim = dim
        self._vectors = np.zeros((64, dim))
        self._lang = np.zeros(64, dtype=np.int64)
        self._group = np.full(64, -1, dtype=np.int64)
        self._lang_sum = np.zeros((len(_LANGUAGES), dim))
        self._prior = _background_means(self._encoder)

    def _item(self, post_id: str) -> int:
        try:
            return self._post_item[post_id]
        except KeyError:
            raise BatchingError(f"unknown post {post_id!r}") from None

    def _new_item(
        self, vector: npt.NDArray[np.float64], language: Language, post_id: str | None
    ) -> int:
        item = self._size
        if item == self._vectors.shape[0]:
            # Grow by doubling: amortised O(1) per item.
            self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])
            self._lang = np.concatenate([self._lang, np.zeros_like(self._lang)])
            self._group = np.concatenate([self._group, np.full_like(self._group, -1)])
        self._size += 1
        self._vectors[item] = vector
        lang = _LANGUAGES.index(language)
        self._lang[item] = lang
        self._group[item] = -1
        self._item_post.append(post_id)
        if post_id is not None:
            self._post_item[post_id] = item
        self._lang_sum[lang] += vector
        self._lang_count[lang] += 1
        return item

    def _new_group(self, batch_id: str, language: Language) -> int:
        self._group_lang.append(language)
        self._group_batch.append(batch_id)
        self._batches[batch_id].append(len(self._group_batch) - 1)
        return len(self._group_batch) - 1

    def _claim_batch_id(self, opener: str, wanted: str | None) -> str:
        if wanted is None and self._new_batch_id is not None:
            wanted = self._new_batch_id(opener)
        if wanted is None:
            # Default numbering; skip ids already taken (e.g. a seed called "b3").
            while True:
                self._opened += 1
                wanted = f"b{self._opened}"
                if wanted not in self._batches and wanted not in self._alias:
                    break
        elif wanted in self._batches or wanted in self._alias:
            raise BatchingError(f"batch id {wanted!r} is already in use")
        else:
            self._opened += 1
        self._batches[wanted] = []
        return wanted

    def _means(self) -> npt.NDArray[np.float64]:
        """Running per-language means, each shrunk towards the overall running mean (plus
        that language's background offset), which is shrunk towards the background."""
        assert self._prior is not None
        prior = self._prior
        overall_prior = prior[-1]
        n = self._lang_count.sum()
        k_all, k_lang = self.settings.prior_weight, self.settings.language_weight
        overall = (self._lang_sum.sum(axis=0) + k_all * overall_prior) / (n + k_all)
        target = overall + (prior - overall_prior)
        means: npt.NDArray[np.float64] = (self._lang_sum + k_lang * target) / (
            self._lang_count[:, None] + k_lang
        )
        return means

    def _group_scores(self, item: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Average centred cosine of ``item`` to every group; mask of non-empty groups.

        Only items before ``item`` count. Cost: one pass over their vectors.
        """
        n_groups = len(self._group_batch)
        groups = self._group[:item]
        placed = groups >= 0
        if n_groups == 0 or not placed.any():
            return np.zeros(n_groups), np.zeros(n_groups, dtype=bool)
        means = self._means()
        x = self._vectors[item] - means[self._lang[item]]
        x /= max(float(np.linalg.norm(x)), 1e-12)
        vecs = self._vectors[:item]
        langs = self._lang[:item]
        # cos(v - m_l, x) for every earlier item v (language l) without building the
        # centred matrix: rows are unit vectors, so |v - m|^2 = 1 - 2 v.m + |m|^2.
        proj = vecs @ np.column_stack([x, means.T])  # (item, 1 + languages)
        dots = proj[:, 0] - (means @ x)[langs]
        own = proj[np.arange(item), 1 + langs]
        sq_norm = 1.0 - 2.0 * own + np.einsum("ij,ij->i", means, means)[langs]
        cos = dots / np.sqrt(np.maximum(sq_norm, 1e-12))
        members = groups[placed]
        counts = np.bincount(members, minlength=n_groups)
        sums = np.bincount(members, weights=cos[placed], minlength=n_groups)
        nonempty = counts > 0
        scores = np.where(nonempty, sums / np.maximum(counts, 1), -np.inf)
        return scores, nonempty

    def _add(self, post_id: str, text: str, vector: npt.NDArray[np.float64]) -> Assignment:
        if post_id in self._post_item:
            raise BatchingError(f"post {post_id!r} was already added")
        language = _language(text)
        item = self._new_item(vector, language, post_id)
        scores, nonempty = self._group_scores(item)
        best_score = -1.0
        if nonempty.any():
            best = int(np.argmax(scores))  # first maximum: the oldest group wins ties
            best_score = float(scores[best])
            # The lower of the two languages' thresholds: an English question joining a
            # Norwegian batch is judged as leniently as a Norwegian one would be.
            threshold = min(
                self.settings.threshold(language),
                self.settings.threshold(self._group_lang[best]),
            )
            if best_score >= threshold:
                self._group[item] = best
                batch = self._group_batch[best]
                self._ops.append(Added(post_id, text, batch, False))
                return Assignment(post_id, batch, best_score, False)
        batch = self._claim_batch_id(post_id, None)
        self._group[item] = self._new_group(batch, language)
        self._ops.append(Added(post_id, text, batch, True))
        return Assignment(post_id, batch, best_score, True)

    def _replay_add(self, op: Added, vector: npt.NDArray[np.float64]) -> None:
        if op.post_id in self._post_item:
            raise BatchingError(f"post {op.post_id!r} was already added")
        language = _language(op.text)
        item = self._new_item(vector, language, op.post_id)
        if op.new:
            batch = self._claim_batch_id(op.post_id, op.batch_id)
            self._group[item] = self._new_group(batch, language)
        else:
            batch = self.resolve(op.batch_id)
            scores, nonempty = self._group_scores(item)
            own = [g for g in self._batches[batch] if nonempty[g]] if nonempty.size else []
            if own:
                self._group[item] = max(own, key=lambda g: (float(scores[g]), -g))
            else:
                self._group[item] = self._new_group(batch, language)
        self._ops.append(Added(op.post_id, op.text, batch, op.new))
