"""The accounts file the Locust scenario shares out among its users.

One ``username:password`` a line (blank lines and ``#`` comments skipped).
Kept free of HTTP clients and of Locust, so both the scenario (gevent) and the
runner that creates the accounts (asyncio) read and write it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Account:
    username: str
    password: str


def read_accounts(path: str | Path) -> list[Account]:
    """The accounts in ``path``. Raises ValueError naming the file and the problem."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the accounts file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    accounts = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, colon, password = line.partition(":")  # a username never holds a colon; a password may
        if not colon or not username.strip() or not password:
            raise ValueError(f"{path}:{number}: expected 'username:password'")
        accounts.append(Account(username.strip(), password))
    if not accounts:
        raise ValueError(f"the accounts file {path} lists no account")
    return accounts


def write_accounts(path: str | Path, accounts: list[Account]) -> Path:
    """Write ``accounts`` to ``path``, readable by its owner only (they hold passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(f"{a.username}:{a.password}\n" for a in accounts)
    return Path(path)
