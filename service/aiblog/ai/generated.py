"""What the LLM wrote, as the generation service hands it out.

``Generation`` is one finished answer with its sanitized HTML, rendered once
when the answer is made and cached with it: Markdown parsing is most of the
CPU a cache hit would otherwise cost. ``Answer`` is what a request gets: a
``Generation``, or a stream that becomes one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from typing import Iterator

from ..markup import MarkupRejected, render_markdown


@dataclass
class Generation:
    title: str
    content: str
    model: str
    prompt_version: str
    simulated: bool
    generation_seconds: float | None = None
    cached: bool = False
    deduplicated: bool = False
    # Sanitized HTML of ``content``. Rendered once when the answer is made and
    # cached with it: Markdown parsing is most of the CPU a cache hit would cost.
    html: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.html:  # a new answer, or one cached before the HTML was
            try:
                self.html = render_markdown(self.content)
            except MarkupRejected:  # shown as plain text rather than not at all
                self.html = f"<pre>{escape(self.content)}</pre>"

    def to_dict(self) -> dict:
        # Every field is a plain value: a shallow copy is asdict() without its deep copy.
        return dict(vars(self))

    def dumps(self) -> str:
        return json.dumps({"title": self.title, "content": self.content, "html": self.html, "model": self.model,
                           "prompt_version": self.prompt_version, "simulated": self.simulated,
                           "generation_seconds": self.generation_seconds})

    @classmethod
    def loads(cls, raw: bytes | str, **flags) -> "Generation":
        return cls(**json.loads(raw), **flags)


@dataclass
class Answer:
    """What ``GenerationService.answer`` returns: a finished generation
    (cached, shared by an identical request, or made whole), or the LLM's
    stream, whose first piece has already arrived; ``generation`` is set
    when that stream completes."""

    title: str
    generation: Generation | None = None
    pieces: Iterator[str] | None = None

    @property
    def free(self) -> bool:
        """No LLM work was done for this request (it costs no rate limit)."""
        return self.generation is not None and (self.generation.cached or self.generation.deduplicated)
