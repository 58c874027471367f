"""Accessibility checks for generated HTML (WCAG 2.1 AA basics, DOMAIN rule 20).

:func:`check_html` parses a page with :mod:`html.parser` and reports what a machine can
see: the page language, exactly one ``<h1>``, heading levels that never skip, an ``alt``
on every image, a ``lang`` on every ``<section>``, text on every link, a non-empty
``<title>``, and a ``datetime`` on every ``<time>``. It is no substitute for testing with
a screen reader, but it catches the regressions a template change can bring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass(frozen=True, slots=True)
class A11yIssue:
    """One problem found on a page."""

    code: str
    """Short rule name, e.g. ``html-lang``, ``one-h1``, ``heading-skip``."""
    message: str
    """What is wrong, in English."""
    line: int
    """1-based line in the HTML source (0 for the whole page)."""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.code}: {self.message}"


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.issues: list[A11yIssue] = []
        self.html_lang: str | None = None
        self.saw_html = False
        self.h1_count = 0
        self.last_level = 0
        self.title_text: str | None = None
        self._in_title = False
        self._links: list[tuple[int, list[str]]] = []

    def _issue(self, code: str, message: str) -> None:
        self.issues.append(A11yIssue(code, message, self.getpos()[0]))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: (value or "") for name, value in attrs}
        if tag == "html":
            self.saw_html = True
            self.html_lang = attributes.get("lang")
        if "lang" in attributes and not _LANG.match(attributes["lang"]):
            self._issue("lang-valid", f"<{tag}> has an invalid lang {attributes['lang']!r}")
        if re.fullmatch(r"h[1-6]", tag):
            level = int(tag[1])
            if level == 1:
                self.h1_count += 1
            if self.last_level and level > self.last_level + 1:
                self._issue("heading-skip", f"<{tag}> follows <h{self.last_level}>")
            elif not self.last_level and level != 1:
                self._issue("heading-skip", f"the first heading is <{tag}>, not <h1>")
            self.last_level = level
        elif tag == "img":
            if "alt" not in attributes:
                self._issue("img-alt", "<img> without an alt attribute")
            for _, text in self._links:
                text.append(attributes.get("alt", ""))
        elif tag == "section":
            if not attributes.get("lang"):
                self._issue("section-lang", "<section> without a lang attribute")
        elif tag == "time":
            if not attributes.get("datetime"):
                self._issue("time-datetime", "<time> without a datetime attribute")
        elif tag == "title":
            self._in_title = True
            self.title_text = ""
        elif tag == "a" and "href" in attributes:
            label = attributes.get("aria-label", "")
            self._links.append((self.getpos()[0], [label]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "a" and self._links:
            line, text = self._links.pop()
            if not "".join(text).strip():
                self.issues.append(A11yIssue("link-text", "a link without text", line))

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title_text is not None:
            self.title_text += data
        for _, text in self._links:
            text.append(data)

    def finish(self) -> list[A11yIssue]:
        if not self.saw_html or not (self.html_lang or "").strip():
            self.issues.append(A11yIssue("html-lang", "<html> has no lang attribute", 0))
        if self.h1_count != 1:
            self.issues.append(
                A11yIssue("one-h1", f"the page has {self.h1_count} <h1> elements, not 1", 0)
            )
        if not (self.title_text or "").strip():
            self.issues.append(A11yIssue("title", "the page has no <title> text", 0))
        return sorted(self.issues, key=lambda issue: (issue.line, issue.code))


def check_html(text: str) -> list[A11yIssue]:
    """Every accessibility problem :mod:`krise_tui.channels.a11y` can see in ``text``."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return checker.finish()
