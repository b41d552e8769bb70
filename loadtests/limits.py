"""The blog's rate limits as a load test meets them: the limits a stack that
exists to be load-tested sets, and the one line that says so when a blog's
limits refuse the suite's sign-ups or logins.

Kept free of HTTP clients and of Locust, so the stacks (``Stack``, ``make
run``, the operator's end-to-end test), the asyncio testers and the Locust
scenario (gevent) share it.
"""
from __future__ import annotations

# A load test signs its users up and logs them in from one address, at the
# spawn rate: the production defaults (5 sign-ups an hour per address, 30
# failed logins a minute, counted while the password is being checked) would
# refuse it after a few users, and 300 post lists a minute per address are
# soon used by many Locust processes. Only stacks that exist to be measured
# (make bench, the perf tests, make run for development, the operator's
# end-to-end run) set these. The AI queue caps stay: the suite generates
# synchronously, never through background jobs.
LOAD_TEST_LIMITS = {
    "REGISTER_RATE_LIMIT": "100000 per minute",
    "LOGIN_RATE_LIMIT": "100000 per minute",
    "LOGIN_ADDRESS_RATE_LIMIT": "100000 per minute",
    "API_LIST_RATE_LIMIT": "100000 per minute",
}

# The settings that refuse each action the suite takes, as the settings table names them.
SIGN_UP = "sign-up"
LOGIN = "login"
LIMITS_OF = {
    SIGN_UP: ("REGISTER_RATE_LIMIT",),
    LOGIN: ("LOGIN_RATE_LIMIT", "LOGIN_ADDRESS_RATE_LIMIT"),
}


def refusal(action: str, retry_after: str | int | None) -> str:
    """One line: the blog's limits refused ``action`` (SIGN_UP or LOGIN) with a 429, and what to do."""
    settings = " / ".join(LIMITS_OF[action])
    wait = f"Retry-After {str(retry_after).strip()} s" if retry_after not in (None, "") else "no Retry-After"
    return (f"the blog's rate limits refused a {action} (429, {wait}; {settings}): give existing accounts with "
            f"--accounts FILE (username:password lines; --user/--password for the cache and concurrency tests) "
            f"or raise {settings} on the blog")
