"""Rumour matching: paraphrase, dialect, typos and English find the right rumour; near misses
that share words but repeat no rumour get no sighting; incremental, deterministic; the CLI.

The examples are written for these tests (bokmål, nynorsk, English), not taken from any
development data. The real embedding model is loaded once per session.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from krise_tui.text import embed, rumours_cli
from krise_tui.text.rumours import (
    MAYBE_AT,
    SIGHTING_AT,
    Match,
    RumourMatcher,
    decide,
    embedding_text,
)

RUMOURS = {
    "olje": "Det er farlig å spise fisk fra fjorden etter oljeutslippet",
    "bru": "Brua over elva er stengt fordi den holder på å rase sammen",
    "evakuering": "Hele sentrum skal evakueres i natt",
    "vaksine": "Vaksinen mot fugleinfluensa inneholder en mikrochip",
    "brann": "Brannen i industriområdet ble påsatt av tidligere ansatte",
    "rasjonering": "Butikkene skal rasjonere brød og melk fra mandag",
    "mobil": "Mobilnettet er slått av av politiet for å stoppe ryktespredning",
    "radon": "Radonnivået i skolen er ti ganger høyere enn grenseverdien",
}

# (post, rumour it repeats): close paraphrases, in bokmål and nynorsk
PARAPHRASES = [
    ("Ikke spis fisk du har fått i fjorden, den er giftig etter oljesølet", "olje"),
    ("Hørte at alle i sentrum må evakuere i løpet av natta", "evakuering"),
    ("Straks blir det rasjonering av brød og mjølk i butikkane", "rasjonering"),
    ("Politiet har skrudd av mobilnettet så folk ikke skal spre rykter", "mobil"),
]

# Looser retellings and dialect: found, but the model is less sure of them, so they may
# be "maybe" rather than a confident sighting.
RETELLINGS = [
    ("Dei seier at brua over elva kan rase kvar augneblink, difor er ho stengd", "bru"),
    ("Det var noen som tente på med vilje, sies det var gamle ansatte på fabrikken", "brann"),
]

# English posts about Norwegian rumours: ranked first, but cross-language similarities
# are lower, so the decision is often "maybe" or none (a person sees the ranking).
TRANSLATIONS = [
    ("The bird flu vaccine has a microchip in it, don't take it", "vaksine"),
    ("Heard the school has radon levels ten times over the limit??", "radon"),
    ("They say the whole town centre is being evacuated tonight", "evakuering"),
]

TYPOS = [
    ("Det er farli å spsie fisk fra fjordn etter oljeutslipet", "olje"),
    ("hele sentrm skal evakures i nat!!", "evakuering"),
    ("radonivået på skolen er 10 gagner over grensevedien", "radon"),
]

# Posts that share words with a rumour but repeat none.
NEAR_MISSES = [
    "Fiskebutikken ved fjorden har åpent som vanlig i dag",
    "Når åpner brua over elva igjen etter asfalteringen?",
    "Sentrum er stengt for biltrafikk under 17. mai-toget",
    "Hvor kan jeg ta vaksinen mot influensa i år?",
    "Takk til brannvesenet for god innsats i industriområdet i natt",
    "Butikken har fått inn ferskt brød og melk nå",
    "Mobilnettet er tilbake i sentrum etter stormen",
]

UNRELATED = [
    "Noen som vet når biblioteket åpner på lørdag?",
    "Does anyone know a good plumber in town?",
]


@pytest.fixture(scope="session")
def matcher() -> RumourMatcher:
    """The default matcher (real e5 model) with the test rumours, shared by the session."""
    m = RumourMatcher()
    for rid, text in RUMOURS.items():
        m.add(rid, text)
    embed.load()
    return m


@pytest.fixture(scope="session")
def near_miss_results(matcher: RumourMatcher) -> list[list[Match]]:
    return matcher.match_many(NEAR_MISSES + UNRELATED, top_k=3)


def _bag_embedder(texts: Sequence[str], /) -> npt.NDArray[np.float32]:
    """A tiny deterministic stand-in for the model: hashed bag of words, unit rows."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.split():
            out[row, hashlib.sha1(word.encode()).digest()[0] % 64] += 1.0
        out[row] /= max(float(np.linalg.norm(out[row])), 1e-9)
    return out


def _fake(**kwargs: int) -> RumourMatcher:
    return RumourMatcher(embedder=_bag_embedder, **kwargs)


# --- quality on examples --------------------------------------------------------------


@pytest.mark.parametrize(("post", "rumour"), PARAPHRASES)
def test_a_paraphrase_is_a_sighting_of_its_rumour(
    matcher: RumourMatcher, post: str, rumour: str
) -> None:
    best = matcher.match(post)[0]
    assert best.rumour_id == rumour
    assert best.decision == "sighting", best


@pytest.mark.parametrize(("post", "rumour"), RETELLINGS)
def test_a_retelling_or_translation_is_found(
    matcher: RumourMatcher, post: str, rumour: str
) -> None:
    best = matcher.match(post)[0]
    assert best.rumour_id == rumour
    assert best.decision is not None, best


@pytest.mark.parametrize(("post", "rumour"), TRANSLATIONS)
def test_english_about_a_norwegian_rumour_ranks_it_first(
    matcher: RumourMatcher, post: str, rumour: str
) -> None:
    assert matcher.match(post)[0].rumour_id == rumour


@pytest.mark.parametrize(("post", "rumour"), TYPOS)
def test_typos_still_find_the_rumour(matcher: RumourMatcher, post: str, rumour: str) -> None:
    best = matcher.match(post)[0]
    assert best.rumour_id == rumour
    assert best.decision == "sighting", best


def test_near_misses_get_no_sighting(near_miss_results: list[list[Match]]) -> None:
    """Posts that share a rumour's words but not its claim are not confident sightings.

    A known limit of comparing whole-sentence embeddings: "the shop has fresh bread and
    milk" sits close to "the shops will ration bread and milk" and can still reach a
    sighting; the matcher is measured at precision ~0.96 on Norwegian hard negatives, so
    at most one of these seven may slip through.
    """
    near = near_miss_results[: len(NEAR_MISSES)]
    sightings = [
        (post, m)
        for post, matches in zip(NEAR_MISSES, near, strict=True)
        for m in matches
        if m.decision == "sighting"
    ]
    assert len(sightings) <= 1, sightings
    for post, matches in zip(NEAR_MISSES, near, strict=True):
        assert matches, post
        assert all(m.decision != "sighting" for m in matches[1:]), (post, matches)


def test_unrelated_posts_get_no_decision(near_miss_results: list[list[Match]]) -> None:
    for matches in near_miss_results[len(NEAR_MISSES) :]:
        assert all(m.decision is None for m in matches), matches


def test_a_correction_text_counts_for_its_rumour() -> None:
    m = RumourMatcher()
    m.add("sabotasje", "Vannverket er utsatt for sabotasje")
    m.add("kloakk", "Det har lekket kloakk inn i drikkevannet")
    m.add("sabotasje", "Korrigering: det er ingen tegn til sabotasje, feilen var en pumpe")
    best = m.match("Kommunen sier feilen var en pumpe, men folk tror ikke på det")[0]
    assert best.rumour_id == "sabotasje"


# --- scores, ranking, decisions -----------------------------------------------------------


def test_matches_are_sorted_scored_and_capped(matcher: RumourMatcher) -> None:
    matches = matcher.match(PARAPHRASES[0][0], top_k=3)
    assert len(matches) == 3
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s < 1.0 for s in scores)
    assert len({m.rumour_id for m in matches}) == 3
    assert len(matcher.match(PARAPHRASES[0][0], top_k=50)) == len(RUMOURS)


def test_decision_follows_the_thresholds() -> None:
    assert decide(SIGHTING_AT) == "sighting"
    assert decide(MAYBE_AT) == "maybe"
    assert decide((MAYBE_AT + SIGHTING_AT) / 2) == "maybe"
    assert decide(MAYBE_AT - 1e-6) is None


def test_same_inputs_give_the_same_ranking_and_scores(matcher: RumourMatcher) -> None:
    posts = [p for p, _ in PARAPHRASES[:3]] + NEAR_MISSES[:2]
    again = RumourMatcher()
    for rid, text in RUMOURS.items():
        again.add(rid, text)
    bulk = again.match_many(posts, top_k=4, batch=2)
    assert bulk == matcher.match_many(posts, top_k=4)
    assert [matcher.match(p, top_k=4) for p in posts] == bulk


def test_a_post_embedded_by_the_caller_scores_the_same(matcher: RumourMatcher) -> None:
    post = PARAPHRASES[2][0]
    vector = embed.encode_one(embedding_text(post), kind="query")
    assert matcher.match(post, vector=vector) == matcher.match(post)


def test_a_quoted_tweets_attribution_is_not_embedded() -> None:
    """Who posted a quoted tweet and when is not part of its claim for the embedding."""
    body = "Vannet i Hattfjelldal er forurenset, ikke drikk det"
    for tail in (
        " — Kari Nordmann (@KariNordmann) December 2, 2026",
        " - Kari (@kari) 2. desember 2026",
    ):
        assert embedding_text(body + tail) == embedding_text(body)
    # Only an attribution: kept, or the post would have nothing to embed.
    assert embedding_text("— Kari (@kari) 2. desember 2026") != ""
    # A dash inside the text is not an attribution.
    assert "trygt" in embedding_text("Vann - er det trygt? (@kari) sa nei")


def test_the_attribution_still_counts_in_the_lexical_part() -> None:
    """The author's name finds a "Did X tweet …" claim even though the embedding drops it:
    with a constant embedder, only the lexical part separates the two rumours."""

    def constant(texts: Sequence[str], /) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), 4), dtype=np.float32)
        out[:, 0] = 1.0
        return out

    m = RumourMatcher(embedder=constant)
    m.add("other", "A senator said the vaccine is unsafe")
    m.add("eastwood", "Clint Eastwood wrote an essay about the election")
    post = "Stop posting as my dad — Morgan Eastwood (@MorganEastwood) November 9, 2016"
    assert m.match(post, top_k=1)[0].rumour_id == "eastwood"


def test_ties_go_to_the_rumour_registered_first() -> None:
    m = _fake()
    m.add("zz-registered-first", "Brua er stengt")
    m.add("aa-registered-second", "Brua er stengt!")
    ranked = m.match("brua er stengt", top_k=2)
    assert [x.rumour_id for x in ranked] == ["zz-registered-first", "aa-registered-second"]
    assert ranked[0].score == ranked[1].score


# --- incremental ----------------------------------------------------------------------


def test_empty_matcher_matches_nothing() -> None:
    m = _fake()
    assert m.match("noe som helst") == []
    assert m.match_many(["a", "b"]) == [[], []]


def test_rumours_are_added_and_removed_one_at_a_time() -> None:
    m = _fake()
    m.add("r1", "Strømmen kommer ikke tilbake før neste uke")
    assert [x.rumour_id for x in m.match("strømmen kommer ikke før neste uke")] == ["r1"]
    m.add("r2", "Skolen er stengt hele uka")
    assert len(m) == 2 and "r2" in m
    assert m.match("skolen er stengt hele uka")[0].rumour_id == "r2"
    assert m.remove("r1") is True
    assert m.remove("r1") is False
    assert [x.rumour_id for x in m.match("strømmen kommer ikke før neste uke")] == ["r2"]
    m.add("r1", "Strømmen er borte i en uke til")
    assert m.rumour_ids() == ["r2", "r1"]
    assert m.match("strømmen er borte en uke til")[0].rumour_id == "r1"


def test_large_pools_rerank_lexical_candidates_with_the_same_result() -> None:
    texts = {f"r{i}": f"Rykte nummer {i} om {w} i kommunen" for i, w in enumerate("abcdefghij")}
    texts["bru"] = "Brua over elva er stengt fordi den kan rase"
    small = _fake()
    large = _fake(full_dense_limit=3, candidates=2)
    for rid, text in texts.items():
        small.add(rid, text)
        large.add(rid, text)
    post = "brua over elva kan rase, derfor er den stengt"
    assert small.match(post, top_k=1) == large.match(post, top_k=1)
    assert large.match(post, top_k=1)[0].rumour_id == "bru"
    assert len(large.match(post, top_k=4)) == 4


def test_bad_arguments_are_refused() -> None:
    m = _fake()
    with pytest.raises(ValueError, match="non-empty"):
        m.add("", "tekst")
    with pytest.raises(ValueError, match="no words"):
        m.add("r1", "  !!! ")
    m.add("r1", "tekst")
    with pytest.raises(ValueError, match="top_k"):
        m.match("tekst", top_k=0)


# --- the CLI ----------------------------------------------------------------------------


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="krise")
    sub = parser.add_subparsers(dest="command", required=True)
    rumours_cli.add_parser(sub)
    return parser.parse_args(list(argv))


@pytest.fixture
def csv_files(tmp_path: Path) -> tuple[Path, Path]:
    known = tmp_path / "known.csv"
    known.write_text(
        "id,text,source\n" + "".join(f'{rid},"{text}",test\n' for rid, text in RUMOURS.items()),
        encoding="utf-8",
    )
    posts = tmp_path / "posts.csv"
    posts.write_text(
        "text,id\n"
        '"Ikke spis fisk fra fjorden, den er giftig etter oljesølet",p1\n'
        '"Hørte at hele sentrum må evakueres i natt",p2\n',
        encoding="utf-8",
    )
    return known, posts


def test_cli_writes_ranked_csv(
    csv_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    known, posts = csv_files
    args = _cli("rumours", "match", "--known", str(known), str(posts), "--top", "2")
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "post_id,rank,rumour_id,score"
    rows = [line.split(",") for line in lines[1:]]
    assert [(r[0], r[1]) for r in rows] == [("p1", "1"), ("p1", "2"), ("p2", "1"), ("p2", "2")]
    assert rows[0][2] == "olje" and rows[2][2] == "evakuering"
    assert all(len(r[3].split(".")[1]) == 4 and 0 < float(r[3]) < 1 for r in rows)


def test_cli_defaults_to_five(
    csv_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    known, posts = csv_files
    args = _cli("rumours", "match", "--known", str(known), str(posts))
    assert args.top == 5
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 2 * 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,body\nr1,x\n", "known.csv:1: the header has no text column"),
        ("id,text\nr1,x\nr1,y\n", "known.csv:3: duplicate id 'r1'"),
        ("id,text\nr1,x\n,y\n", "known.csv:3: the id is empty"),
        ("id,text\nr1,\n", "known.csv:2: the text of 'r1' is empty"),
        ("", "known.csv: the file is empty"),
        ('id,text\nr1,"dammen\nr2,vannet\n', "known.csv:2: a quoted text starts on this line"),
        ('id,text\nr1,"x" y\n', "known.csv:2: text after a closing quote"),
    ],
)
def test_cli_input_errors_name_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    known = tmp_path / "known.csv"
    known.write_text(content, encoding="utf-8")
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\np1,hei\n", encoding="utf-8")
    args = _cli("rumours", "match", "--known", str(known), str(posts))
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_missing_and_non_utf8_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    known = tmp_path / "known.csv"
    known.write_bytes("id,text\nr1,Str\xf8mmen er borte\n".encode("latin-1"))
    args = _cli("rumours", "match", "--known", str(known), str(tmp_path / "nope.csv"))
    assert args.func(args) == 2
    assert "not UTF-8" in capsys.readouterr().err
    known.write_text("id,text\nr1,Strømmen er borte\n", encoding="utf-8")
    assert args.func(args) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    bad_top = _cli("rumours", "match", "--known", str(known), str(known), "--top", "0")
    assert bad_top.func(bad_top) == 2
    assert "--top" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli("rumours", "match", "posts.csv")
    assert exc.value.code == 2
    assert "--known" in capsys.readouterr().err
