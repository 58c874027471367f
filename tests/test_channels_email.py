"""The e-mail channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from krise_tui.channels import ChannelConfigError, MessageStatus, create_channel, idempotency_key
from krise_tui.channels.email import EmailChannel
from tests.fakes import sample_message

TIMEOUT = 0.3
"""Seconds the channel waits in the timeout test (the silent server never greets)."""

USER, PASSWORD = "krise", "smtp-pass-æøå"
REFUSED = "ukjent@hattfjelldal.kommune.no"


class Sink:
    """An aiosmtpd handler that keeps every message and refuses one address.

    With ``hold`` clear it takes a message and then holds its answer to DATA until
    ``hold`` is set: the client times out not knowing the message arrived.
    """

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.hold = threading.Event()
        self.hold.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        await asyncio.to_thread(self.hold.wait, 10)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            mail = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            parsed.append(mail)
        return parsed


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_smtp() -> Iterator[tuple[Controller, Sink]]:
    """An SMTP server (aiosmtpd) on a free port of 127.0.0.1 that keeps what it gets."""
    sink = Sink()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Sink]]:
    with running_smtp() as server:
        yield server


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRISE_TEST_SMTP_USER", USER)
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", PASSWORD)


def make_channel(port: int, **extra: object) -> EmailChannel:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "username": {"env": "KRISE_TEST_SMTP_USER"},
        "password": {"env": "KRISE_TEST_SMTP_PASSWORD"},
        "from_address": "krise@hattfjelldal.kommune.no",
        "to": ["alle-ansatte@hattfjelldal.kommune.no", "beredskap@hattfjelldal.kommune.no"],
        "starttls": False,
        "timeout": TIMEOUT,
        **extra,
    }
    channel = create_channel("email", "epost", config)
    assert isinstance(channel, EmailChannel)
    return channel


async def test_sends_utf8_mail_with_every_language(smtp: tuple[Controller, Sink]) -> None:
    controller, sink = smtp
    message = sample_message()
    key = idempotency_key(message, "epost")
    result = await make_channel(controller.port).deliver(message, idempotency_key=key)
    assert result.ok, result.reason
    [envelope] = sink.envelopes
    assert envelope.mail_from == "krise@hattfjelldal.kommune.no"
    assert envelope.rcpt_tos == [
        "alle-ansatte@hattfjelldal.kommune.no",
        "beredskap@hattfjelldal.kommune.no",
    ]
    assert envelope.content.isascii(), "headers and body are transfer-encoded"
    [mail] = sink.messages()
    assert mail["Subject"] == "Kok drikkevannet"
    assert str(mail["From"]) == "Hattfjelldal kommune <krise@hattfjelldal.kommune.no>"
    assert mail["Message-ID"] == result.remote_id
    assert mail["Content-Language"] == "nb, sma, en"
    # A long header is folded onto a continuation line; the value is the same.
    assert str(mail["X-Krise-Version"]).strip() == message.version_id
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content().replace("\r\n", "\n")
    for text in ("være forurenset", "rådhuset", "Følg", "Jïjnjedahkesne", "nedtesæjrojne"):
        assert text in body
    assert body.index("Kok drikkevannet") < body.index("Tjaetsievaarohke") < body.index("Boil")
    assert body.rstrip().endswith(
        "https://www.hattfjelldal.kommune.no/krise\nKari Nordmann, kriseleder, Hattfjelldal kommune"
    )


async def test_message_id_is_stable_across_retries(smtp: tuple[Controller, Sink]) -> None:
    controller, sink = smtp
    channel = make_channel(controller.port)
    message = sample_message()
    key = idempotency_key(message, "epost")
    first = await channel.deliver(message, idempotency_key=key)
    second = await make_channel(controller.port).deliver(message, idempotency_key=key)
    ids = [mail["Message-ID"] for mail in sink.messages()]
    assert ids == [first.remote_id, second.remote_id] == [first.remote_id] * 2
    assert str(first.remote_id).startswith(f"<{message.version_id[:16]}.")
    assert str(first.remote_id).endswith("@hattfjelldal.kommune.no>")
    other = sample_message(seed="v2")
    third = await channel.deliver(other, idempotency_key=idempotency_key(other, "epost"))
    assert third.remote_id != first.remote_id


async def test_ledger_stops_a_second_send(smtp: tuple[Controller, Sink], tmp_path: Path) -> None:
    controller, sink = smtp
    channel = make_channel(controller.port, state_file=str(tmp_path / "email.json"))
    message = sample_message()
    key = idempotency_key(message, "epost")
    first = await channel.deliver(message, idempotency_key=key)
    again = await make_channel(controller.port, state_file=str(tmp_path / "email.json")).deliver(
        message, idempotency_key=key
    )  # a restarted bridge, the same ledger
    assert first.ok and again.ok and again.remote_id == first.remote_id and again.existing
    assert len(sink.envelopes) == 1


async def test_drill_update_subject_and_threading(smtp: tuple[Controller, Sink]) -> None:
    controller, sink = smtp
    channel = make_channel(controller.port)
    first = sample_message(seed="v1", exercise=True)
    update = sample_message(
        seed="v2", status=MessageStatus.UPDATED, supersedes=first.version_id, exercise=True
    )
    original = await channel.deliver(first, idempotency_key=idempotency_key(first, "epost"))
    await channel.deliver(update, idempotency_key=idempotency_key(update, "epost"))
    mails = sink.messages()
    assert mails[0]["Subject"] == "ØVELSE: Kok drikkevannet"
    assert mails[1]["Subject"] == "ØVELSE: Oppdatert: Kok drikkevannet"
    assert mails[1]["In-Reply-To"] == original.remote_id
    assert b"=?utf-8?" in sink.envelopes[0].content


async def test_wrong_password_is_permanent(
    smtp: tuple[Controller, Sink], monkeypatch: pytest.MonkeyPatch
) -> None:
    controller, sink = smtp
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", "wrong")
    message = sample_message()
    result = await make_channel(controller.port).deliver(
        message, idempotency_key=idempotency_key(message, "epost")
    )
    assert not result.ok and result.permanent
    assert result.reason is not None and result.reason.startswith("login refused: 535")
    assert sink.envelopes == []


async def test_refused_recipients(smtp: tuple[Controller, Sink]) -> None:
    controller, sink = smtp
    message = sample_message()
    key = idempotency_key(message, "epost")
    some = await make_channel(
        controller.port, to=["beredskap@hattfjelldal.kommune.no", REFUSED]
    ).deliver(message, idempotency_key=key)
    assert some.ok
    assert some.reason is not None and REFUSED in some.reason and "550" in some.reason
    assert [e.rcpt_tos for e in sink.envelopes] == [["beredskap@hattfjelldal.kommune.no"]]
    everyone = await make_channel(controller.port, to=[REFUSED]).deliver(
        message, idempotency_key=key
    )
    assert not everyone.ok and everyone.permanent
    assert everyone.reason is not None and everyone.reason.startswith("all recipients refused")


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never says a word (no SMTP greeting)."""
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_timeout(silent_server: int) -> None:
    message = sample_message()
    result = await make_channel(silent_server).deliver(
        message, idempotency_key=idempotency_key(message, "epost")
    )
    assert not result.ok and not result.permanent
    assert result.reason == f"timeout after {TIMEOUT:g} s"


async def test_connection_refused() -> None:
    message = sample_message()
    result = await make_channel(free_port()).deliver(
        message, idempotency_key=idempotency_key(message, "epost")
    )
    assert not result.ok and not result.permanent
    assert result.reason is not None and result.reason.startswith("cannot connect to 127.0.0.1")


def test_config_errors() -> None:
    with pytest.raises(ChannelConfigError, match="both username and password"):
        make_channel(25, password=None)
    with pytest.raises(ChannelConfigError, match="to"):
        make_channel(25, to=[])


async def test_a_resend_after_an_unknown_outcome_carries_the_same_message_id(
    smtp: tuple[Controller, Sink], tmp_path: Path
) -> None:
    """SMTP cannot be asked whether the first arrived: the re-send says so, same id."""
    controller, sink = smtp
    ledger = str(tmp_path / "email.json")
    message = sample_message()
    key = idempotency_key(message, "epost")
    sink.hold.clear()  # the server takes the message, then the answer is late
    lost = await make_channel(controller.port, state_file=ledger).deliver(
        message, idempotency_key=key
    )
    assert not lost.ok and lost.uncertain
    assert lost.reason == f"timeout after {TIMEOUT:g} s"
    sink.hold.set()
    again = await make_channel(controller.port, state_file=ledger).deliver(
        message, idempotency_key=key
    )
    assert again.ok
    first_id, second_id = (mail["Message-ID"] for mail in sink.messages())
    assert first_id == second_id == again.remote_id
    assert again.reason == (
        f"sent again with the same Message-ID {again.remote_id} after an attempt with an "
        "unknown outcome (an SMTP server cannot be asked whether the first arrived); "
        "receivers de-duplicate on the Message-ID"
    )
    after = await make_channel(controller.port, state_file=ledger).deliver(
        message, idempotency_key=key
    )
    assert after.existing and len(sink.envelopes) == 2  # delivered: not sent a third time
