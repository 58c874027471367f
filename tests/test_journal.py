"""Journal: append, fold, restart; the hash chain detects tampering; concurrent writers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from krise_tui.bus.envelope import Signer
from krise_tui.cli import main
from krise_tui.core.engine import (
    Accepted,
    ConfirmEffect,
    Context,
    OpenIncident,
    PublishCurrentMessage,
    ReceiveFromBus,
    decide,
)
from krise_tui.core.events import EventBase, IncidentOpened
from krise_tui.core.ids import new_id
from krise_tui.core.state import IncidentState, fold, state_hash
from krise_tui.journal.store import Journal, JournalError, verify_file

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def ctx(signer: Signer, n: int = 0, actor: str = "kari") -> Context:
    return Context(
        org="test", actor=actor, now=T0 + timedelta(seconds=n), signer=signer, incident_id="inc-1"
    )


async def run_commands(journal: Journal, signer: Signer, count: int = 10) -> IncidentState:
    """Drive the engine like the runtime does: decide, append, fold."""
    state = IncidentState()
    commands = [OpenIncident("Flom i sentrum", level=2)]
    for i in range(count):
        commands.append(PublishCurrentMessage(f"Melding nummer {i}: Rv73 er stengt."))
        commands.append(
            ReceiveFromBus(
                "krise/v1/test/channel/facebook/in",
                f'{{"id": "p{i}", "text": "Er vannet trygt å drikke? ({i})"}}'.encode(),
            )
        )
    for n, command in enumerate(commands):
        decision = decide(state, command, ctx(signer, n))
        assert isinstance(decision, Accepted), decision
        await journal.append(decision.events, playbook_hash="pb-abc")
        fold(decision.events, state)
    for effect in list(state.pending_effects())[:3]:
        decision = decide(state, ConfirmEffect(effect.effect_id), ctx(signer, 99))
        assert isinstance(decision, Accepted)
        await journal.append(decision.events)
        fold(decision.events, state)
    return state


async def test_restart_folds_to_the_same_state(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    async with await Journal.open(path) as journal:
        live = await run_commands(journal, signer)
    async with await Journal.open(path) as journal:
        restored = await journal.load_state()
        assert await journal.count() == live.event_count
    assert state_hash(restored) == state_hash(live)
    assert restored.current_message is not None
    assert restored.current_message.text == "Melding nummer 9: Rv73 er stengt."
    assert len(restored.pending_effects()) == 7
    assert restored.seqs["message"] == 10
    assert verify_file(path).ok


async def test_playbook_hash_is_recorded_per_event(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    async with await Journal.open(path) as journal:
        await run_commands(journal, signer, count=1)
    con = sqlite3.connect(path)
    hashes = {row[0] for row in con.execute("SELECT playbook_hash FROM events WHERE seq <= 3")}
    con.close()
    assert hashes == {"pb-abc"}


async def test_state_hash_differs_when_events_differ(tmp_path: Path, signer: Signer) -> None:
    async with await Journal.open(tmp_path / "a.sqlite3") as a:
        state_a = await run_commands(a, signer, count=3)
    async with await Journal.open(tmp_path / "b.sqlite3") as b:
        state_b = await run_commands(b, signer, count=4)
    assert state_hash(state_a) != state_hash(state_b)


async def _journal_with_rows(path: Path, signer: Signer) -> int:
    async with await Journal.open(path) as journal:
        await run_commands(journal, signer, count=4)
        return await journal.count()


def _tamper(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with file access does: drop the guards, change rows."""
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER events_append_only_update")
    con.execute("DROP TRIGGER events_append_only_delete")
    con.execute(sql, params)
    con.commit()
    con.close()


async def test_verify_cli_passes_an_intact_journal(
    tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite3"
    rows = await _journal_with_rows(path, signer)
    assert main(["journal", "verify", str(path)]) == 0
    assert f"OK, {rows} events" in capsys.readouterr().out


async def test_verify_detects_an_edited_row(
    tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite3"
    await _journal_with_rows(path, signer)
    _tamper(path, "UPDATE events SET body = replace(body, 'Rv73', 'E6') WHERE seq = 5")
    assert main(["journal", "verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert "first bad seq 5" in err


async def test_verify_detects_an_edit_with_recomputed_hash(tmp_path: Path, signer: Signer) -> None:
    from krise_tui.journal.store import row_hash

    path = tmp_path / "j.sqlite3"
    await _journal_with_rows(path, signer)
    con = sqlite3.connect(path)
    prev, body = con.execute("SELECT prev_hash, body FROM events WHERE seq = 6").fetchone()
    con.close()
    forged = body.replace("Rv73", "E6")
    _tamper(
        path,
        "UPDATE events SET body = ?, hash = ? WHERE seq = 6",
        (forged, row_hash(prev, 6, "pb-abc", forged)),
    )
    report = verify_file(path)
    assert not report.ok
    assert report.bad_seq == 7  # the chain breaks at the next row's link


async def test_verify_detects_a_deleted_row(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    await _journal_with_rows(path, signer)
    _tamper(path, "DELETE FROM events WHERE seq = 5")
    report = verify_file(path)
    assert not report.ok
    assert report.bad_seq == 5
    assert "missing" in report.reason


async def test_verify_detects_reordered_rows(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    await _journal_with_rows(path, signer)
    con = sqlite3.connect(path)
    b3 = con.execute("SELECT body FROM events WHERE seq = 3").fetchone()[0]
    b8 = con.execute("SELECT body FROM events WHERE seq = 8").fetchone()[0]
    con.close()
    _tamper(path, "UPDATE events SET body = ? WHERE seq = 3", (b8,))
    _tamper_keep = sqlite3.connect(path)
    _tamper_keep.execute("UPDATE events SET body = ? WHERE seq = 8", (b3,))
    _tamper_keep.commit()
    _tamper_keep.close()
    report = verify_file(path)
    assert not report.ok
    assert report.bad_seq == 3


async def test_verify_detects_truncation_with_expected_head(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    rows = await _journal_with_rows(path, signer)
    head = verify_file(path).head_hash
    _tamper(path, "DELETE FROM events WHERE seq = ?", (rows,))
    assert verify_file(path).ok  # a chain alone cannot see a cut-off end…
    report = verify_file(path, expect_head=head)
    assert not report.ok  # …an anchored head can
    assert report.bad_seq == rows


async def test_rows_cannot_be_updated_through_sqlite(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    await _journal_with_rows(path, signer)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE events SET body = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM events")
    con.close()


def _opened(n: int) -> EventBase:
    return IncidentOpened(
        id=new_id(), org="test", incident_id="inc", actor=f"w{n}", ts=T0, title=f"t{n}"
    )


async def test_concurrent_appends_keep_the_chain_valid(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    one = await Journal.open(path)
    two = await Journal.open(path)  # a second connection: another writer on the same file
    try:

        async def writer(journal: Journal, base: int) -> None:
            for i in range(40):
                await journal.append([_opened(base + i), _opened(base + i + 1000)])

        await asyncio.gather(writer(one, 0), writer(one, 100), writer(two, 200), writer(two, 300))
        assert await one.count() == 320
    finally:
        await one.close()
        await two.close()
    report = verify_file(path)
    assert report.ok, report.reason
    assert report.rows == 320


async def test_opening_a_file_that_is_not_a_journal_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite3"
    bogus.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a krise journal"):
        await Journal.open(bogus)
    assert not verify_file(bogus).ok
    assert not verify_file(tmp_path / "missing.sqlite3").ok


async def test_restart_from_a_snapshot_gives_the_same_state(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    async with await Journal.open(path) as journal:
        state = await run_commands(journal, signer, count=3)
        await journal.save_snapshot(state, state.event_count)
        await journal.append([_opened(1), _opened(2)])  # events after the snapshot
        full = await journal.load_state(use_snapshot=False)
        from_snapshot = await journal.load_state()
        assert await journal.latest_snapshot_seq() == state.event_count
    assert state_hash(from_snapshot) == state_hash(full)
    assert verify_file(path).ok


async def test_a_tampered_snapshot_is_ignored_and_reported(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "j.sqlite3"
    async with await Journal.open(path) as journal:
        state = await run_commands(journal, signer, count=3)
        await journal.save_snapshot(state, state.event_count)
        truth = state_hash(await journal.load_state(use_snapshot=False))
    con = sqlite3.connect(path)
    con.execute("UPDATE snapshots SET state = replace(state, 'Rv73', 'E6')")
    con.commit()
    con.close()
    async with await Journal.open(path) as journal:
        assert state_hash(await journal.load_state()) == truth  # fell back to a full fold
    con = sqlite3.connect(path)
    forged = IncidentState.from_json(
        json.loads(con.execute("SELECT state FROM snapshots").fetchone()[0])
    )
    con.execute("UPDATE snapshots SET state_hash = ?", (state_hash(forged),))
    con.commit()
    con.close()
    report = verify_file(path)
    assert not report.ok
    assert "snapshot" in report.reason
