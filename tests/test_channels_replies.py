"""Replies and hides (DOMAIN §12) by each adapter, against the fake platforms and a real
SMTP server: where the answer lands, that it lands once, and that a drill never reaches a
real platform. The website's questions-and-answers page is here too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from krise_tui.channels import create_channel
from krise_tui.channels.a11y import check_html
from krise_tui.channels.base import (
    EXERCISE_LABEL,
    HideRequest,
    PostRef,
    ReplyRequest,
    reply_marker,
)
from krise_tui.channels.email import EmailChannel
from krise_tui.channels.facebook import FacebookChannel
from krise_tui.channels.from_org import channel_from_def
from krise_tui.channels.mastodon import MastodonChannel
from krise_tui.channels.webhook import WebhookChannel
from krise_tui.channels.website import QaEntry, QaRequest, WebsiteChannel
from krise_tui.playbook.models import ChannelDef
from tests.fakes import (
    GRAPH_TOKEN,
    MASTODON_TOKEN,
    PAGE_ID,
    FakePlatform,
    running,
)
from tests.test_channels_email import Sink, free_port
from tests.test_channels_website import assert_no_active_markup, strict_html

LINK = "https://www.hattfjelldal.kommune.no/krise"
SIGNATURE = "Kari Nordmann, kriseleder"
ANSWER = (
    "Ja, vannet fra vannposten ved rådhuset er trygt å drikke. Ta med egen kanne; "
    "vannposten er åpen hele døgnet."
)


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_MASTODON", MASTODON_TOKEN)
    monkeypatch.setenv("KRISE_TEST_FACEBOOK", GRAPH_TOKEN)
    with running() as fake:
        yield fake


def reply_request(
    post_id: str,
    *,
    kind: str = "post",
    meta: dict[str, Any] | None = None,
    author: str | None = None,
    channel: str = "mastodon",
    answer: str = "a1",
    text: str = ANSWER,
    exercise: bool = False,
) -> ReplyRequest:
    return ReplyRequest(
        effect_id=f"reply-{answer}-{post_id}",
        channel=channel,
        idempotency_key=f"{answer}:{channel}:{post_id}",
        to=PostRef(post_id=post_id, author=author, kind=kind, meta=meta or {}),
        text=text,
        website_url=LINK,
        signature=SIGNATURE,
        exercise=exercise,
    )


# --------------------------------------------------------------------------- Mastodon


def mastodon(platform: FakePlatform, tmp_path: Path, **extra: Any) -> MastodonChannel:
    channel = create_channel(
        "mastodon",
        "mastodon",
        {
            "base_url": platform.url,
            "access_token": {"env": "KRISE_TEST_MASTODON"},
            "state_file": str(tmp_path / "mastodon.ledger.json"),
            **extra,
        },
    )
    assert isinstance(channel, MastodonChannel)
    return channel


def mention_ref(status: dict[str, Any]) -> dict[str, Any]:
    return {"status_id": status["id"], "acct": "ola@example.social", "visibility": "direct"}


async def test_mastodon_reply_mentions_the_asker_in_their_thread_with_their_visibility(
    platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Er vannet trygt?", visibility="direct")
    request = reply_request(status["id"], meta=mention_ref(status), author="@ola@example.social")
    result = await mastodon(platform, tmp_path).reply(request)
    assert result.ok, result.reason
    [reply] = platform.replies_to(status["id"])
    assert reply["id"] == result.remote_id
    assert reply["text"].startswith(f"@ola@example.social {ANSWER}")
    assert reply["text"].endswith(f"{reply_marker(request.idempotency_key)}\n{LINK}\n{SIGNATURE}")
    assert reply["visibility"] == "direct"  # a direct question is never answered in public
    [sent] = platform.requests_to("POST", "/api/v1/statuses")
    assert sent.header("Idempotency-Key") == request.idempotency_key
    assert sent.fields["in_reply_to_id"] == status["id"]


async def test_mastodon_reply_is_sent_once_and_found_again_past_the_key_window(
    platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Er vannet trygt?")
    request = reply_request(status["id"], meta=mention_ref(status))
    # The instance takes the reply, then answers 500: the outcome is unknown.
    platform.fail_next(500, after_effect=True)
    channel = mastodon(platform, tmp_path, idempotency_window=0)
    first = await channel.reply(request)
    assert not first.ok and first.uncertain
    platform.expire_idempotency_keys()
    again = await channel.reply(request)
    assert again.ok and again.existing
    assert again.reason is not None and "already answered (found by marker" in again.reason
    assert len(platform.replies_to(status["id"])) == 1
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 1
    # A third time: straight from the ledger, nothing asked.
    before = len(platform.requests)
    third = await channel.reply(request)
    assert third.ok and third.existing and len(platform.requests) == before


async def test_mastodon_reply_without_an_author_is_refused_permanently(
    platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Hei")
    result = await mastodon(platform, tmp_path).reply(reply_request(status["id"]))
    assert not result.ok and result.permanent
    assert "no author to answer" in (result.reason or "")
    assert platform.replies_to(status["id"]) == []


async def test_a_drill_reply_never_reaches_a_real_platform(
    platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Øvelse?")
    request = reply_request(status["id"], meta=mention_ref(status), exercise=True)
    refused = await mastodon(platform, tmp_path).reply(request)
    assert not refused.ok and refused.permanent
    assert refused.reason is not None and refused.reason.startswith(f"{EXERCISE_LABEL}:")
    assert "not marked exercise: true" in refused.reason
    assert platform.requests_to("POST", "/api/v1/statuses") == []
    # A channel the org file marks as a drill sandbox takes it, labelled.
    sandbox = mastodon(platform, tmp_path / "sandbox", exercise_endpoint=True)
    result = await sandbox.reply(request)
    assert result.ok, result.reason
    [reply] = platform.replies_to(status["id"])
    assert reply["text"].startswith(f"{EXERCISE_LABEL}: @ola@example.social ")


def test_the_org_files_exercise_flag_reaches_the_adapter(
    platform: FakePlatform, tmp_path: Path
) -> None:
    for flag in (False, True):
        defn = ChannelDef.model_validate(
            {
                "id": "mastodon",
                "kind": "mastodon",
                "endpoint": platform.url,
                "credentials": {"env": "KRISE_TEST_MASTODON"},
                "exercise": flag,
            }
        )
        channel = channel_from_def(defn, state_dir=tmp_path, website_url=LINK)
        assert isinstance(channel, MastodonChannel)
        assert channel.config.exercise_endpoint is flag


# --------------------------------------------------------------------------- Facebook


def facebook(platform: FakePlatform, tmp_path: Path) -> FacebookChannel:
    channel = create_channel(
        "facebook",
        "facebook",
        {
            "page_id": PAGE_ID,
            "graph_url": f"{platform.url}/graph",
            "access_token": {"env": "KRISE_TEST_FACEBOOK"},
            "state_file": str(tmp_path / "facebook.ledger.json"),
        },
    )
    assert isinstance(channel, FacebookChannel)
    return channel


async def test_facebook_answers_a_comment_in_its_thread_once(
    platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Når kommer vannet tilbake?")
    request = reply_request(
        comment, kind="comment", meta={"comment_id": comment}, channel="facebook"
    )
    platform.fail_next(500, after_effect=True)  # the reply exists, the answer says no
    channel = facebook(platform, tmp_path)
    first = await channel.reply(request)
    assert not first.ok and first.uncertain
    second = await channel.reply(request)
    assert second.ok and second.existing, second.reason
    [reply] = platform.thread(comment)
    assert second.remote_id == reply["id"]
    assert reply["message"].startswith(ANSWER)
    assert reply_marker(request.idempotency_key) in reply["message"]
    assert len(platform.requests_to("POST", f"/graph/{comment}/comments")) == 1
    assert platform.requests_to("GET", f"/graph/{comment}/comments")  # it looked first


async def test_facebook_answers_a_messenger_message_with_the_send_api(
    platform: FakePlatform, tmp_path: Path
) -> None:
    mid = platform.messenger_user("psid-42", "Hvor er vannposten?")
    request = reply_request(
        mid, kind="message", meta={"psid": "psid-42", "mid": mid}, channel="facebook"
    )
    channel = facebook(platform, tmp_path)
    result = await channel.reply(request)
    assert result.ok, result.reason
    [sent] = platform.messages_to("psid-42")
    assert result.remote_id == sent["id"] and sent["message"].startswith(ANSWER)
    [call] = platform.requests_to("POST", f"/graph/{PAGE_ID}/messages")
    assert call.fields["recipient"] == {"id": "psid-42"}
    assert call.fields["messaging_type"] == "RESPONSE"
    assert call.header("Authorization") == f"Bearer {GRAPH_TOKEN}"
    assert GRAPH_TOKEN not in call.path  # never in the URL
    # The ledger was lost (another machine): the conversation is read, nothing sent.
    elsewhere = facebook(platform, tmp_path / "elsewhere")
    again = await elsewhere.reply(request, recheck=True)
    assert again.ok and again.existing and again.remote_id == sent["id"]
    assert len(platform.messages_to("psid-42")) == 1


async def test_facebook_hides_a_comment_and_never_deletes_it(
    platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Personangrep på en navngitt ansatt")
    request = HideRequest(
        effect_id="hide-1", channel="facebook", post_id=comment, reason="personangrep"
    )
    channel = facebook(platform, tmp_path)
    result = await channel.hide(request)
    assert result.ok and result.remote_id == comment
    assert platform.comments[comment]["is_hidden"] is True  # still there, hidden
    [call] = platform.requests_to("POST", f"/graph/{comment}")
    assert call.fields["is_hidden"] == "true"
    assert all(r.method in ("POST", "GET") for r in platform.requests)  # no DELETE
    again = await channel.hide(request)
    assert again.ok and again.existing and len(platform.requests) == 1


async def test_facebook_reply_to_a_message_without_a_sender_is_refused(
    platform: FakePlatform, tmp_path: Path
) -> None:
    request = reply_request("m_1", kind="message", channel="facebook")
    result = await facebook(platform, tmp_path).reply(request)
    assert not result.ok and result.permanent and "meta.psid" in (result.reason or "")
    assert platform.requests == []


# --------------------------------------------------------------------------- SMS


def sms(platform: FakePlatform, tmp_path: Path, **options: Any) -> WebhookChannel:
    defn = ChannelDef.model_validate(
        {
            "id": "sms",
            "kind": "sms",
            "endpoint": f"{platform.url}/hook/sms",
            "options": {"sender": "Kommunen", **options},
        }
    )
    channel = channel_from_def(defn, state_dir=tmp_path, website_url=LINK)
    assert isinstance(channel, WebhookChannel)
    return channel


async def test_sms_reply_goes_to_the_number_that_asked_once(
    platform: FakePlatform, tmp_path: Path
) -> None:
    request = reply_request(
        "gw-17", kind="sms", meta={"from": "+4791234567"}, channel="sms", author="+4791234567"
    )
    platform.fail_next(500, after_effect=True)
    channel = sms(platform, tmp_path)
    first = await channel.reply(request)
    assert not first.ok and first.uncertain
    second = await channel.reply(request)
    assert second.ok and second.reason is not None
    assert "same Idempotency-Key" in second.reason
    [hook] = platform.hooks.values()  # the gateway de-duplicated the repeat
    assert hook["body"] == {
        "to": "+4791234567",
        "text": f"{ANSWER}\n\n{LINK}\n{SIGNATURE}",
        "from": "Kommunen",
    }
    sends = platform.requests_to("POST", "/hook/sms")
    assert [r.header("Idempotency-Key") for r in sends] == [request.idempotency_key] * 2
    third = await channel.reply(request)
    assert third.ok and third.existing and len(platform.requests_to("POST", "/hook/sms")) == 2


async def test_sms_reply_needs_the_senders_number(platform: FakePlatform, tmp_path: Path) -> None:
    result = await sms(platform, tmp_path).reply(reply_request("gw-1", kind="sms", channel="sms"))
    assert not result.ok and result.permanent and "meta.from" in (result.reason or "")
    assert platform.requests == []


async def test_a_webhook_without_reply_body_cannot_reply(
    platform: FakePlatform, tmp_path: Path
) -> None:
    defn = ChannelDef.model_validate(
        {"id": "intranett", "kind": "webhook", "endpoint": f"{platform.url}/hook/intranett"}
    )
    channel = channel_from_def(defn, state_dir=tmp_path, website_url=LINK)
    assert isinstance(channel, WebhookChannel)
    request = reply_request("f-1", kind="form", meta={"from": "x"}, channel="intranett")
    result = await channel.reply(request)
    assert not result.ok and result.permanent and "no reply_body" in (result.reason or "")
    assert platform.requests == []


# --------------------------------------------------------------------------- e-mail


async def test_email_reply_threads_to_the_askers_message(tmp_path: Path) -> None:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        channel = create_channel(
            "email",
            "epost",
            {
                "host": "127.0.0.1",
                "port": controller.port,
                "from_address": "postmottak@hattfjelldal.kommune.no",
                "from_name": "Hattfjelldal kommune",
                "to": ["beredskap@hattfjelldal.kommune.no"],
                "starttls": False,
                "state_file": str(tmp_path / "epost.ledger.json"),
            },
        )
        assert isinstance(channel, EmailChannel)
        request = reply_request(
            "mail-1",
            kind="email",
            channel="epost",
            meta={
                "email": "ola@example.no",
                "message_id": "<spm-1@example.no>",
                "subject": "Drikkevann i sentrum",
            },
        )
        result = await channel.reply(request)
        assert result.ok, result.reason
        again = await channel.reply(request)
        assert again.ok and again.existing
        [envelope] = sink.envelopes
        assert envelope.rcpt_tos == ["ola@example.no"]
        [mail] = sink.messages()
        assert mail["Subject"] == "Re: Drikkevann i sentrum"
        assert mail["In-Reply-To"] == "<spm-1@example.no>"
        assert mail["References"] == "<spm-1@example.no>"
        assert mail["Message-ID"] == result.remote_id
        body = mail.get_content().replace("\r\n", "\n")  # SMTP line ends
        assert body.startswith(ANSWER) and body.rstrip().endswith(f"{LINK}\n{SIGNATURE}")
    finally:
        controller.stop()


# --------------------------------------------------------------------------- website Q&A

BASE_URL = "https://www.hattfjelldal.kommune.no/krise/"


def website(directory: Path, **extra: Any) -> WebsiteChannel:
    channel = create_channel(
        "website", "nettside", {"directory": str(directory), "base_url": BASE_URL, **extra}
    )
    assert isinstance(channel, WebsiteChannel)
    return channel


def qa_request(batch: str, *, revision: int = 1, **entry: Any) -> QaRequest:
    fields: dict[str, Any] = {
        "batch_id": batch,
        "revision": revision,
        "question": "Kan vi drikke vannet fra springen?",
        "answer": "Nei. Kok vannet i minst ett minutt.\n\nSe https://www.hattfjelldal.kommune.no",
        "answered_at": datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        "signature": "Kari Nordmann, kriseleder",
        **entry,
    }
    return QaRequest(
        effect_id=f"qa-{batch}-{revision}",
        channel="nettside",
        idempotency_key=f"ans-{batch}:{revision}:nettside",
        org_name="Hattfjelldal kommune",
        entry=QaEntry(**fields),
    )


async def test_the_qa_page_lists_answered_batches_accessibly(tmp_path: Path) -> None:
    channel = website(tmp_path)
    first = await channel.publish_qa(qa_request("b1"))
    assert first.ok and first.remote_id == f"{BASE_URL}qa.html#q-b1"
    later = qa_request(
        "b2",
        question='Gjelder det <script>alert("x")</script> Susendal?',
        answer="Ja, hele kommunen.",
        answered_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
        lang="nb",
    )
    assert (await channel.publish_qa(later)).ok
    sami = qa_request(
        "b3",
        question="Maahta tjaetsiem jovkedh?",
        answer="Ij. Vaedtsieh tjaetsiem.",
        answered_at=datetime(2026, 11, 27, 13, 0, tzinfo=UTC),
        lang="sma",
    )
    assert (await channel.publish_qa(sami)).ok
    source = (tmp_path / "qa.html").read_text(encoding="utf-8")
    assert check_html(source) == []
    tree = strict_html(source)
    assert_no_active_markup(tree)
    articles = list(tree.iter("article"))
    assert [a.get("id") for a in articles] == ["q-b2", "q-b1", "q-b3"]  # newest first
    assert articles[2].get("lang") == "sma" and articles[0].get("lang") is None
    headings = ["".join(h.itertext()) for h in tree.iter("h2")]
    assert headings[0] == 'Gjelder det <script>alert("x")</script> Susendal?'  # text, not markup
    assert "<script>" not in source
    assert '<time datetime="2026-11-27T16:00:00+01:00">' in source  # Oslo time


async def test_a_newer_revision_replaces_and_withdrawn_leaves_the_page(tmp_path: Path) -> None:
    channel = website(tmp_path)
    assert (await channel.publish_qa(qa_request("b1"))).ok
    amended = qa_request("b1", revision=2, answer="Nå er vannet trygt igjen.")
    assert (await channel.publish_qa(amended)).ok
    page = (tmp_path / "qa.html").read_text(encoding="utf-8")
    assert "Nå er vannet trygt igjen." in page and "Kok vannet" not in page
    assert "Svaret er oppdatert" in page
    stale = await channel.publish_qa(qa_request("b1"))  # a late retry of revision 1
    assert stale.ok and stale.existing and "revision 2" in (stale.reason or "")
    assert (tmp_path / "qa.html").read_text(encoding="utf-8") == page
    conflict = await channel.publish_qa(qa_request("b1", revision=2, answer="Annet svar."))
    assert not conflict.ok and conflict.permanent
    withdrawn = qa_request("b1", revision=3, withdrawn=True)
    assert (await channel.publish_qa(withdrawn)).ok
    page = (tmp_path / "qa.html").read_text(encoding="utf-8")
    assert 'id="q-b1"' not in page and "Ingen spørsmål er besvart ennå." in page
    assert (tmp_path / "qa" / "b1.json").exists()  # the record stays


async def test_the_index_links_to_the_qa_page_once_it_exists(tmp_path: Path) -> None:
    from krise_tui.channels import idempotency_key
    from tests.fakes import sample_message

    channel = website(tmp_path)
    message = sample_message()
    assert (await channel.deliver(message, idempotency_key=idempotency_key(message, "n"))).ok
    assert 'href="qa.html"' not in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert (await channel.publish_qa(qa_request("b1"))).ok
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="qa.html">Spørsmål og svar</a>', index)
    assert check_html(index) == []


async def test_an_exercise_answer_stays_off_the_real_website(tmp_path: Path) -> None:
    refused = await website(tmp_path).publish_qa(qa_request("b1", exercise=True))
    assert not refused.ok and refused.permanent
    assert not (tmp_path / "qa.html").exists()
    drill = website(tmp_path / "drill", exercise_endpoint=True)
    assert (await drill.publish_qa(qa_request("b1", exercise=True))).ok
    page = (tmp_path / "drill" / "qa.html").read_text(encoding="utf-8")
    assert f"{EXERCISE_LABEL}: Kan vi drikke" in page
