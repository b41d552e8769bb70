"""The aiblog image, built from the stand-in base and run the way the charts
run it: UID 10001, read-only root, a tmpfs only on /tmp,
every capability dropped, no new privileges, host network. Its dependencies
are throwaway Postgres, Redis and the LLM simulator on loopback
(devstack's launchers)."""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from devstack import Postgres, free_port, wait_until
from tests.support.container import (DOCKERFILE, IMAGE_UID, SEED_POSTS, WRITABLE_DIRS, Blog, blog_env, image_script,
                                     podman, run_container, run_to_end, throwaway_dir)

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

GRACEFUL_TIMEOUT = 20  # aiblog.gunicorn_conf.graceful_timeout


@pytest.fixture(scope="module")
def token(blog):
    from aiblog.cli import DEMO_PASSWORD, DEMO_USER

    answer = httpx.post(blog.url + "/api/v1/tokens", auth=(DEMO_USER, DEMO_PASSWORD), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


# --- the Dockerfile as text ----------------------------------------------------

def test_dockerfile_pins_its_base_runs_as_a_numeric_user_and_keeps_no_secret():
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    base = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M).group(1)
    assert re.search(r"@sha256:[0-9a-f]{64}$", base), f"the default base is not pinned by digest: {base}"
    stages: list[str] = []
    for line in instructions:
        if line.startswith("FROM"):
            words = line.split()
            assert words[1] == "${BASE_IMAGE}" or words[1] in stages, f"{line}: not the base or an earlier stage"
            stages += words[3:4]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), f"last USER is not a numeric non-root uid:gid: {users}"
    assert not [line for line in instructions if re.match(r"ADD\s+\S*https?://", line)], "ADD of a URL"
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|CREDENTIAL)\w*=", re.I)
    leaks = [line for line in instructions if line.split()[0] in ("ENV", "ARG") and secretish.search(line)]
    assert not leaks, f"secrets in ENV/ARG: {leaks}"
    # Every role would inherit it; the operator's pod has no such folder (it crashed at start).
    assert not [line for line in instructions if line.startswith("ENV") and "PROMETHEUS_MULTIPROC_DIR" in line]
    commands = [line for line in instructions if line.split()[0] in ("CMD", "ENTRYPOINT")]
    assert commands and all(line.split(None, 1)[1].startswith("[") for line in commands), \
        f"CMD/ENTRYPOINT not in exec form (a shell as PID 1 would swallow SIGTERM): {commands}"


def test_build_context_leaves_out_tests_git_and_venv():
    ignored = (DOCKERFILE.parents[1] / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") if "*" in ignored else 0] == "*", "the context starts from nothing"
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    assert not allowed & {"tests", ".git", ".venv", "charts", "docs"}, allowed
    # What the context holds: the allowed paths less the .dockerignore's exclusions below them.
    repo = DOCKERFILE.parents[1]
    files = [f for entry in allowed for f in ([repo / entry] if (repo / entry).is_file() else (repo / entry).rglob("*"))
             if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
             and not any(part.endswith(".egg-info") for part in f.parts) and f != DOCKERFILE]
    size = sum(f.stat().st_size for f in files)
    print(f"\nbuild context: {len(files)} files, {size / 1e6:.1f} MB")
    assert size < 5e6, f"the build context grew to {size / 1e6:.1f} MB: does .dockerignore leave out data?"


def test_a_machine_without_a_working_podman_gets_one_line_saying_what_to_install(tmp_path, monkeypatch):
    from tests.support.container import podman_problem

    monkeypatch.setenv("PATH", str(tmp_path))  # no podman at all
    assert podman_problem() == ("podman is not installed: install podman, runc, uidmap and debootstrap "
                                 "(make test does)")
    fake = tmp_path / "podman"  # a podman that cannot run containers, as crun fails on this machine
    fake.write_text("#!/bin/sh\necho 'Error: cgroups in hybrid mode not supported' >&2\nexit 125\n")
    fake.chmod(0o755)
    problem = podman_problem()
    assert problem.startswith("podman cannot run here (Error: cgroups in hybrid mode not supported)")
    assert "\n" not in problem


# --- the image -----------------------------------------------------------------

def test_image_builds_and_holds_no_compiler_pip_tests_git_build_secrets_or_files_of_its_user(aiblog_image):
    print(f"\nimage {aiblog_image.tag}: {aiblog_image.size_bytes / 1e6:.0f} MB, "
          f"built in {aiblog_image.build_seconds:.0f} s (base {aiblog_image.base})")
    assert aiblog_image.size_bytes < 450e6, "the image grew past 450 MB"
    probe = ("import shutil, sys, pathlib, importlib.util;"
             "tools = [c for c in ('gcc', 'cc', 'make', 'pip', 'pip3') if shutil.which(c)];"
             "leftovers = [p for p in ('/src', '/wheels', '/opt/build', '/root/.cache/pip', '/.git')"
             " if pathlib.Path(p).exists()] + [m for m in ('tests', 'pip') if importlib.util.find_spec(m)];"
             "import aiblog, loadtests, gunicorn, locust; print(tools, leftovers)")
    # As root, to see every corner of the filesystem.
    code, output = run_to_end(aiblog_image, ["python3", "-c", probe], {}, user="0:0")
    assert code == 0, output
    assert output.strip() == "[] []", f"compilers/pip or build leftovers in the image: {output}"
    code, owned = run_to_end(aiblog_image, ["find", "/", "-xdev", "-user", str(IMAGE_UID)], {}, user="0:0")
    assert code == 0 and owned.strip() == "", f"the image's user owns files: {owned[:500]}"
    # The host's pip configuration and CA bundle were build secrets: nothing of them is kept.
    config = podman("image", "inspect", "--format", "{{json .Config.Env}}", aiblog_image.tag).stdout
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", aiblog_image.tag).stdout
    assert "PIP_" not in config, config
    assert "/opt/pypi" not in history and "BEGIN CERTIFICATE" not in history
    code, found = run_to_end(aiblog_image, ["find", "/", "-xdev", "-name", "pip.conf"], {}, user="0:0")
    assert found.strip() == "", found
    labels = podman("image", "inspect", "--format", "{{json .Labels}}", aiblog_image.tag).stdout
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.version",
                  "org.opencontainers.image.licenses"):
        assert label in labels


@pytest.mark.parametrize("command", [["aiblog", "serve", "--help"], ["blog-worker"], ["blog-perf", "--help"]],
                         ids=lambda command: " ".join(command[:2]))
def test_every_role_has_its_command_in_the_image(aiblog_image, command):
    if command == ["blog-worker"]:  # RQ's worker has no --help: it must at least refuse to run without Redis
        code, output = run_to_end(aiblog_image, command, {"REDIS_URL": ""})
        assert code == 1 and "blog-worker needs Redis" in output, output
        return
    code, output = run_to_end(aiblog_image, command, {})
    assert code == 0 and "usage" in output.lower(), output


def test_the_operator_has_its_own_image_and_the_blog_image_stays_without_its_weight(aiblog_image,
                                                                                       aiblog_operator_image):
    print(f"\nimage {aiblog_operator_image.tag}: {aiblog_operator_image.size_bytes / 1e6:.0f} MB")
    code, output = run_to_end(aiblog_operator_image, [], {})  # its CMD: the operator, told no namespace
    assert code == 2 and "give --namespace NAME (or WATCH_NAMESPACES)" in output, output
    code, output = run_to_end(aiblog_operator_image, ["blog-perf", "--help"], {})  # built on the blog image
    assert code == 0, output
    code, output = run_to_end(aiblog_image, ["python3", "-c", "import kubernetes"], {})
    assert code == 1 and "No module named 'kubernetes'" in output, output
    assert aiblog_operator_image.size_bytes > aiblog_image.size_bytes + 50e6  # what the split saves each blog pod


def test_migrations_create_the_schema_and_a_second_run_is_harmless(migrated, stack):
    for code, output in migrated:
        assert code == 0 and "database is up to date" in output, output
    # psycopg2 explicitly, as the blog does (SQLAlchemy 2.1 would pick psycopg 3).
    engine = sqlalchemy.create_engine(stack["postgres"].url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
        posts = connection.execute(sqlalchemy.text("select count(*) from posts")).scalar()
    engine.dispose()
    assert {"users", "posts", "alembic_version"} <= tables, tables
    assert posts >= SEED_POSTS


def test_blog_serves_pages_and_readiness_and_keeps_metrics_off_the_public_port(blog):
    assert httpx.get(blog.url + "/readyz", timeout=5).status_code == 200
    home = httpx.get(blog.url + "/", timeout=10)
    assert home.status_code == 200 and "Welcome to aiblog" in home.text or "Benchmark post" in home.text
    post_path = re.search(r'href="(/post/\d+)"', home.text).group(1)
    post = httpx.get(blog.url + post_path, timeout=10)
    assert post.status_code == 200 and "<article" in post.text
    assert httpx.get(blog.url + "/metrics", timeout=5).status_code == 404
    metrics = httpx.get(blog.metrics_url + "/metrics", timeout=5)
    assert metrics.status_code == 200 and "blog_http_request_total{" in metrics.text, metrics.text[:500]


def test_blog_worker_finishes_a_generation_requested_through_the_api(aiblog_image, stack, blog, token):
    with run_container(aiblog_image, ["blog-worker"], env=blog_env(stack)) as worker:
        title = f"Containers at rest {secrets.token_hex(3)}"
        asked = httpx.post(blog.url + "/api/v1/generate", json={"title": title, "mode": "background"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert asked.status_code == 202, asked.text

        def finished():
            assert worker.running(), worker.logs()
            body = httpx.get(blog.url + asked.json()["url"], headers={"Authorization": f"Bearer {token}"},
                             timeout=5).json()
            assert body["status"] != "failed", body
            return body if body["status"] == "done" else None

        body = wait_until(finished, 60, "the background generation")
        assert body["result"], body
        worker.signal("TERM")
        assert worker.wait(30) == 0, worker.logs()


def test_blog_perf_locust_from_the_image_writes_its_report_to_a_mounted_folder(aiblog_image, blog, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)  # written by the image's user
    code, output = run_to_end(aiblog_image, ["blog-perf", "locust", "--target", blog.url, "--out", "/results",
                                             "--users", "4", "--spawn-rate", "4", "--duration", "10", "--quiet"],
                              {}, timeout=180, volumes=[(str(results), "/results", "rw")])
    assert code == 0, output[-3000:]
    import json

    run = json.loads((results / "results.json").read_text())["runs"]["locust"]
    assert run["summary"]["requests"] > 0, run["summary"]
    assert (results / "report.html").stat().st_size > 1000


def test_no_process_runs_as_root_and_nothing_is_written_outside_the_mounts(aiblog_image, blog):
    processes = blog.box.top()
    assert len(processes) >= 2, processes  # the gunicorn master and a worker
    assert not [p for p in processes if p["user"] in ("root", "0") or p["huser"] in ("root", "0")], processes
    host_pids = podman("top", blog.box.id, "hpid").stdout.split()[1:]
    for pid in host_pids:
        uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
        assert uids.split()[1:] == [str(IMAGE_UID)] * 4, f"process {pid}: {uids}"
    # What podman itself changes in any container (mount points for /etc/hosts and the like).
    with run_container(aiblog_image, ["true"]) as idle:
        idle.wait(30)
        podmans_own = set(idle.diff())
    changed = [line for line in blog.box.diff()
               if line not in podmans_own and not any(line.split()[-1].startswith(d) for d in WRITABLE_DIRS)]
    assert not changed, f"written outside {WRITABLE_DIRS}: {changed}"
    logs = blog.box.logs()
    assert "Read-only file system" not in logs, logs[-3000:]
    assert "Control server error" not in logs, logs[-3000:]


def test_pid_1_reaps_orphaned_children(blog):
    # sleep outlives the python that started it: it is reparented to PID 1 (gunicorn).
    made = blog.box.exec("python3", "-c", "import subprocess; print(subprocess.Popen(['sleep', '0.3']).pid)")
    assert made.returncode == 0, made.stderr

    def reaped():
        rows = podman("top", blog.box.id, "pid", "comm").stdout.split("\n")[1:]
        return not any(row.split()[-1:] == ["sleep"] for row in rows if row.strip())

    # A zombie stays in the process table until its parent waits for it.
    wait_until(reaped, 15, "PID 1 to reap the orphaned sleep")


def test_readyz_is_503_while_postgres_is_stopped(aiblog_image, stack):
    workdir = throwaway_dir()
    postgres = Postgres(workdir).start()
    env = blog_env(stack, DATABASE_URL=postgres.url)
    try:
        code, output = run_to_end(aiblog_image, ["aiblog", "migrate"], env)
        assert code == 0, output
        with Blog(aiblog_image, env).wait_healthy() as server:
            assert httpx.get(server.url + "/readyz", timeout=5).status_code == 200
            postgres.stop()
            answer = httpx.get(server.url + "/readyz", timeout=15)
            assert answer.status_code == 503, answer.text
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200  # liveness has no dependencies
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_sigterm_lets_a_slow_request_finish_then_exits_0(aiblog_image, stack, migrated, token):
    with Blog(aiblog_image, blog_env(stack)).wait_healthy() as server:
        answer: dict = {}

        def slow_generation():
            # A fresh title: no cache, so the request lasts as long as the LLM's answer.
            answer["response"] = httpx.post(
                server.url + "/api/v1/generate", json={"title": f"Graceful {secrets.token_hex(4)}", "mode": "sync"},
                headers={"Authorization": f"Bearer {token}"}, timeout=60)

        before = stack["llm"].stats()["in_progress"]
        request = threading.Thread(target=slow_generation)
        request.start()
        def reached_the_llm():
            assert request.is_alive(), f"the request ended before the stop signal: {answer['response'].text}"
            return stack["llm"].stats()["in_progress"] > before

        wait_until(reached_the_llm, 15, "the generation to reach the LLM")
        stopped_at = time.monotonic()
        server.box.signal("TERM")
        request.join(GRACEFUL_TIMEOUT + 10)
        assert answer["response"].status_code == 200, answer["response"].text
        assert answer["response"].json().get("content"), answer["response"].text
        assert server.box.wait(GRACEFUL_TIMEOUT + 5) == 0, server.box.logs()[-3000:]
        assert time.monotonic() - stopped_at < GRACEFUL_TIMEOUT + 5


def _documented_podman_line() -> str:
    """The "try the image" command of docs/container-image.md, its continuation lines joined."""
    readme = (DOCKERFILE.parents[1] / "docs" / "container-image.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "podman run --rm --read-only" in b)
    return block.replace("\\\n", " ").strip()


def test_the_documented_podman_run_line_serves_the_blog_as_written(aiblog_image):
    """Exactly as a reader types it, but for the image's tag, free ports and a
    name to stop it by: no --read-only-tmpfs=false, no extra mounts."""
    line = _documented_podman_line()
    port, metrics_port, name = free_port(), free_port(), f"aiblog-readme-{secrets.token_hex(4)}"
    assert line.startswith("podman run ") and " localhost/aiblog " in line, line
    ours = f"podman run --detach --name {name} --label aiblog-test=1 -e PORT={port} -e METRICS_PORT={metrics_port} "
    command = ours + line[len("podman run "):].replace(" localhost/aiblog ", f" {aiblog_image.tag} ")
    done = subprocess.run(["bash", "-c", command], env=image_script.podman_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        def serving():
            state = podman("inspect", name, "--format", "{{.State.Running}}", check=False).stdout.strip()
            if state != "true":
                raise AssertionError(f"the container stopped: {podman('logs', name, check=False).stderr[-3000:]}")
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        wait_until(serving, 120, "the README's container to serve its home page")
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
        assert "<article" in home or "post/" in home, home[:500]
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
        logs = podman("logs", name, check=False)
        assert "PermissionError" not in logs.stdout + logs.stderr, logs.stderr[-3000:]
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
