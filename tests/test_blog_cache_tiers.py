"""The Redis-mode page cache across replicas: a hit costs no Redis round trip
(L1 in the process), writes reach other machines through pub/sub, and the
writer reads fresh pages on any replica at once."""
from __future__ import annotations


import pytest

from aiblog.page_cache import FRESH_COOKIE, LISTS, TieredPageCache
from aiblog.services import services
from tests.conftest import AuthActions, fresh_generations_file, make_app
from tests.support.processes import wait_until


def replica(database_url: str, redis_url: str):
    """An app with its own generations file: another machine, as far as the cache knows."""
    return make_app(database_url, redis_url, PAGE_CACHE_GENERATIONS_FILE=fresh_generations_file())


def subscribed(app) -> bool:
    with app.app_context():
        cache = services().pages
        cache._ensure_listener()
        return cache._subscribed


@pytest.fixture
def replicas(sqlite_url, redis_url):
    one, two = replica(sqlite_url, redis_url), replica(sqlite_url, redis_url)
    for app in (one, two):
        wait_until(lambda: subscribed(app), 10, "the page-cache listener to subscribe")
    return one, two


def test_hits_are_served_from_the_process_without_redis(replicas, redis_server):
    one, _ = replicas
    reader = one.test_client()
    assert reader.get("/").status_code == 200  # miss: rendered, stored in L1 and L2
    with one.app_context():
        assert isinstance(services().pages, TieredPageCache)
    redis_server.stop()  # a hit must not need Redis at all
    try:
        response = reader.get("/")
        assert response.status_code == 200 and "Latest posts" in response.get_data(as_text=True)
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
        services().pages.generations.bump = lambda *scopes: None  # two never hears of writes
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
        before = cache.generations.get(LISTS)
    redis.Redis.from_url(redis_url).client_kill_filter(_type="pubsub")
    wait_until(lambda: cache.generations.get(LISTS) > before and cache._subscribed, 10,
               "the listener to resubscribe and drop the machine's pages")
