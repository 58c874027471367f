"""Question-batching benchmark: quality and speed of the console's batcher at its defaults.

Run as ``python bench/batching.py`` (bounded: about 1-3 minutes on two cores, most of it
embedding). It reads the development data from ``../shared/dev-data`` relative to the
repository root (``Path(__file__).resolve().parents[2] / "shared" / "dev-data"``); that
data is not part of the project, and when it is absent the benchmark prints
``skipped: ../shared/dev-data not found`` and exits 0. Nothing is written to disk. The
baseline needs scikit-learn (a dev dependency).

Figures, one line each: ``FIGURE: measured=V UNIT baseline=V UNIT ratio=R min=V max=V``.

Quality: the batcher runs online over each set in arrival order, at default settings,
five times: file order plus four seeded shuffles (seeds 1-4). ``measured`` is the
median, ``min``/``max`` the spread over those orders (online batching depends on the
order; the held-out check runs in file order). Scores are B-cubed F1 and the adjusted
Rand index against the labels. The baseline, computed in the same run, is the README's:
character 2-4-gram TF-IDF and average-linkage agglomerative clustering (cosine) with the
distance threshold chosen *after* seeing the labels (best B-cubed F1 over a grid, for
the better of scikit-learn's ``char`` and ``char_wb`` analysers). It is order-free, so
it is one number.

- ``batching_bcubed_f1_norsk`` / ``batching_ari_norsk``: ``norsk_questions_dev.csv``
  (123 questions, 25 classes, bokmål/nynorsk/dialect/English/other).
- ``batching_bcubed_f1_covidq`` / ``batching_ari_covidq``: ``covidq_train.csv`` (267
  English questions, 90 classes of 3).
- ``batching_bcubed_f1_swefaq_category`` / ``batching_ari_swefaq_category``:
  ``swefaq_dev.csv`` questions grouped by category. Categories are topics, not
  questions (every question has its own answer), so this rewards merging different
  questions on one topic; it is shown for comparison, not as a target.
- ``batching_bcubed_f1_swefaq_distinct``: the same Swedish questions with each question
  as its own class (each has its own answer), so recall is 1 and F1 falls only with
  wrong merges: how much the batcher merges distinct but related Swedish questions.
  The tuned baseline learns not to merge at all (F1 ~1); ours is not tuned for this.

Speed (each run embeds its posts anew: embed's cache of repeated texts is cleared):

- ``batching_throughput_one_by_one``: posts/s through ``Batcher.add`` one post at a
  time, as the console does (embedding included), 5 runs of 60 posts each, after a
  warm-up of 250 posts already in the batcher. Baseline: the same online loop with
  the baseline's char TF-IDF vectors (vectorising each post on arrival) instead of e5.
- ``batching_throughput_bulk``: posts/s through ``Batcher.add_many`` (embedding in
  chunks, as ``krise batch`` does), 5 runs of 120 posts; same baseline, bulk-vectorised.
- ``batching_first_assignment_latency``: seconds from a fresh Python process to the
  first assignment (import, model load, background prior, one post), 5 runs. Baseline:
  the same for the TF-IDF baseline (import scikit-learn, fit on the set, one post).

``--sweep`` also prints, not as figures, file-order B-cubed F1 per set over a grid of
thresholds around the defaults (how flat the choice is).
"""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from figures import figure as _figure

from krise_tui.text import embed
from krise_tui.text.batching import Batcher, BatcherSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "dev-data"
RUNS = 5
ONE_BY_ONE_POSTS = 60
BULK_POSTS = 120
WARM_POSTS = 250


@dataclass(frozen=True)
class Dataset:
    name: str
    ids: list[str]
    texts: list[str]
    labels: list[str]


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def datasets() -> list[Dataset]:
    norsk = read_csv("norsk_questions_dev.csv")
    covid = read_csv("covidq_train.csv")
    swe = read_csv("swefaq_dev.csv")
    return [
        Dataset("norsk", [r["id"] for r in norsk], [r["text"] for r in norsk],
                [r["class_id"] for r in norsk]),
        Dataset("covidq", [r["id"] for r in covid], [r["text"] for r in covid],
                [r["label"] for r in covid]),
        Dataset("swefaq", [r["id"] for r in swe], [r["question"] for r in swe],
                [r["category"] for r in swe]),
    ]  # fmt: skip


# --- measures -------------------------------------------------------------------------------


def bcubed(pred: Sequence[str], gold: Sequence[str]) -> tuple[float, float, float]:
    """B-cubed (F1, precision, recall), averaged over items."""
    p = np.asarray(pred)
    g = np.asarray(gold)
    same_pred = p[:, None] == p[None, :]
    same_gold = g[:, None] == g[None, :]
    both = (same_pred & same_gold).sum(axis=1)
    precision = float(np.mean(both / same_pred.sum(axis=1)))
    recall = float(np.mean(both / same_gold.sum(axis=1)))
    return 2 * precision * recall / (precision + recall), precision, recall


def figure(name: str, runs: Sequence[float], baseline: float, unit: str) -> None:
    _figure(name, runs, baseline, unit, digits=".4f")


def orders(n: int) -> list[npt.NDArray[np.int64]]:
    """File order, then seeded shuffles."""
    shuffles = [np.random.default_rng(seed).permutation(n) for seed in range(1, RUNS)]
    return [np.arange(n), *shuffles]


# --- our batcher ----------------------------------------------------------------------------


class CachedEncoder:
    """e5 with a per-text cache, so the quality runs embed each question once. Vectors do
    not depend on how texts are grouped (tested), so this changes no result."""

    def __init__(self) -> None:
        self.cache: dict[str, npt.NDArray[np.float32]] = {}

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, embed.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


def run_batcher(
    data: Dataset,
    order: Sequence[int] | npt.NDArray[np.int64],
    encoder: CachedEncoder,
    settings: BatcherSettings | None = None,
) -> list[str]:
    batcher = Batcher(encoder=encoder, settings=settings)
    placed = batcher.add_many([(data.ids[i], data.texts[i]) for i in order])
    where = {a.post_id: a.batch_id for a in placed}
    return [where[i] for i in data.ids]


# --- the baseline: char TF-IDF + average-linkage agglomerative, tuned on the labels --------


@dataclass(frozen=True)
class Baseline:
    analyzer: str
    threshold: float
    f1: float
    ari: float
    labels: list[str]


def tuned_baseline(data: Dataset) -> Baseline:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import adjusted_rand_score

    best: Baseline | None = None
    for analyzer in ("char", "char_wb"):
        vectors = TfidfVectorizer(analyzer=analyzer, ngram_range=(2, 4)).fit_transform(data.texts)
        dense = vectors.toarray()
        for threshold in np.arange(0.05, 1.0, 0.01):
            clusters = AgglomerativeClustering(
                n_clusters=None,
                metric="cosine",
                linkage="average",
                distance_threshold=float(threshold),
            ).fit_predict(dense)
            labels = [str(c) for c in clusters]
            f1 = bcubed(labels, data.labels)[0]
            if best is None or f1 > best.f1:
                ari = float(adjusted_rand_score(data.labels, labels))
                best = Baseline(analyzer, float(threshold), f1, ari, labels)
    assert best is not None
    return best


def tfidf_online(
    texts: Sequence[str], warm: Sequence[str], fit_on: Sequence[str], *, bulk: bool
) -> float:
    """Posts/s of the same online average-linkage loop on the baseline's TF-IDF vectors
    (threshold 0.3 in its own scale; only the speed is measured)."""
    from scipy.sparse import csr_matrix, vstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(fit_on)
    seen: csr_matrix = vectoriser.transform(warm)
    labels = list(range(len(warm)))
    start = time.perf_counter()
    matrix = vectoriser.transform(texts) if bulk else None
    for i, text in enumerate(texts):
        row = matrix[i] if matrix is not None else vectoriser.transform([text])
        sims = (seen @ row.T).toarray().ravel()
        groups = np.asarray(labels)
        avg = np.bincount(groups, weights=sims) / np.bincount(groups)
        best = int(np.argmax(avg))
        labels.append(best if avg[best] >= 0.3 else int(groups.max()) + 1)
        seen = vstack([seen, row], format="csr")
    return len(texts) / (time.perf_counter() - start)


# --- speed ----------------------------------------------------------------------------------


def throughput(texts: Sequence[str], warm: Sequence[str], *, bulk: bool, run: int) -> float:
    """Posts/s of the default batcher (real encoder, no cache) on ``texts``, after ``warm``."""
    batcher = Batcher()
    batcher.add_many([(f"w{run}-{i}", t) for i, t in enumerate(warm)])
    posts = [(f"r{run}-{i}", t) for i, t in enumerate(texts)]
    embed.clear_cache()  # every run embeds its posts (embed caches repeated texts)
    start = time.perf_counter()
    if bulk:
        batcher.add_many(posts)
    else:
        for post_id, text in posts:
            batcher.add(post_id, text)
    return len(posts) / (time.perf_counter() - start)


_FIRST_OURS = """
import time; t = time.perf_counter()
from krise_tui.text.batching import Batcher
Batcher().add("p1", "Når kommer strømmen tilbake?")
print(time.perf_counter() - t)
"""

_FIRST_BASELINE = """
import sys, time; t = time.perf_counter()
from sklearn.feature_extraction.text import TfidfVectorizer
texts = [line for line in sys.stdin.read().splitlines() if line]
TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(texts).transform([texts[0]])
print(time.perf_counter() - t)
"""


def first_assignment(code: str, stdin: str = "") -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


# --- main -----------------------------------------------------------------------------------


def sweep(sets: Sequence[Dataset], encoder: CachedEncoder) -> None:
    print("# file-order B-cubed F1 by threshold (English/Swedish; Norwegian/other)")
    for en in (0.38, 0.40, 0.42, 0.44, 0.46):
        for no in (0.22, 0.26, 0.30, 0.34, 0.38):
            settings = BatcherSettings(thresholds={"en": en, "sv": en, "no": no, "unknown": no})
            scores = [
                bcubed(run_batcher(d, range(len(d.ids)), encoder, settings), d.labels)[0]
                for d in sets
            ]
            cells = " ".join(f"{d.name}={s:.3f}" for d, s in zip(sets, scores, strict=True))
            print(f"# en/sv {en:.2f} no/other {no:.2f}: {cells}", flush=True)


def main(argv: Sequence[str]) -> int:
    if not DATA.is_dir():
        print("skipped: ../shared/dev-data not found")
        return 0
    try:
        import sklearn  # noqa: F401 - only checking that the baseline can run
    except ImportError:
        print("skipped: the baseline needs scikit-learn (pip install scikit-learn)")
        return 0
    from sklearn.metrics import adjusted_rand_score

    sets = datasets()
    encoder = CachedEncoder()
    for data in sets:
        base = tuned_baseline(data)
        runs = [run_batcher(data, order, encoder) for order in orders(len(data.ids))]
        f1s = [bcubed(r, data.labels)[0] for r in runs]
        aris = [float(adjusted_rand_score(data.labels, r)) for r in runs]
        suffix = "swefaq_category" if data.name == "swefaq" else data.name
        figure(f"batching_bcubed_f1_{suffix}", f1s, base.f1, "F1")
        figure(f"batching_ari_{suffix}", aris, base.ari, "ARI")
        if data.name == "swefaq":
            distinct = Dataset(data.name, data.ids, data.texts, data.ids)
            figure(
                "batching_bcubed_f1_swefaq_distinct",
                [bcubed(r, distinct.labels)[0] for r in runs],
                tuned_baseline(distinct).f1,
                "F1",
            )
    if "--sweep" in argv:
        sweep(sets, encoder)

    pool = [t for d in sets[:2] for t in d.texts]  # Norwegian and English questions
    warm = pool[:WARM_POSTS]
    rest = pool[WARM_POSTS:]
    one = [throughput(rest[:ONE_BY_ONE_POSTS], warm, bulk=False, run=run) for run in range(RUNS)]
    base_one = statistics.median(
        tfidf_online(rest[:ONE_BY_ONE_POSTS], warm, pool, bulk=False) for _ in range(RUNS)
    )
    figure("batching_throughput_one_by_one", one, base_one, "posts/s")
    bulk = [throughput(rest[:BULK_POSTS], warm, bulk=True, run=run) for run in range(RUNS)]
    base_bulk = statistics.median(
        tfidf_online(rest[:BULK_POSTS], warm, pool, bulk=True) for _ in range(RUNS)
    )
    figure("batching_throughput_bulk", bulk, base_bulk, "posts/s")

    firsts = [first_assignment(_FIRST_OURS) for _ in range(RUNS)]
    base_first = statistics.median(
        first_assignment(_FIRST_BASELINE, "\n".join(pool)) for _ in range(RUNS)
    )
    figure("batching_first_assignment_latency", firsts, base_first, "s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
