"""The dev stack: Redis, Postgres, the LLM simulator, the blog under gunicorn
(production config) and its RQ worker, started as real processes on free
loopback ports, for ``make run`` (scripts/devserver.py), ``make bench``, the
scripts and the tests.

Each part listens on 127.0.0.1 only, runs in a session of its own and keeps
its log in its folder (``processes.Service``). The names below are the
public API; import them from ``devstack``:

- ``ports``: free_port, port_open, port_holder, http_ok
- ``processes``: Service (the base of every part), StackError, StackTimeout,
  wait_until, require_binary, die_with_parent, REPO, VENV_BIN, and what /proc
  says of a process (children_of, rss_mb, cpu_seconds)
- ``backing_services``: Redis, Postgres, LLMSimulator (the launcher of ``blog-llm-sim``,
  whose server is ``devstack.llm_sim``)
- ``blog_processes``: Gunicorn, RQWorker, blog_environment, run_aiblog

Kept outside tests/ because ``make run`` and ``make bench`` must work without
the test suite, and outside loadtests/ because the blog's dev server is not a
load test.
"""
from .blog_processes import Gunicorn, RQWorker, blog_environment, run_aiblog
from .ports import free_port, http_ok, port_holder, port_open
from .processes import (REPO, VENV_BIN, Service, StackError, StackTimeout, children_of, cpu_seconds, die_with_parent,
                        require_binary, rss_mb, wait_until)
from .backing_services import LLMSimulator, Postgres, Redis

__all__ = ["REPO", "VENV_BIN", "Gunicorn", "LLMSimulator", "Postgres", "RQWorker", "Redis", "Service", "StackError",
           "StackTimeout", "blog_environment", "children_of", "cpu_seconds", "die_with_parent", "free_port", "http_ok",
           "port_holder", "port_open", "require_binary", "rss_mb", "run_aiblog", "wait_until"]
