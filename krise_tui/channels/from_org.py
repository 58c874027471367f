"""Build a channel adapter from the organisation file's channel definition.

The org file (:class:`~krise_tui.playbook.models.ChannelDef`) says what a channel is in
the municipality's terms: ``id``, ``kind``, an ``endpoint``, a ``credentials`` reference
and a few non-secret ``options``. :func:`channel_from_def` turns that into the adapter
config each kind expects and builds the adapter:

==========  ===========================================================================
kind        mapping
==========  ===========================================================================
website     ``endpoint`` is the directory the web server serves, or a CMS URL (then the
            pages go to ``options.directory`` or ``{state_dir}/website/{id}`` and the
            URL is told about each version); ``base_url`` is the org's website/crisis
            page unless ``options.base_url`` says otherwise; ``credentials`` is the CMS
            bearer token.
webhook     ``endpoint`` is the URL; ``options.body`` (a JSON object as text) is the body
            template, ``options["header.NAME"]`` are extra headers, ``credentials`` is
            sent as ``Authorization: Bearer``.
sms         a webhook with an SMS-gateway body ``{"to": options.to or "broadcast",
            "text": "{sms_text}"}`` (``"from": options.sender`` when given) and the
            bearer token from ``credentials``.
mastodon    ``endpoint`` is the instance (``https://mastodon.example``) or its
            ``/api/v1/statuses`` URL; ``credentials`` is the access token; the ledger
            lives in ``{state_dir}/{id}.ledger.sqlite3``.
facebook    ``endpoint`` is ``{graph_url}/{page_id}/feed``, or the Graph API URL with
            ``options.page_id``; ``credentials`` is the page token; the ledger lives in
            ``{state_dir}/{id}.ledger.sqlite3``.
email       ``endpoint`` is ``smtp://host:port`` (STARTTLS unless ``options.starttls``
            is false) or ``smtps://host:port`` (TLS from the start);
            ``options.from_address`` (or ``from``), ``options.to`` (comma separated),
            ``options.username`` with ``credentials`` as the password.
staff       not a bridge: the console serves staff terminals itself (ValueError).
==========  ===========================================================================

Replies: an sms channel answers the sender's number (``meta.from``) with the body
``{"to": "{to}", "text": "{text}"}`` (and ``from``); a webhook channel replies when
``options.reply_body`` (a JSON object as text over ``{to}``, ``{text}``…) is given, to
``options.reply_url`` (default: the endpoint), the address taken from
``meta[options.reply_to_field]`` (default ``from``). ``exercise: true`` on a channel
marks its platform end as a drill sandbox: only such channels take exercise replies and
hides (every adapter refuses them elsewhere). The ``inbound:`` section is the intake's
(:mod:`krise_tui.intake`), not the adapter's.

Every channel keeps its write-ahead ledger of attempts in
``{state_dir}/{id}.ledger.sqlite3`` (``options.ledger: false`` keeps it in memory, for
webhooks, SMS and e-mail only); never among the website's served files. Credentials are
the org file's :class:`~krise_tui.playbook.models.SecretRef`, passed to the adapters as
they are (the one secret-reference type of the code base).

Options that a kind does not know are errors (a typo must not silently change where a
crisis message goes); every error names the channel id and the option.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from krise_tui.channels.base import (
    Channel,
    ChannelConfigError,
    SecretError,
    create_channel,
    parse_config,
    resolve_secret,
)
from krise_tui.playbook.models import ChannelDef, ChannelKind, SecretRef

OptionValue = str | int | float | bool

MASTODON_STATUSES_PATH = "/api/v1/statuses"
"""The path of Mastodon's statuses API, stripped from an endpoint to get the instance."""

HEADER_PREFIX = "header."
"""Option keys ``header.NAME`` become extra HTTP headers of a webhook."""


def channel_from_def(
    defn: ChannelDef,
    *,
    state_dir: Path,
    website_url: str,
    base_dir: Path | None = None,
) -> Channel:
    """The adapter for the org file's channel ``defn``.

    Args:
        defn: the channel definition from the org file.
        state_dir: where ledgers (idempotency key → remote id) and other bridge state
            are kept; created when needed.
        website_url: the municipality's website or crisis page; the website channel's
            ``base_url`` unless its options name another.
        base_dir: relative directories in an endpoint are resolved against this
            (default: the working directory).

    Raises:
        ChannelConfigError: (a ``ValueError``) the kind cannot be a bridge (``staff``),
            an option is missing, unknown or invalid, or a secret cannot be read; the
            message names the channel id and the option.
    """
    builder = _BUILDERS.get(defn.kind)
    if builder is None:
        if defn.kind is ChannelKind.STAFF:
            raise ChannelConfigError(
                f"channel {defn.id!r}: kind staff has no bridge; the console serves the "
                "staff terminals itself over the bus"
            )
        raise ChannelConfigError(f"channel {defn.id!r}: kind {defn.kind.value} has no bridge")
    options = _Options(defn)
    return builder(defn, options, _Context(state_dir, website_url, base_dir))


# --------------------------------------------------------------------------- helpers


class _Context:
    """What every builder may need besides the definition."""

    def __init__(self, state_dir: Path, website_url: str, base_dir: Path | None) -> None:
        self.state_dir = state_dir
        self.website_url = website_url
        self.base_dir = base_dir

    def path(self, value: str) -> Path:
        """``value`` as a path, relative ones against ``base_dir``."""
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def ledger(self, defn: ChannelDef) -> Path:
        """The ledger file of channel ``defn``."""
        return self.state_dir / f"{defn.id}.ledger.sqlite3"


class _Options:
    """The channel's options, taken one by one; leftovers are reported as unknown."""

    def __init__(self, defn: ChannelDef) -> None:
        self._defn = defn
        self._left: dict[str, OptionValue] = dict(defn.options)
        self._known: list[str] = []

    def error(self, text: str) -> ChannelConfigError:
        """An error naming the channel."""
        return ChannelConfigError(f"channel {self._defn.id!r} ({self._defn.kind.value}): {text}")

    def take(self, key: str, *aliases: str) -> OptionValue | None:
        """The value of option ``key`` (or one of its aliases), or None."""
        self._known.append(key)
        found: list[str] = [name for name in (key, *aliases) if name in self._left]
        if len(found) > 1:
            raise self.error(f"options {found[0]!r} and {found[1]!r} mean the same; keep one")
        return self._left.pop(found[0]) if found else None

    def text(self, key: str, *aliases: str) -> str | None:
        """Option ``key`` as text (numbers as written), or None."""
        value = self.take(key, *aliases)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.error(f"option {key!r} must be text, not {str(value).lower()}")
        return str(value)

    def require(self, key: str, hint: str, *aliases: str) -> str:
        """Option ``key`` as text; a clear error when it is missing."""
        value = self.text(key, *aliases)
        if value is None or not value.strip():
            raise self.error(f"missing option {key!r}: {hint}")
        return value.strip()

    def copy(self, target: dict[str, Any], *keys: str) -> None:
        """Copy the options ``keys`` that are set into ``target`` (validated there)."""
        for key in keys:
            value = self.take(key)
            if value is not None:
                target[key] = value

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Every option whose key starts with ``prefix`` (prefix removed), taken."""
        self._known.append(f"{prefix}NAME")
        out: dict[str, str] = {}
        for key in [k for k in self._left if k.startswith(prefix)]:
            name = key.removeprefix(prefix)
            if not name:
                raise self.error(f"option {key!r} needs a name after {prefix!r}")
            out[name] = str(self._left.pop(key))
        return out

    def finish(self) -> None:
        """Raise for options nobody took (typos)."""
        if self._left:
            unknown = ", ".join(repr(key) for key in sorted(self._left))
            known = ", ".join(self._known) or "none"
            raise self.error(f"unknown option(s) {unknown} (known for this kind: {known})")


def _credentials(defn: ChannelDef, options: _Options, what: str) -> SecretRef:
    """The channel's credentials reference; a clear error when there is none."""
    if defn.credentials is None:
        raise options.error(f"missing credentials: {what} ({{env: VARIABLE}} or {{file: /path}})")
    return defn.credentials


def _bearer_header(defn: ChannelDef, options: _Options) -> dict[str, str]:
    """``Authorization: Bearer …`` from the credentials (env refs resolved by the adapter)."""
    if defn.credentials is None:
        return {}
    if defn.credentials.env is not None:
        return {"Authorization": f"Bearer {{env:{defn.credentials.env}}}"}
    try:
        token = resolve_secret(defn.credentials)
    except SecretError as exc:
        raise options.error(f"credentials: {exc}") from None
    return {"Authorization": f"Bearer {token}"}


def _endpoint(defn: ChannelDef, options: _Options) -> str:
    if defn.endpoint is None:
        raise options.error("missing endpoint")
    return defn.endpoint


def _is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


def _literal(value: str) -> str:
    """Text for a webhook template that must not be read as ``{placeholders}``."""
    return value.replace("{", "{{").replace("}", "}}")


def _flag(options: _Options, key: str, default: bool) -> bool:
    value = options.take(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise options.error(f"option {key!r} must be true or false, not {value!r}")


def _build(defn: ChannelDef, options: _Options, kind: str, config: Mapping[str, Any]) -> Channel:
    options.finish()
    try:
        return create_channel(kind, defn.id, {**config, "exercise_endpoint": defn.exercise})
    except SecretError as exc:
        if str(exc).startswith("channel "):
            raise
        raise options.error(f"credentials: {exc}") from None


# --------------------------------------------------------------------------- kinds


def _website(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    endpoint = _endpoint(defn, options)
    config: dict[str, Any] = {
        "base_url": options.text("base_url") or ctx.website_url,
    }
    directory = options.text("directory")
    if _is_url(endpoint):
        config["cms_webhook"] = endpoint
        config["directory"] = (
            ctx.path(directory) if directory else ctx.state_dir / "website" / defn.id
        )
    else:
        if directory is not None:
            raise options.error(
                "option 'directory' is only for a URL endpoint; the endpoint is the directory"
            )
        config["directory"] = ctx.path(endpoint)
    if defn.credentials is not None:
        config["cms_token"] = defn.credentials
    config["ledger"] = ctx.ledger(defn)
    options.copy(config, "timezone", "feed_limit", "timeout")
    return _build(defn, options, "website", config)


def _json_option(options: _Options, key: str) -> dict[str, Any] | None:
    """Option ``key`` as a JSON object written as text, or None when it is not set."""
    text = options.text(key)
    if text is None:
        return None
    try:
        template = json.loads(text)
    except json.JSONDecodeError as exc:
        raise options.error(f"option {key!r} is not JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(template, dict):
        raise options.error(f"option {key!r} must be a JSON object")
    return template


def _webhook(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    config: dict[str, Any] = {"url": _endpoint(defn, options)}
    body = _json_option(options, "body")
    if body is not None:
        config["body"] = body
    reply_body = _json_option(options, "reply_body")
    if reply_body is not None:
        config["reply_body"] = reply_body
    config["headers"] = {**options.prefixed(HEADER_PREFIX), **_bearer_header(defn, options)}
    options.copy(
        config,
        "method",
        "lang",
        "max_chars",
        "timeout",
        "remote_id_field",
        "reply_url",
        "reply_to_field",
    )
    if _flag(options, "ledger", True):
        config["state_file"] = ctx.ledger(defn)
    return _build(defn, options, "webhook", config)


def _sms(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    body: dict[str, Any] = {
        "to": _literal(options.text("to") or "broadcast"),
        "text": "{sms_text}",
    }
    # A reply goes to the number that asked (the intake puts it in meta.from).
    reply: dict[str, Any] = {"to": "{to}", "text": "{text}"}
    sender = options.text("sender", "from")
    if sender is not None:
        body["from"] = _literal(sender)
        reply["from"] = _literal(sender)
    config: dict[str, Any] = {
        "url": _endpoint(defn, options),
        "body": body,
        "reply_body": reply,
        "headers": {**options.prefixed(HEADER_PREFIX), **_bearer_header(defn, options)},
    }
    options.copy(config, "lang", "timeout", "remote_id_field")
    if _flag(options, "ledger", True):
        config["state_file"] = ctx.ledger(defn)
    return _build(defn, options, "webhook", config)


def mastodon_instance(endpoint: str) -> str:
    """The instance's base URL from a mastodon channel's endpoint (the instance itself,
    or its ``/api/v1/statuses`` URL).

    Raises:
        ValueError: the endpoint is another API URL.
    """
    endpoint = endpoint.rstrip("/")
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith(MASTODON_STATUSES_PATH):
        path = path.removesuffix(MASTODON_STATUSES_PATH)
    elif "/api/" in f"{path}/":
        raise ValueError(
            f"endpoint {endpoint!r}: give the instance (https://mastodon.example) or its "
            f"{MASTODON_STATUSES_PATH} URL"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _mastodon(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    try:
        base_url = mastodon_instance(_endpoint(defn, options))
    except ValueError as exc:
        raise options.error(str(exc)) from None
    config: dict[str, Any] = {
        "base_url": base_url,
        "access_token": _credentials(defn, options, "the account's access token"),
        "state_file": ctx.ledger(defn),
    }
    options.copy(
        config,
        "visibility",
        "lang",
        "max_chars",
        "timeout",
        "idempotency_window",
        "lookup_pages",
    )
    return _build(defn, options, "mastodon", config)


def _facebook(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    endpoint = _endpoint(defn, options).rstrip("/")
    page_id = options.text("page_id")
    parts = urlsplit(endpoint)
    segments = parts.path.rstrip("/").split("/")
    if len(segments) >= 2 and segments[-1] == "feed":
        found = segments[-2]
        if page_id is not None and page_id != found:
            raise options.error(
                f"option 'page_id' {page_id!r} contradicts the endpoint's page {found!r}"
            )
        page_id = found
        graph_path = "/".join(segments[:-2])
    else:
        if page_id is None:
            raise options.error(
                "missing option 'page_id': give it, or make the endpoint {graph_url}/{page_id}/feed"
            )
        graph_path = "/".join(segments)
    config: dict[str, Any] = {
        "page_id": page_id,
        "graph_url": urlunsplit((parts.scheme, parts.netloc, graph_path, "", "")),
        "access_token": _credentials(defn, options, "the page access token"),
        "state_file": ctx.ledger(defn),
    }
    options.copy(
        config, "lang", "max_chars", "attach_link", "timeout", "lookup_pages", "lookup_page_size"
    )
    return _build(defn, options, "facebook", config)


def _email(defn: ChannelDef, options: _Options, ctx: _Context) -> Channel:
    from krise_tui.channels.email import EmailChannel, EmailConfig

    endpoint = _endpoint(defn, options)
    parts = urlsplit(endpoint)
    implicit_tls = parts.scheme == "smtps"
    try:
        port = parts.port
    except ValueError:
        raise options.error(f"endpoint {endpoint!r} has a bad port") from None
    starttls = _flag(options, "starttls", not implicit_tls)
    if implicit_tls and starttls:
        raise options.error("option 'starttls' does not go with smtps:// (TLS from the start)")
    recipients = [
        address.strip()
        for address in options.require("to", "the recipient addresses, comma separated").split(",")
        if address.strip()
    ]
    config: dict[str, Any] = {
        "host": parts.hostname,
        "port": port or (465 if implicit_tls else 587),
        "from_address": options.require(
            "from_address", "the sender address, e.g. krise@kommune.no", "from"
        ),
        "to": recipients,
        "use_tls": implicit_tls,
        "starttls": starttls,
        "exercise_endpoint": defn.exercise,
    }
    username = options.text("username", "user")
    options.copy(config, "from_name", "timeout")
    if _flag(options, "ledger", True):
        config["state_file"] = ctx.ledger(defn)
    options.finish()
    channel = EmailChannel(defn.id, parse_config(EmailConfig, defn.id, config))
    if defn.credentials is None:
        if username is not None:
            raise options.error("option 'username' needs credentials (the SMTP password)")
        return channel
    if username is None:
        raise options.error(
            "missing option 'username': the SMTP login for the password in credentials"
        )
    try:
        password = resolve_secret(defn.credentials)
    except SecretError as exc:
        raise options.error(f"credentials: {exc}") from None
    # EmailConfig wants the user name as a secret reference too; the org file names it
    # as a plain option (a login name is not a secret) and only the password by reference.
    channel._username = username
    channel._password = password
    return channel


_BUILDERS = {
    ChannelKind.WEBSITE: _website,
    ChannelKind.WEBHOOK: _webhook,
    ChannelKind.SMS: _sms,
    ChannelKind.MASTODON: _mastodon,
    ChannelKind.FACEBOOK: _facebook,
    ChannelKind.EMAIL: _email,
}
