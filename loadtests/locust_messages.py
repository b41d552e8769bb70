"""What the master and the workers of a Locust run tell each other, and the
local runner does alone: the run's accounts, and a refusal by the blog's rate
limits that stops the run.

Accounts. With BLOG_PERF_ACCOUNTS=FILE (lines ``username:password``) the users
take the accounts in turn. In a distributed run each worker asks its master
for them, showing the run's token (perfcontract.runner.RUN_TOKEN_ENV): Locust's
port has no authentication. A worker's users wait for the answer (``ACCOUNTS_ARRIVED``).

Refusals. When the blog's rate limits refuse a sign-up or a login (429),
every later one would be refused too: the run stops at once with one error
line naming the limit, its Retry-After and what to do (the master says it for
all its workers), exits non-zero, and the summary keeps the line as
``refused`` (``REFUSAL``).

Imported by the blog's scenario (locustfile.py) and by locust_recording.py
(for a scenario of your own); its listeners register once per process.
"""
from __future__ import annotations

import hmac
import itertools
import logging
import os
import random

import gevent
import gevent.event
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from perfcontract.runner import RUN_TOKEN_ENV

from . import limits
from .account_file import Account, read_accounts


class AccountPool:
    """The accounts given to the run, handed out in turn (from a random start,
    so that several Locust processes spread over them)."""

    def __init__(self, accounts: list[Account]):
        self.accounts = accounts
        self._turn = itertools.count(random.randrange(len(accounts)))

    def take(self) -> Account:
        return self.accounts[next(self._turn) % len(self.accounts)]


def _account_pool() -> AccountPool | None:
    path = os.environ.get("BLOG_PERF_ACCOUNTS")
    if not path:
        return None
    try:
        return AccountPool(read_accounts(path))
    except ValueError as exc:
        raise SystemExit(f"BLOG_PERF_ACCOUNTS: {exc}") from None


ACCOUNT_POOL = _account_pool()
ACCOUNTS_ASKED, ACCOUNTS_SENT = "blog-perf-accounts-please", "blog-perf-accounts"
# The run's own workers know it (the operator puts it in a Secret of the run): Locust's port
# has no authentication, and without it any peer that reached the master got every account.
RUN_TOKEN = os.environ.get(RUN_TOKEN_ENV, "")
# A worker's users wait for the master's answer (its accounts, or none) before they start.
ACCOUNTS_ARRIVED = gevent.event.Event()
ACCOUNTS_WAIT_S = 60


@events.init.add_listener
def _share_accounts(environment, **_kwargs) -> None:
    """Distributed runs: each worker asks the master for its accounts (BLOG_PERF_ACCOUNTS), so
    workers in other pods share them too. Asked, not pushed: a worker may connect before its
    own init has registered the answer's handler."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        pairs = [[a.username, a.password] for a in ACCOUNT_POOL.accounts] if ACCOUNT_POOL is not None else []

        def answer(environment, msg, **_kw) -> None:
            shown = msg.data if isinstance(msg.data, str) else ""
            if RUN_TOKEN and not hmac.compare_digest(shown.encode(), RUN_TOKEN.encode()):
                logging.warning("blog-perf: a worker without the run's token asked for accounts (%s); none given",
                                msg.node_id)
                runner.send_message(ACCOUNTS_SENT, [], msg.node_id)
                return
            runner.send_message(ACCOUNTS_SENT, pairs, msg.node_id)
        runner.register_message(ACCOUNTS_ASKED, answer)
    elif isinstance(runner, WorkerRunner):
        def receive(environment, msg, **_kw) -> None:
            global ACCOUNT_POOL
            if msg.data:
                ACCOUNT_POOL = AccountPool([Account(username, password) for username, password in msg.data])
            ACCOUNTS_ARRIVED.set()
        runner.register_message(ACCOUNTS_SENT, receive)
        runner.send_message(ACCOUNTS_ASKED, RUN_TOKEN)
    else:
        ACCOUNTS_ARRIVED.set()


# -- the blog's rate limits refusing sign-ups or logins ------------------------
REFUSED_MESSAGE = "blog-perf-refused-by-limits"
# Set in a process once a sign-up or login was refused: its users ask no more.
REFUSED = gevent.event.Event()
REFUSAL: dict[str, str] = {}  # the one line, kept by the master or the local runner


def stop_run(environment, line: str) -> None:
    """On the master or the local runner: say it once and end the run with a non-zero exit code."""
    REFUSED.set()
    if "line" in REFUSAL:
        return
    REFUSAL["line"] = line
    logging.getLogger("blog-perf").error(line)
    environment.process_exit_code = 1
    gevent.spawn(environment.runner.quit)  # its own greenlet: quitting kills the users' greenlets


def refused_by_limits(environment, action: str, retry_after: str | None) -> None:
    """A user met a 429 at sign-up or login: stop the run (a worker asks its master to stop them all)."""
    if REFUSED.is_set():
        return
    REFUSED.set()
    line = limits.refusal(action, retry_after)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(REFUSED_MESSAGE, line)
    else:
        stop_run(environment, line)


@events.init.add_listener
def _hear_refusals(environment, **_kwargs) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(REFUSED_MESSAGE,
                                            lambda environment, msg, **_kw: stop_run(environment, msg.data))
