"""Fake platforms for channel tests: Mastodon, the Facebook Graph API, webhooks, a CMS.

:class:`FakePlatform` is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``) on
127.0.0.1 and a free port, in a background thread. It implements the subset of each API
the adapters use, as the real services behave:

- Mastodon: ``POST /api/v1/statuses`` (bearer token; the same ``Idempotency-Key`` from
  the same account returns the status already created instead of posting again; 500
  characters at most) and ``PUT /api/v1/statuses/:id`` (edit);
- Graph API under ``/graph``: ``POST /{page_id}/feed`` (``message``, ``link``,
  ``access_token``; no idempotency) and ``POST /{post_id}`` (edit, ``{"success": true}``);
  a bad token is HTTP 400 with an ``OAuthException`` as Facebook answers;
- ``POST /hook/...``: a generic webhook receiver (SMS gateway), deduplicating on
  ``Idempotency-Key`` unless told not to;
- ``POST /cms``: a CMS notification endpoint (204).

Every request is recorded before anything else happens. The server can be told to
answer the next requests with a status (``fail_next(503, retry_after=7)``), to hang
until stopped (timeouts), or to wait a while before answering (``delay``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from krise_tui.channels.base import ApprovedMessage, MessageStatus, MessageVariant

MASTODON_TOKEN = "mastodon-test-token"
GRAPH_TOKEN = "graph-test-token"
PAGE_ID = "104123456789"
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


@dataclass
class _Scripted:
    status: int
    retry_after: str | None
    body: dict[str, Any]


class FakePlatform:
    """A fake Mastodon instance, Graph API, webhook receiver and CMS in one server."""

    def __init__(self, *, webhook_dedupe: bool = True) -> None:
        self.requests: list[Recorded] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.hooks: dict[str, dict[str, Any]] = {}
        self.webhook_dedupe = webhook_dedupe
        self.delay = 0.0
        self.hang = False
        self._mastodon_keys: dict[tuple[str, str], str] = {}
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
        """Release hanging requests and stop the server."""
        self._release.set()
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
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``)."""
        phrase = HTTPStatus(status).phrase
        for _ in range(times):
            self._scripted.append(_Scripted(status, retry_after, body or {"error": phrase}))

    def requests_to(self, method: str, prefix: str) -> list[Recorded]:
        """The recorded requests with ``method`` whose path starts with ``prefix``."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    # ------------------------------------------------------------------ routes

    def handle(self, request: Recorded) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """Route one request: (status, extra headers, JSON body or None)."""
        with self._lock:
            self.requests.append(request)
        if self.delay:
            self._release.wait(self.delay)
        if self.hang:
            self._release.wait(HANG_LIMIT)
        with self._lock:
            if self._scripted:
                scripted = self._scripted.popleft()
                headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
                return scripted.status, headers, scripted.body
            path = request.path.split("?", 1)[0]
            if path.startswith("/api/v1/statuses"):
                return self._mastodon(request, path)
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
            status_id = str(110_000_000 + self._next_id())
            self.statuses[status_id] = {
                "id": status_id,
                "text": text,
                "language": request.fields.get("language"),
                "visibility": request.fields.get("visibility", "public"),
                "edited_at": None,
                "edits": 0,
            }
            if key is not None:
                self._mastodon_keys[(auth, key)] = status_id
            return 200, {}, self.statuses[status_id]
        status_id = path.removeprefix("/api/v1/statuses/")
        if request.method == "PUT" and status_id in self.statuses:
            status = self.statuses[status_id]
            status["text"] = text
            status["language"] = request.fields.get("language", status["language"])
            status["edited_at"] = datetime.now(UTC).isoformat()
            status["edits"] += 1
            return 200, {}, status
        return 404, {}, {"error": "Record not found"}

    def _graph(
        self, request: Recorded, path: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        if request.fields.get("access_token") != GRAPH_TOKEN:
            error = {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException",
                "code": 190,
            }
            return 400, {}, {"error": error}
        message = request.fields.get("message")
        if not message:
            error = {"message": "(#100) Missing message or attachment", "code": 100}
            return 400, {}, {"error": error}
        if request.method == "POST" and path == f"{PAGE_ID}/feed":
            post_id = f"{PAGE_ID}_{900 + self._next_id()}"
            self.posts[post_id] = {
                "message": message,
                "link": request.fields.get("link"),
                "edits": 0,
            }
            return 200, {}, {"id": post_id}
        if request.method == "POST" and path in self.posts:
            self.posts[path]["message"] = message
            self.posts[path]["edits"] += 1
            return 200, {}, {"success": True}
        error = {"message": "Unsupported post request.", "type": "GraphMethodException"}
        return 400, {}, {"error": {**error, "code": 100}}

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
