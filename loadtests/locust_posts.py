"""The posts the Locust scenario knows: ids of posts that exist (so only
those are requested) and how many home pages there are."""
from __future__ import annotations

import logging
import random

from gevent.lock import Semaphore

from . import blog_api


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
