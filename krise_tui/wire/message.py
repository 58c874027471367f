"""The approved message: one version, every language, as every channel and terminal carries it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

VERSION_ID_PATTERN = r"^[0-9a-f]{64}$"
"""A version id: SHA-256 over the message's canonical content, lower-case hex."""

LANG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
"""A BCP 47 language tag as krise uses them: ``nb``, ``sma``, ``en``, ``se-Latn``…"""


class MessageStatus(StrEnum):
    """What a version does to the message before it."""

    PUBLISHED = "published"
    """A new message."""
    UPDATED = "updated"
    """Replaces the version named by ``supersedes`` with new content."""
    RETRACTED = "retracted"
    """Withdraws the version named by ``supersedes``; its text says why."""


class MessageVariant(BaseModel):
    """One language version of a message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lang: Annotated[str, Field(pattern=LANG_PATTERN)]
    """Language tag: ``nb`` (always), ``sma``, ``en``…"""
    headline: Annotated[str, Field(min_length=1)]
    """The headline, one line, plain text."""
    body: str
    """The body, plain text; blank lines separate paragraphs."""

    @field_validator("headline")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or "\n" in value:
            raise ValueError("a headline is one non-empty line")
        return value


class ApprovedMessage(BaseModel):
    """One approved, signed version of the message, as every channel carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: Annotated[str, Field(pattern=VERSION_ID_PATTERN)]
    """SHA-256 hex over the message's canonical content; every channel carries it."""
    org_name: Annotated[str, Field(min_length=1)]
    """The municipality's name, e.g. ``Hattfjelldal kommune``."""
    website_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    """The municipality's own crisis page; every other channel links to it (rule 6)."""
    variants: tuple[MessageVariant, ...]
    """Language versions, ``nb`` first; ``sma`` and ``en`` when present."""
    signature: Annotated[str, Field(min_length=1)]
    """Full name and title of the approver, e.g. ``Kari Nordmann, kriseleder``."""
    published_at: AwareDatetime
    """When this version was approved for publication (timezone-aware)."""
    status: MessageStatus = MessageStatus.PUBLISHED
    """Published, updated or retracted."""
    supersedes: Annotated[str, Field(pattern=VERSION_ID_PATTERN)] | None = None
    """The version this one updates or retracts."""
    exercise: bool = False
    """A drill: every text is labelled ``ØVELSE``."""

    @field_validator("variants")
    @classmethod
    def _nb_first(cls, value: tuple[MessageVariant, ...]) -> tuple[MessageVariant, ...]:
        if not value or value[0].lang != "nb":
            raise ValueError("the first variant must be nb (the written standard)")
        langs = [variant.lang for variant in value]
        if len(set(langs)) != len(langs):
            raise ValueError(f"duplicate language variants: {', '.join(langs)}")
        return value

    @field_validator("signature")
    @classmethod
    def _signature_has_title(cls, value: str) -> str:
        value = " ".join(value.split())
        if "," not in value:
            raise ValueError("sign with full name and title, e.g. 'Kari Nordmann, kriseleder'")
        return value

    @property
    def langs(self) -> tuple[str, ...]:
        """The language tags of the variants, ``nb`` first."""
        return tuple(variant.lang for variant in self.variants)

    def variant(self, lang: str) -> MessageVariant | None:
        """The variant in ``lang``, or None."""
        for variant in self.variants:
            if variant.lang == lang:
                return variant
        return None

    def variant_for(self, lang: str) -> MessageVariant:
        """The variant in ``lang``, falling back to ``nb`` when there is none."""
        return self.variant(lang) or self.variants[0]

    @property
    def signature_line(self) -> str:
        """The signature, with the municipality's name unless it already says it."""
        if self.org_name.casefold() in self.signature.casefold():
            return self.signature
        return f"{self.signature}, {self.org_name}"


def variant_texts(message: ApprovedMessage) -> dict[str, str]:
    """Headline and body per language, as staff terminals show them."""
    return {v.lang: f"{v.headline}\n{v.body}".strip() for v in message.variants}


__all__ = [
    "LANG_PATTERN",
    "VERSION_ID_PATTERN",
    "ApprovedMessage",
    "MessageStatus",
    "MessageVariant",
    "variant_texts",
]
