"""Password storage: argon2id for new hashes, Werkzeug scrypt hashes from
before still accepted and upgraded on login, and hashing that never stalls
the other requests of a gevent worker."""
from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from aiblog import passwords
from aiblog.auth.accounts import upgrade_password_hash, authenticate, find_user
from aiblog.extensions import db
from aiblog.models import User
from tests.support.blog import PASSWORD, bearer
from devstack import REPO

# One of OWASP's equivalent minimums for argon2id: 9 MiB, 4 passes, 1 lane.
ARGON2ID_OWASP = "$argon2id$v=19$m=9216,t=4,p=1$"


def stored_hash(app, username: str) -> str:
    with app.app_context():
        value = db.session.scalar(select(User.password_hash).where(User.username == username))
        db.session.remove()
    return value


def create_legacy_user(app, username: str, password: str = PASSWORD) -> str:
    """A user as the blog stored them before argon2id: a Werkzeug scrypt hash."""
    legacy_hash = generate_password_hash(password, method="scrypt")
    with app.app_context():
        db.session.add(User(username=username, password_hash=legacy_hash))
        db.session.commit()
        db.session.remove()
    return legacy_hash


def test_new_passwords_are_argon2id_with_owasp_parameters(app, client, auth):
    assert auth.register("alice", PASSWORD).status_code == 302
    assert stored_hash(app, "alice").startswith(ARGON2ID_OWASP)
    auth.logout()
    assert auth.login("alice", "not the password").status_code == 401
    assert auth.login("alice", PASSWORD).status_code == 302


def test_scrypt_hash_from_before_still_verifies_and_is_upgraded_on_login(app, client, auth):
    legacy_hash = create_legacy_user(app, "veteran")

    wrong = auth.login("veteran", "not the password")
    assert wrong.status_code == 401
    assert stored_hash(app, "veteran") == legacy_hash  # a failed login changes nothing

    assert auth.login("veteran", PASSWORD).status_code == 302
    upgraded = stored_hash(app, "veteran")
    assert upgraded.startswith(ARGON2ID_OWASP)
    assert not passwords.needs_rehash(upgraded)

    auth.logout()
    assert auth.login("veteran", "not the password").status_code == 401
    assert auth.login("veteran", PASSWORD).status_code == 302
    assert stored_hash(app, "veteran") == upgraded  # upgraded once, not at every login


def test_token_from_an_upgrading_login_works(app, client):
    """The API token carries the password hash's fingerprint: the one issued
    by the login that upgraded the hash must carry the new hash's."""
    create_legacy_user(app, "scripted")
    response = client.post("/api/v1/tokens", auth=("scripted", PASSWORD))
    assert response.status_code == 200
    assert stored_hash(app, "scripted").startswith(ARGON2ID_OWASP)
    token = response.get_json()["token"]
    created = client.post("/api/v1/posts", json={"title": "Still me", "body": "After the upgrade."},
                          headers=bearer(token))
    assert created.status_code == 201
    assert client.post("/api/v1/tokens", auth=("scripted", "not the password")).status_code == 401


def test_upgrade_never_overwrites_a_password_changed_meanwhile(app):
    create_legacy_user(app, "racer")
    changed = passwords.hash_password("a brand new password")
    with app.app_context():
        user = find_user("racer")  # holds the old hash, as a login does after verifying it
        with db.engine.begin() as other:  # meanwhile, another request changes the password
            other.execute(update(User).where(User.id == user.id).values(password_hash=changed))
        upgrade_password_hash(user, PASSWORD)
        assert user.password_hash == changed
        db.session.remove()
    assert stored_hash(app, "racer") == changed
    with app.app_context():
        assert authenticate("racer", PASSWORD) is None
        assert authenticate("racer", "a brand new password") is not None
        db.session.remove()


def test_unknown_user_and_wrong_password_fail_alike(app):
    create_legacy_user(app, "known")
    with app.app_context():
        assert authenticate("nobody", PASSWORD) is None
        assert authenticate("known", "not the password") is None
        assert authenticate("known", PASSWORD) is not None
        db.session.remove()


# Runs in a fresh process monkey-patched by gevent, as gunicorn's gevent
# worker is. A ticker greenlet counts how often it ran while each password
# operation ran in the main greenlet: zero means the worker stalled.
GEVENT_PROBE = r"""
from gevent import monkey

monkey.patch_all()

import json
import sys

import gevent
from werkzeug.security import generate_password_hash

from aiblog import passwords
from aiblog.auth.accounts import authenticate, register
from aiblog.extensions import db
from aiblog.models import User
from tests.conftest import make_app

ticks = 0


def ticker():
    global ticks
    while True:
        ticks += 1
        gevent.sleep(0.001)


def ticks_during(action):
    before = ticks
    result = action()
    return {"ticks": ticks - before, "ok": result is not None and result is not False}


app = make_app(sys.argv[1])
with app.app_context():
    db.session.add(User(username="legacy", password_hash=generate_password_hash("old password", method="scrypt")))
    db.session.commit()
    gevent.spawn(ticker)
    gevent.sleep(0)  # let the ticker start
    report = {
        "inline argon2 call (control)": ticks_during(lambda: passwords._hasher.hash("a password")),
        "register": ticks_during(lambda: register("greenlet", "a password")),
        "right password": ticks_during(lambda: authenticate("greenlet", "a password")),
        "wrong password": ticks_during(lambda: authenticate("greenlet", "wrong password")),
        "unknown user": ticks_during(lambda: authenticate("nobody", "a password")),
        "scrypt login with upgrade": ticks_during(lambda: authenticate("legacy", "old password")),
    }
print(json.dumps(report))
"""


def test_hashing_under_gevent_lets_other_greenlets_run(sqlite_url):
    done = subprocess.run([sys.executable, "-c", GEVENT_PROBE, sqlite_url], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    # The control: the same C code called inline blocks every greenlet.
    assert report.pop("inline argon2 call (control)")["ticks"] == 0, report
    for operation, outcome in report.items():
        assert outcome["ticks"] >= 1, f"{operation} stalled the other greenlets: {report}"
    assert [outcome["ok"] for outcome in report.values()] == [True, True, False, False, True], report
