"""The e-mail channel: the message to distribution lists over SMTP (aiosmtplib).

One plain-text UTF-8 e-mail per version with every language variant, the website link
and the signature. The subject is the ``nb`` headline (``ØVELSE: `` first in drills,
``Oppdatert: `` / ``Trukket tilbake: `` for updates and retractions).

SMTP has no idempotency, and an SMTP server cannot be asked afterwards whether it took a
message, so the channel cannot reconcile. What it does instead: the ``Message-ID`` is
derived from the idempotency key (:func:`message_id`), and every attempt is written
ahead in a ledger (:func:`~krise_tui.channels.base.deliver_once`; ``state_file``, in
memory without one). After an attempt whose outcome is unknown (the bridge died during
the SMTP dialogue, the answer to DATA timed out, the connection dropped) the re-send
carries the *same* Message-ID, which mail clients and list servers recognise as a
duplicate, and the result says so. A key the ledger has as delivered is not sent again.
An update carries ``In-Reply-To``/``References`` to the Message-ID of the version it
supersedes, so the versions thread together.

Credentials are secret references (``{"env": "SMTP_USER"}``); ``starttls`` upgrades a
plain connection (port 587), ``use_tls`` speaks TLS from the start (port 465).

Replies (:meth:`EmailChannel.reply`: a batch's approved answer to one person who asked
by e-mail) go to the asker's address from the post's ``meta`` (``email``, or ``from``),
as an answer in their thread: ``In-Reply-To`` and ``References`` carry their
``Message-ID`` (``meta.message_id``), the subject is theirs with ``Re:`` (``ØVELSE:``
first in drills). The Message-ID is derived from the request's idempotency key, with
the same write-ahead ledger and the same repeat-under-the-same-Message-ID rule as a
message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import aiosmtplib
from pydantic import Field, model_validator

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    EXERCISE_LABEL,
    ApprovedMessage,
    AttemptOutcome,
    ChannelConfig,
    DeliveryResult,
    Ledger,
    ReplyRequest,
    SecretSetting,
    deliver_once,
    format_seconds,
    headline_text,
    parse_config,
    refuse_exercise,
    register,
    reply_text,
    resolve_secret,
)

_ADDRESS = r"^[^@\s<>,]+@[^@\s<>,]+$"
_ADDRESS_RX = re.compile(_ADDRESS)
_MESSAGE_ID_RX = re.compile(r"^<[^<>\s]{1,900}>$")
REPLY_SUBJECT = "Svar på spørsmålet ditt"
"""The subject of a reply when the question had none."""


class EmailConfig(ChannelConfig):
    """Configuration of an e-mail channel."""

    host: str
    """SMTP server host name."""
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    """SMTP server port (587 submission with STARTTLS, 465 implicit TLS, 25 relay)."""
    username: SecretSetting | None = None
    """SMTP user name, as a secret reference (with ``password``, or neither)."""
    password: SecretSetting | None = None
    """SMTP password, as a secret reference."""
    from_address: Annotated[str, Field(pattern=_ADDRESS)]
    """Sender address, e.g. ``krise@hattfjelldal.kommune.no``."""
    from_name: str | None = None
    """Sender display name (default: the message's ``org_name``)."""
    to: Annotated[list[Annotated[str, Field(pattern=_ADDRESS)]], Field(min_length=1)]
    """Recipient addresses (distribution lists)."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS (required when the server offers no TLS)."""
    use_tls: bool = False
    """Speak TLS from the first byte (port 465) instead of STARTTLS."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the server at each step."""
    state_file: Path | None = None
    """The write-ahead ledger of attempts (JSON); without it, it lives in memory."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.use_tls and self.starttls:
            raise ValueError("use_tls (port 465) and starttls exclude each other")
        return self


def message_id(key: str, domain: str) -> str:
    """The Message-ID for idempotency key ``key``: the same key, the same id.

    The start of the version id keeps it recognisable; a hash of the whole key tells
    channels apart. Kept short so the header is not folded.
    """
    version, _, channel = key.partition(":")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"<{version[:16]}.{digest}@{domain}>" if channel else f"<{digest}@{domain}>"


def plain_text(message: ApprovedMessage) -> str:
    """The e-mail body: every language variant, then the website link and signature."""
    parts: list[str] = []
    for variant in message.variants:
        headline = headline_text(message, variant.lang)
        body = variant.body.strip()
        parts.append(f"{headline}\n\n{body}" if body else headline)
    text = "\n\n----------\n\n".join(parts)
    return f"{text}\n\n{message.website_url}\n{message.signature_line}\n"


@register("email")
class EmailChannel:
    """Sends one plain-text e-mail per version to the configured lists."""

    kind: ClassVar[str] = "email"

    def __init__(self, name: str, config: EmailConfig) -> None:
        self.name = name
        self.config = config
        self._username = resolve_secret(config.username) if config.username else None
        self._password = resolve_secret(config.password) if config.password else None
        self._domain = config.from_address.rpartition("@")[2]
        self._ledger = Ledger(config.state_file)

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        """Build from a plain mapping (see :class:`EmailConfig`)."""
        return cls(name, parse_config(EmailConfig, name, config))

    def build(self, message: ApprovedMessage, *, idempotency_key: str) -> EmailMessage:
        """The e-mail for ``message`` (headers and UTF-8 plain-text body)."""
        mail = EmailMessage(policy=SMTP)
        mail["Subject"] = headline_text(message, "nb")
        mail["From"] = Address(
            display_name=self.config.from_name or message.org_name,
            addr_spec=self.config.from_address,
        )
        mail["To"] = ", ".join(self.config.to)
        mail["Date"] = format_datetime(message.published_at)
        mail["Message-ID"] = message_id(idempotency_key, self._domain)
        if message.supersedes:
            previous = message_id(f"{message.supersedes}:{self.name}", self._domain)
            mail["In-Reply-To"] = previous
            mail["References"] = previous
        mail["X-Krise-Version"] = message.version_id
        mail["X-Krise-Idempotency-Key"] = idempotency_key
        mail.set_content(plain_text(message), charset="utf-8")
        # After set_content, which replaces every Content-* header.
        mail["Content-Language"] = ", ".join(message.langs)
        return mail

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
        recheck: bool = False,
    ) -> DeliveryResult:
        """Send the e-mail once per key; the remote id is its Message-ID.

        ``previous_remote_id`` is unused: threading uses the superseded version's
        Message-ID, which is derived, not stored. ``recheck`` changes nothing: an SMTP
        server cannot be asked; the same Message-ID is what protects a re-send.
        """

        async def send(repeat: bool) -> DeliveryResult:
            result = await self._send(message, idempotency_key)
            if result.ok and repeat:
                note = (
                    f"sent again with the same Message-ID {result.remote_id} after an attempt "
                    "with an unknown outcome (an SMTP server cannot be asked whether the first "
                    "arrived); receivers de-duplicate on the Message-ID"
                )
                reason = f"{note}; {result.reason}" if result.reason else note
                return replace(result, reason=reason)
            return result

        return await deliver_once(self._ledger, idempotency_key, send=send, recheck=recheck)

    # ------------------------------------------------------------------ replies

    def build_reply(self, request: ReplyRequest) -> EmailMessage:
        """The answer to the asker, in their thread.

        Raises:
            ValueError: the post has no usable address (``meta.email`` or ``meta.from``).
        """
        meta = request.to.meta
        to = meta.get("email") or meta.get("from")
        if not isinstance(to, str) or not _ADDRESS_RX.match(to.strip()):
            raise ValueError("the post has no e-mail address to answer (meta.email)")
        mail = EmailMessage(policy=SMTP)
        subject = meta.get("subject")
        if isinstance(subject, str) and subject.strip():
            subject = " ".join(subject.split())
            if not subject.lower().startswith(("re:", "sv:")):
                subject = f"Re: {subject}"
        else:
            subject = REPLY_SUBJECT
        if request.exercise:
            subject = f"{EXERCISE_LABEL}: {subject}"
        mail["Subject"] = subject
        mail["From"] = Address(
            display_name=self.config.from_name or "",
            addr_spec=self.config.from_address,
        )
        mail["To"] = to.strip()
        mail["Message-ID"] = message_id(request.idempotency_key, self._domain)
        asked = meta.get("message_id")
        if isinstance(asked, str) and _MESSAGE_ID_RX.match(asked.strip()):
            mail["In-Reply-To"] = asked.strip()
            mail["References"] = asked.strip()
        mail["X-Krise-Idempotency-Key"] = request.idempotency_key
        mail.set_content(reply_text(request) + "\n", charset="utf-8")
        mail["Content-Language"] = request.lang
        return mail

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Send the answer once per key; the remote id is its Message-ID. ``recheck``
        changes nothing: an SMTP server cannot be asked."""
        refused = refuse_exercise(request, self.name, self.config.exercise_endpoint)
        if refused is not None:
            return refused
        try:
            mail = self.build_reply(request)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot write the reply: {exc}", permanent=True)

        async def send(repeat: bool) -> DeliveryResult:
            result = await self._send_mail(mail)
            if result.ok and repeat:
                note = (
                    f"sent again with the same Message-ID {result.remote_id} after an attempt "
                    "with an unknown outcome; receivers de-duplicate on the Message-ID"
                )
                return replace(result, reason=f"{note}; {result.reason}" if result.reason else note)
            return result

        return await deliver_once(self._ledger, request.idempotency_key, send=send, recheck=recheck)

    async def _send(self, message: ApprovedMessage, idempotency_key: str) -> DeliveryResult:
        return await self._send_mail(self.build(message, idempotency_key=idempotency_key))

    async def _send_mail(self, mail: EmailMessage) -> DeliveryResult:
        config = self.config
        try:
            refused, _ = await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=self._username,
                password=self._password,
                start_tls=config.starttls,
                use_tls=config.use_tls,
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPConnectTimeoutError:
            return DeliveryResult.failed(f"timeout after {format_seconds(config.timeout)}")
        except aiosmtplib.SMTPTimeoutError:
            # Possibly after DATA was sent, while the server was taking the message.
            return DeliveryResult.failed(
                f"timeout after {format_seconds(config.timeout)}", uncertain=True
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            who = ", ".join(f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
            return DeliveryResult.failed(f"all recipients refused: {who}", permanent=True)
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                reason = f"login refused: {reason}"
            return DeliveryResult.failed(reason, permanent=500 <= exc.code < 600)
        except aiosmtplib.SMTPConnectError as exc:
            return DeliveryResult.failed(f"cannot connect to {config.host}:{config.port}: {exc}")
        except aiosmtplib.SMTPNotSupported as exc:
            return DeliveryResult.failed(f"server does not support it: {exc}", permanent=True)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # A dropped connection may come after the server took the message.
            return DeliveryResult.failed(f"SMTP error: {exc}", uncertain=True)
        remote_id = str(mail["Message-ID"])
        if refused:
            who = ", ".join(
                f"{rcpt} ({answer.code} {answer.message})" for rcpt, answer in refused.items()
            )
            return DeliveryResult(
                AttemptOutcome.DELIVERED, remote_id=remote_id, reason=f"refused: {who}"
            )
        return DeliveryResult.delivered(remote_id)
