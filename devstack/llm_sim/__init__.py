"""blog-llm-sim: an LLM simulator speaking Ollama's and OpenAI's protocols.

Tests and load tests use it where a real model cannot run or would make
timings noisy. It answers like the real servers (same paths, same JSON
shapes, streaming and not, same kinds of 400s), with deterministic Markdown
built from the prompt, after a configurable time to first token and at a
configurable token rate; it can fail, hang or cut streams on purpose. It
counts every call so tests can prove caching and single-flight claims.

    blog-llm-sim --port 11434 --ttft 0.2 --tokens-per-second 50
    curl -s localhost:11434/sim/stats
    curl -s -XPOST localhost:11434/sim/config -d '{"error_rate": 1}'

Endpoints: Ollama ``/api/chat``, ``/api/generate``, ``/api/tags``,
``/api/version``, ``/``; OpenAI ``/v1/chat/completions``, ``/v1/models``;
control ``GET /sim/stats``, ``POST /sim/reset``, ``GET|POST /sim/config``.

Modules: ``sim_config`` (the settings), ``text`` (the deterministic answers),
``server`` (routes, counting, timing and the one answer path both protocols
share), ``ollama_api`` and ``openai_api`` (each protocol's request and answer
shapes), ``command`` (the ``blog-llm-sim`` command).
"""
