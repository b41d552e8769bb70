"""LLM clients: Ollama's native API and OpenAI-compatible servers.

Both stream: ``stream_chat`` yields text pieces as they arrive, so a page can
show the first token while the model is still writing.
"""
from __future__ import annotations

from typing import Any, Mapping

from .base import GenerationOptions, LLMClient
from .deadlines import Timeouts
from .ollama import OllamaClient
from .openai import OpenAIClient

__all__ = ["CLIENTS", "GenerationOptions", "LLMClient", "OllamaClient", "OpenAIClient", "Timeouts",
           "make_client"]

CLIENTS: dict[str, type[LLMClient]] = {
    "ollama": OllamaClient,
    "sim": OllamaClient,  # the simulator speaks Ollama's protocol
    "openai": OpenAIClient,
}


def make_client(config: Mapping[str, Any]) -> LLMClient:
    """The configured client, from Flask ``app.config``'s ``LLM_*`` keys (their
    defaults live in the settings table, config.py, and nowhere else). Create
    one client per process and keep it: it holds a connection pool.
    """
    api = config["LLM_API"]
    try:
        client_class = CLIENTS[api]
    except KeyError:
        raise ValueError(f"LLM_API must be one of {', '.join(CLIENTS)}, got {api!r}") from None
    return client_class(
        config["LLM_BASE_URL"],
        config["LLM_MODEL"],
        timeouts=Timeouts(
            connect=float(config["LLM_CONNECT_TIMEOUT"]),
            first_token=float(config["LLM_FIRST_TOKEN_TIMEOUT"]),
            total=float(config["LLM_TOTAL_TIMEOUT"]),
        ),
        keep_alive=config.get("LLM_KEEP_ALIVE") or None,
    )
