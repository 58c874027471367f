"""Shared fixtures: a private mosquitto from broker/ config, settings, keys, waiting helpers.

No test uses a public or system broker: each test that needs one gets its own mosquitto
on a free port with generated users (console, staff ansatt-001..003, the standard
bridges), started from the project's ``broker/mosquitto.conf`` and ``broker/acl``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from krise_tui.bus.broker import STANDARD_BRIDGES, Credentials, Endpoint, MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import BrokerSettings, Settings

POLL_INTERVAL = 0.02

STAFF_IDS = ("ansatt-001", "ansatt-002", "ansatt-003")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's krise.toml or KRISE_* variables."""
    for name in list(os.environ):
        if name.startswith("KRISE_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty-krise.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("KRISE_CONFIG", str(empty))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


async def eventually(
    predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` is true (poll), failing with ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[None]]:
    """The :func:`eventually` helper as a fixture."""
    return eventually


def _require_mosquitto() -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("mosquitto is not installed: `./run test` installs it (apt-get)")


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    """A private, real mosquitto with the project's config and ACL on a free port."""
    _require_mosquitto()
    broker = MosquittoBroker(
        tmp_path / "mosquitto",
        credentials=Credentials.generate(
            staff_ids=STAFF_IDS, bridges=(*STANDARD_BRIDGES, "testchan")
        ),
        extra_bridges=("testchan",),
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def client_for(
    endpoint: Endpoint,
    user: str | None,
    *,
    identifier: str | None = None,
    clean_session: bool | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client logged in as ``user`` (``None`` = anonymous)."""
    creds = endpoint.credentials
    password = None
    if user is not None and creds is not None:
        password = creds.users().get(user)
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=user,
        password=password,
        identifier=identifier,
        clean_session=clean_session,
        timeout=5,
    )


@pytest.fixture
def signer() -> Signer:
    """A fresh console signing key."""
    return Signer.generate()


@pytest.fixture
def make_settings(tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """Build settings pointing at a broker endpoint and a temp data dir."""

    def make(
        endpoint: Endpoint | None = None,
        *,
        user: str = "console",
        data_dir: Path | None = None,
        **extra: object,
    ) -> Settings:
        broker = BrokerSettings()
        if endpoint is not None:
            password = endpoint.credentials.users()[user] if endpoint.credentials else None
            broker = BrokerSettings(
                host=endpoint.host,
                port=endpoint.port,
                username=user if endpoint.credentials else None,
                password=password,
                keepalive=5,
            )
        return Settings(
            org="test",
            org_name="Testkommune",
            data_dir=data_dir or tmp_path / "data",
            broker=broker,
            **extra,  # type: ignore[arg-type]
        )

    yield make
