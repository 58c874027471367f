"""Shared fixtures: a private mosquitto from broker/ config, settings, keys, waiting helpers.

No test uses a public or system broker: each test that needs one gets its own mosquitto
on a free port with generated users (console, staff ansatt-001..003, a bridge user per
channel id in use), started from the project's ``broker/mosquitto.conf`` with the ACL
krise generates for those users (``broker/acl`` is only the shipped example).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from krise_tui.bus.broker import STANDARD_BRIDGES, Credentials, Endpoint, MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import BridgeLogin, BrokerSettings, Settings

POLL_INTERVAL = 0.02

STAFF_IDS = ("ansatt-001", "ansatt-002", "ansatt-003")
BRIDGE_CHANNELS = (*STANDARD_BRIDGES, "testchan", "nettside", "epost", "intranett")
"""Every channel id of the sample orgs and the tests has a ``bridge-<id>`` user: a bridge
must not log in as the console (with client ids bound to users they would take the
session from each other)."""


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


def disk_full(con: sqlite3.Connection, *, spare_pages: int = 0) -> None:
    """A full disk under this SQLite connection: SQLite's page limit stands in for it
    (the same SQLITE_FULL error, through the same code): the database may grow by at
    most ``spare_pages`` pages. Run it on the connection's own thread."""
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute(f"PRAGMA max_page_count = {pages + spare_pages}").fetchall()


def disk_room(con: sqlite3.Connection) -> None:
    """Room on the disk again after :func:`disk_full`."""
    con.execute("PRAGMA max_page_count = 1000000").fetchall()


def writes_refused(con: sqlite3.Connection) -> None:
    """Every write through this connection refused (SQLITE_READONLY, as when the file
    system has been remounted read-only after an error). Unlike :func:`disk_full`, a
    small write that would fit in a page already there is refused too."""
    con.execute("PRAGMA query_only = ON").fetchall()


def writes_allowed(con: sqlite3.Connection) -> None:
    """Writes work again after :func:`writes_refused`."""
    con.execute("PRAGMA query_only = OFF").fetchall()


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
    """A private, real mosquitto with the project's config and a generated ACL.

    As shipped: client ids are bound to user names (a second connection as the same
    user takes the first one's session), persistence saved after every change. The ACL
    is not confined to one org (tests use ``test`` and the sample orgs' slugs); each
    user is confined to its role. ``tests/test_broker_acl.py`` checks an org-confined one.
    """
    _require_mosquitto()
    broker = MosquittoBroker(
        tmp_path / "mosquitto",
        credentials=Credentials.generate(staff_ids=STAFF_IDS, bridges=BRIDGE_CHANNELS),
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
    protocol: aiomqtt.ProtocolVersion | None = None,
    session_expiry: int | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client logged in as ``user`` (``None`` = anonymous).

    MQTT 3.1.1 unless ``protocol`` says otherwise. With MQTT 5, ``clean_session=False``
    means ``clean_start=False`` and ``session_expiry`` (seconds) keeps the session.
    On the shipped config the broker replaces ``identifier`` with the user name.
    """
    creds = endpoint.credentials
    password = None
    if user is not None and creds is not None:
        password = creds.users().get(user)
    if protocol is aiomqtt.ProtocolVersion.V5:
        properties = None
        if session_expiry is not None:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry
        return aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            username=user,
            password=password,
            identifier=identifier,
            protocol=protocol,
            clean_start=clean_session is not False,
            properties=properties,
            timeout=5,
        )
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
            creds = endpoint.credentials
            password = creds.users()[user] if creds else None
            # Every bridge the console runs itself logs in as its own user.
            bridges = {
                name.removeprefix("bridge-"): BridgeLogin(username=name, password=secret)
                for name, secret in (creds.bridges.items() if creds else ())
            }
            broker = BrokerSettings(
                host=endpoint.host,
                port=endpoint.port,
                username=user if creds else None,
                password=password,
                keepalive=5,
                bridges=bridges,
            )
        return Settings(
            org="test",
            org_name="Testkommune",
            data_dir=data_dir or tmp_path / "data",
            broker=broker,
            **extra,  # type: ignore[arg-type]
        )

    yield make
