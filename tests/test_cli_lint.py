"""`krise lint`: the same rules on text from a file or stdin; exit 1 when blocked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_idnumbers import complete

KRISE = str(Path(sys.executable).with_name("krise"))


def run_lint(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KRISE, "lint", *args], input=text, capture_output=True, text=True, check=False
    )


def test_an_id_number_blocks_and_is_never_printed() -> None:
    fnr = complete("150390124")
    assert fnr is not None
    spaced = f"{fnr[:6]} {fnr[6:]}"
    out = run_lint(f"Savnet person\nPersonnummer {spaced}, se https://www.eksempel.no\n")
    assert out.returncode == 1
    assert "fødselsnummer" in out.stdout
    assert fnr not in out.stdout and fnr[6:] not in out.stdout


def test_warnings_do_not_block(tmp_path: Path) -> None:
    message = tmp_path / "melding.txt"
    message.write_text(
        "Flomvarsel\nRing 412 34 567. Vi tror brua holder. Les mer på www.eksempel.no\n",
        encoding="utf-8",
    )
    out = run_lint("", str(message), "--website", "https://www.eksempel.no", "--lang", "en")
    assert out.returncode == 0
    assert "412 34 567" in out.stdout
    assert "speculation" in out.stdout


def test_allow_listed_numbers_and_emergency_numbers_pass() -> None:
    out = run_lint(
        "Strømbrudd\nRing 110, 112 eller 75 18 50 00 – https://www.eksempel.no\n",
        "--website",
        "https://www.eksempel.no",
        "--allow-phone",
        "75185000",
    )
    assert out.returncode == 0
    assert "ingen funn" in out.stdout


def test_a_disguised_id_number_blocks_and_is_never_printed() -> None:
    fnr = complete("170572348")
    assert fnr is not None
    # zero-width space, Arabic-Indic digits, a slash and a glued prefix, all at once
    arabic = "".join(chr(0x0660 + int(d)) for d in fnr[6:])
    out = run_lint(f"Savnet\nfnr{fnr[:4]}\u200b{fnr[4:6]} / {arabic}, se https://www.eksempel.no\n")
    assert out.returncode == 1
    assert "fødselsnummer 170572 *****" in out.stdout
    assert fnr[6:] not in out.stdout and arabic not in out.stdout


def test_a_text_that_cannot_be_read_is_exit_2_not_blocked(tmp_path: Path) -> None:
    """Exit 1 means "blocked": a script must not read a missing file as a blocked text."""
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Strømbrudd\nStrømmen er borte.\n".encode("latin-1"))
    cases = [
        ((str(tmp_path / "nope.txt"),), "", "nope.txt: no such file"),
        ((str(tmp_path),), "", "is a directory, not a text file"),
        ((str(latin1),), "", "latin1.txt: not UTF-8 text"),
        (("/dev/zero",), "", "/dev/zero: more than 16 MB: not a text file?"),  # hung before
    ]
    for args, text, message in cases:
        out = run_lint(text, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("krise lint: ") and message in out.stderr
        assert "Traceback" not in out.stderr and out.stdout == ""
    stdin = subprocess.run(
        [KRISE, "lint", "-"], input=latin1.read_bytes(), capture_output=True, check=False
    )
    assert stdin.returncode == 2
    assert b"krise lint: stdin: not UTF-8 text" in stdin.stderr


def test_a_byte_order_mark_is_not_part_of_the_headline(tmp_path: Path) -> None:
    fnr = complete("150390124")
    assert fnr is not None
    message = tmp_path / "melding.txt"
    message.write_bytes(f"\ufeffSavnet\nPersonnummer {fnr}\n".encode())
    out = run_lint("", str(message))
    assert out.returncode == 1
    assert "fødselsnummer" in out.stdout and "\ufeff" not in out.stdout
