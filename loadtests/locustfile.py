"""The blog's Locust scenario. Works with plain Locust too::

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Task mix (weights): home 10, post 5, login 1, write 1, AI generate 2 (the
seed's; BLOG_PERF_TASK_WEIGHTS="ai=0,login=0" changes it), with think time
between tasks. Requests are named by route template ("/post/[id]"), only
posts that exist are requested, forms carry their CSRF token, and AI
generation goes through the API with a Bearer token. A 429 from the AI API is
the blog's deliberate backpressure: it is reported under its own name
("... [429 backpressure]") as a success, so it never counts as a failure.

Accounts. With BLOG_PERF_ACCOUNTS=FILE (``blog-perf locust --accounts N`` and
``make bench`` create them before the run) users take the accounts in turn,
several users sharing one like a person signed in on several devices, and log
in (a real POST /login) when they start. Without it, each user registers its
own account when it starts (registering logs it in). Either way a starting
user costs the blog one password hash, so the spawn rate (``-r``) bounds the
rate of logins and registrations, as the arrival rate of real visitors would.
The login task (weight 1) logs out and in again. An account's API token is
fetched once per process and kept, as an API client does, rather than hashing
the password again for every user.

Beside the users: locust_messages.py (the accounts a master shares with its
workers; a 429 at sign-up or login, REGISTER_RATE_LIMIT, LOGIN_RATE_LIMIT /
LOGIN_ADDRESS_RATE_LIMIT, stops the whole run with one line naming the limit),
locust_output.py (history.jsonl and summary.json under BLOG_PERF_LOCUST_OUT)
and locust_live.py (live figures for Prometheus with ``--metrics-port``).
"""
from __future__ import annotations

import base64
import itertools
import os
import random
import sys
from pathlib import Path

from gevent.lock import Semaphore
from locust import FastHttpUser, between

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `locust -f` from anywhere
from loadtests import blog_api, limits  # noqa: E402
from loadtests import locust_messages as messages  # noqa: E402  (accounts, refusals: master and workers)
from loadtests import locust_live  # noqa: E402,F401  (live figures on --metrics-port: its listener)
from loadtests import locust_output  # noqa: E402,F401  (history.jsonl, summary.json: its listener)
from loadtests.account_file import Account  # noqa: E402
from loadtests.locust_posts import KNOWN_POSTS  # noqa: E402
from perfcontract.task_mix import parse_weights  # noqa: E402

AI_NAME = blog_api.AI_REQUEST_NAME
BACKPRESSURE_NAME = blog_api.BACKPRESSURE_REQUEST_NAME
PASSWORD = "locust-password-1234"  # of the accounts users register themselves
RUN = os.environ.get("BLOG_PERF_RUN_ID") or blog_api.run_id()
# AI titles: most come from a small popular set (cache hits after the first),
# some are new (each one reaches the LLM once).
POPULAR_TITLES = [f"{topic} (load test {RUN})" for topic in blog_api.TITLE_TOPICS]
FRESH_TITLE_SHARE = float(os.environ.get("BLOG_PERF_FRESH_TITLE_SHARE", "0.3"))
WAIT_MIN = float(os.environ.get("BLOG_PERF_WAIT_MIN", "1"))
WAIT_MAX = float(os.environ.get("BLOG_PERF_WAIT_MAX", "3"))
TASK_WEIGHTS = parse_weights(os.environ.get("BLOG_PERF_TASK_WEIGHTS"))
# Only these tasks need an account; a readers-only mix never creates one.
NEEDS_ACCOUNT = any(TASK_WEIGHTS[task] for task in ("login", "write", "ai"))

_user_numbers = itertools.count(1)
_fresh_numbers = itertools.count(1)


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
        messages.ACCOUNTS_ARRIVED.wait(timeout=messages.ACCOUNTS_WAIT_S)  # set at once unless a worker waits for its master
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
        if not self._ensure_account() or messages.REFUSED.is_set():
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
            if messages.ACCOUNT_POOL is not None:  # a worker's is set when its master answers
                self.account = messages.ACCOUNT_POOL.take()
            else:
                self._register()
        return self.account is not None

    def _register(self) -> None:
        if messages.REFUSED.is_set():
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
            if username not in API_TOKENS.tokens and not messages.REFUSED.is_set():
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
        messages.refused_by_limits(self.environment, action, response.headers.get("Retry-After"))


# The task mix: the seed's weights unless BLOG_PERF_TASK_WEIGHTS (``--weights``) changes them.
# A list with each task ``weight`` times: Locust turns a {task: weight} dict into
# weights only while it creates the class; set afterwards, its runner keeps just
# the keys and every task would be equally likely.
BlogUser.tasks = [task for task, weight in (
    (BlogUser.home, TASK_WEIGHTS["home"]), (BlogUser.read_post, TASK_WEIGHTS["post"]),
    (BlogUser.login, TASK_WEIGHTS["login"]), (BlogUser.write, TASK_WEIGHTS["write"]),
    (BlogUser.generate, TASK_WEIGHTS["ai"])) for _ in range(weight)]
