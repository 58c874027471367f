"""Browser access to the console (``krise console --serve``): the same app, over textual-serve.

textual-serve runs one console process per browser session (the Textual app with its
web driver) and relays the terminal to xterm.js in the page. What krise adds:

- **The same settings.** Each session's process is ``python -m krise_tui console`` with
  this serving process's settings in its environment (``KRISE_*``, secrets included:
  environment variables, unlike a command line, are not readable by other users), so a
  browser session is the console ``krise console`` would run, whatever krise.toml,
  ``KRISE_*`` variables and command-line flags made those settings.
- **127.0.0.1 unless told otherwise.** Anything that reaches the port gets the console
  (and its sign-in): serve on another address only behind a TLS proxy, with
  ``public_url`` set to the address the browser uses.
- **One session at a time.** Two consoles on one data directory would fight over its
  broker (the embedded broker's lock, the console's MQTT client id): a second browser
  session is told so in its terminal and closed, and the first one is not disturbed.
- **Only pages from this server drive it.** A web page from elsewhere could otherwise
  open the console's websocket from the operator's own browser (cross-site WebSocket
  hijacking, DNS rebinding): a websocket whose ``Origin`` is not this server's is refused.
- **A clean stop.** Stopping the server quits the session's console first, so its journal
  is closed and its broker stopped as after ``ctrl+q``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, SecretStr
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from krise_tui.config import Settings
from krise_tui.playbook.loader import load_org

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
"""Loopback: the console is reachable from this machine only unless configured."""
DEFAULT_PORT = 8765
TEMPLATES = Path(__file__).with_name("templates")
"""The page served to the browser (``app_index.html``)."""

BUSY = (
    "\r\n  krise: konsollen er allerede åpen i en annen nettleserøkt (én økt om gangen)."
    "\r\n  krise: the console is already open in another browser session (one at a time)."
    "\r\n  Lukk den andre økten og last inn siden på nytt / close it and reload this page.\r\n"
)
"""What a second browser session sees in its terminal before it is closed."""


def console_command(args: Sequence[str] = (), *, python: str | None = None) -> str:
    """The shell command each browser session runs: ``krise console [ARGS]`` on this Python.

    ``args`` are the console's own flags that are not settings (``--open-without-playbook``).
    The settings travel in the environment (:func:`console_environment`), not here: a
    command line is readable by every user of the machine, and it would carry only the
    settings that have a flag.
    """
    words = [python or sys.executable, "-m", "krise_tui", "console", *args]
    return " ".join(shlex.quote(word) for word in words)


def settings_environment(settings: Settings) -> dict[str, str]:
    """``KRISE_*`` variables under which a new process loads exactly ``settings``.

    Environment variables rank above krise.toml, so the child gets these values even
    where the file says otherwise; an unset (``None``) setting is left out and resolves
    in the child as it did here. Nested settings (the broker) go as JSON.
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[f"KRISE_{name.upper()}"] = _env_value(value)
    return env


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    return json.dumps(_plain(value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """JSON-ready data with secrets revealed: the child needs the very passwords we have."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _is_setting(name: str) -> bool:
    """Whether the environment variable ``name`` sets one of krise's settings."""
    upper = name.upper()
    if not upper.startswith("KRISE_"):
        return False
    field = upper.removeprefix("KRISE_").split("__", 1)[0].lower()
    return field in Settings.model_fields


def console_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every setting variable replaced by ``settings``.

    Other variables stay: ``KRISE_CONFIG``, ``KRISE_LOG_LEVEL`` and the channels'
    credentials (``KRISE_MASTODON_TOKEN``…), which the org file names by variable.
    """
    env = {k: v for k, v in base.items() if not _is_setting(k)}
    env.update(settings_environment(settings))
    return env


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _org_name(settings: Settings) -> str:
    """The organisation's name for the page title: the org file's, as the console shows."""
    if settings.org_file is not None:
        try:
            return load_org(settings.org_file).name
        except Exception:  # the console itself says what is wrong with the file
            log.warning("the org file %s could not be read for the page title", settings.org_file)
    return settings.org_name


class _SessionService(AppService):
    """One session's console process, with the settings in its environment."""

    def __init__(self, command: str, *, environment: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._settings_env = dict(environment)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        # textual-serve's variables (web driver, size) on top of the session's settings.
        base = super()._build_environment(width=width, height=height)
        env = {k: v for k, v in base.items() if not _is_setting(k)}
        env.update(self._settings_env)
        return env


class ConsoleServer(Server):
    """textual-serve's server for the console: one session, same settings, same origin."""

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        *,
        public_url: str | None = None,
        console_args: Sequence[str] = (),
    ) -> None:
        super().__init__(
            console_command(console_args),
            host=host,
            port=port,
            title=f"krise – {_org_name(settings)}",
            public_url=public_url,
            # Our page: textual-serve's, without a web font fetched from Google.
            templates_path=TEMPLATES,
        )
        self.environment = settings_environment(settings)
        origins = {_origin(self.public_url)}
        if _is_loopback(host):
            # The same machine under any of its loopback names (no other site can be one).
            origins |= {f"http://{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}
        self.allowed_origins = frozenset(origins)
        self.session: _SessionService | None = None

    async def on_startup(self, app: web.Application) -> None:
        """Say where the console is, and what serving it beyond this machine means."""
        self.console.print(f"krise console: {self.public_url} (one browser session at a time)")
        if not _is_loopback(self.host):
            self.console.print(
                f"[bold]! served on {self.host}: anyone who reaches this port gets the "
                "console's sign-in; use a TLS proxy and a firewall[/bold]"
            )
        self.console.print("ctrl+c stops the server (and the console in it)")

    async def on_shutdown(self, app: web.Application) -> None:
        """Quit the session's console before the server goes (journal closed, broker
        stopped), rather than leaving it to be cancelled half-way."""
        if self.session is not None:
            await self.session.stop()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser session: the console process, relayed (see the module docstring)."""
        origin = request.headers.get("Origin")
        # Browsers always send Origin; a client without one is not a web page and could
        # reach the port directly anyway.
        if origin is not None and origin.lower() not in self.allowed_origins:
            log.warning("refused a websocket from origin %r", origin)
            raise web.HTTPForbidden(text="krise: this console is only served to its own page")
        if self.session is not None:
            return await self._refuse(request)
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service = _SessionService(
            self.command,
            environment=self.environment,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        # Claimed before the first await: a second websocket arriving meanwhile is refused.
        self.session = service
        try:
            await websocket.prepare(request)
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("browser session failed")
        finally:
            await service.stop()  # waits until the console process has exited
            self.session = None
        return websocket

    async def _refuse(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        await websocket.send_bytes(BUSY.encode("utf-8"))
        await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"one session at a time")
        return websocket


def serve(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    public_url: str | None = None,
    console_args: Sequence[str] = (),
) -> None:
    """Serve the console to a browser at ``http://host:port`` until SIGINT/SIGTERM.

    ``public_url`` is the address the browser uses when it is not ``http://host:port``
    (a TLS proxy in front, or ``host`` 0.0.0.0): the page's websocket goes there.
    ``console_args`` are ``krise console`` flags that are not settings, passed on to
    each session's console (``["--open-without-playbook"]``).
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, not {port}")
    if public_url is None and host in ("0.0.0.0", "::", ""):
        raise ValueError(
            f"serving on {host or 'every address'} needs the public URL the browser uses"
        )
    ConsoleServer(settings, host, port, public_url=public_url, console_args=console_args).serve()
