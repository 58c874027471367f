"""``krise console --headless`` as a process: it starts on the embedded defaults (its own
broker, journal and keys), says in its log what the console's banner would show, and a
SIGTERM stops it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from krise_tui.core.events import event_from_json
from krise_tui.journal.store import verify_file
from tests.corekit import TEST_ORG

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The log once it holds ``text`` (fails with the log when the process ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(encoding="utf-8", errors="replace")
        if text in log:
            return log
        if proc.poll() is not None:
            raise AssertionError(f"krise console --headless ended ({proc.returncode}):\n{log}")
        time.sleep(0.2)  # polling a log file another process writes
    raise AssertionError(f"no {text!r} in the log after {timeout} s:\n{path.read_text()}")


def test_headless_console_logs_what_the_banner_would_show_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    org = yaml.safe_load(TEST_ORG.read_text(encoding="utf-8"))
    mailbox = f"imap://127.0.0.1:{closed_port()}/INBOX"
    org["channels"].append(
        {
            "id": "epost",
            "kind": "email",
            "endpoint": f"smtp://127.0.0.1:{closed_port()}",
            "options": {"from": "k@test.kommune.no", "to": "b@test.kommune.no"},
            "inbound": {
                "imap": {"url": mailbox, "user": "postmottak"},
                "secret": {"env": "KRISE_TEST_IMAP"},
                "poll_interval": "1s",
            },
        }
    )
    org_file = tmp_path / "org.yaml"
    org_file.write_text(yaml.safe_dump(org, allow_unicode=True), encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KRISE_")},
        "HOME": str(tmp_path / "home"),
        "KRISE_DATA_DIR": str(tmp_path / "data"),
        "KRISE_ORG_FILE": str(org_file),
        "KRISE_PLAYBOOK": str(ROOT / "playbooks" / "flom-og-skred.yaml"),
        "KRISE_OPERATOR": "ola",
        "KRISE_ORG": "test",
        "KRISE_TEST_IMAP": "passord",
    }
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "krise_tui", "console", "--headless"],
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(log_path, "krise console --headless: test, incident", proc, 120)
            log = wait_for(log_path, f"Innkommende på epost: polling e-mail {mailbox}", proc, 60)
            assert "cannot connect" in log
            # The flood playbook names channels this org lacks: said too, as the banner would.
            assert "WARNING krise console --headless: Dreieboka har feil" in log
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert "krise console --headless: stopped cleanly" in log
    journal = tmp_path / "data" / "journal.sqlite3"
    report = verify_file(journal)
    assert report.ok, report
    with sqlite3.connect(journal) as con:
        bodies = [row[0] for row in con.execute("SELECT body FROM events ORDER BY seq")]
    troubles = [
        e for e in map(event_from_json, bodies) if getattr(e, "trouble", None)
    ]  # journaled from the bridge's presence
    assert troubles and "cannot connect" in next(iter(troubles[0].trouble.values()))  # type: ignore[attr-defined]
