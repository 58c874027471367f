"""Smoke run of the real `krise console` and `krise staff` in tmux, as a person would see them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import eventually

KRISE = str(Path(sys.executable).with_name("krise"))


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (CI installs it; apt-get install tmux)")
    base = ["tmux", "-L", f"krise-test-{os.getpid()}", "-f", "/dev/null"]
    try:
        yield base
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def capture(tmux: list[str], target: str) -> str:
    out = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", target], capture_output=True, text=True, check=False
    )
    return out.stdout


async def test_console_and_staff_in_tmux(tmux: list[str], tmp_path: Path) -> None:
    env = f"XDG_DATA_HOME={tmp_path} KRISE_CONFIG=/dev/null TERM=xterm-256color"
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "console",
            "-x",
            "80",
            "-y",
            "24",
            f"env {env} {KRISE} console --org smoke",
        ],
        check=True,
    )
    await eventually(lambda: "MQTT ✓" in capture(tmux, "console"), timeout=30, what="console up")
    screen = capture(tmux, "console")
    assert "Hendelse åpnet" in screen
    assert "mosquitto" in screen  # which broker is in use is said on screen

    subprocess.run([*tmux, "send-keys", "-t", "console", "n"], check=True)
    subprocess.run(
        [*tmux, "send-keys", "-t", "console", "-l", "Flomvarsel for sentrum."], check=True
    )
    subprocess.run([*tmux, "send-keys", "-t", "console", "Enter"], check=True)
    await eventually(lambda: "Publiser versjon" in capture(tmux, "console"), what="confirm")
    subprocess.run([*tmux, "send-keys", "-t", "console", "j"], check=True)
    await eventually(lambda: "ansatte ✓ levert" in capture(tmux, "console"), what="delivered")

    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "staff",
            "-x",
            "80",
            "-y",
            "24",
            f"env {env} {KRISE} staff --org smoke --id ansatt-001",
        ],
        check=True,
    )
    await eventually(
        lambda: "Flomvarsel for sentrum." in capture(tmux, "staff"), timeout=30, what="staff"
    )
    assert "signert av kriseledelsen ✓" in capture(tmux, "staff")

    # Freeze from the console: the terminal shows the notice; Enter acknowledges it.
    subprocess.run([*tmux, "send-keys", "-t", "console", "f"], check=True)
    await eventually(lambda: "Frys ansattes publisering" in capture(tmux, "console"), what="dialog")
    subprocess.run([*tmux, "send-keys", "-t", "console", "-l", "Flom i sentrum"], check=True)
    subprocess.run([*tmux, "send-keys", "-t", "console", "Enter"], check=True)
    await eventually(lambda: "Frys publisering for" in capture(tmux, "console"), what="confirm")
    subprocess.run([*tmux, "send-keys", "-t", "console", "j"], check=True)
    await eventually(
        lambda: "HAR FRYST PUBLISERING" in capture(tmux, "staff"), timeout=15, what="notice"
    )
    assert "Flomvarsel for sentrum." in capture(tmux, "staff")
    subprocess.run([*tmux, "send-keys", "-t", "staff", "Enter"], check=True)
    await eventually(lambda: "✓ Kvittert" in capture(tmux, "staff"), what="acknowledged")
    await eventually(
        lambda: "1/1 kvittert" in capture(tmux, "console"),
        what=f"roll-call; console shows:\n{capture(tmux, 'console')}",
    )

    subprocess.run([*tmux, "send-keys", "-t", "staff", "C-q"], check=True)
    subprocess.run([*tmux, "send-keys", "-t", "console", "C-q"], check=True)
    endpoint = tmp_path / "krise" / "broker" / "endpoint.json"
    await eventually(lambda: not endpoint.exists(), timeout=15, what="clean console exit")
