"""Per-app shared objects (Redis pool, caches), kept in ``app.extensions``."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from . import metrics
from .generations import SharedGenerations, default_generations_path
from .page_cache import LocalPageCache, TieredPageCache
from .rate_limits import RateLimiter
from .redis_store import RedisStore


@dataclass
class Services:
    redis: RedisStore
    generations: SharedGenerations  # this machine's, for pages and logged-in users
    pages: TieredPageCache | LocalPageCache
    limits: RateLimiter

    @classmethod
    def init_app(cls, app: Flask) -> "Services":
        store = RedisStore(app.config["REDIS_URL"])
        on_result = metrics.cache_result("page")
        path = app.config.get("PAGE_CACHE_GENERATIONS_FILE") or default_generations_path(
            app.config["SQLALCHEMY_DATABASE_URI"])
        generations = SharedGenerations(path)
        ttl, max_bytes = app.config["PAGE_CACHE_TTL"], app.config["PAGE_CACHE_MAX_BYTES"]
        if store.enabled:
            pages = TieredPageCache(store, generations, ttl, on_result=on_result, max_bytes=max_bytes)
        else:
            pages = LocalPageCache(generations, ttl, on_result=on_result, max_bytes=max_bytes)
        services = cls(redis=store, generations=generations, pages=pages, limits=RateLimiter(store))
        app.extensions["aiblog"] = services
        return services


def services() -> Services:
    return current_app.extensions["aiblog"]
