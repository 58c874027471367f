"""Fake platforms for channel tests: Mastodon, the Facebook Graph API, webhooks, a CMS.

:class:`FakePlatform` is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``) on
127.0.0.1 and a free port, in a background thread. It implements the subset of each API
the adapters use, as the real services behave:

- Mastodon: ``POST /api/v1/statuses`` (bearer token; the same ``Idempotency-Key`` from
  the same account returns the status already created instead of posting again, for an
  hour: :meth:`FakePlatform.expire_idempotency_keys` plays the hour passing; 500
  characters at most), ``PUT /api/v1/statuses/:id`` (edit),
  ``GET /api/v1/accounts/verify_credentials`` and ``GET /api/v1/accounts/:id/statuses``
  (newest first, ``limit`` up to 40, ``max_id``, ``exclude_reblogs``; ``content`` is
  HTML as Mastodon renders plain text);
- Graph API under ``/graph``: ``POST /{page_id}/feed`` (``message``, ``link``,
  ``access_token``; no idempotency), ``POST /{post_id}`` (edit, ``{"success": true}``)
  and ``GET /{page_id}/posts`` (``fields``, ``limit``, ``after`` cursor; newest first;
  ``paging.cursors`` and ``paging.next`` while there is more; the token as
  ``Authorization: Bearer`` or ``access_token``); a bad token is HTTP 400 with an
  ``OAuthException`` as Facebook answers;
- ``POST /hook/...``: a generic webhook receiver (SMS gateway), deduplicating on
  ``Idempotency-Key`` unless told not to, as the gateway contract requires;
- ``POST /cms``: a CMS notification endpoint (204).

For replies, hides and the intake (issues 11.1, 11.4):

- Mastodon: ``POST /api/v1/statuses`` takes ``in_reply_to_id`` (it must name a status
  the instance knows: 404 otherwise) and the statuses list shows it;
  ``GET /api/v1/notifications`` (``types[]``, ``since_id``, ``max_id``, ``limit`` up
  to 40; newest first; with ``since_id`` the newest page above it, as Mastodon pages);
  :meth:`FakePlatform.mention` plays someone mentioning the account;
- Graph API: ``POST /{comment_id}/comments`` (a reply in the thread: ``{"id"}``),
  ``GET /{comment_id}/comments`` (the thread, newest first), ``POST /{comment_id}`` with
  ``is_hidden=true`` (``{"success": true}``; nothing is ever deleted),
  ``POST /{page_id}/messages`` (the Send API: JSON ``recipient.id``, ``messaging_type``,
  ``message.text``, the token as ``Authorization: Bearer``; answers ``recipient_id`` and
  ``message_id``) and ``GET /{page_id}/conversations?platform=messenger&user_id=PSID``;
  :meth:`FakePlatform.comment` and :meth:`FakePlatform.messenger_user` play visitors;
- :func:`krise_webhook_request` and :func:`meta_webhook_request` build what an SMS
  gateway and Meta send to the bridge's intake, signed as each documents.

Every request is recorded before anything else happens. The server can be told to
answer the next requests with a status (``fail_next(503, retry_after=7)``), also after
doing the work (``fail_next(500, after_effect=True)``: the post exists, the answer says
otherwise), to hang until stopped (timeouts), to wait a while before answering
(``delay``), or to do the work of a posting request and then hold the answer until
:meth:`FakePlatform.release` (``hold_after_effect``): the window in which a client that
dies has posted without knowing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from krise_tui.channels.base import ApprovedMessage, MessageStatus, MessageVariant

MASTODON_TOKEN = "mastodon-test-token"
GRAPH_TOKEN = "graph-test-token"
PAGE_ID = "104123456789"
ACCOUNT_ID = "109000000000000001"
"""The Mastodon account the token belongs to."""
PAGE_ACCT = "kommunen"
"""The account's ``acct``."""
HANG_LIMIT = 30.0
"""Seconds a hanging request waits at most (stop() releases it at once)."""


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fields: dict[str, Any] = field(default_factory=dict)
    """The JSON object or the form fields (first value of each) of the body."""

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def query(self) -> dict[str, str]:
        """The query parameters (first value of each)."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}


@dataclass
class _Scripted:
    status: int
    retry_after: str | None
    body: dict[str, Any]
    after_effect: bool = False


class FakePlatform:
    """A fake Mastodon instance, Graph API, webhook receiver and CMS in one server."""

    def __init__(self, *, webhook_dedupe: bool = True) -> None:
        self.requests: list[Recorded] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.hooks: dict[str, dict[str, Any]] = {}
        self.notifications: dict[str, dict[str, Any]] = {}
        """Mastodon notifications by id (mentions of the account)."""
        self.comments: dict[str, dict[str, Any]] = {}
        """Graph comments by id: visitors' and the page's replies."""
        self.messages: list[dict[str, Any]] = []
        """Messenger messages, both ways, oldest first."""
        self.webhook_dedupe = webhook_dedupe
        self.delay = 0.0
        self.hang = False
        self.hold_after_effect = False
        """Hold the answer of each posting request (after the post exists) until
        :meth:`release`."""
        self.held = 0
        """Posting requests whose answer is (or was) held."""
        self._mastodon_keys: dict[tuple[str, str], str] = {}
        self._held_release = threading.Event()
        self._hook_keys: dict[str, str] = {}
        self._scripted: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._counter = 0
        platform = self

        class Handler(_Handler):
            owner = platform

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakePlatform:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging and held requests and stop the server."""
        self._release.set()
        self._held_release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
        after_effect: bool = False,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``);
        with ``after_effect`` each request is carried out first (the post exists)."""
        phrase = HTTPStatus(status).phrase
        for _ in range(times):
            self._scripted.append(
                _Scripted(status, retry_after, body or {"error": phrase}, after_effect)
            )

    def release(self) -> None:
        """Let held answers go (their clients may be gone)."""
        self._held_release.set()

    def expire_idempotency_keys(self) -> None:
        """Forget Mastodon Idempotency-Keys, as Mastodon does after an hour."""
        with self._lock:
            self._mastodon_keys.clear()

    def posts_created(self) -> int:
        """Posting requests that created something (statuses, page posts, SMS)."""
        return len(self.statuses) + len(self.posts) + len(self.hooks)

    def mention(
        self, acct: str, text: str, *, visibility: str = "public", created_at: str | None = None
    ) -> dict[str, Any]:
        """Someone (``acct``) mentions the account: a status and a notification."""
        with self._lock:
            status_id = str(110_000_000 + self._next_id())
            status = {
                "id": status_id,
                "created_at": created_at or _mastodon_now(),
                "content": _mastodon_html(f"@{PAGE_ACCT} {text}"),
                "text": f"@{PAGE_ACCT} {text}",
                "language": "nb",
                "visibility": visibility,
                "in_reply_to_id": None,
                "url": f"{self.url}/@{acct}/{status_id}",
                "account": {"id": f"acc-{acct}", "acct": acct, "username": acct.split("@")[0]},
                "edited_at": None,
                "edits": 0,
                "ours": False,
            }
            self.statuses[status_id] = status
            notification_id = str(300_000 + self._next_id())
            self.notifications[notification_id] = {
                "id": notification_id,
                "type": "mention",
                "created_at": status["created_at"],
                "account": status["account"],
                "status": _mastodon_public(status),
            }
            return status

    def replies_to(self, status_id: str) -> list[dict[str, Any]]:
        """The account's statuses that answer ``status_id``."""
        return [
            s for s in self.statuses.values() if s.get("ours") and s["in_reply_to_id"] == status_id
        ]

    def comment(self, text: str, *, name: str = "Kari Nordmann", user: str = "7001") -> str:
        """A visitor comments on the page's newest post (or a post of its own): its id."""
        with self._lock:
            post_id = next(reversed(self.posts), f"{PAGE_ID}_1")
            comment_id = f"{post_id.split('_')[-1]}_{5000 + self._next_id()}"
            self.comments[comment_id] = {
                "id": comment_id,
                "parent": post_id,
                "message": text,
                "from": {"id": user, "name": name},
                "is_hidden": False,
                "seq": self._counter,
            }
            return comment_id

    def thread(self, comment_id: str) -> list[dict[str, Any]]:
        """The replies to ``comment_id``."""
        return [c for c in self.comments.values() if c["parent"] == comment_id]

    def messenger_user(self, psid: str, text: str) -> str:
        """A user writes to the page on Messenger: the message id."""
        with self._lock:
            mid = f"m_{psid}_{self._next_id()}"
            self.messages.append({"id": mid, "psid": psid, "from": psid, "message": text})
            return mid

    def messages_to(self, psid: str) -> list[dict[str, Any]]:
        """The page's messages to ``psid``."""
        return [m for m in self.messages if m["psid"] == psid and m["from"] == PAGE_ID]

    def requests_to(self, method: str, prefix: str) -> list[Recorded]:
        """The recorded requests with ``method`` whose path starts with ``prefix``."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    # ------------------------------------------------------------------ routes

    def handle(self, request: Recorded) -> tuple[int, dict[str, str], Any]:
        """Route one request: (status, extra headers, JSON body or None)."""
        with self._lock:
            self.requests.append(request)
        if self.delay:
            self._release.wait(self.delay)
        if self.hang:
            self._release.wait(HANG_LIMIT)
        with self._lock:
            scripted = self._scripted.popleft() if self._scripted else None
            if scripted is not None and not scripted.after_effect:
                return _scripted_answer(scripted)
            answer = self._route(request)
            if scripted is not None:
                return _scripted_answer(scripted)
            hold = self.hold_after_effect and request.method in ("POST", "PUT")
            if hold:
                self.held += 1
        if hold:
            self._held_release.wait(HANG_LIMIT)
        return answer

    def _route(self, request: Recorded) -> tuple[int, dict[str, str], Any]:
        path = request.path.split("?", 1)[0]
        if path == "/api/v1/notifications":
            return self._mastodon_notifications(request)
        if path.startswith("/api/v1/statuses"):
            return self._mastodon(request, path)
        if path.startswith("/api/v1/accounts/"):
            return self._mastodon_accounts(request, path.removeprefix("/api/v1/accounts/"))
        if path.startswith("/graph/"):
            return self._graph(request, path.removeprefix("/graph/"))
        if path.startswith("/hook"):
            return self._hook(request)
        if path == "/cms":
            return 204, {}, None
        return 404, {}, {"error": "Not found"}

    def _mastodon(
        self, request: Recorded, path: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        auth = request.header("Authorization") or ""
        if auth != f"Bearer {MASTODON_TOKEN}":
            return 401, {}, {"error": "The access token is invalid"}
        text = str(request.fields.get("status", ""))
        if not text:
            return 422, {}, {"error": "Validation failed: Text can't be blank"}
        if len(text) > 500:
            return 422, {}, {"error": "Validation failed: Text character limit of 500 exceeded"}
        if request.method == "POST" and path == "/api/v1/statuses":
            key = request.header("Idempotency-Key")
            if key is not None and (auth, key) in self._mastodon_keys:
                return 200, {}, self.statuses[self._mastodon_keys[(auth, key)]]
            in_reply_to = request.fields.get("in_reply_to_id")
            if in_reply_to is not None and str(in_reply_to) not in self.statuses:
                return 404, {}, {"error": "Record not found"}
            status_id = str(110_000_000 + self._next_id())
            self.statuses[status_id] = {
                "id": status_id,
                "created_at": _mastodon_now(),
                "content": _mastodon_html(text),
                "text": text,
                "language": request.fields.get("language"),
                "visibility": request.fields.get("visibility", "public"),
                "in_reply_to_id": None if in_reply_to is None else str(in_reply_to),
                "edited_at": None,
                "edits": 0,
                "ours": True,
            }
            if key is not None:
                self._mastodon_keys[(auth, key)] = status_id
            return 200, {}, self.statuses[status_id]
        status_id = path.removeprefix("/api/v1/statuses/")
        if request.method == "PUT" and status_id in self.statuses:
            status = self.statuses[status_id]
            status["text"] = text
            status["content"] = _mastodon_html(text)
            status["language"] = request.fields.get("language", status["language"])
            status["edited_at"] = datetime.now(UTC).isoformat()
            status["edits"] += 1
            return 200, {}, status
        return 404, {}, {"error": "Record not found"}

    def _mastodon_accounts(
        self, request: Recorded, path: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | list[Any] | None]:
        if request.header("Authorization") != f"Bearer {MASTODON_TOKEN}":
            return 401, {}, {"error": "The access token is invalid"}
        if request.method == "GET" and path == "verify_credentials":
            return 200, {}, {"id": ACCOUNT_ID, "username": "kommunen", "acct": "kommunen"}
        if request.method == "GET" and path == f"{ACCOUNT_ID}/statuses":
            query = request.query()
            limit = min(int(query.get("limit", "20")), 40)
            ours = [s for s in self.statuses.values() if s.get("ours", True)]
            newest_first = sorted(ours, key=lambda s: int(s["id"]), reverse=True)
            if "max_id" in query:
                newest_first = [s for s in newest_first if int(s["id"]) < int(query["max_id"])]
            page = [_mastodon_public(status) for status in newest_first[:limit]]
            return 200, {}, page
        return 404, {}, {"error": "Record not found"}

    def _mastodon_notifications(
        self, request: Recorded
    ) -> tuple[int, dict[str, str], list[Any] | dict[str, Any]]:
        if request.header("Authorization") != f"Bearer {MASTODON_TOKEN}":
            return 401, {}, {"error": "The access token is invalid"}
        query = parse_qs(urlsplit(request.path).query)
        types = query.get("types[]", [])
        limit = min(int(query.get("limit", ["40"])[0]), 40)
        items = sorted(self.notifications.values(), key=lambda n: int(n["id"]), reverse=True)
        if types:
            items = [n for n in items if n["type"] in types]
        if "max_id" in query:
            items = [n for n in items if int(n["id"]) < int(query["max_id"][0])]
        if "since_id" in query:
            # The newest page above since_id (a gap below it is for max_id paging).
            items = [n for n in items if int(n["id"]) > int(query["since_id"][0])]
        return 200, {}, items[:limit]

    def _graph(
        self, request: Recorded, path: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        if request.method == "GET":
            return self._graph_read(request, path)
        if request.method == "POST" and path == f"{PAGE_ID}/messages":
            return self._graph_send(request)
        if request.fields.get("access_token") != GRAPH_TOKEN:
            error = {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException",
                "code": 190,
            }
            return 400, {}, {"error": error}
        if request.method == "POST" and "is_hidden" in request.fields:
            comment = self.comments.get(path)
            if comment is None:
                error = {"message": "Unsupported post request.", "type": "GraphMethodException"}
                return 400, {}, {"error": {**error, "code": 100}}
            comment["is_hidden"] = request.fields["is_hidden"] == "true"
            return 200, {}, {"success": True}
        message = request.fields.get("message")
        if not message:
            error = {"message": "(#100) Missing message or attachment", "code": 100}
            return 400, {}, {"error": error}
        if request.method == "POST" and path.endswith("/comments"):
            parent = path.removesuffix("/comments")
            if parent not in self.comments and parent not in self.posts:
                error = {"message": "Unsupported post request.", "type": "GraphMethodException"}
                return 400, {}, {"error": {**error, "code": 100}}
            comment_id = f"{parent.split('_')[-1]}_{7000 + self._next_id()}"
            self.comments[comment_id] = {
                "id": comment_id,
                "parent": parent,
                "message": message,
                "from": {"id": PAGE_ID, "name": "Hattfjelldal kommune"},
                "is_hidden": False,
                "seq": self._counter,
            }
            return 200, {}, {"id": comment_id}
        if request.method == "POST" and path == f"{PAGE_ID}/feed":
            seq = self._next_id()
            post_id = f"{PAGE_ID}_{900 + seq}"
            self.posts[post_id] = {
                "id": post_id,
                "seq": seq,
                "message": message,
                "link": request.fields.get("link"),
                "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "edits": 0,
            }
            return 200, {}, {"id": post_id}
        if request.method == "POST" and path in self.posts:
            self.posts[path]["message"] = message
            self.posts[path]["edits"] += 1
            return 200, {}, {"success": True}
        error = {"message": "Unsupported post request.", "type": "GraphMethodException"}
        return 400, {}, {"error": {**error, "code": 100}}

    def _graph_read(
        self, request: Recorded, path: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        query = request.query()
        token = query.get("access_token") or (request.header("Authorization") or "")
        if token.removeprefix("Bearer ") != GRAPH_TOKEN:
            error = {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException",
                "code": 190,
            }
            return 400, {}, {"error": error}
        if path.endswith("/comments") and path.removesuffix("/comments") in self.comments:
            thread = sorted(
                self.thread(path.removesuffix("/comments")), key=lambda c: c["seq"], reverse=True
            )
            data = [{k: c[k] for k in ("id", "message", "from")} for c in thread]
            return 200, {}, {"data": data}
        if path == f"{PAGE_ID}/conversations":
            psid = query.get("user_id", "")
            talk = [
                {"id": m["id"], "message": m["message"], "from": {"id": m["from"]}}
                for m in reversed(self.messages)
                if m["psid"] == psid
            ]
            return 200, {}, {"data": [{"id": f"t_{psid}", "messages": {"data": talk}}]}
        if path != f"{PAGE_ID}/posts":
            error = {"message": "Unsupported get request.", "type": "GraphMethodException"}
            return 400, {}, {"error": {**error, "code": 100}}
        fields = set(query.get("fields", "id").split(",")) | {"id"}
        limit = min(int(query.get("limit", "25")), 100)
        start = int(query.get("after", "0"))
        # Newest first, as the Graph API lists a page's posts.
        newest_first = sorted(self.posts.values(), key=lambda p: p["seq"], reverse=True)
        page = newest_first[start : start + limit]
        data = [{key: post[key] for key in sorted(fields) if key in post} for post in page]
        body: dict[str, Any] = {"data": data}
        if page:
            paging: dict[str, Any] = {
                "cursors": {"before": str(start), "after": str(start + len(page))}
            }
            if start + len(page) < len(newest_first):
                paging["next"] = f"{self.url}/graph/{path}?after={start + len(page)}"
            body["paging"] = paging
        return 200, {}, body

    def _graph_send(self, request: Recorded) -> tuple[int, dict[str, str], dict[str, Any]]:
        """The Messenger Send API."""
        if request.header("Authorization") != f"Bearer {GRAPH_TOKEN}":
            error = {"message": "Invalid OAuth access token", "type": "OAuthException"}
            return 400, {}, {"error": {**error, "code": 190}}
        recipient = request.fields.get("recipient")
        message = request.fields.get("message")
        psid = recipient.get("id") if isinstance(recipient, dict) else None
        text = message.get("text") if isinstance(message, dict) else None
        if not any(m["psid"] == psid and m["from"] == psid for m in self.messages):
            error = {"message": "(#100) No matching user found", "code": 100}
            return 400, {}, {"error": {**error, "error_subcode": 2018001}}
        if not text or request.fields.get("messaging_type") != "RESPONSE":
            error = {"message": "(#100) Invalid parameter", "code": 100}
            return 400, {}, {"error": error}
        mid = f"m_page_{self._next_id()}"
        self.messages.append({"id": mid, "psid": psid, "from": PAGE_ID, "message": text})
        return 200, {}, {"recipient_id": psid, "message_id": mid}

    def _hook(self, request: Recorded) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        key = request.header("Idempotency-Key")
        if self.webhook_dedupe and key is not None and key in self._hook_keys:
            return 200, {}, {"id": self._hook_keys[key]}
        hook_id = f"sms-{self._next_id()}"
        self.hooks[hook_id] = {"key": key, "body": request.fields}
        if key is not None:
            self._hook_keys[key] = hook_id
        return 201, {}, {"id": hook_id}


class _Handler(BaseHTTPRequestHandler):
    owner: FakePlatform
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fields: dict[str, Any] = {}
        content_type = self.headers.get("Content-Type", "")
        if body and content_type.startswith("application/json"):
            loaded = json.loads(body)
            fields = loaded if isinstance(loaded, dict) else {"_": loaded}
        elif body and content_type.startswith("application/x-www-form-urlencoded"):
            fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        request = Recorded(self.command, self.path, dict(self.headers.items()), body, fields)
        status, headers, payload = self.owner.handle(request)
        data = json.dumps(payload).encode("utf-8") if payload is not None else b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()


def _scripted_answer(scripted: _Scripted) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
    return scripted.status, headers, scripted.body


_URL_RX = re.compile(r"https?://[^\s<]+")


def _mastodon_html(text: str) -> str:
    """Plain text as Mastodon renders it: paragraphs, ``<br />``, escaped, links."""

    def line(raw: str) -> str:
        escaped = html.escape(raw, quote=False)
        return _URL_RX.sub(
            lambda m: (
                f'<a href="{m.group(0)}" rel="nofollow noopener" target="_blank">{m.group(0)}</a>'
            ),
            escaped,
        )

    paragraphs = [p for p in text.split("\n\n") if p]
    return "".join(
        "<p>" + "<br />".join(line(raw) for raw in p.split("\n")) + "</p>" for p in paragraphs
    )


def _mastodon_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _mastodon_public(status: dict[str, Any]) -> dict[str, Any]:
    """A status as the API shows it (no source text: that is only for editing)."""
    keys = ("id", "created_at", "content", "language", "visibility", "edited_at")
    shown = {key: status[key] for key in keys}
    shown["in_reply_to_id"] = status.get("in_reply_to_id")
    for key in ("account", "url"):
        if key in status:
            shown[key] = status[key]
    return shown


# ---------------------------------------------------------------------- senders


def krise_webhook_request(
    secret: bytes, post: dict[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a signed krise webhook request (an SMS gateway's callback):
    ``X-Krise-Timestamp`` and ``X-Krise-Signature: sha256=HMAC(secret, ts + "." + body)``."""
    body = json.dumps(post, ensure_ascii=False).encode("utf-8")
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Krise-Timestamp": stamp,
        "X-Krise-Signature": f"sha256={digest}",
    }
    return body, headers


def meta_webhook_request(
    app_secret: bytes, payload: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a page webhook delivery as Meta sends it (``X-Hub-Signature-256``:
    HMAC-SHA256 of the raw body with the app secret)."""
    body = json.dumps(payload).encode("utf-8")
    digest = hmac.new(app_secret, body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def page_comment_event(
    comment_id: str,
    text: str,
    *,
    post_id: str = f"{PAGE_ID}_901",
    user: str = "7001",
    name: str = "Kari Nordmann",
) -> dict[str, Any]:
    """A ``feed`` change for a new comment, as Meta documents it."""
    return {
        "field": "feed",
        "value": {
            "from": {"id": user, "name": name},
            "post": {"status_type": "added_photos", "is_published": True, "id": post_id},
            "message": text,
            "post_id": post_id,
            "comment_id": comment_id,
            "created_time": int(time.time()),
            "item": "comment",
            "parent_id": post_id,
            "verb": "add",
        },
    }


def messenger_event(psid: str, mid: str, text: str, *, page: str = PAGE_ID) -> dict[str, Any]:
    """A Messenger ``messaging`` event, as Meta documents it."""
    return {
        "sender": {"id": psid},
        "recipient": {"id": page},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": text},
    }


def page_event(
    *, changes: Sequence[Any] = (), messaging: Sequence[Any] = (), page: str = PAGE_ID
) -> dict[str, Any]:
    """One page webhook body: ``{"object": "page", "entry": [...]}``."""
    entry: dict[str, Any] = {"id": page, "time": int(time.time())}
    if changes:
        entry["changes"] = list(changes)
    if messaging:
        entry["messaging"] = list(messaging)
    return {"object": "page", "entry": [entry]}


# ---------------------------------------------------------------------- messages

NB_BODY = (
    "Drikkevannet i Hattfjelldal sentrum kan være forurenset. Kok vannet i minst ett "
    "minutt før du drikker det.\n\nVi har satt opp vannpost ved rådhuset. Følg med på "
    "nettsiden vår for oppdateringer."
)
# The sma and en texts are test data with the letters that matter (ï å æ), not vetted
# translations.
SMA_BODY = (
    "Jïjnjedahkesne Aarborten tjïeltesne maahta nåajhtasovveme. Vaedtsieh tjaetsiem "
    "åtnoen åvtelen. Vuejnedh mijjen nedtesæjrojne."
)
EN_BODY = (
    "Drinking water in central Hattfjelldal may be contaminated. Boil water for at least "
    "one minute before drinking it."
)


@contextlib.contextmanager
def running(*, webhook_dedupe: bool = True) -> Iterator[FakePlatform]:
    """A started :class:`FakePlatform`, stopped afterwards."""
    platform = FakePlatform(webhook_dedupe=webhook_dedupe).start()
    try:
        yield platform
    finally:
        platform.stop()


def version_id_for(text: str) -> str:
    """A SHA-256 hex version id for test messages."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample_message(
    *,
    seed: str = "v1",
    status: MessageStatus = MessageStatus.PUBLISHED,
    supersedes: str | None = None,
    exercise: bool = False,
    published_at: datetime | None = None,
    nb_body: str = NB_BODY,
    headline: str = "Kok drikkevannet",
) -> ApprovedMessage:
    """An approved message in nb, sma and en, as the engine would hand it out."""
    return ApprovedMessage(
        version_id=version_id_for(seed),
        org_name="Hattfjelldal kommune",
        website_url="https://www.hattfjelldal.kommune.no/krise",
        variants=(
            MessageVariant(lang="nb", headline=headline, body=nb_body),
            MessageVariant(lang="sma", headline="Tjaetsievaarohke: vaedtsieh", body=SMA_BODY),
            MessageVariant(lang="en", headline="Boil drinking water", body=EN_BODY),
        ),
        signature="Kari Nordmann, kriseleder",
        published_at=published_at or datetime(2026, 11, 27, 13, 5, tzinfo=UTC),
        status=status,
        supersedes=supersedes,
        exercise=exercise,
    )
