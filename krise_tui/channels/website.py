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
:mod:`krise_tui.channels.a11y` for the checks the tests run on them. Times are shown in
the configured time zone (the org file's, ``Europe/Oslo`` by default) with
:mod:`krise_tui.timefmt`; the feed carries UTC.

The page is the master page every channel links to, so no text from a message is ever
trusted as markup: pages are rendered by jinja2 templates (``templates/`` beside this
module) with autoescaping always on and undefined values an error, and the feed is
built as an element tree and written by :mod:`xml.etree.ElementTree`. Nothing is escaped
by hand. Characters no page or feed may carry (controls, bidi overrides) are removed by
:func:`clean_text` first; only bare ``http(s)://`` URLs become links.

The website is also where answers go (DOMAIN §12): ``qa.html`` — "Spørsmål og svar" —
lists every answered batch of questions, newest first, one ``<article>`` per batch with
the question as the leadership approved it for publication (never an asker's own words
or name), the answer and its signature (:meth:`WebsiteChannel.publish_qa`, carried by a
``channel.qa`` envelope: :class:`QaRequest`). ``qa/<batch_id>.json`` keeps each entry as
delivered: a newer ``revision`` replaces an answer, ``withdrawn`` takes it off the page
(the record stays). The index links to the page once it exists.

Every file is written atomically (temp file, fsync, rename) and only when its bytes
change, so re-delivering a version leaves the directory exactly as it was. A CMS may be
told about each version by a JSON POST to ``cms_webhook`` carrying the same
``Idempotency-Key``; the delivery succeeds once files and notification are done, and a
small ledger makes a retry skip a notification already sent. The ledger lives in the
bridge's state directory (``ledger``), never among the served files; one left by an
earlier krise in the served directory (``.krise-ledger.sqlite3``) is taken over and
removed from there.
"""

from __future__ import annotations

import asyncio
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

import httpx
import jinja2
from pydantic import Field, ValidationError, field_validator

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    EXERCISE_LABEL,
    ApprovedMessage,
    ChannelConfig,
    ChannelConfigError,
    DeliveryResult,
    HttpChannel,
    Ledger,
    MessageStatus,
    SecretSetting,
    atomic_write,
    failure_from_response,
    headline_text,
    register,
    resolve_secret,
    send_http,
)
from krise_tui.timefmt import (
    DEFAULT_TIMEZONE,
    check_timezone,
    format_datetime,
    format_time,
    iso_local,
    zone,
)

# The Q&A page's wire models live with the other console -> bridge requests
# (re-exported here for the bridge).
from krise_tui.wire.delivery import QA_TYPE as QA_TYPE
from krise_tui.wire.delivery import QaEntry as QaEntry
from krise_tui.wire.delivery import QaRequest as QaRequest

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LEDGER_NAME = ".krise-ledger.sqlite3"
QA_PAGE = "qa.html"
"""The questions-and-answers page, beside ``index.html``."""
QA_DIR = "qa"
"""Where each answered batch is kept as delivered (``qa/<batch_id>.json``)."""

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
"""A bare http(s) URL in message text; trailing punctuation stays outside the link."""


class WebsiteConfig(ChannelConfig):
    """Configuration of a website channel."""

    directory: Path
    """The directory the web server serves (created when missing)."""
    base_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    """The URL at which ``directory`` is served, e.g. ``https://…kommune.no/krise/``."""
    cms_webhook: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    """Optional: a URL POSTed JSON about each new version (with ``Idempotency-Key``)."""
    cms_token: SecretSetting | None = None
    """Optional bearer token for ``cms_webhook``."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the CMS."""
    timezone: str = DEFAULT_TIMEZONE
    """Time zone for the times shown on pages (``datetime`` attributes keep the offset);
    the bridge passes the org file's ``timezone``."""
    feed_limit: Annotated[int, Field(ge=1)] = 50
    """Entries in ``feed.atom`` and versions listed on ``index.html``."""
    ledger: Path | None = None
    """The ledger file (the org file's channels: ``{state_dir}/{id}.ledger.sqlite3``).
    None: in memory (a retry in another process may notify the CMS again)."""

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


@register("website")
class WebsiteChannel(HttpChannel[WebsiteConfig]):
    """Writes each version as accessible static HTML plus an Atom feed."""

    kind: ClassVar[str] = "website"
    config_model = WebsiteConfig

    def __init__(
        self, name: str, config: WebsiteConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        self._tz = zone(config.timezone)
        self._cms_token = resolve_secret(config.cms_token) if config.cms_token else None
        self._ledger = Ledger(config.ledger, moved_from=config.directory / LEDGER_NAME)

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
        recheck: bool = False,
    ) -> DeliveryResult:
        """Archive ``message``, rebuild index and feed, notify the CMS; return the page URL.

        ``previous_remote_id`` is not needed: the archive knows every earlier version.
        ``recheck`` changes nothing: writing the same files again is idempotent by
        construction, and the CMS notification carries the same ``Idempotency-Key``.
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

    # ------------------------------------------------------------------ Q&A

    @property
    def qa_url(self) -> str:
        """The URL of the questions-and-answers page."""
        return f"{self.config.base_url}{QA_PAGE}"

    async def publish_qa(self, request: QaRequest, *, recheck: bool = False) -> DeliveryResult:
        """Put ``request.entry`` on the Q&A page (or take it off when withdrawn).

        The remote id is the entry's URL, ``…/qa.html#q-<batch_id>``. Writing the files
        again is idempotent, so a retry or ``recheck`` simply writes them again; a lower
        revision than the one on the page changes nothing.
        """
        entry = request.entry
        if entry.exercise and not self.config.exercise_endpoint:
            return DeliveryResult.failed(
                f"{EXERCISE_LABEL}: an exercise answer is never put on the real website; "
                f"channel {self.name!r} is not marked exercise: true in the org file",
                permanent=True,
            )
        url = f"{self.qa_url}#q-{entry.batch_id}"
        async with self._ledger.lock:
            try:
                note = await asyncio.to_thread(self._write_qa, request)
            except (OSError, ChannelConfigError) as exc:
                return DeliveryResult.failed(f"cannot write the Q&A page: {exc}")
            except _ArchiveConflict as exc:
                return DeliveryResult.failed(str(exc), permanent=True)
        return DeliveryResult.delivered(url, reason=note, existing=note is not None)

    def _write_qa(self, request: QaRequest) -> str | None:
        """Write the entry's record and the page; a note when a newer revision stays."""
        entry = request.entry
        record = self.directory / QA_DIR / f"{entry.batch_id}.json"
        note = None
        stored = _read_entry(record)
        if stored is not None and stored.revision > entry.revision:
            note = (
                f"revision {stored.revision} of batch {entry.batch_id} is already on the "
                f"page; revision {entry.revision} left out"
            )
        elif stored is not None and stored.revision == entry.revision and stored != entry:
            raise _ArchiveConflict(
                f"revision {entry.revision} of batch {entry.batch_id} is already on the page "
                "with other content; an amended answer needs a new revision"
            )
        else:
            atomic_write(record, (entry.model_dump_json(indent=1) + "\n").encode("utf-8"))
        entries = self._load_qa()
        atomic_write(
            self.directory / QA_PAGE,
            self.render_qa(entries, org_name=request.org_name).encode("utf-8"),
        )
        archive = self._load_archive()
        if archive:
            # The index links to the Q&A page once it exists.
            atomic_write(
                self.directory / "index.html",
                self.render_page(archive[0], archive, root="", index=True).encode("utf-8"),
            )
        return note

    def _load_qa(self) -> list[QaEntry]:
        """Every entry on the page (withdrawn ones left out), newest answer first."""
        entries = []
        for path in sorted((self.directory / QA_DIR).glob("*.json")):
            entry = _read_entry(path)
            if entry is None:
                log.warning("website %s: skipping unreadable Q&A record %s", self.name, path)
            elif not entry.withdrawn:
                entries.append(entry)
        entries.sort(key=lambda e: (e.answered_at, e.batch_id), reverse=True)
        return entries

    def render_qa(self, entries: list[QaEntry], *, org_name: str) -> str:
        """The Q&A page listing ``entries`` (in the order given)."""
        org = clean_text(org_name)
        rows = [
            {
                "id": f"q-{entry.batch_id}",
                "lang": entry.lang,
                "question": clean_text(entry.question),
                "blocks": _blocks(entry.answer),
                "answered": self._time(entry.answered_at, long=True),
                "updated": entry.revision > 1,
                "signature": clean_text(entry.signature),
                "exercise": entry.exercise,
            }
            for entry in entries
        ]
        return _qa_template().render(
            title=f"Spørsmål og svar – {org}",
            canonical=self.qa_url,
            org_name=org,
            exercise_label=EXERCISE_LABEL,
            entries=rows,
        )

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

    def _time(self, when: datetime, *, long: bool) -> _Time:
        text = format_datetime(when, self._tz, "nb") if long else format_time(when, self._tz, "nb")
        return _Time(iso=iso_local(when, self._tz), text=text)

    @staticmethod
    def _variants(message: ApprovedMessage) -> list[_Variant]:
        return [
            _Variant(
                lang=variant.lang,
                headline=clean_text(headline_text(message, variant.lang)),
                blocks=_blocks(variant.body),
            )
            for variant in message.variants
        ]

    def render_page(
        self,
        message: ApprovedMessage,
        archive: list[ApprovedMessage],
        *,
        root: str,
        index: bool = False,
    ) -> str:
        """The HTML page for ``message``; ``root`` is the relative path to the site root."""
        org_name = clean_text(message.org_name)
        h1 = f"Krisemelding fra {org_name}"
        if message.exercise:
            h1 = f"{EXERCISE_LABEL}: {h1}"
        status: dict[str, str] | None = None
        if message.status is MessageStatus.UPDATED:
            status = {"nb": "Oppdatert", "en": "Updated"}
        elif message.status is MessageStatus.RETRACTED:
            status = {"nb": "Trukket tilbake", "en": "Retracted"}
        menu = []
        if len(message.variants) > 1:
            menu = [
                {"lang": v.lang, "name": LANGUAGE_NAMES.get(v.lang, v.lang)}
                for v in message.variants
            ]
        known = {m.version_id for m in archive}
        previous = None
        if message.supersedes and message.supersedes in known:
            what = "Trukket tilbake" if message.status is MessageStatus.RETRACTED else "Erstatter"
            previous = {"what": what, "version_id": message.supersedes}
        history = []
        if index and len(archive) > 1:
            history = [
                {
                    "version_id": m.version_id,
                    "headline": clean_text(headline_text(m, "nb")),
                    "published": self._time(m.published_at, long=True),
                }
                for m in archive[: self.config.feed_limit]
            ]
        return _page_template().render(
            title=f"{clean_text(headline_text(message, 'nb'))} – {org_name}",
            canonical=self.page_url(message.version_id),
            feed_title=f"{org_name} – krisemeldinger",
            root=root,
            org_name=org_name,
            h1=h1,
            exercise=message.exercise,
            exercise_label=EXERCISE_LABEL,
            status=status,
            published_long=self._time(message.published_at, long=True),
            published_short=self._time(message.published_at, long=False),
            menu=menu,
            variants=self._variants(message),
            signature=clean_text(message.signature_line),
            previous=previous,
            index=index,
            version_id=message.version_id,
            history=history,
            qa=index and (self.directory / QA_PAGE).exists(),
        )

    def _entry_html(self, message: ApprovedMessage) -> str:
        """The HTML an Atom entry carries: the language sections and the signature."""
        return (
            _entry_template()
            .render(variants=self._variants(message), signature=clean_text(message.signature_line))
            .strip()
        )

    # ------------------------------------------------------------------ Atom

    def render_feed(self, archive: list[ApprovedMessage]) -> bytes:
        """The Atom 1.0 feed of ``archive`` (newest first), as UTF-8 XML.

        Built as an element tree and written by :mod:`xml.etree.ElementTree`, which
        escapes every text and attribute; :func:`clean_text` first removes the characters
        XML 1.0 cannot carry at all. Times are UTC (RFC 3339), for feed readers to show
        in their reader's zone.
        """
        base = self.config.base_url
        newest = archive[0] if archive else None
        feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: "nb"})
        org = clean_text(newest.org_name) if newest else "krise"
        ET.SubElement(feed, "id").text = base
        ET.SubElement(feed, "title").text = f"{org} – krisemeldinger"
        ET.SubElement(feed, "updated").text = (
            _rfc3339(newest.published_at) if newest else "1970-01-01T00:00:00+00:00"
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
            ET.SubElement(entry, "title").text = clean_text(headline_text(message, "nb"))
            ET.SubElement(entry, "updated").text = _rfc3339(message.published_at)
            ET.SubElement(entry, "published").text = _rfc3339(message.published_at)
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
            ET.SubElement(ET.SubElement(entry, "author"), "name").text = clean_text(
                message.signature_line
            )
            ET.SubElement(entry, "category", {"term": message.status.value})
            if message.exercise:
                ET.SubElement(entry, "category", {"term": "exercise", "label": EXERCISE_LABEL})
            content = ET.SubElement(entry, "content", {"type": "html"})
            content.text = self._entry_html(message)
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


def _read_entry(path: Path) -> QaEntry | None:
    """The Q&A record in ``path``; None when there is none or it is unreadable."""
    try:
        return QaEntry.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


# --------------------------------------------------------------------------- rendering

_TEMPLATES = "templates"

# Characters removed from every text before it is rendered. XML 1.0 cannot carry C0
# controls (other than tab and newline) or lone surrogates at all, and HTML parsers flag C1
# controls and noncharacters; none of them means anything on a page. The bidi embedding,
# override and isolate controls are removed too: an unbalanced U+202E in a headline would
# reverse the text around it (in the version list, the time beside it) and can make a URL
# read as another; plain RTL text needs none of them, and the marks LRM/RLM are kept.
_NONCHARACTERS = "".join(
    f"{chr(plane + 0xFFFE)}-{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
)
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
    f"\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]"
)


def clean_text(text: str) -> str:
    """``text`` without the characters no page or feed may carry (see ``_UNSAFE``).

    Line ends (CR LF, CR) become LF. Escaping is not done here: the template engine (HTML) and
    the XML serialiser (Atom) do it, each for its own syntax.
    """
    return _UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True, slots=True)
class _Time:
    """A time as the page shows it: ``iso`` for ``<time datetime>``, ``text`` to read."""

    iso: str
    text: str


@dataclass(frozen=True, slots=True)
class _Piece:
    """A run of a line: plain text, or a link whose text is its URL."""

    text: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class _Variant:
    """One language section: its headline and paragraphs (lines of pieces)."""

    lang: str
    headline: str
    blocks: list[list[list[_Piece]]]


def _link_target(url: str) -> str | None:
    """``url`` when it is safe as an ``href`` (absolute http or https with a host)."""
    # The pattern only finds http(s) URLs; this check keeps a javascript: or data: URL
    # from ever becoming a link should the pattern change.
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def _segments(line: str) -> list[_Piece]:
    """``line`` split into text and links; bare http(s) URLs become links."""
    pieces: list[_Piece] = []
    last = 0
    for match in _URL.finditer(line):
        url = match.group(0)
        target = _link_target(url)
        if target is None:
            continue
        if match.start() > last:
            pieces.append(_Piece(line[last : match.start()]))
        pieces.append(_Piece(url, target))
        last = match.end()
    if last < len(line):
        pieces.append(_Piece(line[last:]))
    return pieces


def _blocks(text: str) -> list[list[list[_Piece]]]:
    """Plain text as paragraphs (split at blank lines) of lines of pieces."""
    text = clean_text(text)
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
    return [[_segments(line.strip()) for line in block.splitlines()] for block in blocks]


def _rfc3339(when: datetime) -> str:
    """An Atom time: UTC with an explicit offset (feed readers convert for their reader)."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


@cache
def _environment() -> jinja2.Environment:
    """The template environment: HTML autoescaping on, a missing value is an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("krise_tui.channels", _TEMPLATES),
        # Every template here is HTML, so escape always (not by file extension): a
        # message's text can never become markup on the municipality's master page.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _page_template() -> jinja2.Template:
    return _environment().get_template("page.html.j2")


def _entry_template() -> jinja2.Template:
    return _environment().get_template("entry.html.j2")


def _qa_template() -> jinja2.Template:
    return _environment().get_template("qa.html.j2")
