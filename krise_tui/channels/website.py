"""The website channel: the municipality's own, universally designed crisis page.

Every message is on the website and every other channel links to it (DOMAIN rule 6),
so this channel is delivered first. It writes static files into a directory that a web
server serves:

- ``v/<version_id>.html`` — one page per version, written once and never changed
  (the archive); ``v/<version_id>.json`` beside it holds the version as delivered, so
  the index and feed can always be rebuilt from the archive alone;
- ``index.html`` — the current message (the newest version by ``published_at``) with
  the list of earlier versions;
- ``feed.atom`` — an Atom 1.0 feed, newest first, entry ids ``urn:krise:<version_id>``.

Pages follow WCAG 2.1 AA basics (rule 20): ``<html lang="nb">``, a skip link, exactly
one ``<h1>``, each language variant in its own ``<section lang="…">`` with an ``<h2>``,
text only (no images), ``<time datetime>`` for every time, and visible "Oppdatert
HH:MM" / "Trukket tilbake HH:MM" labels with English beside them. See
:mod:`krise_tui.channels.a11y` for the checks the tests run on them.

Every file is written atomically (temp file, fsync, rename) and only when its bytes
change, so re-delivering a version leaves the directory exactly as it was. A CMS may be
told about each version by a JSON POST to ``cms_webhook`` carrying the same
``Idempotency-Key``; the delivery succeeds once files and notification are done, and a
small ledger (``.krise-ledger.json``) makes a retry skip a notification already sent.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field, ValidationError, field_validator

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    EXERCISE_LABEL,
    ApprovedMessage,
    ChannelConfig,
    ChannelConfigError,
    DeliveryResult,
    HttpChannel,
    JsonLedger,
    MessageStatus,
    SecretRef,
    atomic_write,
    failure_from_response,
    headline_text,
    register,
    resolve_secret,
    send_http,
)

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LEDGER_NAME = ".krise-ledger.json"

LANGUAGE_NAMES: dict[str, str] = {
    "nb": "Norsk bokmål",
    "nn": "Norsk nynorsk",
    "sma": "Åarjelsaemien",
    "se": "Davvisámegiella",
    "smj": "Julevsámegiella",
    "en": "English",
}
"""Each language's name in itself, for the language menu."""

_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")

STYLE = """
body{font:1.125rem/1.6 system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}
main,header,footer{max-width:42rem;margin:0 auto;padding:0 1rem}
a{color:#0b4f9c;text-decoration:underline}
a:focus,main:focus{outline:3px solid #b35c00;outline-offset:2px}
.skip{position:absolute;left:-999rem}
.skip:focus{position:static;display:inline-block;padding:.5rem;background:#fff}
.status,.exercise{border-left:.4rem solid #8a1c1c;padding:.5rem 1rem;background:#fdf1f1}
.exercise{border-color:#6b4c00;background:#fff7e0}
section{border-top:1px solid #767676;margin-top:1.5rem}
""".strip()


class WebsiteConfig(ChannelConfig):
    """Configuration of a website channel."""

    directory: Path
    """The directory the web server serves (created when missing)."""
    base_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    """The URL at which ``directory`` is served, e.g. ``https://…kommune.no/krise/``."""
    cms_webhook: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    """Optional: a URL POSTed JSON about each new version (with ``Idempotency-Key``)."""
    cms_token: SecretRef | None = None
    """Optional bearer token for ``cms_webhook``."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the CMS."""
    timezone: str = "Europe/Oslo"
    """Time zone for the times shown on pages (``datetime`` attributes keep the offset)."""
    feed_limit: Annotated[int, Field(ge=1)] = 50
    """Entries in ``feed.atom`` and versions listed on ``index.html``."""

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


@register("website")
class WebsiteChannel(HttpChannel[WebsiteConfig]):
    """Writes each version as accessible static HTML plus an Atom feed."""

    kind: ClassVar[str] = "website"
    config_model = WebsiteConfig

    def __init__(
        self, name: str, config: WebsiteConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        self._tz = ZoneInfo(config.timezone)
        self._cms_token = resolve_secret(config.cms_token) if config.cms_token else None
        self._ledger = JsonLedger(config.directory / LEDGER_NAME)

    @property
    def directory(self) -> Path:
        """The served directory."""
        return self.config.directory

    def page_url(self, version_id: str) -> str:
        """The permanent URL of one version's page."""
        return f"{self.config.base_url}v/{version_id}.html"

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
    ) -> DeliveryResult:
        """Archive ``message``, rebuild index and feed, notify the CMS; return the page URL.

        ``previous_remote_id`` is not needed: the archive knows every earlier version.
        """
        async with self._ledger.lock:
            try:
                await asyncio.to_thread(self._write_files, message)
                already = await self._ledger.get(idempotency_key)
            except (OSError, ChannelConfigError) as exc:
                return DeliveryResult.failed(f"cannot write the website files: {exc}")
            except _ArchiveConflict as exc:
                return DeliveryResult.failed(str(exc), permanent=True)
            url = self.page_url(message.version_id)
            if already is None:
                if self.config.cms_webhook is not None:
                    failure = await self._notify_cms(message, idempotency_key=idempotency_key)
                    if failure is not None:
                        return failure
                try:
                    await self._ledger.put(idempotency_key, url)
                except OSError as exc:
                    return DeliveryResult.failed(f"cannot write the ledger: {exc}")
            return DeliveryResult.delivered(url)

    # ------------------------------------------------------------------ files

    def _write_files(self, message: ApprovedMessage) -> None:
        version_dir = self.directory / "v"
        record = version_dir / f"{message.version_id}.json"
        data = (message.model_dump_json(indent=1) + "\n").encode("utf-8")
        if record.exists():
            try:
                stored = ApprovedMessage.model_validate_json(record.read_bytes())
            except ValidationError:
                stored = None
            if stored is not None and stored != message:
                raise _ArchiveConflict(
                    f"version {message.version_id} is already archived with other content; "
                    "an archived version never changes"
                )
        atomic_write(record, data)
        archive = self._load_archive()
        page = version_dir / f"{message.version_id}.html"
        if not page.exists():
            atomic_write(page, self.render_page(message, archive, root="../").encode("utf-8"))
        current = archive[0]
        atomic_write(
            self.directory / "index.html",
            self.render_page(current, archive, root="", index=True).encode("utf-8"),
        )
        atomic_write(self.directory / "feed.atom", self.render_feed(archive))

    def _load_archive(self) -> list[ApprovedMessage]:
        """Every archived version, newest first (unreadable records are skipped)."""
        versions: list[ApprovedMessage] = []
        for path in sorted((self.directory / "v").glob("*.json")):
            try:
                versions.append(ApprovedMessage.model_validate_json(path.read_bytes()))
            except (ValidationError, OSError) as exc:
                log.warning(
                    "website %s: skipping unreadable archive record %s: %s", self.name, path, exc
                )
        versions.sort(key=lambda m: (m.published_at, m.version_id), reverse=True)
        return versions

    # ------------------------------------------------------------------ HTML

    def _local(self, when: datetime) -> datetime:
        return when.astimezone(self._tz)

    def _time(self, when: datetime, fmt: str) -> str:
        local = self._local(when)
        return f'<time datetime="{local.isoformat()}">{local.strftime(fmt)}</time>'

    def _status_block(self, message: ApprovedMessage) -> str:
        lines: list[str] = []
        if message.exercise:
            lines.append(
                f'<p class="exercise"><strong>{EXERCISE_LABEL}</strong> – dette er en øvelse, '
                'ikke en virkelig hendelse. <span lang="en">EXERCISE – this is a drill, '
                "not a real incident.</span></p>"
            )
        hhmm = self._time(message.published_at, "%H:%M")
        if message.status is MessageStatus.UPDATED:
            nb, en = "Oppdatert", "Updated"
        elif message.status is MessageStatus.RETRACTED:
            nb, en = "Trukket tilbake", "Retracted"
        else:
            published = self._time(message.published_at, "%d.%m.%Y kl. %H:%M")
            lines.append(f"<p>Publisert {published}</p>")
            return "\n".join(lines)
        lines.append(
            f'<p class="status"><strong>{nb} {hhmm}</strong> – <span lang="en">{en} {hhmm}'
            "</span></p>"
        )
        return "\n".join(lines)

    @staticmethod
    def _paragraphs(text: str) -> str:
        blocks = [block.strip() for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
        out: list[str] = []
        for block in blocks:
            lines = [_linkify(line.strip()) for line in block.splitlines()]
            out.append("<p>" + "<br>\n".join(lines) + "</p>")
        return "\n".join(out)

    def _sections(self, message: ApprovedMessage, *, heading: str = "h2") -> str:
        parts: list[str] = []
        for variant in message.variants:
            title = html.escape(headline_text(message, variant.lang))
            parts.append(
                f'<section lang="{variant.lang}" id="{variant.lang}">\n'
                f"<{heading}>{title}</{heading}>\n{self._paragraphs(variant.body)}\n</section>"
            )
        return "\n".join(parts)

    def render_page(
        self,
        message: ApprovedMessage,
        archive: list[ApprovedMessage],
        *,
        root: str,
        index: bool = False,
    ) -> str:
        """The HTML page for ``message``; ``root`` is the relative path to the site root."""
        esc = html.escape
        title = f"{headline_text(message, 'nb')} – {message.org_name}"
        h1 = f"Krisemelding fra {message.org_name}"
        if message.exercise:
            h1 = f"{EXERCISE_LABEL}: {h1}"
        menu = ""
        if len(message.variants) > 1:
            items = "\n".join(
                f'<li><a href="#{v.lang}" lang="{v.lang}" hreflang="{v.lang}">'
                f"{esc(LANGUAGE_NAMES.get(v.lang, v.lang))}</a></li>"
                for v in message.variants
            )
            menu = f'<nav aria-label="Språk">\n<ul>\n{items}\n</ul>\n</nav>'
        known = {m.version_id for m in archive}
        related: list[str] = []
        if message.supersedes and message.supersedes in known:
            what = "Trukket tilbake" if message.status is MessageStatus.RETRACTED else "Erstatter"
            related.append(
                f'<p>{what}: <a href="{root}v/{message.supersedes}.html">tidligere versjon</a></p>'
            )
        permalink = f"{root}v/{message.version_id}.html"
        if index:
            related.append(f'<p><a href="{permalink}">Fast lenke til denne versjonen</a></p>')
        history = ""
        if index and len(archive) > 1:
            rows = "\n".join(
                f'<li><a href="{root}v/{m.version_id}.html">{esc(headline_text(m, "nb"))}</a> '
                f"({self._time(m.published_at, '%d.%m.%Y kl. %H:%M')})</li>"
                for m in archive[: self.config.feed_limit]
            )
            history = (
                '<nav aria-labelledby="arkiv">\n<h2 id="arkiv">Alle versjoner</h2>\n'
                f"<ul>\n{rows}\n</ul>\n</nav>"
            )
        canonical = self.page_url(message.version_id)
        feed_title = esc(f"{message.org_name} – krisemeldinger")
        return f"""<!DOCTYPE html>
<html lang="nb">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="canonical" href="{esc(canonical)}">
<link rel="alternate" type="application/atom+xml" title="{feed_title}" href="{root}feed.atom">
<style>
{STYLE}
</style>
</head>
<body>
<a class="skip" href="#innhold">Hopp til innhold</a>
<header>
<p><a href="{root}index.html">{esc(message.org_name)}</a></p>
</header>
<main id="innhold" tabindex="-1">
<h1>{esc(h1)}</h1>
{self._status_block(message)}
{menu}
{self._sections(message)}
<p class="signature">{esc(message.signature_line)}</p>
{chr(10).join(related)}
{history}
</main>
<footer>
<p><a href="{root}feed.atom">Abonner på krisemeldinger (Atom-feed)</a></p>
</footer>
</body>
</html>
"""

    # ------------------------------------------------------------------ Atom

    def render_feed(self, archive: list[ApprovedMessage]) -> bytes:
        """The Atom 1.0 feed of ``archive`` (newest first), as UTF-8 XML."""
        base = self.config.base_url
        newest = archive[0] if archive else None
        feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: "nb"})
        org = newest.org_name if newest else "krise"
        ET.SubElement(feed, "id").text = base
        ET.SubElement(feed, "title").text = f"{org} – krisemeldinger"
        ET.SubElement(feed, "updated").text = (
            newest.published_at.isoformat() if newest else "1970-01-01T00:00:00+00:00"
        )
        ET.SubElement(
            feed,
            "link",
            {"rel": "self", "type": "application/atom+xml", "href": f"{base}feed.atom"},
        )
        ET.SubElement(
            feed, "link", {"rel": "alternate", "type": "text/html", "href": f"{base}index.html"}
        )
        ET.SubElement(ET.SubElement(feed, "author"), "name").text = org
        for message in archive[: self.config.feed_limit]:
            entry = ET.SubElement(feed, "entry")
            ET.SubElement(entry, "id").text = f"urn:krise:{message.version_id}"
            ET.SubElement(entry, "title").text = headline_text(message, "nb")
            ET.SubElement(entry, "updated").text = message.published_at.isoformat()
            ET.SubElement(entry, "published").text = message.published_at.isoformat()
            ET.SubElement(
                entry,
                "link",
                {
                    "rel": "alternate",
                    "type": "text/html",
                    "href": self.page_url(message.version_id),
                },
            )
            if message.supersedes:
                ET.SubElement(
                    entry, "link", {"rel": "related", "href": self.page_url(message.supersedes)}
                )
            ET.SubElement(ET.SubElement(entry, "author"), "name").text = message.signature_line
            ET.SubElement(entry, "category", {"term": message.status.value})
            if message.exercise:
                ET.SubElement(entry, "category", {"term": "exercise", "label": EXERCISE_LABEL})
            content = ET.SubElement(entry, "content", {"type": "html"})
            content.text = (
                self._sections(message, heading="h2")
                + f"\n<p>{html.escape(message.signature_line)}</p>"
            )
        ET.indent(feed)
        xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
        return xml + b"\n"

    # ------------------------------------------------------------------ CMS

    async def _notify_cms(
        self, message: ApprovedMessage, *, idempotency_key: str
    ) -> DeliveryResult | None:
        assert self.config.cms_webhook is not None
        headers = {"Idempotency-Key": idempotency_key}
        if self._cms_token:
            headers["Authorization"] = f"Bearer {self._cms_token}"
        payload = {
            "version_id": message.version_id,
            "status": message.status.value,
            "supersedes": message.supersedes,
            "exercise": message.exercise,
            "published_at": message.published_at.isoformat(),
            "headline": headline_text(message, "nb"),
            "languages": list(message.langs),
            "url": self.page_url(message.version_id),
            "index_url": f"{self.config.base_url}index.html",
            "feed_url": f"{self.config.base_url}feed.atom",
        }
        answer = await send_http(
            self._client,
            "POST",
            self.config.cms_webhook,
            timeout=self.config.timeout,
            json=payload,
            headers=headers,
        )
        if isinstance(answer, DeliveryResult):
            return DeliveryResult.failed(
                f"pages written; CMS: {answer.reason}", retry_after=answer.retry_after
            )
        if answer.is_success:
            return None
        failed = failure_from_response(answer)
        return DeliveryResult.failed(
            f"pages written; CMS: {failed.reason}",
            retry_after=failed.retry_after,
            permanent=failed.permanent,
        )


class _ArchiveConflict(Exception):
    """An archived version would change: archived versions are immutable."""


def _linkify(line: str) -> str:
    """Escape ``line`` and turn bare http(s) URLs into links whose text is the URL."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(line):
        out.append(html.escape(line[last : match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(line[last:]))
    return "".join(out)
