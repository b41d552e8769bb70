"""Ollama's native protocol."""
from __future__ import annotations

from ..llm_errors import LLMError, LLMStreamCut
from .base import LLMClient
from .lines import json_line, lines


class OllamaClient(LLMClient):
    """Ollama's native API: ``POST /api/chat`` (NDJSON stream), ``GET /api/tags``."""

    api = "ollama"
    chat_path = "/api/chat"

    def _chat_body(self, messages, options):
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "options": {"num_predict": options.max_tokens, "temperature": options.temperature},
        }
        if self.keep_alive:
            body["keep_alive"] = self.keep_alive
        return body

    def _read_stream(self, response, pause):
        for line in lines(response, pause):
            if not line.strip():
                continue
            event = json_line(line)
            if event.get("error"):
                raise LLMError(f"the LLM reported an error: {event['error']}")
            message = event.get("message") or {}
            yield message.get("content") or ""
            if event.get("done"):
                return
        raise LLMStreamCut("the LLM stream ended before its end marker (\"done\": true)")

    def _error_detail(self, data):
        return data.get("error") if isinstance(data, dict) else None
