"""Small asyncio helpers to prepare a test against a blog: an account, an API
token, the ids of posts that exist."""
from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass

import aiohttp

from . import blog_api, limits


class SetupError(RuntimeError):
    """The target could not be prepared for a test (the message says why and what to do).

    ``kind`` names the failure like a failed request's error kind (status:500, ...)."""

    def __init__(self, message: str, kind: str = "setup"):
        super().__init__(message)
        self.kind = kind


class RefusedByLimits(SetupError):
    """The blog's rate limits refused a sign-up or a login (429): the run stops with this one line,
    since every later sign-up or login would be refused as well."""

    def __init__(self, action: str, retry_after: str | None):
        super().__init__(limits.refusal(action, retry_after), "status:429")


@dataclass
class Credentials:
    username: str
    password: str
    token: str


def client_session(timeout: float = 30.0, limit: int = 0) -> aiohttp.ClientSession:
    # unsafe=True: keep cookies set by an IP address such as 127.0.0.1.
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=timeout),
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
    )


async def register(target: str, username: str, password: str) -> None:
    """Create an account through the sign-up form (CSRF included)."""
    async with client_session() as session:
        async with session.get(target + blog_api.REGISTER) as response:
            html = await response.text()
            if response.status != 200:
                raise SetupError(f"GET {blog_api.REGISTER} answered {response.status}; is {target} an aiblog?",
                                 f"status:{response.status}")
        token = blog_api.csrf_token(html)
        if token is None:
            raise SetupError(f"{blog_api.REGISTER} has no csrf_token field; is {target} an aiblog?")
        form = {"username": username, "password": password, "confirm": password, "csrf_token": token}
        async with session.post(target + blog_api.REGISTER, data=form, allow_redirects=False) as response:
            if response.status == 429:
                raise RefusedByLimits(limits.SIGN_UP, response.headers.get("Retry-After"))
            if response.status not in (302, 303):
                body = (await response.text())[:300]
                raise SetupError(f"registering {username!r} answered {response.status}: {body}",
                                 f"status:{response.status}")


async def api_token(target: str, username: str, password: str) -> str:
    async with client_session() as session:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        async with session.post(target + blog_api.API_TOKENS, headers={"Authorization": f"Basic {basic}"}) as response:
            if response.status == 429:
                raise RefusedByLimits(limits.LOGIN, response.headers.get("Retry-After"))
            if response.status != 200:
                raise SetupError(f"POST {blog_api.API_TOKENS} for {username!r} answered {response.status}; "
                                 "check --user/--password (or BLOG_PERF_USER/BLOG_PERF_PASSWORD)",
                                 f"status:{response.status}")
            return (await response.json())["token"]


async def credentials(target: str, username: str | None = None, password: str | None = None) -> Credentials:
    """A token for the given account, or for a fresh account registered for this run."""
    username = username or os.environ.get("BLOG_PERF_USER")
    password = password or os.environ.get("BLOG_PERF_PASSWORD")
    if not username:
        username = f"perf-{blog_api.run_id()}"
        password = "perf-" + blog_api.run_id() + blog_api.run_id()
        await register(target, username, password)
    elif not password:
        raise SetupError("give --password (or BLOG_PERF_PASSWORD) together with --user")
    return Credentials(username, password, await api_token(target, username, password))


async def post_ids(target: str, limit: int = 300, per_page: int = 100) -> list[int]:
    """Ids of posts that exist, from the JSON API, spread over the whole list."""
    async with client_session() as session:
        async def page(number: int) -> dict:
            async with session.get(f"{target}{blog_api.API_POSTS}?page={number}&per_page={per_page}") as response:
                if response.status != 200:
                    raise SetupError(f"GET {blog_api.API_POSTS} answered {response.status}", f"status:{response.status}")
                return await response.json()

        first = await page(1)
        ids = [item["id"] for item in first["items"]]
        pages = int(first.get("pages") or 1)
        wanted_pages = min(pages - 1, max(0, limit // per_page - 1))
        for number in random.Random(7).sample(range(2, pages + 1), wanted_pages) if wanted_pages > 0 else []:
            ids.extend(item["id"] for item in (await page(number))["items"])
    return ids[:limit] if len(ids) > limit else ids
