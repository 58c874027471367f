"""`krise broker` (a drill room's broker) and `krise broker users` (the real broker's users)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt

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
    assert "user bridge-intranett2" in out  # ACL block printed for the new bridge


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
        async with aiomqtt.Client(
            endpoint["host"],
            endpoint["port"],
            username="console",
            password=endpoint["credentials"]["console"],
            timeout=5,
        ) as client:
            await client.publish("krise/v1/eksempel/freeze", b"{}", qos=1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "krise broker: mosquitto on 127.0.0.1:" in out
    assert not endpoint_file.exists()
