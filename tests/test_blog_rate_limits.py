"""Rate limits and quotas (hardening items 2, 3 and 4): counted before the
work, given back when the rule says so, per (username, address) and per
address, the real client address behind trusted proxies only, sign-up and
AI quotas, and the background queue's caps. The concurrency tests run
against gunicorn with Redis, as the review's attacks did."""
from __future__ import annotations

import base64
import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from rq import SimpleWorker

from aiblog.client_address import client_address, trusted_networks
from aiblog.config import ConfigError, load
from aiblog.models import Role
from aiblog.rate_texts import Rate, parse_rates
from devstack import Gunicorn, LLMSimulator, wait_until
from tests.conftest import blog_env, csrf_token, make_app
from tests.support.blog import PASSWORD, create_user


def attempt(client, username: str, password: str, address: str):
    """One login through the web form, from ``address``."""
    environ = {"REMOTE_ADDR": address}
    token = csrf_token(client.get("/login", environ_base=environ).get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base=environ)


def fresh(app):
    return app.test_client()


@pytest.fixture(params=["memory", "redis"])
def limits_store(request):
    """Where the limits live: this process (no REDIS_URL), or a real Redis."""
    return request.getfixturevalue("redis_url") if request.param == "redis" else ""


# -- the limit text ------------------------------------------------------------

def test_limits_are_parsed_and_bad_ones_refused_at_start():
    assert parse_rates("5 per minute; 20 per hour") == (Rate(5, 60), Rate(20, 3600))
    assert parse_rates("3/second, 10 per 5 minutes") == (Rate(3, 1), Rate(10, 300))
    for bad in ("ten per minute", "5 per fortnight", "0 per minute", "", "5 per 0 minutes"):
        with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT"):
            load({"LOGIN_RATE_LIMIT": bad} if bad else {"LOGIN_RATE_LIMIT": " ; "})


# -- logins (item 3) -----------------------------------------------------------

def test_a_burst_locks_one_address_out_of_one_account_never_the_owner_elsewhere(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, LOGIN_RATE_LIMIT="3 per minute")
    create_user(app, "alice")
    create_user(app, "bob")
    attacker = fresh(app)
    for _ in range(3):
        assert attempt(attacker, "alice", "wrong password", "10.0.0.1").status_code == 401
    blocked = attempt(fresh(app), "Alice", PASSWORD, "10.0.0.1")
    assert blocked.status_code == 429  # this address, this account: even the right password waits
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    assert "Too many failed logins" in blocked.get_data(as_text=True)
    assert attempt(fresh(app), "alice", PASSWORD, "10.0.0.2").status_code == 302  # the owner, elsewhere
    assert attempt(fresh(app), "bob", PASSWORD, "10.0.0.1").status_code == 302  # another account, same address
    if limits_store:
        assert redis.Redis.from_url(limits_store).keys("aiblog:rate:login:*alice|10.0.0.1"), "kept in Redis"


def test_the_address_limit_spans_usernames(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, LOGIN_ADDRESS_RATE_LIMIT="4 per minute")
    create_user(app, "alice")
    for number in range(4):  # a new username each time: only the address limit applies
        assert attempt(fresh(app), f"guess{number}", "wrong password", "10.9.9.9").status_code == 401
    assert attempt(fresh(app), "alice", PASSWORD, "10.9.9.9").status_code == 429
    assert attempt(fresh(app), "alice", PASSWORD, "10.9.9.10").status_code == 302


def test_right_passwords_are_given_back(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, LOGIN_RATE_LIMIT="2 per minute", LOGIN_ADDRESS_RATE_LIMIT="2 per minute")
    create_user(app, "alice")
    for _ in range(6):
        assert attempt(fresh(app), "alice", PASSWORD, "10.1.1.1").status_code == 302
    for _ in range(2):
        assert attempt(fresh(app), "alice", "wrong password", "10.1.1.1").status_code == 401
    assert attempt(fresh(app), "alice", PASSWORD, "10.1.1.1").status_code == 429


def test_a_longer_window_makes_a_repeat_offender_wait_longer(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, LOGIN_RATE_LIMIT="1 per second; 2 per hour")
    create_user(app, "alice")
    assert attempt(fresh(app), "alice", "wrong", "10.2.2.2").status_code == 401
    first_wait = attempt(fresh(app), "alice", "wrong", "10.2.2.2")
    assert first_wait.status_code == 429 and int(first_wait.headers["Retry-After"]) == 1
    # Once the one-second window has moved on, one more guess is let through...
    wait_until(lambda: attempt(fresh(app), "alice", "wrong", "10.2.2.2").status_code == 401, 10,
               "the one-second window to let a second guess through")
    # ...and then the hour window holds: the next wait is about an hour.
    second_wait = attempt(fresh(app), "alice", PASSWORD, "10.2.2.2")
    assert second_wait.status_code == 429 and int(second_wait.headers["Retry-After"]) > 3000


def test_the_token_endpoint_counts_with_the_login_form(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, LOGIN_RATE_LIMIT="3 per minute")
    create_user(app, "alice")
    client = fresh(app)
    assert client.post("/api/v1/tokens", auth=("alice", PASSWORD)).status_code == 200  # given back
    assert attempt(fresh(app), "alice", "wrong", "127.0.0.1").status_code == 401  # the form counts too
    for _ in range(2):
        assert client.post("/api/v1/tokens", auth=("alice", "wrong")).status_code == 401
    response = client.post("/api/v1/tokens", auth=("alice", PASSWORD))
    assert response.status_code == 429 and response.get_json()["status"] == 429
    assert "Too many failed logins" in response.get_json()["message"]


# -- the client address behind proxies (item 3) ---------------------------------

@pytest.mark.parametrize("peer, forwarded, hops, allowed, expected", [
    ("10.0.0.5", ["203.0.113.9"], 0, "*", "10.0.0.5"),  # no proxies: the header is ignored
    ("10.0.0.5", ["203.0.113.9"], 1, "*", "203.0.113.9"),  # one proxy: what it saw
    ("10.0.0.5", ["6.6.6.6, 203.0.113.9"], 1, "*", "203.0.113.9"),  # the client's own entry is not believed
    ("10.0.0.5", ["6.6.6.6", "203.0.113.9, 10.0.0.4"], 2, "*", "203.0.113.9"),  # two proxies, two headers
    ("10.0.0.5", ["203.0.113.9"], 2, "*", "10.0.0.5"),  # fewer entries than proxies: it skipped one
    ("192.0.2.1", ["203.0.113.9"], 1, "10.0.0.0/8", "192.0.2.1"),  # the peer is no trusted proxy
    ("10.0.0.5", ["203.0.113.9"], 1, "127.0.0.1, 10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.5", ["not-an-address"], 1, "*", "10.0.0.5"),
    ("10.0.0.5", ["2001:db8::1"], 1, "*", "2001:db8::1"),
])
def test_the_client_address_is_read_only_as_deep_as_the_trusted_proxies(peer, forwarded, hops, allowed, expected):
    assert client_address(peer, forwarded, hops, trusted_networks(allowed)) == expected


def test_a_bad_trusted_proxy_list_is_refused_at_start():
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        load({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.example"})
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        load({"TRUSTED_PROXY_HOPS": "-1"})


# -- sign-up (item 4) ---------------------------------------------------------

def sign_up(client, username: str, address: str):
    environ = {"REMOTE_ADDR": address}
    token = csrf_token(client.get("/register", environ_base=environ).get_data(as_text=True))
    return client.post("/register", data={"username": username, "password": PASSWORD, "confirm": PASSWORD,
                                          "csrf_token": token}, environ_base=environ)


def test_sign_ups_are_limited_per_address_and_refused_ones_given_back(sqlite_url, limits_store):
    app = make_app(sqlite_url, limits_store, REGISTER_RATE_LIMIT="2 per hour")
    create_user(app, "taken")
    assert sign_up(fresh(app), "Taken", "10.3.3.3").status_code == 400  # no account made: not counted
    assert sign_up(fresh(app), "first", "10.3.3.3").status_code == 302
    assert sign_up(fresh(app), "second", "10.3.3.3").status_code == 302
    refused = sign_up(fresh(app), "third", "10.3.3.3")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 3000
    assert "Too many sign-ups" in refused.get_data(as_text=True)
    assert sign_up(fresh(app), "third", "10.3.3.4").status_code == 302


def test_the_sign_up_role_is_a_setting_and_readers_get_no_ai(sqlite_url):
    app = make_app(sqlite_url, SIGNUP_ROLE="reader")
    client = fresh(app)
    assert sign_up(client, "newcomer", "10.4.4.4").status_code == 302
    with app.app_context():
        from aiblog.auth.accounts import find_user

        assert find_user("newcomer").role == Role.READER.value
    assert client.get("/generate-blog").status_code == 403
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert client.post("/generate-blog", data={"title": "Free quota", "csrf_token": token}).status_code == 403
    api_token = client.post("/api/v1/tokens", auth=("newcomer", PASSWORD)).get_json()["token"]
    answer = client.post("/api/v1/generate", json={"title": "Free quota"}, headers={"Authorization": f"Bearer {api_token}"})
    assert answer.status_code == 403 and "readers cannot use AI writing" in answer.get_json()["message"]
    assert make_app(sqlite_url).config["SIGNUP_ROLE"] == "author"  # the default, as before


# -- the background queue's caps (item 4) -----------------------------------------

@pytest.fixture(scope="module")
def sim():
    with LLMSimulator(answer_seconds=None, ttft=0.01, tokens=10, tokens_per_second=5000, models=None) as process:
        yield process


def enqueue(client, token: str, title: str):
    return client.post("/api/v1/generate", json={"title": title, "mode": "background"},
                       headers={"Authorization": f"Bearer {token}"})


def run_queued_jobs(app, redis_url: str) -> None:
    """What blog-worker does, in this process: run every queued job, then return."""
    from aiblog.ai import jobs

    connection = redis.Redis.from_url(redis_url)
    jobs._worker_app = app
    try:
        SimpleWorker([jobs.queue(connection)], connection=connection).work(burst=True)
    finally:
        jobs._worker_app = None


def test_the_queue_is_capped_per_user_and_in_all_with_retry_after(sqlite_url, redis_url, sim):
    from aiblog.ai import jobs

    app = make_app(sqlite_url, redis_url, LLM_API="sim", LLM_BASE_URL=sim.url, AI_QUEUE_MAX_PER_USER=2,
                   AI_QUEUE_MAX=3, AI_RATE_LIMIT="1000 per minute")
    create_user(app, "ann")
    create_user(app, "ben")
    client = fresh(app)
    ann = client.post("/api/v1/tokens", auth=("ann", PASSWORD)).get_json()["token"]
    ben = client.post("/api/v1/tokens", auth=("ben", PASSWORD)).get_json()["token"]
    assert [enqueue(client, ann, f"Ann {n}").status_code for n in range(2)] == [202, 202]
    own_cap = enqueue(client, ann, "Ann 3")
    assert own_cap.status_code == 429 and int(own_cap.headers["Retry-After"]) > 0
    assert "you already have 2 background generations" in own_cap.get_json()["message"]
    assert enqueue(client, ben, "Ben 1").status_code == 202
    everyone = enqueue(client, ben, "Ben 2")
    assert everyone.status_code == 429 and "the background queue is full" in everyone.get_json()["message"]
    assert len(jobs.queue(redis.Redis.from_url(redis_url))) == 3  # nothing refused was queued

    run_queued_jobs(app, redis_url)  # finished jobs give their places back
    assert enqueue(client, ann, "Ann 3").status_code == 202


# -- real concurrency against gunicorn (item 2) --------------------------------------

@pytest.fixture
def served(tmp_path, sqlite_url, redis_url):
    """Start gunicorn (2 gevent workers, Redis) with the given settings; users made first."""
    servers = []

    def start(users: tuple[str, ...] = (), **settings) -> Gunicorn:
        app = make_app(sqlite_url, redis_url)
        for name in users:
            create_user(app, name)
        server = Gunicorn(tmp_path / f"blog{len(servers)}",
                          blog_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, METRICS_ENABLED="0",
                                   **{k: str(v) for k, v in settings.items()}), workers=2)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def in_parallel(count: int, request) -> list[httpx.Response]:
    """``request(i)`` ``count`` times at once, each on its own connection."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(request, range(count)))


def statuses(responses) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_parallel_wrong_passwords_get_exactly_the_limit(served):
    blog = served(users=("alice", "bob"), LOGIN_RATE_LIMIT="5 per minute", LOGIN_ADDRESS_RATE_LIMIT="1000 per minute")

    def guess_token(_):
        return httpx.post(blog.url + "/api/v1/tokens", headers=basic("alice", "wrong password"), timeout=30)

    assert statuses(in_parallel(40, guess_token)) == {401: 5, 429: 35}

    # The web form: 30 browsers, each with its own session and CSRF token, post at once.
    browsers = [httpx.Client(base_url=blog.url, timeout=30) for _ in range(30)]
    tokens = [csrf_token(browser.get("/login").text) for browser in browsers]

    def guess_form(i):
        return browsers[i].post("/login", data={"username": "bob", "password": "wrong password",
                                                "csrf_token": tokens[i]})

    assert statuses(in_parallel(30, guess_form)) == {401: 5, 429: 25}
    for browser in browsers:
        browser.close()


def test_parallel_ai_requests_get_exactly_the_limit(served):
    blog = served(users=("carol",), AI_RATE_LIMIT="10 per minute", AI_QUEUE_MAX_PER_USER=1000, AI_QUEUE_MAX=1000)
    token = httpx.post(blog.url + "/api/v1/tokens", headers=basic("carol", PASSWORD), timeout=30).json()["token"]

    def background(i):
        return httpx.post(blog.url + "/api/v1/generate", json={"title": f"Parallel {i}", "mode": "background"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)

    responses = in_parallel(40, background)
    assert statuses(responses) == {202: 10, 429: 30}
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)


def test_behind_one_trusted_proxy_each_client_has_its_own_address_limit(served):
    blog = served(users=("dora",), TRUSTED_PROXY_HOPS=1, LOGIN_ADDRESS_RATE_LIMIT="3 per minute",
                  LOGIN_RATE_LIMIT="1000 per minute")

    def login_from(address: str, password: str = "wrong password", spoofed: str = "") -> int:
        chain = f"{spoofed}, {address}" if spoofed else address
        return httpx.post(blog.url + "/api/v1/tokens", headers={**basic("dora", password), "X-Forwarded-For": chain},
                          timeout=30).status_code

    assert [login_from("198.51.100.1") for _ in range(3)] == [401, 401, 401]
    assert login_from("198.51.100.1", PASSWORD) == 429
    # A client cannot dodge its limit by writing its own X-Forwarded-For entries.
    assert login_from("198.51.100.1", PASSWORD, spoofed=f"192.0.2.{secrets.randbelow(250)}") == 429
    assert login_from("198.51.100.2", PASSWORD) == 200  # another client behind the same proxy


def test_without_trusted_proxies_forwarded_for_changes_nothing(served):
    blog = served(REGISTER_RATE_LIMIT="2 per hour")

    def sign_up_claiming(address: str, username: str) -> int:
        with httpx.Client(base_url=blog.url, timeout=30, headers={"X-Forwarded-For": address}) as browser:
            token = csrf_token(browser.get("/register").text)
            return browser.post("/register", data={"username": username, "password": PASSWORD, "confirm": PASSWORD,
                                                   "csrf_token": token}).status_code

    assert [sign_up_claiming(f"203.0.113.{n}", f"user{n}") for n in range(3)] == [302, 302, 429]


def test_the_in_process_windows_forget_expired_keys():
    from aiblog.rate_limits import LocalWindows

    now = [0.0]
    windows = LocalWindows(clock=lambda: now[0], sweep_every=100)
    minute = [Rate(1, 60)]
    for number in range(99):  # a crowd of addresses, once each
        assert windows.take([f"address-{number}"], minute, "m") == 0
    assert len(windows) == 99
    now[0] = 30.0
    assert windows.take(["address-0"], minute, "m") == 30  # take 100 sweeps: all still in their window
    assert len(windows) == 99
    now[0] = 61.0
    for number in range(100):
        windows.take(["latecomer"], minute, "m")  # the 200th take sweeps again
    assert len(windows) == 1


def test_a_background_job_whose_answer_was_cached_gives_its_attempt_back(sqlite_url, redis_url, sim):
    app = make_app(sqlite_url, redis_url, LLM_API="sim", LLM_BASE_URL=sim.url, AI_RATE_LIMIT="2 per minute")
    create_user(app, "cleo")
    client = fresh(app)
    token = client.post("/api/v1/tokens", auth=("cleo", PASSWORD)).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/generate", json={"title": "Known"}, headers=headers).status_code == 200  # 1 of 2
    assert enqueue(client, token, "Known").status_code == 202  # counted when queued: 2 of 2
    run_queued_jobs(app, redis_url)
    # The worker found the answer cached and gave the attempt back: room for one more.
    assert client.post("/api/v1/generate", json={"title": "New"}, headers=headers).status_code == 200
    assert client.post("/api/v1/generate", json={"title": "Newer"}, headers=headers).status_code == 429


def test_a_poll_as_a_job_ends_never_takes_it_for_a_dead_worker(sqlite_url, redis_url, sim, monkeypatch):
    """A status request can arrive after the job's code returned and before RQ
    recorded it as finished: that job is running, not abandoned by a dead worker."""
    from aiblog.ai import jobs

    app = make_app(sqlite_url, redis_url, LLM_API="sim", LLM_BASE_URL=sim.url, AI_RATE_LIMIT="1000 per minute")
    user_id = create_user(app, "dana")
    client = fresh(app)
    token = client.post("/api/v1/tokens", auth=("dana", PASSWORD)).get_json()["token"]
    seen = []
    free_place = jobs._free_place

    def poll_then_free(connection, job_id, owner):  # runs in the job's last step, before RQ's bookkeeping
        with app.app_context():
            seen.append(jobs.job_status(job_id, user_id, False)["status"])
        free_place(connection, job_id, owner)

    monkeypatch.setattr(jobs, "_free_place", poll_then_free)
    queued = enqueue(client, token, "Polled at the end")
    assert queued.status_code == 202
    run_queued_jobs(app, redis_url)
    assert seen == ["running"]
    final = client.get(queued.headers["Location"], headers={"Authorization": f"Bearer {token}"}).get_json()
    assert final["status"] == "done" and final["result"]["content"], final
