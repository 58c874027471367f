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


ROOT = Path(__file__).resolve().parents[1]


async def test_console_and_staff_in_tmux(tmux: list[str], tmp_path: Path) -> None:
    """The README's quick start: the sample org and the flood playbook, a staff terminal."""
    env = (
        f"XDG_DATA_HOME={tmp_path} KRISE_CONFIG=/dev/null TERM=xterm-256color "
        f"KRISE_ORG_FILE={ROOT / 'playbooks/orgs/eksempel.yaml'} "
        f"KRISE_PLAYBOOK={ROOT / 'playbooks/flom-og-skred.yaml'} KRISE_OPERATOR=lise"
    )
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
            f"env {env} {KRISE} console",
        ],
        check=True,
    )
    await eventually(lambda: "MQTT ✓" in capture(tmux, "console"), timeout=30, what="console up")
    # Sign in: lise is preselected (KRISE_OPERATOR), the passphrase proves it.
    await eventually(
        lambda: "hvem sitter ved konsollen" in capture(tmux, "console"), what="the sign-in"
    )
    subprocess.run([*tmux, "send-keys", "-t", "console", "-l", "passord-lise"], check=True)
    subprocess.run([*tmux, "send-keys", "-t", "console", "Enter"], check=True)
    await eventually(lambda: "Start hendelsen" in capture(tmux, "console"), what="the start")
    subprocess.run([*tmux, "send-keys", "-t", "console", "Enter"], check=True)
    await eventually(lambda: "FRYS ●" in capture(tmux, "console"), what="the playbook's freeze")
    screen = capture(tmux, "console")
    assert "Flom og jordskred" in screen
    assert "mosquitto" in screen  # which broker is in use is said on screen

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
            f"env {env} {KRISE} staff --id ansatt-001",
        ],
        check=True,
    )
    await eventually(
        lambda: "HAR FRYST PUBLISERING" in capture(tmux, "staff"), timeout=30, what="notice"
    )
    assert "signert av kriseledelsen ✓" in capture(tmux, "staff")
    subprocess.run([*tmux, "send-keys", "-t", "staff", "Enter"], check=True)
    await eventually(lambda: "✓ Kvittert" in capture(tmux, "staff"), what="acknowledged")
    await eventually(
        lambda: "1/3 kvittert" in capture(tmux, "console"),
        what=f"roll-call; console shows:\n{capture(tmux, 'console')}",
    )

    # Lift from the console: the terminal clears its notice.
    subprocess.run([*tmux, "send-keys", "-t", "console", "f"], check=True)
    await eventually(lambda: "Opphev frys" in capture(tmux, "console"), what="lift dialog")
    subprocess.run([*tmux, "send-keys", "-t", "console", "-l", "Faren er over"], check=True)
    subprocess.run([*tmux, "send-keys", "-t", "console", "Enter"], check=True)
    await eventually(lambda: "Opphev frysen" in capture(tmux, "console"), what="confirm")
    subprocess.run([*tmux, "send-keys", "-t", "console", "j"], check=True)
    try:
        await eventually(
            lambda: "HAR FRYST" not in capture(tmux, "staff"), timeout=15, what="the lift"
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; the staff terminal shows:\n{capture(tmux, 'staff')}"
        ) from None

    subprocess.run([*tmux, "send-keys", "-t", "staff", "C-q"], check=True)
    subprocess.run([*tmux, "send-keys", "-t", "console", "C-q"], check=True)
    endpoint = tmp_path / "krise" / "broker" / "endpoint.json"
    await eventually(lambda: not endpoint.exists(), timeout=15, what="clean console exit")
