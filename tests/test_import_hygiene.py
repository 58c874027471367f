"""The core never imports textual: only console/ and staff/ may."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import krise_tui

UI_PACKAGES = ("krise_tui.console", "krise_tui.staff")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(krise_tui.__path__, "krise_tui."):
        if info.name.startswith(UI_PACKAGES) or info.name == "krise_tui.__main__":
            continue
        names.append(info.name)
    return names


def test_core_modules_are_found() -> None:
    names = core_modules()
    assert "krise_tui.core.engine" in names
    assert "krise_tui.runtime" in names
    assert "krise_tui.cli" in names


def test_importing_the_core_does_not_load_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported textual modules: {out.stdout.strip()}"


def test_the_console_does_load_textual() -> None:
    """The check above can fail: importing the console pulls textual in."""
    code = "import sys, krise_tui.console.app; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
