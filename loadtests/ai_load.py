"""AI load beside a measurement, in a process of its own: ``users`` clients
that generate uncached posts through the blog (``blog``), or that read as
many answers straight from the LLM simulator (``simulator``), for
``seconds``. ``make bench`` times reads while this runs; in its own process
the load's client work does not delay the reads' client, so what the reads
see is the server side.

Prints one JSON line at the end: ``{"completed", "rejected_429", "error_kinds"}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from . import blog_api, blog_client, cache_test, stats


async def _blog_user(index: int, session, target: str, token: str, until: float, counts: dict) -> None:
    number = 0
    while time.monotonic() < until:
        number += 1
        title = f"Uncached under load {blog_api.run_id()} {index}-{number}"
        outcome = await cache_test.timed_generation(session, target, token, title, 60)
        if outcome["ok"]:
            counts["completed"] += 1
        elif outcome.get("status") == 429:
            counts["rejected_429"] += 1
            await asyncio.sleep(2)  # as Retry-After asks
        else:
            counts["kinds"].append(outcome["error"])


async def _simulator_stream(index: int, session, target: str, until: float, counts: dict) -> None:
    number = 0
    while time.monotonic() < until:
        number += 1
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": f"Stream {index}-{number}"}]}
        try:
            async with session.post(target + "/api/chat", json=body) as response:
                await response.read()
                if response.status == 200:
                    counts["completed"] += 1
                else:
                    counts["kinds"].append(f"status:{response.status}")
        except Exception as exc:  # counted, the load goes on
            counts["kinds"].append(stats.error_kind(exc))


async def run(kind: str, target: str, users: int, seconds: float, accounts: int = 5) -> dict:
    counts = {"completed": 0, "rejected_429": 0, "kinds": []}
    until = time.monotonic() + seconds
    async with blog_client.client_session(timeout=120) as session:
        if kind == "blog":
            tokens = [(await blog_client.credentials(target)).token for _ in range(accounts)]
            users_ = [_blog_user(i, session, target, tokens[i % accounts], until, counts) for i in range(users)]
        else:
            users_ = [_simulator_stream(i, session, target, until, counts) for i in range(users)]
        await asyncio.gather(*users_)
    return {"completed": counts["completed"], "rejected_429": counts["rejected_429"],
            "error_kinds": stats.count_kinds(counts["kinds"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.ai_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("blog", "simulator"))
    parser.add_argument("target", help="the blog's URL (blog) or the simulator's (simulator); loopback only")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not args.target.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("load goes only to this machine (http://127.0.0.1:PORT)")
    print(json.dumps(asyncio.run(run(args.kind, args.target, args.users, args.seconds))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
