"""Per-app shared objects (Redis pool, caches), kept in ``app.extensions``."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .monitoring import metrics
from .page_cache.backends import LocalPageCache, TieredPageCache
from .page_cache.versions import ScopeVersions, default_versions_path
from .rate_limits import RateLimiter
from .redis_store import RedisStore


@dataclass
class Services:
    redis: RedisStore
    versions: ScopeVersions  # this machine's, for pages and logged-in users
    pages: TieredPageCache | LocalPageCache
    limits: RateLimiter

    @classmethod
    def init_app(cls, app: Flask) -> "Services":
        store = RedisStore(app.config["REDIS_URL"])
        on_result = metrics.cache_result("page")
        path = app.config.get("PAGE_CACHE_VERSIONS_FILE") or default_versions_path(
            app.config["SQLALCHEMY_DATABASE_URI"])
        versions = ScopeVersions(path)
        ttl, max_bytes = app.config["PAGE_CACHE_TTL"], app.config["PAGE_CACHE_MAX_BYTES"]
        if store.enabled:
            pages = TieredPageCache(store, versions, ttl, on_result=on_result, max_bytes=max_bytes)
        else:
            pages = LocalPageCache(versions, ttl, on_result=on_result, max_bytes=max_bytes)
        services = cls(redis=store, versions=versions, pages=pages, limits=RateLimiter(store))
        app.extensions["aiblog"] = services
        return services


def services() -> Services:
    return current_app.extensions["aiblog"]
