"""The accounts file the Locust users share (read and written without a blog),
and blog-perf's --accounts option refusing what it cannot use."""
from __future__ import annotations

import stat

import pytest

from loadtests.account_file import Account, read_accounts, write_accounts
from tests.support.perf import run_perf


def test_accounts_round_trip_with_owner_only_permissions(tmp_path):
    accounts = [Account("alice", "pass:with:colons"), Account("bob.b", "secret-1234")]
    path = write_accounts(tmp_path / "accounts.txt", accounts)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds passwords
    assert read_accounts(path) == accounts


def test_comments_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "accounts.txt"
    path.write_text("# load-test accounts\n\n  carol:pw-1  \n", encoding="utf-8")
    assert read_accounts(path) == [Account("carol", "pw-1")]


@pytest.mark.parametrize("text, problem", [
    ("alice\n", ":1: expected 'username:password'"),
    ("# only a comment\n", "lists no account"),
    ("ok:pw\n:no-name\n", ":2: expected 'username:password'"),
    ("bob:\n", ":1: expected 'username:password'"),
])
def test_a_bad_file_is_refused_naming_the_line(tmp_path, text, problem):
    path = tmp_path / "accounts.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=problem.replace("'", ".")) as caught:
        read_accounts(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot read the accounts file .*No such file"):
        read_accounts(tmp_path / "absent.txt")


@pytest.mark.parametrize("value, message", [
    ("0", "'0' must be greater than 0"),
    ("/nonexistent/accounts.txt", "cannot read the accounts file"),
])
def test_blog_perf_refuses_unusable_accounts_before_any_traffic(value, message):
    done = run_perf("locust", "--target", "http://127.0.0.1:9", "--accounts", value)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
