"""Deterministic answers: Markdown built from the prompt, cut into "tokens"."""
from __future__ import annotations

import functools
import hashlib
import json
import random
import re

_WORDS = (
    "latency cache request worker process queue thread stream token model prompt "
    "server client metric dashboard alert budget deploy release rollback pipeline "
    "index query database replica shard lock timeout retry backoff circuit breaker "
    "throughput percentile benchmark profile memory socket kernel container cluster "
    "service ingress probe readiness liveness config secret volume network packet "
    "simple careful fast steady reliable small clear useful honest quiet robust"
).split()
_VERBS = "measure cache stream reduce keep avoid check test watch tune build ship".split()
_TOKEN = re.compile(r"\S+\s*|\s+")
_QUOTED_TITLE = re.compile(r'<title>\s*("(?:[^"\\]|\\.)*")\s*</title>', re.S)


def prompt_topic(prompt: str) -> str:
    """The title if the prompt carries one in the blog's template, else its start."""
    match = _QUOTED_TITLE.search(prompt)
    if match:
        try:
            return json.loads(match.group(1))[:120] or "Untitled"
        except ValueError:
            pass
    first_line = prompt.strip().splitlines()[0] if prompt.strip() else "Untitled"
    return first_line[:80]


def _sentence(rng: random.Random, words: int) -> str:
    picked = [rng.choice(_WORDS) for _ in range(words)]
    picked.insert(rng.randrange(1, words), rng.choice(_VERBS))
    return " ".join(picked).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(5, 8)) for _ in range(sentences))


@functools.lru_cache(maxsize=1024)
def answer_pieces(prompt: str, count: int) -> tuple[str, ...]:
    """``count`` text pieces ("tokens") of a Markdown post; same prompt, same pieces.

    Short blocks, so even a 60-token answer has a heading, a paragraph, a
    section and a list.
    """
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    blocks = [f"# {prompt_topic(prompt)}", _paragraph(rng, 2)]
    section = 0
    text = "\n\n".join(blocks)
    while len(_TOKEN.findall(text)) < count:
        section += 1
        blocks.append(f"## {rng.choice(_VERBS).capitalize()} the {rng.choice(_WORDS)} ({section})")
        blocks.append(_paragraph(rng, rng.randint(1, 2)))
        blocks.append("\n".join(f"- {_sentence(rng, rng.randint(2, 4))}"
                                for _ in range(rng.randint(2, 3))))
        text = "\n\n".join(blocks)
    return tuple(_TOKEN.findall(text)[:count])
