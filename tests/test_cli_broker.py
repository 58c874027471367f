"""`krise broker` (a drill room's broker) and `krise broker users` (the real broker's users)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from krise_tui.bus.broker import generate_acl
from krise_tui.bus.session import BusSession, PublishRefusedError, SessionConfig
from krise_tui.cli import main
from tests.conftest import eventually

KRISE = str(Path(sys.executable).with_name("krise"))


def test_broker_users_writes_a_mosquitto_password_file(tmp_path: Path, capsys: object) -> None:
    passwd = tmp_path / "passwd"
    code = main(
        [
            "broker",
            "users",
            "--passwd",
            str(passwd),
            "--console",
            "console",
            "--staff",
            "ansatt-042",
            "--bridge",
            "sms",
            "--bridge",
            "intranett2",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    printed = dict(
        line.split(" ", 1)
        for line in out.splitlines()
        if line
        and not line.startswith("#")
        and " " in line
        and not line.startswith(("user", "topic"))
    )
    assert set(printed) == {"console", "ansatt-042", "bridge-sms", "bridge-intranett2"}
    assert oct(passwd.stat().st_mode & 0o777) == "0o600"
    for line in passwd.read_text().splitlines():
        user, hashed = line.split(":", 1)
        _, alg, iterations, salt, digest = hashed.split("$")
        expected = hashlib.pbkdf2_hmac(
            "sha512", printed[user].encode(), base64.b64decode(salt), int(iterations), 64
        )
        assert alg == "7" and base64.b64decode(digest) == expected
    assert "user bridge-intranett2" in out  # the org's ACL, printed when not written
    assert "topic write krise/v1/eksempel/staff/ansatt-042/ack" in out  # default org


def test_broker_users_writes_the_orgs_acl(tmp_path: Path, capsys: object) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    args = ["broker", "users", "--passwd", str(passwd), "--acl", str(acl), "--org", "nabo"]
    args += ["--console", "console-nabo", "--staff", "nabo-001", "--bridge", "sms"]
    assert main([*args, "--simulated", "3"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "wrote the ACL for org 'nabo'" in out
    assert "sim-* " in out  # the simulated users' one password
    assert acl.read_text() == generate_acl(
        "nabo", console="console-nabo", staff_ids=("nabo-001",), bridges=("sms",), simulated=3
    )
    assert oct(acl.stat().st_mode & 0o777) == "0o644"  # no secrets; the broker reads it
    users = [line.split(":", 1)[0] for line in passwd.read_text().splitlines()]
    assert sorted(users) == sorted(
        ["console-nabo", "nabo-001", "bridge-sms", "sim-00001", "sim-00002", "sim-00003"]
    )
    # --org before the subcommand works as well
    assert (
        main(["broker", "--org", "nabo2", "users", "--passwd", str(passwd), "--staff", "x1"]) == 0
    )
    assert "krise/v1/nabo2/staff/x1/ack" in capsys.readouterr().out  # type: ignore[attr-defined]


def test_broker_users_without_passwd_makes_only_the_acl(tmp_path: Path, capsys: object) -> None:
    acl = tmp_path / "acl"
    code = main(["broker", "users", "--acl", str(acl), "--staff", "ansatt-043"])
    assert code == 0
    assert "password" not in capsys.readouterr().out  # type: ignore[attr-defined]
    assert acl.read_text() == generate_acl("eksempel", console=(), staff_ids=("ansatt-043",))
    assert [p.name for p in tmp_path.iterdir() if p.name != "empty-krise.toml"] == ["acl"]


def test_broker_users_refuses_a_name_two_roles_would_share(tmp_path: Path, capsys: object) -> None:
    passwd = tmp_path / "passwd"
    code = main(["broker", "users", "--passwd", str(passwd), "--staff", "bridge-sms"])
    assert code == 1
    assert "reserved" in capsys.readouterr().err  # type: ignore[attr-defined]
    assert not passwd.exists()  # checked before anything is written


async def test_standalone_broker_runs_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "KRISE_CONFIG": "/dev/null"}
    proc = subprocess.Popen(
        [KRISE, "broker", "--kind", "mosquitto"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    endpoint_file = tmp_path / "krise" / "broker" / "endpoint.json"
    try:
        await eventually(endpoint_file.exists, timeout=20, what="endpoint.json")
        endpoint = json.loads(endpoint_file.read_text())
        assert endpoint["kind"] == "mosquitto"

        async def ignore(topic: str, payload: bytes, retained: bool) -> None:
            return None

        config = SessionConfig(
            endpoint["host"],
            endpoint["port"],
            client_id="console",
            username="console",
            password=endpoint["credentials"]["console"],
        )
        session = BusSession(config, ignore)
        task = asyncio.create_task(session.run())
        try:
            await session.wait_connected(10)
            await session.publish("krise/v1/eksempel/freeze", b"{}")
            with pytest.raises(PublishRefusedError):  # the ACL is for --org (eksempel)
                await session.publish("krise/v1/nabo/freeze", b"{}")
        finally:
            await session.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "krise broker: mosquitto on 127.0.0.1:" in out
    assert not endpoint_file.exists()
    assert int((endpoint_file.parent / "port").read_text()) == endpoint["port"]  # next time
