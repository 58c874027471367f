"""The website channel: accessible pages, the Atom feed, the archive, idempotency."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import html5lib
import pytest

from krise_tui.channels import MessageStatus, create_channel, idempotency_key
from krise_tui.channels.a11y import check_html
from krise_tui.channels.base import ApprovedMessage, ChannelConfigError, Ledger
from krise_tui.channels.from_org import channel_from_def
from krise_tui.channels.website import LEDGER_NAME, WebsiteChannel
from krise_tui.playbook.models import ChannelDef
from tests.fakes import FakePlatform, running, sample_message

BASE_URL = "https://www.hattfjelldal.kommune.no/krise/"
ATOM = "{http://www.w3.org/2005/Atom}"

BAD_PAGE = """<!DOCTYPE html>
<html>
<head><title></title></head>
<body>
<h1>Krise</h1>
<h1>Krise igjen</h1>
<h3>Hoppet over h2</h3>
<img src="kart.png">
<section><p>Tekst uten språk</p></section>
<a href="/mer"></a>
<a href="/ikon"><img src="i.png" alt=""></a>
<a href="/hjem"><img src="hjem.png" alt="Til forsiden"></a>
<time>14:05</time>
</body>
</html>
"""


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with running() as fake:
        yield fake


def make_channel(directory: Path, **extra: object) -> WebsiteChannel:
    channel = create_channel(
        "website", "nettside", {"directory": str(directory), "base_url": BASE_URL, **extra}
    )
    assert isinstance(channel, WebsiteChannel)
    return channel


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


async def test_writes_accessible_pages(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    message = sample_message()
    result = await channel.deliver(message, idempotency_key=idempotency_key(message, "nettside"))
    assert result.ok, result.reason
    assert result.remote_id == f"{BASE_URL}v/{message.version_id}.html"
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    page = (tmp_path / "v" / f"{message.version_id}.html").read_text(encoding="utf-8")
    for html in (index, page):
        assert check_html(html) == []
        assert '<html lang="nb">' in html
        assert html.count("<h1>") == 1
        for lang in ("nb", "sma", "en"):
            assert f'<section lang="{lang}"' in html
        assert '<a class="skip" href="#innhold">' in html
        assert '<time datetime="2026-11-27T14:05:00+01:00">' in html
        assert "<img" not in html
        assert "Kari Nordmann, kriseleder, Hattfjelldal kommune" in html
    assert "Jïjnjedahkesne" in index


def test_a11y_check_fails_on_a_bad_page() -> None:
    codes = sorted(issue.code for issue in check_html(BAD_PAGE))
    assert codes == [
        "heading-skip",
        "html-lang",
        "img-alt",
        "link-text",
        "link-text",
        "one-h1",
        "section-lang",
        "time-datetime",
        "title",
    ]
    assert any("line 8" in str(issue) for issue in check_html(BAD_PAGE))


async def test_feed_is_atom_newest_first(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    first = sample_message(seed="v1")
    second = sample_message(
        seed="v2",
        status=MessageStatus.UPDATED,
        supersedes=first.version_id,
        published_at=datetime(2026, 11, 27, 15, 30, tzinfo=UTC),
        headline="Vannet er trygt igjen",
    )
    for message in (first, second):
        result = await channel.deliver(
            message, idempotency_key=idempotency_key(message, "nettside")
        )
        assert result.ok, result.reason
    root = ET.parse(tmp_path / "feed.atom").getroot()
    assert root.tag == f"{ATOM}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "nb"
    assert root.findtext(f"{ATOM}updated") == second.published_at.isoformat()
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        f"urn:krise:{second.version_id}",
        f"urn:krise:{first.version_id}",
    ]
    assert entries[0].findtext(f"{ATOM}title") == "Oppdatert: Vannet er trygt igjen"
    link = entries[0].find(f"{ATOM}link[@rel='alternate']")
    assert link is not None and link.get("href") == f"{BASE_URL}v/{second.version_id}.html"
    content = entries[0].findtext(f"{ATOM}content") or ""
    assert '<section lang="sma"' in content
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None


async def test_index_is_newest_and_versions_are_immutable(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    first = sample_message(seed="v1")
    second = sample_message(
        seed="v2",
        status=MessageStatus.UPDATED,
        supersedes=first.version_id,
        published_at=datetime(2026, 11, 27, 15, 30, tzinfo=UTC),
        headline="Vannet er trygt igjen",
    )
    await channel.deliver(first, idempotency_key=idempotency_key(first, "nettside"))
    first_page = (tmp_path / "v" / f"{first.version_id}.html").read_bytes()
    await channel.deliver(second, idempotency_key=idempotency_key(second, "nettside"))
    # A late retry of the old version must not put it back on the front page.
    await channel.deliver(first, idempotency_key=idempotency_key(first, "nettside"))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Vannet er trygt igjen" in index
    assert "Oppdatert <time" in index and ">16:30</time>" in index
    assert '<span lang="en">Updated <time' in index
    assert f'href="v/{first.version_id}.html">tidligere versjon</a>' in index
    assert check_html(index) == []
    assert (tmp_path / "v" / f"{first.version_id}.html").read_bytes() == first_page


async def test_retracted_and_exercise_labels(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    first = sample_message(seed="v1", exercise=True)
    retraction = sample_message(
        seed="v3",
        status=MessageStatus.RETRACTED,
        supersedes=first.version_id,
        exercise=True,
        published_at=datetime(2026, 11, 27, 16, 45, tzinfo=UTC),
        headline="Meldingen om drikkevann gjaldt ikke deg",
    )
    for message in (first, retraction):
        await channel.deliver(message, idempotency_key=idempotency_key(message, "nettside"))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<strong>Trukket tilbake <time" in index and ">17:45</time></strong>" in index
    assert "Retracted <time" in index
    assert "<h1>ØVELSE: Krisemelding fra Hattfjelldal kommune</h1>" in index
    assert "ØVELSE: Trukket tilbake: Meldingen om drikkevann" in index
    assert check_html(index) == []


async def test_redelivery_is_idempotent(tmp_path: Path, platform: FakePlatform) -> None:
    channel = make_channel(tmp_path / "www", cms_webhook=f"{platform.url}/cms")
    message = sample_message()
    key = idempotency_key(message, "nettside")
    first = await channel.deliver(message, idempotency_key=key)
    before = snapshot(tmp_path / "www")
    again = await channel.deliver(message, idempotency_key=key)
    assert again == first
    assert snapshot(tmp_path / "www") == before
    cms = platform.requests_to("POST", "/cms")
    assert len(cms) == 1
    assert cms[0].header("Idempotency-Key") == key
    assert cms[0].fields["url"] == first.remote_id
    assert not list((tmp_path / "www").rglob("*.tmp"))


async def test_the_ledger_is_kept_out_of_the_served_directory(
    tmp_path: Path, platform: FakePlatform
) -> None:
    """Built from the org file, the website's ledger lives in the bridge's state
    directory; one an earlier krise left among the served files (where a web server
    might hand it out) is taken over, so a retry still skips the CMS, and removed."""
    served = tmp_path / "www"
    state = tmp_path / "state"
    defn = ChannelDef.model_validate(
        {
            "id": "nettside",
            "kind": "website",
            "endpoint": f"{platform.url}/cms",
            "options": {"directory": str(served)},
        }
    )
    message = sample_message()
    key = idempotency_key(message, "nettside")
    earlier = create_channel(
        "website",
        "nettside",
        {"directory": str(served), "base_url": BASE_URL, "cms_webhook": f"{platform.url}/cms"},
    )
    assert isinstance(earlier, WebsiteChannel)
    old = served / LEDGER_NAME  # as krise before this change kept it: in the served files
    earlier._ledger = Ledger(old)
    first = await earlier.deliver(message, idempotency_key=key)
    assert first.ok and old.exists()
    earlier._ledger.close()
    channel = channel_from_def(defn, state_dir=state, website_url=BASE_URL)
    again = await channel.deliver(message, idempotency_key=key)
    assert again == first
    assert len(platform.requests_to("POST", "/cms")) == 1  # taken over: not told twice
    assert not [p.name for p in served.iterdir() if p.name.startswith(".krise-ledger")]
    assert (state / "nettside.ledger.sqlite3").exists()
    other = sample_message(seed="v2")
    assert (await channel.deliver(other, idempotency_key=idempotency_key(other, "x"))).ok
    assert not [p.name for p in served.iterdir() if p.name.startswith(".")]


async def test_cms_failure_is_retried_without_rewriting(
    tmp_path: Path, platform: FakePlatform
) -> None:
    channel = make_channel(tmp_path, cms_webhook=f"{platform.url}/cms")
    message = sample_message()
    key = idempotency_key(message, "nettside")
    platform.fail_next(503, retry_after="3")
    failed = await channel.deliver(message, idempotency_key=key)
    assert not failed.ok
    assert failed.reason is not None and "CMS: 503 Service Unavailable" in failed.reason
    assert failed.retry_after == 3.0
    assert (tmp_path / "index.html").exists()
    ok = await channel.deliver(message, idempotency_key=key)
    assert ok.ok
    assert len(platform.requests_to("POST", "/cms")) == 2


async def test_changed_content_under_an_archived_version_id_is_refused(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    message = sample_message()
    key = idempotency_key(message, "nettside")
    await channel.deliver(message, idempotency_key=key)
    forged = message.model_copy(update={"signature": "Ola Nordmann, ordfører"})
    result = await channel.deliver(forged, idempotency_key=key)
    assert not result.ok and result.permanent
    assert result.reason is not None and "already archived" in result.reason


async def test_a_broken_archive_record_does_not_stop_publishing(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "garbage.json").write_text("{not json", encoding="utf-8")
    message = sample_message()
    result = await channel.deliver(message, idempotency_key=idempotency_key(message, "n"))
    assert result.ok
    record = json.loads((tmp_path / "v" / f"{message.version_id}.json").read_text("utf-8"))
    assert record["version_id"] == message.version_id


# --- hostile input: the master page must never carry markup from a message --------------

HOSTILE_HEADLINE = (
    '<script>alert(1)</script>"><img src=x onerror=alert(1)> ]]> &amp; & '
    "\x00\x01\x08\x0b\x0c\x1b\x7f\x85\x9f \u202eexe.kok\u202c \u2066x\u2069 \ufdd0\ufffe"
)
HOSTILE_BODY = (
    "javascript:alert(1) og <a href=\"javascript:alert('x')\">klikk</a>\n"
    'Se https://ok.example/sti"onmouseover="alert(1) eller https://evil.example/<script>\n'
    "data:text/html,<script>alert(1)</script> ]]> <![CDATA[x]]> <!-- c --> &lt;b&gt;\n\n"
    "Avsnitt \u202eto\r\nmed CRLF\rog CR"
)
HOSTILE_SIGNATURE = 'Kari <b>"Nordmann"</b>, kriseleder <script>x</script>'
# Everything a page may contain: the template's own structure, nothing from the input.
PAGE_ELEMENTS = {
    "html", "head", "meta", "title", "link", "style", "body", "a", "header", "p", "main",
    "h1", "h2", "strong", "span", "nav", "ul", "li", "section", "br", "time", "footer",
    "article",
}  # fmt: skip
UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef\ufffe\uffff]"
)


def hostile_message(**extra: Any) -> ApprovedMessage:
    message = sample_message(headline=HOSTILE_HEADLINE, nb_body=HOSTILE_BODY, **extra)
    return message.model_copy(
        update={"org_name": "Hattfjelldal <i>kommune</i>", "signature": HOSTILE_SIGNATURE}
    )


def strict_html(text: str, *, fragment: bool = False) -> ET.Element:
    """Parse HTML as a browser would, failing on any parse error."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parseFragment(text) if fragment else parser.parse(text)
    assert isinstance(tree, ET.Element)
    return tree


def assert_no_active_markup(tree: ET.Element) -> None:
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag == "DOCUMENT_FRAGMENT":
            continue
        assert element.tag in PAGE_ELEMENTS, element.tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            if name in ("href", "src"):
                assert value.startswith(
                    ("#", "v/", "../", "index.html", "qa.html", "feed.atom", "https://")
                )
                assert not re.search(r"[\s\"'<>]", value), value
    for style in tree.iter("style"):
        assert "<" not in (style.text or "")


def texts(tree: ET.Element, tag: str) -> list[str]:
    return ["".join(element.itertext()) for element in tree.iter(tag)]


async def test_hostile_text_stays_text_on_every_page(tmp_path: Path) -> None:
    first = hostile_message(seed="v1")
    second = hostile_message(
        seed="v2",
        status=MessageStatus.UPDATED,
        supersedes=first.version_id,
        published_at=datetime(2026, 11, 27, 15, 30, tzinfo=UTC),
    )
    channel = make_channel(tmp_path)
    for message in (first, second):
        result = await channel.deliver(
            message, idempotency_key=idempotency_key(message, "nettside")
        )
        assert result.ok, result.reason
    pages = [tmp_path / "index.html", *sorted((tmp_path / "v").glob("*.html"))]
    assert len(pages) == 3
    headline = '<script>alert(1)</script>"><img src=x onerror=alert(1)> ]]> &amp; & '
    for path in pages:
        source = path.read_text(encoding="utf-8")
        assert not UNSAFE_CHARS.search(source)
        assert check_html(source) == []
        tree = strict_html(source)
        assert_no_active_markup(tree)
        # The hostile text is all there, as text, with the unsafe characters removed.
        (h1,) = texts(tree, "h1")
        assert h1 == "Krisemelding fra Hattfjelldal <i>kommune</i>"
        nb_heading = texts(tree, "h2")[0]
        assert headline in nb_heading and "exe.kok x" in nb_heading
        body = texts(tree, "section")[0]
        assert "javascript:alert(1) og <a href=\"javascript:alert('x')\">klikk</a>" in body
        assert "data:text/html,<script>alert(1)</script> ]]> <![CDATA[x]]> <!-- c -->" in body
        assert "&lt;b&gt;" in body and "med CRLF\nog CR" in body
        # Only the plain http(s) URLs became links, cut where the URL ends.
        links = [a.get("href") for a in tree.iter("a") if a.get("href", "").startswith("https")]
        assert links == ["https://ok.example/sti", "https://evil.example/"]
        (signature,) = (
            "".join(p.itertext()) for p in tree.iter("p") if p.get("class") == "signature"
        )
        assert signature.startswith(HOSTILE_SIGNATURE)


async def test_hostile_text_stays_text_in_the_feed(tmp_path: Path) -> None:
    message = hostile_message(exercise=True)
    channel = make_channel(tmp_path)
    assert (await channel.deliver(message, idempotency_key="k")).ok
    data = (tmp_path / "feed.atom").read_bytes()
    root = ET.fromstring(data)  # expat: any character XML 1.0 forbids fails here
    assert not UNSAFE_CHARS.search(data.decode("utf-8"))
    (entry,) = root.findall(f"{ATOM}entry")
    title = entry.findtext(f"{ATOM}title") or ""
    assert title.startswith('ØVELSE: <script>alert(1)</script>"><img src=x onerror=')
    assert root.findtext(f"{ATOM}title") == "Hattfjelldal <i>kommune</i> – krisemeldinger"
    author = entry.findtext(f"{ATOM}author/{ATOM}name") or ""
    assert author.startswith(HOSTILE_SIGNATURE)
    content = entry.findtext(f"{ATOM}content") or ""
    fragment = strict_html(content, fragment=True)
    assert_no_active_markup(fragment)
    assert "<script>alert(1)</script>" in "".join(texts(fragment, "h2"))
    assert {a.get("href") for a in fragment.iter("a")} == {
        "https://ok.example/sti",
        "https://evil.example/",
    }


def test_only_http_urls_become_links(tmp_path: Path) -> None:
    channel = make_channel(tmp_path)
    message = sample_message(
        nb_body="a javascript:https://x.example/ b JAVASCRIPT://x.example/ c ftp://x.example/ "
        "d https://x.example/ok. e http://[::1/ f",
    )
    tree = strict_html(channel.render_page(message, [message], root=""))
    section = next(tree.iter("section"))
    # javascript:https://… links the https URL inside it, never the javascript: scheme.
    assert [a.get("href") for a in section.iter("a")] == [
        "https://x.example/",
        "https://x.example/ok",
    ]


async def test_times_are_shown_in_the_configured_zone(tmp_path: Path) -> None:
    summer = sample_message(published_at=datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    oslo = make_channel(tmp_path / "oslo")
    newfoundland = make_channel(tmp_path / "nl", timezone="America/St_Johns")
    for channel in (oslo, newfoundland):
        assert (await channel.deliver(summer, idempotency_key="k")).ok
    oslo_page = (tmp_path / "oslo" / "index.html").read_text(encoding="utf-8")
    assert '<time datetime="2026-07-01T12:00:00+02:00">01.07.2026 kl. 12:00</time>' in oslo_page
    nl_page = (tmp_path / "nl" / "index.html").read_text(encoding="utf-8")
    assert '<time datetime="2026-07-01T07:30:00-02:30">01.07.2026 kl. 07:30</time>' in nl_page
    # The feed is for machines: UTC.
    feed = ET.parse(tmp_path / "nl" / "feed.atom").getroot()
    assert feed.findtext(f"{ATOM}updated") == "2026-07-01T10:00:00+00:00"
    with pytest.raises(ChannelConfigError, match="not an IANA time zone"):
        make_channel(tmp_path, timezone="Europe/Osloo")
