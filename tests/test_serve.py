"""Browser access: the console served by textual-serve, driven by a real headless Chromium.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright
through ``executable_path``: no browser is downloaded. textual-serve draws the terminal
with xterm.js on a canvas, so the test turns on xterm's screen-reader mode and reads its
accessibility tree: the rows as a screen reader gets them, as DOM text.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright
from playwright.async_api import Error as PlaywrightError
from pydantic import SecretStr

from krise_tui.config import BridgeLogin, BrokerSettings, Settings
from krise_tui.console.serve import (
    BUSY,
    ConsoleServer,
    console_command,
    console_environment,
    serve,
)
from krise_tui.core.events import event_from_json
from krise_tui.journal.store import Journal
from tests.conftest import eventually
from tests.corekit import PASSPHRASES, TEST_ORG

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# xterm.js keeps its Terminal inside textual-serve's bundle. textual.js stores it as
# ``this.terminal = new Terminal(…)``: a setter on Object.prototype sees that assignment,
# turns on screen-reader mode (xterm then mirrors its rows into an accessibility tree in
# the DOM) and gets out of the way. ``__kriseScreen()`` returns those rows' text.
TERMINAL_HOOK = """
(() => {
  let found = false;
  Object.defineProperty(Object.prototype, 'terminal', {
    configurable: true,
    set(value) {
      Object.defineProperty(this, 'terminal', {
        value, writable: true, configurable: true, enumerable: true,
      });
      if (value && value.options && value.buffer) {
        value.options.screenReaderMode = true;
        found = true;
      }
    },
  });
  window.__kriseTerminal = () => found;
  window.__kriseScreen = () => Array.from(
    document.querySelectorAll('.xterm-accessibility-tree [role="listitem"]'),
    (row) => row.textContent,
  ).join('\\n');
})();
"""

# The server as `krise console --serve` will run it: settings made in the serving process
# (here: keyword overrides that are in no file and no environment variable), so the
# console in the browser can only have them if serve() passes them on.
SERVE = """
import sys
from krise_tui.config import load_settings
from krise_tui.console.serve import serve
settings = load_settings(org_file=sys.argv[1], journal=sys.argv[2], operator="ola")
serve(settings, "127.0.0.1", int(sys.argv[3]))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_members(pgid: int) -> set[int]:
    """The live processes in process group ``pgid`` (Linux: from /proc)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.add(int(stat.parent.name))
    return members


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Served:
    """A `krise console --serve` process of the test org on a free port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.journal = tmp_path / "elsewhere" / "journal.sqlite3"
        self.data_dir = Path(os.environ["XDG_DATA_HOME"]) / "krise"
        self.log = tmp_path / "serve.log"
        self.elsewhere: list[str] = []
        """What the page asked of other sites (refused)."""
        with self.log.open("wb") as out:
            # A session of its own: the server, its console and their broker are one
            # process group, which the test ends as a whole (and only that).
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(TEST_ORG), str(self.journal), str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited ({self.proc.returncode}):\n{self.output()}")
        return listening(self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium is not installed (CI installs it: apt-get install chromium)")
    server = Served(tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def open_console(browser: Browser, served: Served) -> tuple[Page, Callable[..., Any]]:
    """A page on the served console, and ``shows(text)``: wait until the terminal shows it."""
    page = await browser.new_page()
    await page.add_init_script(TERMINAL_HOOK)

    async def local_only(route: Route) -> None:
        # Offline and deterministic: only this server is reached; anything else the
        # page asks for is refused and remembered (it should ask for nothing else).
        if route.request.url.startswith(served.url):
            await route.continue_()
        else:
            served.elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", local_only)
    await page.goto(served.url, wait_until="domcontentloaded")

    async def shows(text: str, timeout: float = 10) -> None:
        try:
            await page.wait_for_function(
                "text => window.__kriseScreen().includes(text)", arg=text, timeout=timeout * 1000
            )
        except PlaywrightError as exc:
            screen = await page.evaluate("window.__kriseScreen()")
            raise AssertionError(
                f"{text!r} not on screen: {exc}\n--- screen:\n{screen}\n"
                f"--- server:\n{served.output()}"
            ) from None

    return page, shows


@pytest.mark.timeout(180)  # chromium and a textual app per session: slow on a busy machine
async def test_the_console_in_a_real_browser(served: Served) -> None:
    await eventually(served.up, timeout=15, what="the server to listen")
    endpoint = served.data_dir / "broker" / "endpoint.json"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=20_000
        )
        try:
            page, shows = await open_console(browser, served)
            # The console renders: its status line, connected to its private broker, and
            # the sign-in, with the configured operator chosen and the passphrase asked.
            await shows("MQTT ✓", timeout=30)
            assert await page.evaluate("window.__kriseTerminal()")
            await shows("hvem sitter ved konsollen?")
            assert await page.title() == "krise – Testkommune", await page.title()
            assert served.elsewhere == []  # no web font from Google, nothing from elsewhere

            # A second browser session is told the console is in use, and closed.
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(
                    f"ws://127.0.0.1:{served.port}/ws", origin=served.url.rstrip("/")
                )
                first = await ws.receive(timeout=10)
                assert first.type is aiohttp.WSMsgType.BINARY
                assert first.data.decode("utf-8") == BUSY
                closed = await ws.receive(timeout=10)
                assert closed.type is aiohttp.WSMsgType.CLOSE
                await ws.close()

            # Keys reach the app (the first session was not disturbed): sign in, start
            # the incident, then f opens the freeze dialog and escape closes it.
            await page.locator(".xterm-helper-textarea").focus()
            await page.keyboard.type(PASSPHRASES["ola"])
            await page.keyboard.press("Enter")
            await shows("Start hendelsen")
            await page.keyboard.press("Enter")  # the title the settings propose, level 1
            await shows("nivå 1")
            await page.keyboard.press("f")
            await shows("Frys ansattes publisering")
            await page.keyboard.press("Escape")
            await page.wait_for_function(
                "() => !window.__kriseScreen().includes('Frys ansattes publisering')",
                timeout=10_000,
            )

            # Closing the page ends the session: its console quits cleanly (its embedded
            # broker removes the endpoint file as it stops) and nothing is left running.
            await page.close()
            await eventually(lambda: not endpoint.exists(), timeout=15, what="a clean exit")
            await eventually(
                lambda: group_members(served.proc.pid) == {served.proc.pid},
                timeout=15,
                what="the session's processes to end",
            )

            # The console ran with the serving process's settings: the journal it was
            # given (not the default one) and the operator at it.
            assert not (served.data_dir / "journal.sqlite3").exists()
            async with await Journal.open(served.journal, read_only=True) as journal:
                rows = await journal.tail(500)
            opened = [event_from_json(r.body) for r in rows if r.type == "incident.opened"]
            assert [e.actor for e in opened] == ["ola"]

            # A new session; stopping the server quits its console cleanly first.
            _, shows = await open_console(browser, served)
            await shows("MQTT ✓", timeout=30)
            served.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(served.proc.wait, 15) == 0
            assert not endpoint.exists()
            assert group_members(served.proc.pid) == set()
        finally:
            await browser.close()


async def test_a_page_from_elsewhere_cannot_drive_it(served: Served) -> None:
    await eventually(served.up, timeout=15, what="the server to listen")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"ws://127.0.0.1:{served.port}/ws", origin="http://evil.example")
        assert refused.value.status == 403
    # Nothing was started for it.
    assert not (served.data_dir / "broker" / "endpoint.json").exists()


def test_the_command_and_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console in each session loads exactly the serving process's settings."""
    toml = tmp_path / "krise.toml"
    toml.write_text('operator = "kari"\nincident_title = "Fra fila"\n', encoding="utf-8")
    monkeypatch.setenv("KRISE_CONFIG", str(toml))
    settings = Settings(
        org_file=TEST_ORG,
        data_dir=tmp_path / "data",
        journal_head_copies=[tmp_path / "a", tmp_path / "b b"],
        operator="ola",
        lang="en",
        strict_roster=False,
        broker=BrokerSettings(
            host="mqtt.example",
            port=8883,
            username="console",
            password=SecretStr("hemmelig æ \"'$"),
            bridges={"sms": BridgeLogin(username="bridge-sms", password=SecretStr("s"))},
        ),
    )
    base = {
        "PATH": "/usr/bin",
        "KRISE_CONFIG": str(toml),
        "KRISE_LOG_LEVEL": "DEBUG",
        "KRISE_MASTODON_TOKEN": "token",  # a channel's credential, named by the org file
        "KRISE_JOURNAL": "/somewhere/else.sqlite3",
        "krise_broker__host": "stale.example",
    }
    env = console_environment(settings, base)
    for kept in ("PATH", "KRISE_CONFIG", "KRISE_LOG_LEVEL", "KRISE_MASTODON_TOKEN"):
        assert env[kept] == base[kept]
    assert "KRISE_JOURNAL" not in env and "krise_broker__host" not in env
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings  # the file's operator and title do not win
    assert Settings().broker.secret() == "hemmelig æ \"'$"

    command = console_command(["--open-without-playbook"], python="/opt/my python/bin/python3")
    assert shlex.split(command) == [
        "/opt/my python/bin/python3",
        "-m",
        "krise_tui",
        "console",
        "--open-without-playbook",
    ]
    assert "hemmelig" not in console_command()  # secrets never on a command line


def test_where_it_listens(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    local = ConsoleServer(settings, "127.0.0.1", 8765)
    assert local.public_url == "http://127.0.0.1:8765"
    assert local.allowed_origins == {
        "http://127.0.0.1:8765",
        "http://localhost:8765",
        "http://[::1]:8765",
    }
    proxied = ConsoleServer(settings, "10.0.0.5", 8765, public_url="https://krise.example.no")
    assert proxied.allowed_origins == {"https://krise.example.no"}
    with pytest.raises(ValueError, match="public URL"):
        serve(settings, "0.0.0.0", 8765)
    with pytest.raises(ValueError, match="port"):
        serve(settings, "127.0.0.1", 0)


def test_the_page_has_a_title_and_fetches_nothing_from_elsewhere() -> None:
    """The browser page textual-serve renders: our template, only this server's URLs."""
    import jinja2

    from krise_tui.console.serve import TEMPLATES

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("app_index.html").render(
        application={"name": "krise – Testkommune"},
        config={"static": {"url": "http://127.0.0.1:8765/static/"}},
        app_websocket_url="ws://127.0.0.1:8765/ws",
        font_size=16,
    )
    assert "<title>krise – Testkommune</title>" in html
    urls = re.findall(r"""(?:src|href|url)=["']([^"']+)""", html)
    assert urls and all(re.match(r"(http|ws)://127\.0\.0\.1:8765/", u) for u in urls), urls
    assert "googleapis" not in html and "https://" not in html
    server = ConsoleServer(Settings(), "127.0.0.1", 8765)
    assert server.templates_path == TEMPLATES
