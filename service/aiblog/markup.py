"""Markdown to safe HTML. Called on write; pages only show the stored result.

A post is rendered once, in the worker that stores it, so rendering is
bounded: reference definitions do not expand (one long URL used a thousand
times was megabytes of HTML), the parser gives up after
``MARKDOWN_RENDER_BUDGET`` seconds (pathological input such as ``"[" * 100000``
would otherwise hold the worker's event loop for seconds), and HTML longer
than ``MARKDOWN_HTML_MAX`` is refused. Both refusals are ``MarkupRejected``,
which the writers turn into a 400 naming the setting.
"""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import nh3
from flask import current_app, has_app_context
from markdown_it import MarkdownIt
from markupsafe import Markup

from .config import SETTINGS


class MarkupRejected(ValueError):
    """The Markdown would cost too much to render or to serve."""


# Raw HTML in Markdown is allowed through the parser and then cleaned by nh3,
# which drops <script>, event handlers and javascript: URLs.
_md = (MarkdownIt("commonmark", {"html": True, "linkify": False})
       .enable("table").enable("strikethrough")
       .disable("reference"))  # "[x]: url" stays text: no expansion at every "[x]"

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}


def _setting(name: str):
    if has_app_context():
        return current_app.config[name]
    return next(s.default for s in SETTINGS if s.env == name)


def _check_deadline(env: dict) -> None:
    # CPU time of this thread, not the wall clock: a busy machine that gives the
    # worker less of a core must not refuse an honest post, only a costly one.
    if time.thread_time() > env["deadline"]:
        raise MarkupRejected(
            f"this Markdown takes longer than MARKDOWN_RENDER_BUDGET={env['budget']:g} s to render; "
            "simplify its nesting of brackets, emphasis or lists")


def _inline_deadline(state, silent: bool) -> bool:
    _check_deadline(state.env)
    return False  # a guard, never a match


def _block_deadline(state, start_line: int, end_line: int, silent: bool) -> bool:
    _check_deadline(state.env)
    return False


def _post_deadline(state) -> None:
    _check_deadline(state.env)


_md.inline.ruler.before("text", "deadline", _inline_deadline)
_md.inline.ruler2.before("balance_pairs", "deadline", _post_deadline)
_md.block.ruler.before("table", "deadline", _block_deadline)


def render_markdown(text: str) -> str:
    """Safe HTML for ``text``; ``MarkupRejected`` past the time or size limit."""
    budget = float(_setting("MARKDOWN_RENDER_BUDGET"))
    html_max = int(_setting("MARKDOWN_HTML_MAX"))
    html = sanitize(_md.render(text, {"deadline": time.thread_time() + budget, "budget": budget}))
    if len(html) > html_max:
        raise MarkupRejected(
            f"this post renders to {len(html)} characters of HTML, more than "
            f"MARKDOWN_HTML_MAX={html_max}")
    return html


_LANGUAGE_CLASS = re.compile(r"language-[\w+#.-]{1,40}")


def _same_origin(url: str) -> bool:
    # No scheme, no host: "//host/x", "/\\host/x" and "/<tab>/host/x" (browsers
    # drop tabs and newlines from URLs) reach other hosts.
    url = re.sub(r"[\t\n\r]", "", url).strip()
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or "\\" in url or url.startswith("//"))


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Classes on <code> only name a language (the page's styles are not the
    author's to use); images come only from this site, so a post cannot carry
    a tracking pixel that tells a third party who read it and when."""
    if tag == "code" and attribute == "class":
        languages = [name for name in value.split() if _LANGUAGE_CLASS.fullmatch(name)]
        return " ".join(languages) or None
    if tag == "img" and attribute == "src":
        return value if _same_origin(value) else None
    return value


def sanitize(html: str) -> str:
    return nh3.clean(
        html, tags=_TAGS, attributes=_ATTRIBUTES, attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
    )


EXCERPT_LENGTH = 220


def excerpt(html: str, length: int = EXCERPT_LENGTH) -> str:
    """A post's opening as plain text, cut at a word: the lists' teaser (the
    home page and the API's list items). Jinja's ``striptags|truncate`` rule."""
    text = Markup(html).striptags()
    if len(text) <= length + 5:
        return text
    return text[:length - 3].rsplit(" ", 1)[0] + "..."
