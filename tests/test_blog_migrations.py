"""Migrations: usernames are unique regardless of case in the database itself
(issue 12, item 12), and each migration only expands the schema, so the app of
the previous head keeps working against the upgraded database (expand/contract:
during a rolling update old pods serve while the new schema is in place)."""
from __future__ import annotations

import subprocess
import sys
import tarfile
import io
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from aiblog import sqlalchemy_url
from devstack import REPO

VERSIONS = REPO / "service" / "aiblog" / "migrations" / "versions"


def insert_user(connection, username: str) -> None:
    connection.execute(text("INSERT INTO users (username, password_hash, role, created_at) "
                            "VALUES (:name, 'x', 'author', CURRENT_TIMESTAMP)"), {"name": username})


def test_usernames_differing_only_in_case_are_refused_by_the_database(database_url):
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.begin() as connection:
            insert_user(connection, "CaseUser")
        with pytest.raises(IntegrityError):
            with engine.begin() as connection:  # what a racing second sign-up does
                insert_user(connection, "caseuser")
        with engine.begin() as connection:
            names = connection.execute(text("SELECT username FROM users WHERE lower(username) = 'caseuser'")).scalars()
            assert list(names) == ["CaseUser"]
    finally:
        engine.dispose()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def previous_head() -> str:
    """The commit just before the newest migration landed (HEAD while it is uncommitted)."""
    newest = max(VERSIONS.glob("*.py"), key=lambda p: int(git("log", "-1", "--format=%ct", "--diff-filter=A", "--", str(p)) or 1 << 62))
    added_in = git("log", "-1", "--format=%H", "--diff-filter=A", "--", str(newest))
    return f"{added_in}^" if added_in else "HEAD"


OLD_APP_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])  # what the old lock pins and this venv does not have
sys.path.insert(0, sys.argv[1])
import aiblog
assert Path(aiblog.__file__).is_relative_to(sys.argv[1]), aiblog.__file__
from sqlalchemy.exc import IntegrityError
from aiblog import create_app
from aiblog.extensions import db
from aiblog.models import Post, User

app = create_app({"DATABASE_URL": sys.argv[2], "REDIS_URL": "", "WTF_CSRF_ENABLED": False})
with app.app_context():
    user = User(username="OldPodUser")
    user.set_password("old-pod-password-1")
    db.session.add(user)
    db.session.commit()
    post = Post(title="Written by the old app", body="*old*", html="<p><em>old</em></p>", author_id=user.id)
    db.session.add(post)
    db.session.commit()
    post_id = post.id
    db.session.add(User(username="oldpoduser", password_hash="x"))
    try:
        db.session.commit()
        raise SystemExit("a username differing only in case was stored")
    except IntegrityError:  # the old app's sign-up turns this into "taken"
        db.session.rollback()
client = app.test_client()
assert client.get("/").status_code == 200
page = client.get(f"/post/{post_id}")
assert page.status_code == 200 and "Written by the old app" in page.get_data(as_text=True)
print("old app ok")
"""


@pytest.fixture(scope="module")
def previous_dependencies(tmp_path_factory) -> Path:
    """The packages the previous head's lock pins and this venv lacks (or has at
    another version), installed with their hashes into a folder put first on the
    old app's path: old pods run their own image, with their own dependencies."""
    import importlib.metadata
    import re

    lock = git("show", f"{previous_head()}:requirements/run.txt")
    blocks = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)([^\n]*\n(?:[ \t]+--hash=[^\n]*\n?)*)", lock, re.M)
    wanted = []
    for name, version, rest in blocks:
        try:
            same = importlib.metadata.version(name) == version
        except importlib.metadata.PackageNotFoundError:
            same = False
        if not same:
            wanted.append(f"{name}=={version}{rest.rstrip()}")
    folder = tmp_path_factory.mktemp("previous-dependencies")
    if wanted:
        requirements = folder / "requirements.txt"
        requirements.write_text("\n".join(wanted) + "\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--require-hashes",
                        "--target", str(folder / "site"), "-r", str(requirements)],
                       check=True, capture_output=True, text=True, timeout=300)
    return folder / "site"


def test_the_previous_heads_app_works_against_the_upgraded_schema(database_url, tmp_path, previous_dependencies):
    commit = previous_head()
    old_versions = git("ls-tree", "--name-only", f"{commit}:service/aiblog/migrations/versions").split()
    assert len([v for v in old_versions if v.endswith(".py")]) == len(list(VERSIONS.glob("*.py"))) - 1
    archive = subprocess.run(["git", "archive", commit, "service/aiblog"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    result = subprocess.run([sys.executable, "-c", OLD_APP_SCRIPT, str(tmp_path / "service"), database_url,
                             str(previous_dependencies)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "old app ok" in result.stdout, result.stdout + result.stderr[-3000:]
