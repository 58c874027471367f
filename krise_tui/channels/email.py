"""The e-mail channel: the message to distribution lists over SMTP (aiosmtplib).

One plain-text UTF-8 e-mail per version with every language variant, the website link
and the signature. The subject is the ``nb`` headline (``ØVELSE: `` first in drills,
``Oppdatert: `` / ``Trukket tilbake: `` for updates and retractions).

SMTP has no idempotency, so the ``Message-ID`` is derived from the idempotency key:
a retry after a lost answer sends the *same* Message-ID, which mail clients and list
servers recognise as a duplicate. An update carries ``In-Reply-To``/``References`` to
the Message-ID of the version it supersedes, so the versions thread together. With
``state_file`` the channel also keeps a ledger and does not send a delivered key again.

Credentials are secret references (``{"env": "SMTP_USER"}``); ``starttls`` upgrades a
plain connection (port 587), ``use_tls`` speaks TLS from the start (port 465).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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
    ApprovedMessage,
    ChannelConfig,
    ChannelConfigError,
    DeliveryResult,
    DeliveryStatus,
    JsonLedger,
    SecretRef,
    format_seconds,
    headline_text,
    parse_config,
    register,
    resolve_secret,
)

_ADDRESS = r"^[^@\s<>,]+@[^@\s<>,]+$"


class EmailConfig(ChannelConfig):
    """Configuration of an e-mail channel."""

    host: str
    """SMTP server host name."""
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    """SMTP server port (587 submission with STARTTLS, 465 implicit TLS, 25 relay)."""
    username: SecretRef | None = None
    """SMTP user name, as a secret reference (with ``password``, or neither)."""
    password: SecretRef | None = None
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
    """Optional ledger: a key already sent is not sent again."""

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
        self._ledger = JsonLedger(config.state_file) if config.state_file else None

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
    ) -> DeliveryResult:
        """Send the e-mail; the remote id is its Message-ID.

        ``previous_remote_id`` is unused: threading uses the superseded version's
        Message-ID, which is derived, not stored.
        """
        if self._ledger is None:
            return await self._send(message, idempotency_key)
        async with self._ledger.lock:
            try:
                known = await self._ledger.get(idempotency_key)
            except (OSError, ChannelConfigError) as exc:
                return DeliveryResult.failed(f"cannot read the ledger: {exc}")
            if known is not None:
                return DeliveryResult.delivered(known)
            result = await self._send(message, idempotency_key)
            if result.ok and result.remote_id:
                try:
                    await self._ledger.put(idempotency_key, result.remote_id)
                except OSError as exc:
                    return DeliveryResult.failed(f"sent, but cannot write the ledger: {exc}")
            return result

    async def _send(self, message: ApprovedMessage, idempotency_key: str) -> DeliveryResult:
        mail = self.build(message, idempotency_key=idempotency_key)
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
        except aiosmtplib.SMTPTimeoutError:
            return DeliveryResult.failed(f"timeout after {format_seconds(config.timeout)}")
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
            return DeliveryResult.failed(f"SMTP error: {exc}")
        remote_id = str(mail["Message-ID"])
        if refused:
            who = ", ".join(
                f"{rcpt} ({answer.code} {answer.message})" for rcpt, answer in refused.items()
            )
            return DeliveryResult(
                DeliveryStatus.DELIVERED, remote_id=remote_id, reason=f"refused: {who}"
            )
        return DeliveryResult.delivered(remote_id)
