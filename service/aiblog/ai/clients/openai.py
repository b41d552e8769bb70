"""The OpenAI-compatible protocol."""
from __future__ import annotations

from ..llm_errors import LLMError, LLMStreamCut
from .base import LLMClient
from .lines import json_line, lines


class OpenAIClient(LLMClient):
    """OpenAI-compatible servers (llama.cpp's llama-server, vLLM, Ollama's /v1):
    ``POST /v1/chat/completions`` (SSE stream), ``GET /v1/models``."""

    api = "openai"
    chat_path = "/v1/chat/completions"

    def _chat_body(self, messages, options):
        return {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }

    def _read_stream(self, response, pause):
        for line in lines(response, pause):
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" lines
            payload = line[len("data:"):].strip()
            if payload == "[DONE]":
                return
            event = json_line(payload)
            if event.get("error"):
                raise LLMError(f"the LLM reported an error: {self._error_detail(event)}")
            for choice in event.get("choices") or []:
                yield (choice.get("delta") or {}).get("content") or ""
                if choice.get("finish_reason"):
                    return  # complete; a trailing [DONE] adds nothing
        raise LLMStreamCut("the LLM stream ended before its end marker (data: [DONE])")

    def _error_detail(self, data):
        if not isinstance(data, dict):
            return None
        error = data.get("error")
        if isinstance(error, dict):
            return error.get("message")
        return error
