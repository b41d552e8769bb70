"""``blog-llm-sim``: the simulator as a command."""
from __future__ import annotations

import argparse
import sys

from aiohttp import web

from .sim_config import DEFAULT_MODEL, SimConfig
from .server import Simulator


def build_parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="blog-llm-sim",
        description="LLM simulator speaking Ollama's and OpenAI's HTTP protocols. "
                    "Settings can be changed at runtime with POST /sim/config.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    parser.add_argument("--port", type=int, default=11434, help="port (default %(default)s, Ollama's)")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help=f"model name served; repeatable; '*' accepts any "
                             f"(default {DEFAULT_MODEL})")
    parser.add_argument("--ttft", type=float, default=defaults.ttft,
                        help="seconds to first token (default %(default)s)")
    parser.add_argument("--tokens-per-second", type=float, default=defaults.tokens_per_second,
                        help="token rate; 0 = no delay (default %(default)s)")
    parser.add_argument("--tokens", type=int, default=defaults.tokens,
                        help="tokens per answer (default %(default)s)")
    parser.add_argument("--answer-seconds", type=float, default=None,
                        help="total seconds per answer (overrides --tokens-per-second)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share answered HTTP 500")
    parser.add_argument("--hang-rate", type=float, default=0.0, help="share that never answer")
    parser.add_argument("--cut-rate", type=float, default=0.0,
                        help="share whose stream breaks off half-way")
    parser.add_argument("--seed", type=int, default=0, help="seed for the error/hang/cut dice")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = SimConfig(
        models=args.models or [DEFAULT_MODEL], ttft=args.ttft,
        tokens_per_second=args.tokens_per_second, tokens=args.tokens,
        answer_seconds=args.answer_seconds, error_rate=args.error_rate,
        hang_rate=args.hang_rate, cut_rate=args.cut_rate, seed=args.seed,
    )
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    simulator = Simulator(config)
    print(f"blog-llm-sim: serving {', '.join(config.models)} on http://{args.host}:{args.port} "
          f"(Ollama /api/*, OpenAI /v1/*, stats /sim/stats)", flush=True)
    try:
        # handler_cancellation: a client that gives up ends its handler (hung
        # requests included), so in_progress stays true.
        web.run_app(simulator.app(), host=args.host, port=args.port, backlog=2048,
                    access_log=None, print=None, handler_cancellation=True)
    except OSError as exc:
        print(f"blog-llm-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
