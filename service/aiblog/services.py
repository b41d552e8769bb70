"""Per-app shared objects (Redis pool, caches), kept in ``app.extensions``."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from . import metrics
from .page_cache import LocalPageCache, RedisPageCache, SharedGenerations, default_generations_path
from .redis_store import RedisStore


@dataclass
class Services:
    redis: RedisStore
    pages: RedisPageCache | LocalPageCache

    @classmethod
    def init_app(cls, app: Flask) -> "Services":
        store = RedisStore(app.config["REDIS_URL"])
        on_result = metrics.cache_result("page")
        if store.enabled:
            pages = RedisPageCache(store, app.config["PAGE_CACHE_TTL"], on_result=on_result)
        else:
            path = app.config.get("PAGE_CACHE_GENERATIONS_FILE") or default_generations_path(
                app.config["SQLALCHEMY_DATABASE_URI"])
            pages = LocalPageCache(SharedGenerations(path), app.config["PAGE_CACHE_TTL"], on_result=on_result)
        services = cls(redis=store, pages=pages)
        app.extensions["aiblog"] = services
        return services


def services() -> Services:
    return current_app.extensions["aiblog"]
