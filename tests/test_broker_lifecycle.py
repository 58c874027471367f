"""A private broker's files and process: atomic, private, and never left behind.

- Every file another process reads (endpoint.json, passwd, acl, mosquitto.conf) is
  replaced by a rename: a reader never sees half a file; secrets are 0600.
- The mosquitto dies with the krise process that started it, even on ``kill -9``.
- A start clears what a dead owner left: a stale endpoint.json, an orphan mosquitto.
- One owner per directory: a second broker on the same persistence is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from krise_tui.bus.broker import (
    ENDPOINT_FILE,
    BrokerError,
    BrokerKind,
    Credentials,
    Endpoint,
    MosquittoBroker,
    read_endpoint,
    write_endpoint,
)
from tests.conftest import eventually

ORG = "test"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has ended


def test_endpoint_json_is_never_seen_half_written(tmp_path: Path) -> None:
    path = tmp_path / "broker" / ENDPOINT_FILE
    big = Credentials.generate(staff_ids=tuple(f"ansatt-{i:04d}" for i in range(400)))
    endpoints = [Endpoint("127.0.0.1", 20000 + i, BrokerKind.MOSQUITTO, big) for i in range(2)]
    write_endpoint(path, endpoints[0])
    done = threading.Event()
    problems: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problems.append(repr(exc))
            reads += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(300):
            write_endpoint(path, endpoints[i % 2])
    finally:
        done.set()
        thread.join()
    assert reads > 100  # the reader really raced the writer
    assert problems == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == [ENDPOINT_FILE]  # no temp files


async def test_private_files_are_private_and_complete(tmp_path: Path) -> None:
    tmp_path = tmp_path / "broker"
    broker = MosquittoBroker(
        tmp_path, credentials=Credentials.generate(staff_ids=("ansatt-001",)), org=ORG
    )
    await broker.start()
    try:
        for name in (ENDPOINT_FILE, "passwd", "acl", "mosquitto.conf"):
            mode = (tmp_path / name).stat().st_mode & 0o777
            assert mode == 0o600, f"{name}: {oct(mode)}"
        assert not list(tmp_path.glob(".*.tmp"))
        written = read_endpoint(tmp_path / ENDPOINT_FILE)
        assert (written.port, written.pid) == (broker.port, broker.endpoint.pid)
    finally:
        await broker.stop()
    assert not (tmp_path / ENDPOINT_FILE).exists()  # withdrawn with the broker


OWNER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import krise_tui.bus.broker as broker_module

    if sys.argv[2] == "no-death-signal":  # as on a system without prctl
        broker_module.die_with_parent = lambda: None

    async def main() -> None:
        broker = broker_module.MosquittoBroker(Path(sys.argv[1]), org="test")
        await broker.start()
        print(broker.endpoint.pid, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def start_owner(directory: Path, mode: str = "normal") -> tuple[subprocess.Popen[str], int]:
    """A krise process that starts a private mosquitto; returns it and mosquitto's pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(directory), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the broker listens (or the owner died)
    if not line:
        proc.wait(10)
        pytest.fail(f"the owner process failed to start a broker (status {proc.returncode})")
    return proc, int(line)


async def test_mosquitto_dies_with_its_parent_on_kill_9(tmp_path: Path) -> None:
    owner, pid = start_owner(tmp_path)
    assert _alive(pid)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(10)
    await eventually(lambda: not _alive(pid), what=f"mosquitto {pid} to end with its parent")
    # What the dead owner left: an endpoint.json naming a broker that is gone.
    assert read_endpoint(tmp_path / ENDPOINT_FILE).pid == pid

    again = MosquittoBroker(tmp_path, org=ORG)
    await again.start()  # the lock died with the owner; the stale endpoint is replaced
    try:
        assert read_endpoint(tmp_path / ENDPOINT_FILE).pid == again.endpoint.pid != pid
    finally:
        await again.stop()


async def test_a_start_ends_an_orphan_left_without_the_death_signal(tmp_path: Path) -> None:
    owner, pid = start_owner(tmp_path, "no-death-signal")
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(10)
    try:
        assert _alive(pid)  # an orphan, still writing to this data directory
        again = MosquittoBroker(tmp_path, org=ORG)
        await again.start()
        try:
            assert not _alive(pid)
            assert again.port == read_endpoint(tmp_path / ENDPOINT_FILE).port
        finally:
            await again.stop()
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_a_failed_start_leaves_no_stale_endpoint(tmp_path: Path) -> None:
    stale = Endpoint("127.0.0.1", 1, BrokerKind.MOSQUITTO, Credentials.generate(), pid=1)
    write_endpoint(tmp_path / ENDPOINT_FILE, stale)
    broker = MosquittoBroker(tmp_path, binary=str(tmp_path / "no-such-mosquitto"), org=ORG)
    with pytest.raises(BrokerError, match="mosquitto binary not found"):
        await broker.start()
    assert not (tmp_path / ENDPOINT_FILE).exists()
    again = MosquittoBroker(tmp_path, org=ORG)  # and the directory is free again
    await again.start()
    await again.stop()


async def test_one_broker_per_directory(tmp_path: Path) -> None:
    first = MosquittoBroker(tmp_path, org=ORG)
    await first.start()
    try:
        second = MosquittoBroker(tmp_path, org=ORG)
        with pytest.raises(BrokerError, match="another krise broker runs from this directory"):
            await second.start()
        assert read_endpoint(tmp_path / ENDPOINT_FILE).pid == first.endpoint.pid  # untouched
    finally:
        await first.stop()
