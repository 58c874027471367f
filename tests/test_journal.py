"""Journal: append, fold, restart; the chain and the signed head detect tampering."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import pytest

from krise_tui.bus.envelope import Signer, write_key_pair
from krise_tui.cli import main
from krise_tui.core.events import EVENT_ADAPTER
from krise_tui.core.features import REGISTRY
from krise_tui.core.features.incident import IncidentOpened
from krise_tui.core.ids import new_id
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState, fold, state_from_json, state_hash, state_to_json
from krise_tui.journal import store
from krise_tui.journal.head import head_path, make_head, write_head
from krise_tui.journal.store import (
    Journal,
    JournalError,
    event_json,
    event_rows,
    row_hash,
    verify_file,
)
from krise_tui.journal.verify import verify_with_head
from tests.conftest import disk_full, disk_room
from tests.corekit import every_kind_of_event

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def write_scenario(path: Path) -> tuple[IncidentState, list[EventBase]]:
    """Journal every kind of event, one decision at a time, as the runtime does."""
    live, events = every_kind_of_event()
    async with await Journal.open(path) as journal:
        for event in events:
            await journal.append([event], playbook_hash="pb-abc")
    return live, events


async def signed_journal(tmp_path: Path) -> tuple[Path, Path]:
    """A journal with a signed head beside it; returns (journal, public key)."""
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    _, pub = write_key_pair(tmp_path / "keys")
    from krise_tui.bus.envelope import load_private_key

    signer = Signer(load_private_key(tmp_path / "keys" / "console.key"))
    async with await Journal.open(path) as journal:
        seq, digest = await journal.head()
    head = make_head(
        seq=seq, hash=digest, at=T0.isoformat(), key_id=signer.key_id, sign=signer.sign_bytes
    )
    write_head(head, [head_path(path)])
    return path, pub


async def test_restart_folds_to_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    live, events = await write_scenario(path)
    async with await Journal.open(path) as journal:
        restored = await journal.load_state()
        assert await journal.count() == len(events) == live.event_count
    assert state_hash(restored) == state_hash(live)
    assert restored.messages.current is not None
    assert verify_file(path).ok


@pytest.mark.parametrize("chunk", [1, 3, 7])
async def test_loading_in_chunks_read_ahead_gives_every_event_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Chunks are read ahead while one is parsed: none is lost, doubled or out of place,
    from the start or from the middle, and rows appended while reading come last."""
    monkeypatch.setattr(store, "READ_CHUNK", chunk)
    path = tmp_path / "j.sqlite3"
    live, events = await write_scenario(path)
    ids = [e.id for e in events]
    async with await Journal.open(path) as journal:
        assert state_hash(await journal.load_state(use_snapshot=False)) == state_hash(live)
        assert [e.id for e in await journal.read_events()] == ids
        assert [e.id for e in await journal.read_events(after_seq=5)] == ids[5:]
        assert await journal.read_events(after_seq=len(ids)) == []
        later = [e.model_copy(update={"id": new_id()}) for e in events[:2]]
        seen: list[str] = []
        async for part in journal._chunks(0):
            if not seen:  # appended after the first chunk was read: read too, at the end
                await journal.append(later)
            seen += [e.id for e in part]
        assert seen == ids + [e.id for e in later]


async def test_a_snapshot_after_every_kind_of_event_restores_the_whole_state(
    tmp_path: Path,
) -> None:
    """Snapshots go through the state's own codec: no field can be forgotten."""
    _, events = every_kind_of_event()
    covered = {e.type for e in events}  # type: ignore[attr-defined]
    registered = {t.model_fields["type"].default for t in REGISTRY.event_types}
    assert covered == registered, (
        f"add these to corekit.every_kind_of_event: {registered - covered}"
    )
    state = IncidentState()
    for event in events:
        fold([event], state)
        restored = state_from_json(json.loads(json.dumps(state_to_json(state))))
        assert restored == state, f"the snapshot after {event.type} lost something"  # type: ignore[attr-defined]
        assert state_hash(restored) == state_hash(state)
    path = tmp_path / "j.sqlite3"
    async with await Journal.open(path) as journal:
        for n, event in enumerate(events, start=1):
            await journal.append([event])
            await journal.save_snapshot(fold(events[:n]), n)
            from_snapshot = await journal.load_state()
            assert state_hash(from_snapshot) == state_hash(fold(events[:n]))
    assert verify_file(path).ok


async def test_a_new_snapshot_replaces_the_older_ones_so_the_file_grows_with_the_events(
    tmp_path: Path,
) -> None:
    """Every snapshot holds the whole state: kept, they grew the file with the square of
    the incident. Only the newest is kept; its pages are reused by the next one."""
    from krise_tui.core.features.incident import OpenIncident
    from tests.corekit import bus, make_ctx, run

    ctx = make_ctx("bus")
    live, opening = IncidentState(), []
    run(live, OpenIncident("Flom i sentrum"), make_ctx("ola"), events=opening)
    path = tmp_path / "j.sqlite3"
    text = "Er drikkevannet trygt i Storgata nå som flommen har nådd sentrum? " * 3
    async with await Journal.open(path) as journal:
        await journal.append(opening)
        for burst in range(25):
            events: list[EventBase] = []
            for k in range(20):
                post = {"id": f"p{burst}-{k}", "text": f"{text} ({burst}/{k})", "author": "@per"}
                run(live, bus("krise/v1/test/channel/facebook/in", post), ctx, events=events)
            seqs = await journal.append(events)
            await journal.save_snapshot(live, seqs[-1])
        assert await journal.latest_snapshot_seq() == live.event_count
        assert await journal.load_state() == live
    con = sqlite3.connect(path)
    try:
        kept = con.execute("SELECT seq, length(state) FROM snapshots").fetchall()
        events_bytes = con.execute("SELECT sum(length(body)) FROM events").fetchone()[0]
        pages, page_size = (
            con.execute("PRAGMA page_count").fetchone()[0],
            con.execute("PRAGMA page_size").fetchone()[0],
        )
    finally:
        con.close()
    assert [seq for seq, _ in kept] == [live.event_count]
    newest = kept[0][1]
    # Kept, the 25 snapshots would take about 13 times the newest; here the file holds
    # the rows (body, hashes, index) and at most the newest and the one it replaced.
    assert pages * page_size < 3 * events_bytes + 3 * newest, (pages * page_size, newest)
    assert verify_file(path).ok


def test_every_kind_of_event_is_journaled_as_the_text_pydantic_writes() -> None:
    """The journal writes bodies with orjson for speed: byte for byte pydantic's text, so
    the body of every kind of event reads back as the same event."""
    _, events = every_kind_of_event()
    for event in events:
        body = event_json(event)
        assert body == event.__pydantic_serializer__.to_json(event), event.type  # type: ignore[attr-defined]
        assert event_rows([event], None)[0][5] == body
        assert EVENT_ADAPTER.validate_json(body) == event


class _Unusual(EventBase):
    type: Literal["test.unusual"] = "test.unusual"
    wait: timedelta
    tags: frozenset[str]
    big: int


def test_an_event_orjson_cannot_write_is_written_by_pydantic() -> None:
    event = _Unusual(
        id=new_id(),
        org="t",
        incident_id="i",
        actor="ola",
        ts=T0,
        wait=timedelta(minutes=90),
        tags=frozenset({"a"}),
        big=2**70,
    )
    assert event_json(event) == event.__pydantic_serializer__.to_json(event)
    assert event_rows([event], None)[0][5] == event_json(event)
    assert b'"PT1H30M"' in event_json(event)


def test_the_time_column_is_made_once_per_time_and_right_for_each() -> None:
    """Events decided together share their time object; the column is right either way."""
    base = {"org": "t", "incident_id": "i", "actor": "ola", "title": "Flom", "level": 2}
    shared = T0.replace(microsecond=250_000)
    oslo = T0.astimezone(timezone(timedelta(hours=1)))
    times = [shared, shared, oslo, oslo, T0, shared, T0.replace(microsecond=1)]
    events = [IncidentOpened(id=new_id(), ts=ts, **base) for ts in times]  # type: ignore[arg-type]
    assert [row[2] for row in event_rows(events, None)] == [ts.isoformat() for ts in times]


async def test_playbook_hash_is_recorded_per_event(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    con = sqlite3.connect(path)
    hashes = {row[0] for row in con.execute("SELECT playbook_hash FROM events WHERE seq <= 3")}
    con.close()
    assert hashes == {"pb-abc"}


def _tamper(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with file access does: drop the guards, change rows."""
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER IF EXISTS events_append_only_update")
    con.execute("DROP TRIGGER IF EXISTS events_append_only_delete")
    con.execute(sql, params)
    con.commit()
    con.close()


async def test_verify_cli_passes_an_intact_journal_with_its_signed_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, pub = await signed_journal(tmp_path)
    assert main(["journal", "verify", str(path), "--public-key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert f"OK, {len(every_kind_of_event()[1])} events" in out and "signed head" in out


async def test_verify_cli_finds_the_key_beside_the_journal_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drill's directory (journal, keys/) verifies without --public-key, whatever key
    this machine's own console has; with no key anywhere it is 'not verified', not
    'broken'."""
    path, pub = await signed_journal(tmp_path)
    elsewhere = tmp_path / "data"
    write_key_pair(elsewhere / "keys")  # this machine's console: another key
    monkeypatch.setenv("KRISE_DATA_DIR", str(elsewhere))
    assert main(["journal", "verify", str(path)]) == 0
    assert f"(key {pub})" in capsys.readouterr().out
    lonely = tmp_path / "archive" / "j.sqlite3"
    lonely.parent.mkdir()
    lonely.write_bytes(path.read_bytes())
    head_path(lonely).write_bytes(head_path(path).read_bytes())
    monkeypatch.setenv("KRISE_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["journal", "verify", str(lonely)]) == 1
    err = capsys.readouterr().err
    assert "NOT VERIFIED" in err and "BROKEN" not in err and "--public-key" in err
    # This machine's console key is not the one that signed it: that is named.
    monkeypatch.setenv("KRISE_DATA_DIR", str(elsewhere))
    assert main(["journal", "verify", str(lonely)]) == 1
    err = capsys.readouterr().err
    assert "BROKEN" in err and "not signed by the console's key" in err
    assert str(elsewhere / "keys" / "console.pub") in err
    assert main(["journal", "verify", str(lonely), "--public-key", str(pub)]) == 0


def test_a_directory_given_as_a_journal_is_named_with_the_journal_inside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = asyncio.run(signed_journal(tmp_path))
    directory = path.parent
    assert main(["journal", "verify", str(directory)]) == 2
    assert f"{directory} is a directory, not a journal" in capsys.readouterr().err
    path.rename(directory / "journal.sqlite3")  # as a data or drill directory holds it
    inside = directory / "journal.sqlite3"
    for argv in (["journal", "verify"], ["journal", "show"], ["journal", "export"]):
        extra = ["--noark5", str(tmp_path / "out")] if argv[1] == "export" else []
        assert main([*argv, str(directory), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{directory} is a directory: give its journal, {inside}" in err, argv
    assert not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--noark5 DIR` or `--html FILE` where a file stands in the way (or the disk is
    full, or no permission) ended in a Python traceback."""
    path, _ = asyncio.run(signed_journal(tmp_path))
    blocker = tmp_path / "usb"
    blocker.write_text("a file, not a directory", encoding="utf-8")
    for argv in (
        ["journal", "export", str(path), "--noark5", str(blocker / "arkiv")],
        ["sitrep", "--journal", str(path), "--html", str(blocker / "rapport.html")],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"krise: {blocker}/") and err.rstrip().endswith(
            ": Not a directory"
        ), err


def test_a_journal_that_is_not_there_is_exit_2_never_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 from verify means a broken chain: a mistyped path is not one."""
    missing = tmp_path / "jounral.sqlite3"
    for argv in (["journal", "verify"], ["journal", "show", "--json"], ["journal", "export"]):
        extra = ["--noark5", str(tmp_path / "out")] if argv[1] == "export" else []
        assert main([*argv, str(missing), *extra]) == 2, argv
        err = capsys.readouterr().err
        assert f"{missing}: no such" in err and "BROKEN" not in err, (argv, err)
    assert not missing.exists() and not (tmp_path / "out").exists()


async def test_verify_detects_an_edited_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, pub = await signed_journal(tmp_path)
    _tamper(
        path,
        "UPDATE events SET body = replace(body, 'Flomvarsel', 'Alt vel')"
        " WHERE type = 'message.draft_saved'",
    )
    con = sqlite3.connect(path)
    (seq,) = con.execute(
        "SELECT MIN(seq) FROM events WHERE type = 'message.draft_saved'"
    ).fetchone()
    con.close()
    assert main(["journal", "verify", str(path), "--public-key", str(pub)]) == 1
    assert f"first bad seq {seq}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("column", "value"),
    [("ts", "2026-11-27T03:00:00+00:00"), ("type", "incident.opened"), ("incident_id", "x")],
)
async def test_verify_detects_a_changed_column_outside_the_body(
    tmp_path: Path, column: str, value: str
) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    _tamper(path, f"UPDATE events SET {column} = ? WHERE seq = 5", (value,))
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 5


@pytest.mark.parametrize(
    "ts",
    [
        T0,
        T0.replace(microsecond=250_000),
        T0.replace(microsecond=1),
        T0.astimezone(timezone(timedelta(hours=1))),
        T0.replace(microsecond=120).astimezone(timezone(-timedelta(hours=5, minutes=30))),
    ],
)
async def test_columns_are_stored_as_text_and_time_as_isoformat_whatever_its_zone(
    tmp_path: Path, ts: datetime
) -> None:
    # The append reads a UTC time off the JSON body (which writes "Z" for "+00:00"); any
    # other offset is written out by isoformat. Either way the column is the same text.
    path = tmp_path / "j.sqlite3"
    event = IncidentOpened(
        id=new_id(), org="t", incident_id="i", actor="ola", ts=ts, title="Flom på Sørøya ⚠", level=2
    )
    async with await Journal.open(path) as journal:
        await journal.append([event])
        (row,) = [row async for row in journal.rows()]
    with sqlite3.connect(path) as con:
        stored, body_type = con.execute("SELECT ts, typeof(body) FROM events").fetchone()
    assert stored == ts.isoformat()
    assert body_type == "text"
    assert json.loads(row.body)["title"] == "Flom på Sørøya ⚠"
    assert verify_file(path).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [("body", b'{"type": "incident.opened"}'), ("ts", b"2026"), ("playbook_hash", b"\x00")],
)
async def test_verify_reports_a_column_of_the_wrong_type_instead_of_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: object
) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    _tamper(path, f"UPDATE events SET {column} = ? WHERE seq = 3", (value,))
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 3 and "not text" in report.reason
    assert main(["journal", "verify", str(path)]) == 1
    assert "first bad seq 3" in capsys.readouterr().err


async def test_verify_detects_a_forged_column_with_a_recomputed_hash(tmp_path: Path) -> None:
    """Even recomputing the hash: the column must agree with the event it carries."""
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT seq, event_id, type, ts, incident_id, playbook_hash, body FROM events ORDER BY seq"
    ).fetchall()
    con.close()
    prev = "0" * 64
    for seq, event_id, type_, ts, incident_id, pb, body in rows:
        if seq == 3:
            ts = "2026-11-27T03:00:00+00:00"
        digest = row_hash(prev, seq, event_id, type_, ts, incident_id, pb, body)
        _tamper(
            path,
            "UPDATE events SET ts = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (ts, prev, digest, seq),
        )
        prev = digest
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 3
    assert "columns do not match" in report.reason


async def test_verify_detects_a_deleted_row(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    _tamper(path, "DELETE FROM events WHERE seq = 5")
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 5 and "missing" in report.reason


async def test_verify_detects_reordered_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    con = sqlite3.connect(path)
    b3 = con.execute("SELECT body FROM events WHERE seq = 3").fetchone()[0]
    b8 = con.execute("SELECT body FROM events WHERE seq = 8").fetchone()[0]
    con.close()
    _tamper(path, "UPDATE events SET body = ? WHERE seq = 3", (b8,))
    _tamper(path, "UPDATE events SET body = ? WHERE seq = 8", (b3,))
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 3


async def test_the_signed_head_catches_rows_cut_off_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, pub = await signed_journal(tmp_path)
    _tamper(path, "DELETE FROM events WHERE seq >= 30")
    assert verify_file(path).ok  # a chain alone cannot see a cut-off end…
    assert main(["journal", "verify", str(path), "--public-key", str(pub)]) == 1  # …the head can
    assert "rows were cut off" in capsys.readouterr().err


async def test_a_missing_or_forged_head_is_an_error(tmp_path: Path) -> None:
    path, pub = await signed_journal(tmp_path)
    head = head_path(path)
    data = json.loads(head.read_text())
    data["seq"] = 2  # an older head pasted in to hide the newest rows' removal
    head.write_text(json.dumps(data))
    result = verify_with_head(path, public_key=pub)
    assert not result.ok and "not signed by the console" in result.reason
    head.unlink()
    result = verify_with_head(path, public_key=pub)
    assert not result.ok and "is missing" in result.reason
    assert verify_with_head(path, public_key=pub, with_head=False).ok


async def test_the_journal_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "j.sqlite3"
    await write_scenario(path)
    for file in path.parent.glob("j.sqlite3*"):
        mode = stat.S_IMODE(file.stat().st_mode)
        assert mode & 0o077 == 0, f"{file.name} is {oct(mode)}"


async def test_rows_cannot_be_updated_through_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
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


async def test_a_tampered_snapshot_is_ignored_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    live, _ = await write_scenario(path)
    async with await Journal.open(path) as journal:
        await journal.save_snapshot(live, live.event_count)
        truth = state_hash(await journal.load_state(use_snapshot=False))
    _tamper(path, "UPDATE snapshots SET state = replace(state, 'Rv73', 'E6')")
    async with await Journal.open(path) as journal:
        assert state_hash(await journal.load_state()) == truth  # fell back to a full fold
    con = sqlite3.connect(path)
    forged = state_from_json(json.loads(con.execute("SELECT state FROM snapshots").fetchone()[0]))
    con.execute("UPDATE snapshots SET state_hash = ?", (state_hash(forged),))
    con.commit()
    con.close()
    report = verify_file(path)
    assert not report.ok and "snapshot" in report.reason


def _rechain(path: Path, bodies: dict[int, str]) -> None:
    """Replace the bodies of some rows and recompute every hash from there on."""
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT seq, event_id, type, ts, incident_id, playbook_hash, body FROM events ORDER BY seq"
    ).fetchall()
    con.close()
    prev = "0" * 64
    for seq, event_id, type_, ts, incident_id, pb, body in rows:
        body = bodies.get(seq, body)
        digest = row_hash(prev, seq, event_id, type_, ts, incident_id, pb, body)
        _tamper(
            path,
            "UPDATE events SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (body, prev, digest, seq),
        )
        prev = digest


async def test_verify_names_the_first_bad_row_whatever_is_wrong_with_it(tmp_path: Path) -> None:
    """Rows are checked a chunk at a time; the first problem in row order is the one named."""
    path = tmp_path / "j.sqlite3"
    await write_scenario(path)
    _rechain(path, {4: '{"type": "no.such.event"}'})  # chained correctly, not an event
    _tamper(path, "UPDATE events SET hash = ? WHERE seq = 9", ("f" * 64,))  # a later break
    report = verify_file(path)
    assert not report.ok and report.bad_seq == 4 and "not a valid event" in report.reason


async def test_a_journal_written_with_canonical_bodies_still_verifies_and_loads(
    tmp_path: Path,
) -> None:
    """Older krise stored each body as canonical JSON (sorted keys): the chain covers the
    stored text, whichever form it has."""
    path = tmp_path / "j.sqlite3"
    live, _ = await write_scenario(path)
    con = sqlite3.connect(path)
    bodies = {
        seq: json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        for seq, body in con.execute("SELECT seq, body FROM events")
    }
    con.close()
    _rechain(path, bodies)
    assert verify_file(path).ok
    async with await Journal.open(path) as journal:
        assert state_hash(await journal.load_state()) == state_hash(live)


async def test_a_snapshot_is_checked_by_value_and_by_the_hash_of_its_text(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    live, _ = await write_scenario(path)
    async with await Journal.open(path) as journal:
        await journal.save_snapshot(live, live.event_count)
    con = sqlite3.connect(path)
    text, digest = con.execute("SELECT state, state_hash FROM snapshots").fetchone()
    con.close()
    assert hashlib.sha256(text.encode()).hexdigest() == digest
    # The same state written another way (in full, sorted, as older krise did): accepted.
    canonical = json.dumps(state_to_json(live), sort_keys=True, separators=(",", ":"))
    _tamper(
        path,
        "UPDATE snapshots SET state = ?, state_hash = ?",
        (canonical, hashlib.sha256(canonical.encode()).hexdigest()),
    )
    assert verify_file(path).ok
    async with await Journal.open(path) as journal:
        assert state_hash(await journal.load_state()) == state_hash(live)
    # Another state with a hash that fits its text: loaded, but verify names it.
    other = json.dumps(state_to_json(fold(every_kind_of_event()[1][:5])))
    _tamper(
        path,
        "UPDATE snapshots SET state = ?, state_hash = ?",
        (other, hashlib.sha256(other.encode()).hexdigest()),
    )
    report = verify_file(path)
    assert not report.ok and report.bad_seq == live.event_count and "snapshot" in report.reason


async def test_a_snapshot_written_by_older_krise_still_verifies_and_is_used(
    tmp_path: Path,
) -> None:
    """Older krise stored the snapshot as canonical JSON with the hash of the state (not
    of the text): such a journal verifies, and a restart starts from that snapshot."""
    path = tmp_path / "j.sqlite3"
    live, _ = await write_scenario(path)
    async with await Journal.open(path) as journal:
        await journal.save_snapshot(live, live.event_count)
    canonical = json.dumps(
        state_to_json(live), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    _tamper(path, "UPDATE snapshots SET state = ?, state_hash = ?", (canonical, state_hash(live)))
    assert verify_file(path).ok
    async with await Journal.open(path) as journal:
        state, after = await journal._snapshot_start()
        assert after == live.event_count and state_hash(state) == state_hash(live)
    # The same hash over another state's text: not used, and verify names it.
    other = state_to_json(fold(every_kind_of_event()[1][:5]))
    _tamper(path, "UPDATE snapshots SET state = ?", (json.dumps(other),))
    async with await Journal.open(path) as journal:
        assert (await journal._snapshot_start())[1] == 0
    report = verify_file(path)
    assert not report.ok and "snapshot" in report.reason


async def test_a_snapshot_whose_questions_carry_a_copy_of_their_post_is_used(
    tmp_path: Path,
) -> None:
    """Older krise kept each question's post twice (in the question too): its snapshots
    still load, and the state restarted from one equals the full fold."""
    path = tmp_path / "j.sqlite3"
    _, events = every_kind_of_event()
    async with await Journal.open(path) as journal:
        await journal.append(events)
        live = fold(events)
        await journal.save_snapshot(live, len(events))
    assert live.questions.questions, "the scenario must triage a post"
    con = sqlite3.connect(path)
    (text,) = con.execute("SELECT state FROM snapshots").fetchone()
    con.close()
    snapshot = json.loads(text)
    for key, q in snapshot["questions"]["questions"].items():
        post = live.inbound.posts[key]
        q.update(
            channel=post.channel,
            post_id=post.post_id,
            text=post.text,
            received_at=post.received_at.isoformat(),
            author=post.author,
            kind=post.kind,
            meta=post.meta,
        )
    old = json.dumps(snapshot)
    _tamper(
        path,
        "UPDATE snapshots SET state = ?, state_hash = ?",
        (old, hashlib.sha256(old.encode()).hexdigest()),
    )
    async with await Journal.open(path) as journal:
        state, after = await journal._snapshot_start()
        assert after == len(events)
        assert state == live and state_hash(state) == state_hash(live)
    assert verify_file(path).ok


def test_journal_show_json_gives_one_object_per_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite3"
    _, events = asyncio.run(write_scenario(path))
    assert main(["journal", "show", str(path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(events)
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == list(range(1, len(events) + 1))
    assert {"seq", "type", "actor", "time", "body"} <= set(rows[0])
    assert rows[0]["type"] == "incident.opened" and rows[0]["body"]["title"] == "Flom i sentrum"
    post = next(r for r in rows if r["type"] == "inbound.post")
    assert post["topic"] == "krise/v1/test/channel/facebook/in"
    assert post["body"]["post"]["author"] == "@per"
    assert "17057234881" not in "\n".join(lines)
    assert main(["journal", "show", str(path), "--json", "--tail", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["journal", "show", str(path), "--tail", str(len(events))]) == 0
    text = capsys.readouterr().out
    assert "Innlegg (facebook)" in text
    first = text.splitlines()[0].split()
    assert first[0] == "1" and first[1] == rows[0]["time"][:19] + "Z"  # UTC, said so


async def test_a_refused_write_is_unavailable_and_a_broken_journal_is_not(
    tmp_path: Path,
) -> None:
    """The machine refusing a write (a full disk: SQLite's page limit stands in) is
    JournalUnavailable, which the console waits out; a journal that is broken (a table
    gone) is not, and fails as it did."""
    from krise_tui.core.features.incident import OpenIncident
    from krise_tui.journal.store import JournalUnavailable
    from tests.corekit import make_ctx, run

    state = IncidentState()
    events = run(state, OpenIncident("Flom"), make_ctx("ola")).events
    async with await Journal.open(tmp_path / "j.sqlite3") as journal:
        await journal.append(events)

        await journal._call(disk_full)
        big = [e.model_copy(update={"id": f"e{i}"}) for i, e in enumerate(events * 200)]
        with pytest.raises(JournalUnavailable, match="database or disk is full"):
            await journal.append(big)

        def run_sql(con: sqlite3.Connection, sql: str) -> None:
            con.execute(sql).fetchall()  # done with: no statement left open

        await journal._call(disk_room)
        await journal._call(run_sql, "DROP TABLE events")
        with pytest.raises(sqlite3.OperationalError, match="no such table") as caught:
            await journal.append(events)
        assert not isinstance(caught.value, JournalUnavailable)
