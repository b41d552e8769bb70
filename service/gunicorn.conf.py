"""Kept for commands that still say ``gunicorn -c service/gunicorn.conf.py``:
the configuration ships inside the package as ``aiblog.gunicorn_conf`` (use
``gunicorn --config python:aiblog.gunicorn_conf`` or ``aiblog serve``)."""
from aiblog.gunicorn_conf import *  # noqa: F401,F403 - settings and server hooks
