"""aiblog's container image for tests: built once per test session, and run
under podman the way Kubernetes runs it (the container, chart and operator
tests all use this module).

    from tests.support.container import aiblog_image, run_container   # noqa: F401 (fixture)

    def test_x(aiblog_image):
        with run_container(aiblog_image, ["aiblog", "migrate"], env={...}) as box:
            assert box.wait(timeout=60) == 0, box.logs()

- ``build_image()`` builds ``service/Dockerfile`` (from the stand-in base
  that ``scripts/image.py`` makes once and caches) and returns an ``Image``
  with its tag (``localhost/aiblog:test``), size and build time; a second
  call in the same process returns the same build. ``build_image("operator")``
  builds the operator's image (``localhost/aiblog-operator:test``). The
  ``aiblog_image`` and ``aiblog_operator_image`` fixtures (session scope) wrap
  them; import them into a conftest to use them.
- ``run_container(image, command, env=..., ...)`` starts a detached container
  locked down like the charts' pods by default: UID/GID 10001, read-only root
  (and none of podman's own writable tmpfs), tmpfs only on ``/tmp`` and the
  metrics dir, every capability dropped, no new privileges, host network
  (give the blog ``BIND_HOST=127.0.0.1``: on the host's network the image's
  ``0.0.0.0`` would listen on every interface). It returns a ``Container`` (a context manager
  that removes the container) with ``logs``, ``wait``, ``signal``, ``exec``,
  ``top``, ``diff`` and ``remove``.
- ``podman(*args)`` runs podman with the project's containers.conf
  (``deploy/podman/containers.conf``: runc and ulimits this machine needs).

When podman cannot run containers here, ``build_image`` fails the test with
one line saying what to install: never a silent skip.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
import importlib.util
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import httpx
import pytest

from devstack import LLMSimulator, Postgres, Redis, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "service" / "Dockerfile"


def _image_script():
    """scripts/image.py (what `make image` runs), as a module."""
    spec = importlib.util.spec_from_file_location("aiblog_image_script", REPO / "scripts" / "image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


image_script = _image_script()
CONTAINERS_CONF = image_script.CONTAINERS_CONF
ImageError = image_script.ImageError


def _dockerfile_user() -> str:
    return re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.M)[-1]


# Facts of the image, read from the Dockerfile (their one source).
IMAGE_USER = _dockerfile_user()  # "10001:10001"
IMAGE_UID = int(IMAGE_USER.split(":")[0])
# The image's one writable place (an emptyDir in a pod): gunicorn's metric files go in a folder there.
WRITABLE_DIRS = ("/tmp",)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """podman with the project's containers.conf; ``check`` raises with its stderr."""
    result = subprocess.run(["podman", *args], env=image_script.podman_env(), capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... failed: {result.stderr.strip()[-2000:]}")
    return result


@dataclass(frozen=True)
class Image:
    tag: str
    size_bytes: int
    build_seconds: float  # this session's build (a few seconds when every layer was cached)
    base: str


def podman_problem() -> str | None:
    """Why podman cannot run containers here, or None."""
    try:
        done = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                              env=image_script.podman_env(), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return "podman is not installed: install podman, runc, uidmap and debootstrap (make test does)"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"podman cannot run here ({reason}): check podman, runc, uidmap and deploy/podman/containers.conf"
    return None


@functools.cache
def build_image(target: str | None = None) -> Image:
    """Build (or find cached layers of) the image once per process: the blog
    image, or with ``target="operator"`` the LoadTest operator's image."""
    problem = podman_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    started = time.monotonic()
    name = image_script.OPERATOR_IMAGE_NAME if target == "operator" else image_script.IMAGE_NAME
    try:
        base = image_script.ensure_base()
        ran = subprocess.run(["podman", "run", "--rm", "--network", "host", base, "true"],
                             env=image_script.podman_env(), capture_output=True, text=True, timeout=120)
        if ran.returncode != 0:
            reason = (ran.stderr.strip().splitlines() or [f"exit {ran.returncode}"])[-1]
            pytest.fail(f"podman cannot run containers here ({reason}): see deploy/podman/containers.conf",
                        pytrace=False)
        # Rebuilt under ":test" every session: a stale "latest" of another tree is never tested.
        tag = image_script.build_image(base_image=base, tag=f"{name}:test", quiet=True, also_latest=False,
                                       target=target)
    except image_script.ImageError as exc:
        pytest.fail(f"the {name} image did not build: {exc}", pytrace=False)
    seconds = time.monotonic() - started
    _BUILT[target] = Image(tag=tag, size_bytes=image_script.image_size(tag), build_seconds=seconds, base=base)
    return _BUILT[target]


def built_images() -> list[Image]:
    """The images this process has built so far (for reports)."""
    return list(_BUILT.values())


_BUILT: dict[str | None, Image] = {}


@pytest.fixture(scope="session")
def aiblog_image() -> Image:
    """The blog image (every role but the operator), built once per session
    (import this into a conftest)."""
    return build_image()


@pytest.fixture(scope="session")
def aiblog_operator_image() -> Image:
    """The LoadTest operator's image (the blog image plus kopf and the Kubernetes client)."""
    return build_image("operator")


@dataclass
class Container:
    id: str
    name: str
    command: list[str] = field(default_factory=list)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def state(self) -> dict:
        done = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.id, check=False)
        status, _, code = done.stdout.strip().partition(" ")
        return {"status": status or "gone", "exit_code": int(code) if code.strip().lstrip("-").isdigit() else None}

    def running(self) -> bool:
        return self.state()["status"] == "running"

    def logs(self) -> str:
        """stdout and stderr so far, interleaved as podman keeps them."""
        done = podman("logs", self.id, check=False)
        return done.stdout + done.stderr

    def wait(self, timeout: float = 60) -> int:
        """Wait for the container to exit; its exit code. Fails the test at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state["status"] in {"exited", "stopped"}:
                return state["exit_code"]
            time.sleep(0.2)
        raise AssertionError(f"container {self.name} ({' '.join(self.command)}) still running after "
                             f"{timeout:g}s; logs:\n{self.logs()[-3000:]}")

    def signal(self, name: str = "TERM") -> None:
        podman("kill", "--signal", name, self.id)

    def exec(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess:
        return podman("exec", *(["--user", user] if user else []), self.id, *command, check=False)

    def top(self) -> list[dict[str, str]]:
        """Processes in the container (podman top): user, pid, ppid, comm, args."""
        done = podman("top", self.id, "user", "huser", "pid", "ppid", "comm", "args")
        lines = done.stdout.strip().splitlines()
        rows = []
        for line in lines[1:]:
            user, huser, pid, ppid, comm, *args = line.split()
            rows.append({"user": user, "huser": huser, "pid": pid, "ppid": ppid, "comm": comm,
                         "args": " ".join(args)})
        return rows

    def diff(self) -> list[str]:
        """Paths changed in the container's own layer (``podman diff``: A/C/D path)."""
        return [line.strip() for line in podman("diff", self.id).stdout.splitlines() if line.strip()]

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.id, check=False)


def locked_down_flags(user: str = IMAGE_USER, tmpfs: Iterable[str] = WRITABLE_DIRS) -> list[str]:
    """``podman run`` flags for the securityContext the charts give every pod."""
    flags = ["--user", user, "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", "--network", "host"]
    for path in tmpfs:  # an emptyDir: empty, writable by the pod's user
        flags += ["--tmpfs", f"{path}:rw,mode=1777"]
    return flags


def run_container(image: Image | str, command: list[str] | None = None, *,
                  env: Mapping[str, str] | None = None,
                  volumes: Iterable[tuple[str, str, str]] = (),
                  user: str = IMAGE_USER, tmpfs: Iterable[str] = WRITABLE_DIRS,
                  extra_flags: Iterable[str] = (), name: str | None = None) -> Container:
    """Start a detached container of ``image`` running ``command`` (None: the
    image's CMD), locked down (see ``locked_down_flags``). ``volumes`` are
    (host path, container path, "ro"|"rw") bind mounts."""
    tag = image.tag if isinstance(image, Image) else image
    name = name or f"aiblog-test-{secrets.token_hex(4)}"
    flags = ["--detach", "--name", name, "--label", "aiblog-test=1", *locked_down_flags(user, tmpfs)]
    for key, value in (env or {}).items():
        flags += ["--env", f"{key}={value}"]
    for host, inside, mode in volumes:
        flags += ["--volume", f"{host}:{inside}:{mode}"]
    done = podman("run", *flags, *extra_flags, tag, *(command or []))
    return Container(id=done.stdout.strip(), name=name, command=list(command or ["(CMD)"]))


# --- a containerised blog and the stack around it (the container and operator tests share it) ---

LLM_ANSWER_SECONDS = 3.0  # long enough for a SIGTERM to land during a generation
SEED_POSTS = 60  # more than the 5 pages the Locust scenario may ask for
SECRET_KEY = secrets.token_hex(32)  # one per run, as a chart's Secret: tokens work on every blog container


# --- the stack around the containers -------------------------------------------

def throwaway_dir() -> Path:
    # Not pytest's tmp_path: its parents are private to root, and Postgres runs as `postgres`.
    return Path(tempfile.mkdtemp(prefix="aiblog-container-"))


@pytest.fixture(scope="module")
def stack():
    workdir = throwaway_dir()
    postgres = Postgres(workdir).start()
    redis = Redis(workdir).start()
    llm = LLMSimulator(workdir, answer_seconds=LLM_ANSWER_SECONDS).start()
    yield {"postgres": postgres, "redis": redis, "llm": llm, "workdir": workdir}
    llm.stop()
    redis.stop()
    postgres.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def blog_env(stack, **more: str) -> dict[str, str]:
    """The environment a chart gives the blog's containers (plain HTTP on loopback)."""
    return {"BLOG_ENV": "production", "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": stack["postgres"].url, "REDIS_URL": stack["redis"].url,
            "LLM_API": "sim", "LLM_BASE_URL": stack["llm"].url, "LLM_SIMULATED": "1",
            "SESSION_COOKIE_SECURE": "false", "WEB_CONCURRENCY": "1", "WORKER_METRICS_PORT": "0",
            "PORT": str(free_port()), "METRICS_PORT": str(free_port()),
            # The only change from a pod: on the host's network, listen on loopback only.
            "BIND_HOST": "127.0.0.1", **more}


def run_to_end(image, command: list[str], env: dict, timeout: float = 120, **kwargs) -> tuple[int, str]:
    with run_container(image, command, env=env, **kwargs) as box:
        code = box.wait(timeout)
        return code, box.logs()


class Blog:
    """A blog container (the image's default command) and its two ports."""

    def __init__(self, image, env: dict):
        self.env = env
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.metrics_url = f"http://127.0.0.1:{env['METRICS_PORT']}"
        self.box: Container = run_container(image, None, env=env)

    def wait_healthy(self, timeout: float = 60) -> "Blog":
        def healthy():
            if not self.box.running():
                raise AssertionError(f"the blog container exited:\n{self.box.logs()[-3000:]}")
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200

        try:
            wait_until(healthy, timeout, "the blog container's /healthz")
        except BaseException:
            self.box.remove()  # no container left behind by a failed start
            raise
        return self

    def __enter__(self) -> "Blog":
        return self

    def __exit__(self, *exc) -> None:
        self.box.remove()


@pytest.fixture(scope="module")
def migrated(aiblog_image, stack):
    """The schema made by the image's migrate command, and posts seeded."""
    env = blog_env(stack)
    runs = [run_to_end(aiblog_image, ["aiblog", "migrate"], env) for _ in range(2)]
    # --force: a throwaway production-mode stack (seed refuses production otherwise).
    code, output = run_to_end(aiblog_image, ["aiblog", "seed", "--force", "--posts", str(SEED_POSTS)], env)
    assert code == 0, output
    return runs


@pytest.fixture(scope="module")
def blog(aiblog_image, stack, migrated):
    server = Blog(aiblog_image, blog_env(stack)).wait_healthy()
    yield server
    server.box.remove()
