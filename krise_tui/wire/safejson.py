"""Bounded JSON parsing for anything that arrives from outside.

Python's ``json`` raises ``RecursionError`` on deep nesting and ``ValueError`` on
integers past 4,300 digits, and happily builds huge structures. :func:`loads_bounded`
checks size, nesting depth and number length *before* (or while) parsing, and turns every
failure into one :class:`UnsafeJson` with a reason a person can read, so a single poison
message can only ever be that message's rejection.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel

MAX_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40

# String literals (with escapes) are skipped when counting brackets.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class UnsafeJson(ValueError):
    """The payload is not JSON we are willing to parse (the message says why)."""


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting in ``raw``, ignoring brackets inside strings."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _number(limit: int, convert: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > limit:
            raise UnsafeJson(f"a number has {len(text)} characters (at most {limit})")
        return convert(text)

    return parse


def _constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not allowed in JSON")


def loads_bounded(
    raw: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_number_chars: int = MAX_NUMBER_CHARS,
) -> Any:
    """Parse ``raw`` as JSON within the given bounds.

    Raises:
        UnsafeJson: too large, too deep, a number too long, NaN/Infinity, invalid UTF-8
            or not JSON at all. The message names the problem.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise UnsafeJson(f"payload too large ({len(data)} > {max_bytes} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeJson(f"payload is not valid UTF-8 (byte {exc.start})") from None
    depth = nesting_depth(data)
    if depth > max_depth:
        raise UnsafeJson(f"JSON nested {depth} deep (at most {max_depth})")
    try:
        return json.loads(
            text,
            parse_int=_number(max_number_chars, int),
            parse_float=_number(max_number_chars, float),
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise UnsafeJson(f"payload is not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # the depth check should have caught it; never let it escape
        raise UnsafeJson("JSON nested too deep") from None
    except UnsafeJson:
        raise
    except ValueError as exc:
        raise UnsafeJson(f"payload is not usable JSON ({exc})") from None


def loads_object(raw: bytes | str, **bounds: int) -> dict[str, Any]:
    """Like :func:`loads_bounded`, but the top level must be a JSON object."""
    data = loads_bounded(raw, **bounds)
    if not isinstance(data, dict):
        raise UnsafeJson(f"expected a JSON object, got {type(data).__name__}")
    return data


M = TypeVar("M", bound=BaseModel)


def validate_strict(model: type[M], data: Any) -> M:
    """``data`` (already parsed with bounds) as ``model``, in pydantic's strict JSON mode.

    Types are not coerced: ``"seq": "5"`` or ``"seq": true`` is refused where an integer
    is expected; enums and times are read from their JSON text as usual.
    """
    return model.model_validate_json(json.dumps(data), strict=True)


def excerpt(raw: bytes, limit: int = 200) -> str:
    """First bytes of ``raw`` as readable text; undecodable bytes become ``\\xNN``."""
    return raw[:limit].decode("utf-8", errors="backslashreplace")
