"""Questions by e-mail, polled from a real IMAP server (a private Dovecot) by a real bridge.

What must hold: every message that arrives after the start reaches the bus once and in
order, also across a restart (the UID cursor on disk); mail from before the start and
automatic mail (out-of-office, bounces, lists) is not taken; the mailbox is only read
(nothing marked seen); a refused login is said, not raised.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.intake import Intake, imap, intake_from_def
from krise_tui.intake.imap import MAX_FETCH, ImapPoller, Mailbox, body_text, message_post
from krise_tui.playbook.models import ChannelDef
from krise_tui.wire.inbound import InboundPost
from tests.conftest import client_for, eventually
from tests.corekit import TEST_ORG, answer_via, running_runtime
from tests.test_bridge import bridge_running, make_bridge
from tests.test_channels_email import PASSWORD as SMTP_PASSWORD
from tests.test_channels_email import USER as SMTP_USER
from tests.test_channels_email import Sink, make_channel, running_smtp
from tests.test_intake_webhook import InboundListener

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "postmottak"
PASSWORD = "hemmelig-imap"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Dovecot:
    """A private Dovecot on a free port of 127.0.0.1: one mailbox, plain login (loopback)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        home = root / "home"
        for sub in ("run", "state", "log", "home"):
            (root / sub).mkdir(parents=True)
        if os.geteuid() == 0:  # Dovecot's own users run the logins, the mail is "mail"'s
            internal, login, mail = "dovecot", "dovenull", pwd.getpwnam("mail")
            os.chown(home, mail.pw_uid, mail.pw_gid)
            root.chmod(0o755)
            ids = f"uid={mail.pw_uid} gid={mail.pw_gid}"
        else:  # an ordinary user runs it all as itself
            internal = login = pwd.getpwuid(os.getuid()).pw_name
            ids = f"uid={os.getuid()} gid={os.getgid()}"
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::{home}/{USER}::\n")
        self.conf = root / "dovecot.conf"
        self.conf.write_text(
            f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = krise-test-{self.port}
log_path = {root}/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{home}/%u/Maildir
first_valid_uid = 1
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = {ids} home={home}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                client = imaplib.IMAP4("127.0.0.1", self.port, timeout=2)
                client.logout()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        path = self.root / "log" / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, message: EmailMessage, *, when: datetime | None = None) -> None:
        """Put a message in the inbox as the mail server would (IMAP APPEND)."""
        client = self.client()
        try:
            stamp = imaplib.Time2Internaldate(when) if when is not None else None
            status, data = client.append("INBOX", None, stamp, message.as_bytes())
            assert status == "OK", data
        finally:
            client.logout()

    def seen(self) -> list[bool]:
        """Whether each message in the inbox is marked seen."""
        client = self.client()
        try:
            client.select("INBOX", readonly=True)
            _, data = client.fetch("1:*", "(FLAGS)")
            return [b"\\Seen" in item for item in data if isinstance(item, bytes)]
        finally:
            client.logout()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if not os.access(DOVECOT, os.X_OK):
        pytest.fail(
            "dovecot is not installed (./run test installs it: apt-get install dovecot-imapd)"
        )
    # Not under tmp_path: Dovecot's own users must reach the files, and pytest's
    # directories are private to this user.
    root = Path(tempfile.mkdtemp(prefix="krise-dovecot-"))
    root.chmod(0o755)
    try:
        server = Dovecot(root / "dovecot")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "Kari Nordmann <kari@example.no>",
    message_id: str | None = None,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "postmottak@kommune.no"
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{abs(hash((subject, body)))}@example.no>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


@pytest.fixture
def smtp_server() -> Iterator[tuple[Any, Sink]]:
    """The municipality's SMTP server, keeping what it gets."""
    with running_smtp() as server:
        yield server


def poller(dovecot: Dovecot, tmp_path: Path, **extra: Any) -> ImapPoller:
    options: dict[str, Any] = {
        "mailbox": Mailbox.from_url(f"imap://127.0.0.1:{dovecot.port}/INBOX", USER),
        "password": PASSWORD,
        "state_file": tmp_path / "state" / "epost.intake.imap.json",
        "interval": 0.05,
        **extra,
    }
    return ImapPoller("epost", **options)


async def test_messages_arrive_once_in_order_unread_and_a_restart_goes_on_from_the_uid(
    mosquitto: MosquittoBroker,
    signer: Signer,
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRISE_TEST_SMTP_USER", "krise")  # the channel's outbound side
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", "unused")
    old = mail("Gammelt", "Fra i fjor", message_id="<gammel@example.no>")
    dovecot.deliver(old, when=datetime.now(UTC) - timedelta(days=300))
    channel = make_channel(free_port())
    async with InboundListener(mosquitto) as listener:
        first = poller(dovecot, tmp_path)
        bridge = make_bridge(mosquitto, "epost", channel, signer, intake=Intake("epost", [first]))
        async with bridge_running(bridge):
            await eventually(lambda: first.polls >= 1, what="the first poll")
            dovecot.deliver(mail("Vann", "Er vannet trygt å drikke?", message_id="<a@x.no>"))
            dovecot.deliver(
                mail(
                    "Sv: Skole",
                    "Er skolen stengt i morgen?\n\nDen 1. des. skrev Kommunen:\n> Vi melder",
                    sender="Ola <ola@example.no>",
                    message_id="<b@x.no>",
                )
            )
            await eventually(lambda: len(listener.ids()) == 2, what="two messages")
        # Down for a while: mail keeps arriving in the mailbox.
        dovecot.deliver(mail("Strøm", "Når kommer strømmen?", message_id="<c@x.no>"))
        second = poller(dovecot, tmp_path)
        bridge = make_bridge(mosquitto, "epost", channel, signer, intake=Intake("epost", [second]))
        async with bridge_running(bridge):
            await eventually(lambda: len(listener.ids()) == 3, what="the message meanwhile")
            await eventually(lambda: second.polls >= 2, what="one more poll")
    assert listener.ids() == ["<a@x.no>", "<b@x.no>", "<c@x.no>"]  # not the old one, once each
    assert json.loads(second.state_file.read_text())["last_uid"] == 4
    posts = [InboundPost.model_validate(data) for _, data in listener.posts]
    assert posts[0].kind == "email" and posts[0].author == "Kari Nordmann"
    assert posts[0].text == "Vann\n\nEr vannet trygt å drikke?"
    assert posts[0].meta == {
        "email": "kari@example.no",
        "message_id": "<a@x.no>",
        "subject": "Vann",
    }
    assert posts[1].text == "Sv: Skole\n\nEr skolen stengt i morgen?"  # the quote is cut
    assert posts[1].meta["email"] == "ola@example.no"
    assert dovecot.seen() == [False, False, False, False]  # read-only: nothing marked read


async def test_automatic_mail_is_skipped_and_never_answered(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    got: list[InboundPost] = []

    async def sink(post: InboundPost) -> None:
        got.append(post)

    source = poller(dovecot, tmp_path)
    await source.poll_once(sink)
    dovecot.deliver(mail("Fravær", "Jeg er på ferie", Auto_Submitted="auto-replied"))
    dovecot.deliver(mail("Nyhetsbrev", "Les mer", List_Id="<nyheter.example.no>"))
    dovecot.deliver(mail("Undeliverable", "Bounce", sender="MAILER-DAEMON@example.no"))
    dovecot.deliver(mail("Spørsmål", "Hvor er evakueringsstedet?", message_id="<q@x.no>"))
    big = mail("Bilde", "Se vedlegget: er dette flomsonen?", message_id="<big@x.no>")
    big.add_attachment(b"\x00" * (5 * 1024 * 1024), maintype="image", subtype="png")
    dovecot.deliver(big)
    sizes: list[int] = []
    fetch_one = source._one

    def recorded(client: imaplib.IMAP4, uid: int) -> Any:
        fetched = fetch_one(client, uid)
        sizes.append(len(fetched.raw) if fetched is not None else 0)
        return fetched

    source._one = recorded  # type: ignore[method-assign]
    await source.poll_once(sink)
    assert max(sizes) == MAX_FETCH  # the big one was cut, not fetched whole
    assert [post.id for post in got] == ["<q@x.no>", "<big@x.no>"]
    assert got[1].text == "Bilde\n\nSe vedlegget: er dette flomsonen?"  # only 2 MB fetched
    assert source.skipped == 3 and source.published == 2


async def test_mail_from_earlier_that_day_is_passed_over_without_fetching_it(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """The server narrows by day; mail from that day before the start is passed by its
    arrival time alone (no body fetched), and the cursor moves past it."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    dovecot.deliver(mail("Før", "Fra formiddagen", message_id="<f@x.no>"), when=noon)
    source = poller(dovecot, tmp_path, since=noon + timedelta(minutes=5))
    bodies: list[int] = []
    fetch_one = source._one

    def recorded(client: imaplib.IMAP4, uid: int) -> Any:
        bodies.append(uid)
        return fetch_one(client, uid)

    source._one = recorded  # type: ignore[method-assign]

    async def sink(post: InboundPost) -> None:
        raise AssertionError(f"not ours to answer: {post.id}")

    await source.poll_once(sink)
    assert source.cursor is not None and source.cursor.last_uid == 1 and bodies == []
    saved = json.loads(source.state_file.read_text(encoding="utf-8"))
    assert saved["last_uid"] == 1


async def test_a_refused_login_is_logged_and_nothing_is_lost(
    dovecot: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[InboundPost] = []

    async def sink(post: InboundPost) -> None:
        got.append(post)

    wrong = poller(dovecot, tmp_path, password="feil")
    heard: list[tuple[str, str | None]] = []
    Intake("epost", [wrong]).on_trouble(lambda name, problem: heard.append((name, problem)))
    with caplog.at_level(logging.ERROR, logger="krise_tui.intake.imap"):
        await wrong.poll_once(sink)
    assert wrong.failures == 1 and got == []
    assert "login refused for 'postmottak'" in caplog.text
    # The console hears it too (its banner), naming the mailbox and what is wrong.
    ((name, problem),) = heard
    assert name == wrong.name and problem is not None
    assert f"polling {wrong.name} failed: login refused for 'postmottak'" in problem
    wrong.password = PASSWORD  # the password is put right: the next poll clears it
    await wrong.poll_once(sink)
    assert heard[-1] == (wrong.name, None) and wrong.trouble.problem is None
    right = poller(dovecot, tmp_path)
    await right.poll_once(sink)
    dovecot.deliver(mail("Vann", "Kan vi drikke vannet?", message_id="<w@x.no>"))
    await right.poll_once(sink)
    assert [post.id for post in got] == ["<w@x.no>"]


async def test_a_bridge_says_its_intakes_trouble_in_its_retained_presence(
    mosquitto: MosquittoBroker,
    signer: Signer,
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bridge run as ``krise bridge`` far from the console: the console learns of a
    refused mailbox login from the bridge's presence (retained, so also after a restart),
    and that it is over."""
    monkeypatch.setenv("KRISE_TEST_SMTP_USER", "krise")
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", "unused")
    source = poller(dovecot, tmp_path, password="feil")
    bridge = make_bridge(
        mosquitto, "epost", make_channel(free_port()), signer, intake=Intake("epost", [source])
    )
    said: list[dict[str, Any]] = []
    topic = topics.presence(bridge.org, "bridge", "bridge-epost")
    async with client_for(mosquitto.endpoint, "console") as console:
        await console.subscribe(topic, qos=1)

        async def hear() -> None:
            async for message in console.messages:
                assert isinstance(message.payload, bytes)
                said.append(json.loads(message.payload))

        listening = asyncio.create_task(hear())
        try:
            async with bridge_running(bridge):
                await eventually(lambda: any(p.get("trouble") for p in said), what="trouble")
                ((name, problem),) = said[-1]["trouble"].items()
                assert said[-1]["status"] == "online" and name == source.name
                assert "login refused for 'postmottak'" in problem
                source.password = PASSWORD  # put right: the next poll clears it
                await eventually(
                    lambda: said[-1] == {"status": "online"}, what="the trouble is over"
                )
        finally:
            listening.cancel()


async def test_an_unreadable_message_is_said_until_a_later_one_comes_in(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message the intake cannot read stays in the mailbox; the console is told which,
    until mail comes in again."""
    got: list[InboundPost] = []

    async def sink(post: InboundPost) -> None:
        got.append(post)

    source = poller(dovecot, tmp_path)
    heard: list[str | None] = []
    Intake("epost", [source]).on_trouble(lambda _name, problem: heard.append(problem))
    await source.poll_once(sink)  # the cursor starts now
    real = imap.message_post

    def reads_all_but_the_broken_one(raw: bytes, **kw: Any) -> InboundPost | None:
        if b"Subject: Broken" in raw:
            raise UnicodeDecodeError("utf-8", raw[:1], 0, 1, "invalid start byte")
        return real(raw, **kw)

    monkeypatch.setattr(imap, "message_post", reads_all_but_the_broken_one)
    dovecot.deliver(mail("Broken", "?", message_id="<broken@x.no>"))
    await source.poll_once(sink)
    assert got == [] and source.skipped == 1
    (problem,) = heard
    assert problem is not None and "message UID 1" in problem and "left in the mailbox" in problem
    await source.poll_once(sink)  # nothing new: still said
    assert source.trouble.problem == problem
    dovecot.deliver(mail("Vann", "Kan vi drikke vannet?", message_id="<w@x.no>"))
    await source.poll_once(sink)
    assert [p.id for p in got] == ["<w@x.no>"] and heard[-1] is None


async def test_an_unreachable_server_is_a_warning_and_polling_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = ImapPoller(
        "epost",
        mailbox=Mailbox.from_url(f"imap://127.0.0.1:{free_port()}/INBOX", USER),
        password=PASSWORD,
        state_file=tmp_path / "state.json",
    )

    async def sink(post: InboundPost) -> None:
        raise AssertionError("nothing to publish")

    with caplog.at_level(logging.WARNING, logger="krise_tui.intake.imap"):
        await source.poll_once(sink)
    assert source.failures == 1 and "cannot connect" in caplog.text


def test_the_text_is_what_the_person_wrote() -> None:
    html = EmailMessage()
    html["From"] = "per@example.no"
    html["Subject"] = "Re: Re: Vei"
    html["Message-ID"] = "<h@x.no>"
    html.set_content("<p>Er <b>veien</b> åpen?</p><blockquote>gammelt</blockquote>", "html")
    post = message_post(html.as_bytes(), uid=7)
    assert post is not None and post.id == "<h@x.no>"
    assert "Er veien åpen?" in post.text and post.meta["subject"] == "Re: Re: Vei"
    reply_to = mail("Hei", "Spørsmål", Reply_To="svar@example.no")
    assert message_post(reply_to.as_bytes(), uid=1).meta["email"] == "svar@example.no"  # type: ignore[union-attr]
    no_id = mail("Hei", "Hvor?")
    del no_id["Message-ID"]
    assert message_post(no_id.as_bytes(), uid=42).id == "uid-42"  # type: ignore[union-attr]
    signed = mail("", "Når åpner skolen?\n--\nKari, Moen 3")
    assert body_text(signed) == "Når åpner skolen?"


def test_the_org_file_names_the_mailbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KRISE_TEST_IMAP", PASSWORD)
    base = {
        "id": "epost",
        "kind": "email",
        "endpoint": "smtps://smtp.kommune.no:465",
        "inbound": {
            "imap": {"url": "imaps://imap.kommune.no/Krise", "user": USER},
            "secret": {"env": "KRISE_TEST_IMAP"},
            "poll_interval": "20s",
        },
    }
    defn = ChannelDef.model_validate(base)
    intake = intake_from_def(defn, tmp_path)
    assert intake is not None
    (source,) = intake.sources
    assert isinstance(source, ImapPoller)
    assert (source.mailbox.host, source.mailbox.port, source.mailbox.tls) == (
        "imap.kommune.no",
        993,
        True,
    )
    assert source.mailbox.mailbox == "Krise" and source.interval == 20
    for url, why in [
        ("imap://imap.kommune.no/INBOX", "loopback only"),
        ("imaps://user:pw@imap.kommune.no/INBOX", "no user or password"),
        ("https://imap.kommune.no", "not imaps://"),
    ]:
        bad = {**base, "inbound": {**base["inbound"], "imap": {"url": url, "user": USER}}}  # type: ignore[dict-item]
        with pytest.raises(ValidationError, match=why):
            ChannelDef.model_validate(bad)
    no_secret = {**base, "inbound": {"imap": {"url": "imaps://imap.kommune.no", "user": USER}}}
    with pytest.raises(ValidationError, match="needs secret"):
        ChannelDef.model_validate(no_secret)


def email_org(tmp_path: Path, *, smtp_port: int, imap_port: int) -> Path:
    """The test org with an e-mail channel: replies by SMTP, questions in by IMAP (the
    passwords from KRISE_TEST_SMTP_PASSWORD and KRISE_TEST_IMAP)."""
    org = yaml.safe_load(TEST_ORG.read_text(encoding="utf-8"))
    org["channels"].append(
        {
            "id": "epost",
            "kind": "email",
            "endpoint": f"smtp://127.0.0.1:{smtp_port}",
            "credentials": {"env": "KRISE_TEST_SMTP_PASSWORD"},
            "options": {
                "from": "postmottak@test.kommune.no",
                "to": "beredskap@test.kommune.no",
                "username": SMTP_USER,
                "starttls": "false",  # the local test server speaks plain SMTP
            },
            "inbound": {
                "imap": {"url": f"imap://127.0.0.1:{imap_port}/INBOX", "user": USER},
                "secret": {"env": "KRISE_TEST_IMAP"},
                "poll_interval": "1s",
            },
        }
    )
    org_file = tmp_path / "org.yaml"
    org_file.write_text(yaml.safe_dump(org, allow_unicode=True), encoding="utf-8")
    return org_file


async def test_an_emailed_question_is_answered_in_the_askers_thread(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    dovecot: Dovecot,
    smtp_server: tuple[Any, Sink],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole way, as a crisis team sees it: a resident e-mails the mailbox, the
    console's own bridge brings the question in, it is triaged and batched, one approved
    answer goes back by SMTP to the sender, in their thread."""
    controller, sink = smtp_server
    monkeypatch.setenv("KRISE_TEST_IMAP", PASSWORD)
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    org_file = email_org(tmp_path, smtp_port=controller.port, imap_port=dovecot.port)
    settings = make_settings(mosquitto.endpoint, org_file=org_file, operator="ola")
    async with running_runtime(settings, signer) as runtime:
        dovecot.deliver(
            mail(
                "Drikkevann",
                "Er det trygt å drikke vannet fra springen i Moen?",
                sender="Per Hansen <per@example.no>",
                message_id="<spm-1@example.no>",
            )
        )
        qs = runtime.state.questions
        key = "epost:<spm-1@example.no>"
        await eventually(
            lambda: key in qs.questions and qs.questions[key].batch_id is not None,
            timeout=60,
            what="the e-mailed question, triaged and batched",
        )
        question = qs.questions[key]
        assert question.label == "service_question"
        assert runtime.state.inbound.posts[key].author == "Per Hansen"
        batch_id = qs.resolve(question.batch_id or "")
        answer = "Ja, vannet i Moen er trygt å drikke. Kommunen tar nye prøver hver dag."
        await answer_via(runtime, batch_id, "Drikkevann", answer)
        await eventually(lambda: len(sink.messages()) == 1, timeout=30, what="the reply")
    (reply,) = sink.messages()
    assert reply["To"] == "per@example.no"
    assert reply["In-Reply-To"] == "<spm-1@example.no>"  # in the asker's thread
    assert reply["Subject"] == "Re: Drikkevann"
    assert answer in reply.get_content()


async def test_the_console_says_when_its_mailbox_refuses_the_login(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    dovecot: Dovecot,
    smtp_server: tuple[Any, Sink],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong mailbox password in the org file's secret: the console's banner names the
    channel, the mailbox and the refusal (not only a log line nobody reads)."""
    controller, _ = smtp_server
    monkeypatch.setenv("KRISE_TEST_IMAP", "feil-passord")
    monkeypatch.setenv("KRISE_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    org_file = email_org(tmp_path, smtp_port=controller.port, imap_port=dovecot.port)
    settings = make_settings(mosquitto.endpoint, org_file=org_file, operator="ola")
    async with running_runtime(settings, signer) as runtime:
        await eventually(
            lambda: any(k.startswith("intake:epost:") for k in runtime.concerns),
            timeout=30,
            what="the refused login in the console's concerns",
        )
        (text,) = [t for k, t in runtime.concerns.items() if k.startswith("intake:epost:")]
    assert text.startswith("Innkommende på epost: polling e-mail imap://127.0.0.1:")
    assert "login refused for 'postmottak'" in text


def test_a_servers_words_reach_the_banner_as_one_bounded_printable_line(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.runtime import ConsoleRuntime
    from krise_tui.runtime.concerns import MAX_TROUBLE

    runtime = ConsoleRuntime(make_settings(None), signer=signer, start_bus=False)
    heard: list[tuple[str, str | None]] = []
    runtime.on_concern(lambda name, text: heard.append((name, text)))
    hostile = "login refused: \x1b[2J\x1b[31mFAKE\nSECOND LINE\x07 " + "x" * 1000
    runtime.attention.intake_trouble("epost", "e-mail imap://h:993/INBOX", hostile)
    ((name, text),) = heard
    assert name == "intake:epost:e-mail imap://h:993/INBOX" and text is not None
    assert text.startswith("Innkommende på epost: login refused:")
    assert text.isprintable() and "FAKE SECOND LINE" in text
    assert len(text) == len("Innkommende på epost: ") + MAX_TROUBLE
    runtime.attention.intake_trouble("epost", "e-mail imap://h:993/INBOX", None)
    assert heard[-1] == (name, None) and runtime.concerns == {}
