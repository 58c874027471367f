"""Bridges (and the drill player) → console: posts from the public, and presence."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class InboundPost(BaseModel):
    """A post from the public brought in by a bridge (or a drill inject)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=200)]
    """The platform's id for the post: with the channel, the de-duplication key."""
    text: Annotated[str, Field(max_length=20_000)]
    author: Annotated[str, Field(max_length=500)] | None = None
    """The author's handle or name as the platform shows it."""
    received_at: AwareDatetime | None = None
    reply_to: Annotated[str, Field(max_length=200)] | None = None
    """The platform id of the post this one answers, when it is a reply."""
    kind: Literal["post", "comment", "message", "sms", "email", "form"] = "post"
    """What the platform calls it (a reply goes back the same way)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Platform details a reply needs (thread ids, addresses): small, flat values."""


MAX_TROUBLES = 8
"""Intake sources a bridge may report trouble for at once."""
MAX_TROUBLE_SOURCE = 200
"""Characters of a source's name in a bridge's reported trouble."""
MAX_TROUBLE_TEXT = 1000
"""Characters of what is wrong with one source."""


class Presence(BaseModel):
    """Online/offline (retained; ``offline`` is also the last will), and what is wrong
    with a bridge's intake now (source name -> problem; empty when all is well)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["online", "offline"]
    at: AwareDatetime | None = None
    trouble: Annotated[
        dict[
            Annotated[str, Field(min_length=1, max_length=MAX_TROUBLE_SOURCE)],
            Annotated[str, Field(min_length=1, max_length=MAX_TROUBLE_TEXT)],
        ],
        Field(max_length=MAX_TROUBLES),
    ] = Field(default_factory=dict)
