"""The Redis-mode page cache across replicas: a hit costs no Redis round trip
(L1 in the process), L1 is not trusted while Redis is down, writes reach
other machines through pub/sub, and the writer reads fresh pages on any
replica at once."""
from __future__ import annotations


import pytest
import redis
from prometheus_client import REGISTRY

from aiblog.page_cache.backends import LISTS, TieredPageCache
from aiblog.page_cache.serving import FRESH_COOKIE
from aiblog.services import services
from tests.conftest import AuthActions, fresh_versions_file, make_app
from devstack import wait_until


def replica(database_url: str, redis_url: str):
    """An app with its own version-counter file: another machine, as far as the cache knows."""
    return make_app(database_url, redis_url, PAGE_CACHE_VERSIONS_FILE=fresh_versions_file())


def subscribed(app) -> bool:
    with app.app_context():
        cache = services().pages
        cache.ensure_listener()
        return cache.subscribed


@pytest.fixture
def replicas(sqlite_url, redis_url):
    one, two = replica(sqlite_url, redis_url), replica(sqlite_url, redis_url)
    for app in (one, two):
        wait_until(lambda: subscribed(app), 10, "the page-cache listener to subscribe")
    return one, two


def page_lookups() -> dict[str, float]:
    """The page cache's hit and miss counts of this process so far."""
    return {result: REGISTRY.get_sample_value("blog_cache_requests_total", {"cache": "page", "result": result}) or 0.0
            for result in ("hit", "miss")}


def page_reads_in_redis(redis_url: str) -> int:
    """Commands Redis has run that can read a page: GET, and the Lua lookup of L2."""
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("get", "evalsha", "eval"))


def test_hits_are_served_from_the_process_without_a_redis_round_trip(replicas, redis_url):
    one, _ = replicas
    reader = one.test_client()
    assert reader.get("/").status_code == 200  # miss: rendered, stored in L1 and L2
    with one.app_context():
        assert isinstance(services().pages, TieredPageCache)
    before, reads_before = page_lookups(), page_reads_in_redis(redis_url)
    response = reader.get("/")
    assert response.status_code == 200 and "Latest posts" in response.get_data(as_text=True)
    after = page_lookups()
    assert (after["hit"] - before["hit"], after["miss"] - before["miss"]) == (1, 0)  # a hit: no render
    assert page_reads_in_redis(redis_url) == reads_before  # and Redis was not asked for it


def test_while_redis_is_down_pages_come_from_the_database_not_from_a_possibly_stale_l1(replicas, redis_server):
    """The process cannot hear other replicas' invalidations while Redis is
    down, so it does not trust its L1 then: pages are rendered again."""
    one, _ = replicas
    reader = one.test_client()
    assert reader.get("/").status_code == 200
    with one.app_context():
        cache = services().pages
    redis_server.stop()
    try:
        wait_until(lambda: not cache.subscribed, 10, "the listener to notice the outage")
        before = page_lookups()
        response = reader.get("/")
        assert response.status_code == 200 and "Latest posts" in response.get_data(as_text=True)
        after = page_lookups()
        assert (after["hit"] - before["hit"], after["miss"] - before["miss"]) == (0, 1)
    finally:
        redis_server.start()


def test_a_write_on_one_replica_reaches_the_other(replicas):
    one, two = replicas
    anonymous_two = two.test_client()
    assert "Fresh from replica one" not in anonymous_two.get("/").get_data(as_text=True)  # cached on two

    writer = AuthActions(one.test_client())
    writer.register("replica-writer")
    assert writer.write("Fresh from replica one", "body").status_code == 302
    # Other users: within the pub/sub delay.
    wait_until(lambda: "Fresh from replica one" in anonymous_two.get("/").get_data(as_text=True), 5,
               "the invalidation to reach replica two")


def test_the_writer_sees_their_write_on_every_replica_at_once(replicas):
    one, two = replicas
    writer_one = one.test_client()
    auth = AuthActions(writer_one)
    auth.register("sticky-free")
    two_client = two.test_client()
    two_client.get("/")  # replica two has the page cached
    with two.app_context():
        services().pages.versions.bump = lambda *scopes: None  # two never hears of writes
    assert auth.write("Seen at once", "body").status_code == 302
    assert writer_one.get_cookie(FRESH_COOKIE) is not None
    assert "Seen at once" not in two_client.get("/").get_data(as_text=True)  # others: not yet
    # The writer's browser (its cookies) on replica two reads the fresh page.
    for cookie in ("session", FRESH_COOKIE):
        two_client.set_cookie(cookie, writer_one.get_cookie(cookie).value)
    assert "Seen at once" in two_client.get("/").get_data(as_text=True)


def test_a_lost_subscription_drops_every_page_when_it_comes_back(replicas, redis_url):
    import redis

    one, _ = replicas
    with one.app_context():
        cache = services().pages
        before = cache.versions.get(LISTS)
    redis.Redis.from_url(redis_url).client_kill_filter(_type="pubsub")
    wait_until(lambda: cache.versions.get(LISTS) > before and cache.subscribed, 10,
               "the listener to resubscribe and drop the machine's pages")
