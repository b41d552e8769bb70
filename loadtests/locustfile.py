"""The blog's Locust scenario. Works with plain Locust too::

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Task mix (weights): home 10, post 5, login 1, write 1, AI generate 2 (the
seed's; BLOG_PERF_TASK_WEIGHTS="ai=0,login=0" changes it), with think time
between tasks. Requests are named by route template ("/post/[id]"), only
posts that exist are requested, forms carry their CSRF token, and AI
generation goes through the API with a Bearer token. A 429 from the AI API is
the blog's deliberate backpressure: it is reported under its own name
("... [429 backpressure]") as a success, so it never counts as a failure.

Accounts. With BLOG_PERF_ACCOUNTS=FILE (lines ``username:password``; ``blog-perf
locust --accounts N`` and ``make bench`` create them before the run) users take
the accounts in turn, several users sharing one like a person signed in on
several devices, and log in (a real POST /login) when they start. Without it,
each user registers its own account when it starts (registering logs it in).
Either way a starting user costs the blog one password hash, so the spawn rate
(``-r``) bounds the rate of logins and registrations, as the arrival rate of
real visitors would. The login task (weight 1) logs out and in again. An
account's API token is fetched once per process and kept, as an API client
does, rather than hashing the password again for every user.

When the blog's rate limits refuse a sign-up or a login (429: REGISTER_RATE_LIMIT,
LOGIN_RATE_LIMIT / LOGIN_ADDRESS_RATE_LIMIT), every later one would be refused
too: the run stops at once with one error line naming the limit, its
Retry-After and what to do (the master says it for all its workers), exits
non-zero, and the summary keeps the line as ``refused``.

With BLOG_PERF_LOCUST_OUT=DIR (set by ``blog-perf locust``) the master also
writes DIR/history.jsonl (RPS and interval p50/p95 every few seconds) and
DIR/summary.json (every entry with its response-time histogram) at the end.
"""
from __future__ import annotations

import base64
import hmac
import itertools
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import gevent
import gevent.event
from gevent.lock import Semaphore
from locust import FastHttpUser, between, events
from locust.runners import MasterRunner, WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `locust -f` from anywhere
from loadtests import blog_api, limits  # noqa: E402
from loadtests.account_file import Account, read_accounts  # noqa: E402
from loadtests.stats import histogram_percentile  # noqa: E402
from perfcontract.runner import RUN_TOKEN_ENV  # noqa: E402
from perfcontract.task_mix import parse_weights  # noqa: E402

AI_NAME = blog_api.AI_REQUEST_NAME
BACKPRESSURE_NAME = blog_api.BACKPRESSURE_REQUEST_NAME
AI_NAMES = {AI_NAME, BACKPRESSURE_NAME}
PASSWORD = "locust-password-1234"  # of the accounts users register themselves
RUN = os.environ.get("BLOG_PERF_RUN_ID") or blog_api.run_id()
# AI titles: most come from a small popular set (cache hits after the first),
# some are new (each one reaches the LLM once).
POPULAR_TITLES = [f"{topic} (load test {RUN})" for topic in blog_api.TITLE_TOPICS]
FRESH_TITLE_SHARE = float(os.environ.get("BLOG_PERF_FRESH_TITLE_SHARE", "0.3"))
WAIT_MIN = float(os.environ.get("BLOG_PERF_WAIT_MIN", "1"))
WAIT_MAX = float(os.environ.get("BLOG_PERF_WAIT_MAX", "3"))
HISTORY_INTERVAL = float(os.environ.get("BLOG_PERF_HISTORY_INTERVAL", "2"))
TASK_WEIGHTS = parse_weights(os.environ.get("BLOG_PERF_TASK_WEIGHTS"))
# Only these tasks need an account; a readers-only mix never creates one.
NEEDS_ACCOUNT = any(TASK_WEIGHTS[task] for task in ("login", "write", "ai"))

_user_numbers = itertools.count(1)
_fresh_numbers = itertools.count(1)


class KnownPosts:
    """Ids of posts that exist, and how many home pages there are: learned
    once per process from the JSON API, plus the posts this process's
    writers create."""

    def __init__(self, sample_pages: int = 10, deepest_home_page: int = 5):
        self.ids: list[int] = []
        self.home_pages = 1
        self.sample_pages = sample_pages
        self.deepest_home_page = deepest_home_page
        self._lock = Semaphore()
        self._loaded = False

    def load(self, host: str) -> None:
        with self._lock:  # one greenlet fetches, the others wait for it
            if self._loaded:
                return
            import requests  # cooperative under Locust's gevent patching; not counted in the stats

            def page(number: int, per_page: int | None = 100) -> dict:
                url = f"{host.rstrip('/')}{blog_api.API_POSTS}?page={number}"
                response = requests.get(url + (f"&per_page={per_page}" if per_page else ""), timeout=30)
                response.raise_for_status()
                return response.json()

            try:
                # Without per_page the API pages as the home page does: its
                # ``pages`` is the number of home pages that exist.
                self.home_pages = int(page(1, per_page=None).get("pages") or 1)
                first = page(1)
                self.ids.extend(item["id"] for item in first["items"])
                pages = int(first.get("pages") or 1)
                for number in random.sample(range(2, pages + 1), min(self.sample_pages, pages - 1)):
                    self.ids.extend(item["id"] for item in page(number)["items"])
            except Exception as exc:  # the target's failures show up in the measured requests
                logging.getLogger("blog-perf").warning("cannot list posts (%s): post pages are skipped", exc)
            self._loaded = True  # once per process, success or not: never hammer a broken target

    def pick(self) -> int | None:
        return random.choice(self.ids) if self.ids else None

    def later_home_page(self) -> int | None:
        """A home page after the first that exists (up to the fifth), or None when there is only one."""
        deepest = min(self.deepest_home_page, self.home_pages)
        return random.randint(2, deepest) if deepest >= 2 else None

    def add(self, post_id: int) -> None:
        self.ids.append(post_id)


KNOWN_POSTS = KnownPosts()


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


class ApiTokens:
    """One API token per account and process: the first user that needs it
    asks the blog (a password check), the others reuse it."""

    def __init__(self):
        self.tokens: dict[str, str] = {}
        self._locks: dict[str, Semaphore] = {}

    def lock(self, username: str) -> Semaphore:
        return self._locks.setdefault(username, Semaphore())

    def forget(self, username: str, token: str) -> None:
        if self.tokens.get(username) == token:
            del self.tokens[username]


API_TOKENS = ApiTokens()


class BlogUser(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        ACCOUNTS_ARRIVED.wait(timeout=ACCOUNTS_WAIT_S)  # set at once unless a worker waits for its master
        self.account: Account | None = None
        self.logged_in = False
        KNOWN_POSTS.load(self.host)
        # A writer starts logged in: registering logs in, a pooled account logs in
        # here. Either costs the blog a password hash, so the spawn rate bounds them.
        if NEEDS_ACCOUNT and self._ensure_account() and not self.logged_in:
            self.login()

    # -- readers --------------------------------------------------------------
    def home(self) -> None:
        later = KNOWN_POSTS.later_home_page()
        if later is None or random.random() < 0.8:
            self.client.get(blog_api.HOME, name="/")
        else:
            self.client.get(f"/?page={later}", name="/?page=[n]")

    def read_post(self) -> None:
        post_id = KNOWN_POSTS.pick()
        if post_id is not None:
            self.client.get(blog_api.POST.format(id=post_id), name="/post/[id]")

    # -- writers --------------------------------------------------------------
    def login(self) -> None:
        """Log out (when logged in) and log in again, as a returning writer does."""
        if not self._ensure_account() or REFUSED.is_set():
            return
        if self.logged_in:
            token = self._form_token(blog_api.HOME, "/")  # the logout button is on every page
            if token is None:
                return
            self._post_form(blog_api.LOGOUT, {"csrf_token": token}, "/logout")
            self.logged_in = False
        token = self._form_token(blog_api.LOGIN, "/login")
        if token is not None:
            self.logged_in = self._post_form(blog_api.LOGIN, {
                "username": self.account.username, "password": self.account.password, "csrf_token": token}, "/login",
                limited=limits.LOGIN)

    def write(self) -> None:
        if not self._ensure_logged_in():
            return
        token = self._form_token(blog_api.CREATE, "/create")
        if token is None:
            return
        title = f"Load test post {RUN}-{next(_user_numbers)}"
        body = "Written by a Locust user.\n\n" + " ".join(random.choice(blog_api.TITLE_TOPICS) for _ in range(20))
        with self.client.post(blog_api.CREATE, data={"title": title, "body": body, "csrf_token": token},
                              name="/create", allow_redirects=False, catch_response=True) as response:
            location = response.headers.get("Location") or ""
            match = blog_api.POST_ID_RE.search(location)
            if response.status_code in (302, 303) and match:
                KNOWN_POSTS.add(int(match.group(1)))
                response.success()
            else:
                if blog_api.LOGIN in location:
                    self.logged_in = False  # the session is gone: log in again next time
                response.failure(f"expected a redirect to the new post, got {response.status_code} {location}")

    def generate(self) -> None:
        token = self._api_token()
        if token is None:
            return
        if random.random() < FRESH_TITLE_SHARE:
            title = f"Fresh load-test title {RUN}-{next(_fresh_numbers)}-{random.randint(0, 10**6)}"
        else:
            title = random.choice(POPULAR_TITLES)
        with self.client.post(AI_NAME, json=blog_api.generate_body(title), name=AI_NAME, catch_response=True,
                              headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status_code == 429:
                # Deliberate backpressure: counted apart, not as a failure.
                response.request_meta["name"] = BACKPRESSURE_NAME
                response.success()
            elif response.status_code == 200:
                try:
                    ok = isinstance(response.json().get("content"), str)
                except (ValueError, AttributeError):
                    ok = False
                response.success() if ok else response.failure("200 without a generated 'content'")
            else:
                if response.status_code == 401:
                    API_TOKENS.forget(self.account.username, token)  # expired or revoked: fetch a new one next time
                response.failure(f"status {response.status_code}")

    # -- helpers ----------------------------------------------------------------
    def _ensure_account(self) -> bool:
        """An account from the pool, or one this user registers (and is then logged in to)."""
        if self.account is None:
            if ACCOUNT_POOL is not None:
                self.account = ACCOUNT_POOL.take()
            else:
                self._register()
        return self.account is not None

    def _register(self) -> None:
        if REFUSED.is_set():
            return  # the blog refuses sign-ups from here: the run is stopping
        account = Account(f"lt-{RUN}-{os.getpid()}-{next(_user_numbers)}", PASSWORD)
        token = self._form_token(blog_api.REGISTER, "/register")
        if token is not None and self._post_form(blog_api.REGISTER, {
                "username": account.username, "password": account.password, "confirm": account.password,
                "csrf_token": token}, "/register", limited=limits.SIGN_UP):
            self.account = account
            self.logged_in = True  # registering logs the new user in

    def _ensure_logged_in(self) -> bool:
        if not self._ensure_account():
            return False
        if not self.logged_in:
            self.login()
        return self.logged_in

    def _api_token(self) -> str | None:
        if not self._ensure_account():
            return None
        username = self.account.username
        with API_TOKENS.lock(username):  # one request per account; the others wait for its answer
            if username not in API_TOKENS.tokens and not REFUSED.is_set():
                basic = base64.b64encode(f"{username}:{self.account.password}".encode()).decode()
                with self.client.post(blog_api.API_TOKENS, name=blog_api.API_TOKENS, catch_response=True,
                                      headers={"Authorization": f"Basic {basic}"}) as response:
                    try:
                        token = response.json().get("token") if response.status_code == 200 else None
                    except (ValueError, AttributeError):
                        token = None
                    if isinstance(token, str) and token:
                        API_TOKENS.tokens[username] = token
                        response.success()
                    elif response.status_code == 429:
                        self._refused(response, limits.LOGIN)
                    else:
                        response.failure(f"no token: status {response.status_code}")
            return API_TOKENS.tokens.get(username)

    def _form_token(self, path: str, name: str) -> str | None:
        with self.client.get(path, name=name, catch_response=True) as response:
            token = blog_api.csrf_token(response.text or "") if response.status_code == 200 else None
            if token is None:
                response.failure(f"no csrf_token in the form (status {response.status_code})")
            return token

    def _post_form(self, path: str, form: dict, name: str, limited: str | None = None) -> bool:
        """POST a form; success is the redirect the blog answers a valid form with. ``limited``:
        the action (limits.SIGN_UP, limits.LOGIN) whose 429 means the blog's limits refuse the run."""
        with self.client.post(path, data=form, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code in (302, 303):
                response.success()
                return True
            if response.status_code == 429 and limited:
                self._refused(response, limited)
            else:
                response.failure(f"form rejected: status {response.status_code}")
            return False

    def _refused(self, response, action: str) -> None:
        response.failure(f"429: refused by {' / '.join(limits.LIMITS_OF[action])}")
        refused_by_limits(self.environment, action, response.headers.get("Retry-After"))


# The task mix: the seed's weights unless BLOG_PERF_TASK_WEIGHTS (``--weights``) changes them.
# A list with each task ``weight`` times: Locust turns a {task: weight} dict into
# weights only while it creates the class; set afterwards, its runner keeps just
# the keys and every task would be equally likely.
BlogUser.tasks = [task for task, weight in (
    (BlogUser.home, TASK_WEIGHTS["home"]), (BlogUser.read_post, TASK_WEIGHTS["post"]),
    (BlogUser.login, TASK_WEIGHTS["login"]), (BlogUser.write, TASK_WEIGHTS["write"]),
    (BlogUser.generate, TASK_WEIGHTS["ai"])) for _ in range(weight)]


# -- recording (master or local runner only) ----------------------------------
def _out_dir() -> Path | None:
    value = os.environ.get("BLOG_PERF_LOCUST_OUT")
    return Path(value) if value else None


def _merged(entries, names=None, exclude=()) -> dict[int, int]:
    histogram: dict[int, int] = {}
    for entry in entries:
        if entry.name in exclude or (names is not None and entry.name not in names):
            continue
        for value, count in entry.response_times.items():
            histogram[value] = histogram.get(value, 0) + count
    return histogram


def _delta(now: dict[int, int], before: dict[int, int]) -> dict[int, int]:
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}


def _sample_history(environment, out: Path) -> None:
    stats = environment.stats
    started = time.time()
    before_all: dict[int, int] = {}
    before_reads: dict[int, int] = {}
    before = {"requests": 0, "failures": 0, "backpressure": 0, "time": started}
    with open(out / "history.jsonl", "a", encoding="utf-8") as handle:
        while True:
            gevent.sleep(HISTORY_INTERVAL)
            now = time.time()
            entries = list(stats.entries.values())
            all_times = _merged(entries, exclude={BACKPRESSURE_NAME})
            read_times = _merged(entries, exclude=AI_NAMES)
            backpressure = sum(e.num_requests for e in entries if e.name == BACKPRESSURE_NAME)
            requests = stats.total.num_requests
            failures = stats.total.num_failures
            span = max(1e-6, now - before["time"])
            interval_all, interval_reads = _delta(all_times, before_all), _delta(read_times, before_reads)
            line = {
                "t": round(now - started, 2), "time": now,
                "users": environment.runner.user_count if environment.runner else None,
                "rps": round((requests - before["requests"]) / span, 2),
                "failures_per_s": round((failures - before["failures"]) / span, 3),
                "backpressure_per_s": round((backpressure - before["backpressure"]) / span, 3),
                "p50_ms": histogram_percentile(interval_all, 50), "p95_ms": histogram_percentile(interval_all, 95),
                "non_ai_p50_ms": histogram_percentile(interval_reads, 50),
                "non_ai_p95_ms": histogram_percentile(interval_reads, 95),
                "requests": requests, "failures": failures, "backpressure": backpressure,
            }
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            before_all, before_reads = all_times, read_times
            before = {"requests": requests, "failures": failures, "backpressure": backpressure, "time": now}


def _entry(entry) -> dict:
    histogram = {int(k): int(v) for k, v in entry.response_times.items()}
    return {
        "method": entry.method, "name": entry.name,
        "requests": entry.num_requests, "failures": entry.num_failures,
        "mean_ms": entry.avg_response_time if entry.num_requests else None,
        "min_ms": entry.min_response_time, "max_ms": entry.max_response_time if entry.num_requests else None,
        "p50_ms": histogram_percentile(histogram, 50), "p90_ms": histogram_percentile(histogram, 90),
        "p95_ms": histogram_percentile(histogram, 95), "p99_ms": histogram_percentile(histogram, 99),
        "rps": entry.total_rps, "response_times": {str(k): v for k, v in sorted(histogram.items())},
    }


def write_summary(environment, out: Path) -> None:
    stats = environment.stats
    entries = list(stats.entries.values())
    non_ai = _merged(entries, exclude=AI_NAMES)
    ai = _merged(entries, names={AI_NAME})
    backpressure = sum(e.num_requests for e in entries if e.name == BACKPRESSURE_NAME)
    counted = stats.total.num_requests - backpressure
    summary = {
        "start_time": stats.total.start_time, "last_request_time": stats.total.last_request_timestamp,
        "users": environment.runner.user_count if environment.runner else None,
        "requests": stats.total.num_requests, "failures": stats.total.num_failures,
        "backpressure_429": backpressure,
        "failure_rate": (stats.total.num_failures / counted) if counted > 0 else None,
        "rps": stats.total.total_rps,
        "p50_ms": histogram_percentile(_merged(entries, exclude={BACKPRESSURE_NAME}), 50),
        "p90_ms": histogram_percentile(_merged(entries, exclude={BACKPRESSURE_NAME}), 90),
        "p95_ms": histogram_percentile(_merged(entries, exclude={BACKPRESSURE_NAME}), 95),
        "p99_ms": histogram_percentile(_merged(entries, exclude={BACKPRESSURE_NAME}), 99),
        "non_ai": {"requests": sum(non_ai.values()), "p50_ms": histogram_percentile(non_ai, 50),
                   "p95_ms": histogram_percentile(non_ai, 95), "p99_ms": histogram_percentile(non_ai, 99)},
        "ai": {"requests": sum(ai.values()), "p50_ms": histogram_percentile(ai, 50),
               "p95_ms": histogram_percentile(ai, 95), "p99_ms": histogram_percentile(ai, 99)},
        "entries": [_entry(e) for e in sorted(entries, key=lambda e: (e.name, e.method))],
        "errors": [{"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                   for e in stats.errors.values()],
        "refused": REFUSAL.get("line"),  # the blog's rate limits stopped the run
    }
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    os.replace(tmp, out / "summary.json")


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    out = _out_dir()
    if out is None or isinstance(environment.runner, WorkerRunner):
        return
    out.mkdir(parents=True, exist_ok=True)
    sampler = gevent.spawn(_sample_history, environment, out)

    @events.quitting.add_listener
    def _on_quitting(environment, **_kw) -> None:
        sampler.kill(block=False)
        write_summary(environment, out)
