"""Build aiblog's container images with podman (``make image``): the blog
image (every role but one) and the LoadTest operator's (``--target operator``).

    python3 scripts/image.py            # stand-in base from Debian's packages
    BASE_IMAGE=python:3.11-slim-bookworm@sha256:... python3 scripts/image.py

Without ``BASE_IMAGE`` the base is made here from Debian's own packages
(``debootstrap`` then ``podman import``), because no image registry can be
reached; it is cached outside the repo, keyed by its package list, so a fresh
clone on the same machine reuses it. The build reaches the package index
through the host's pip configuration, passed as build secrets (nothing of it
lands in a layer), and the local package folders it names, bind-mounted
read-only. Standard library only: it runs before any venv exists.
"""
from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "service" / "Dockerfile"
CONTAINERS_CONF = REPO / "deploy" / "podman" / "containers.conf"
IMAGE_NAME = "localhost/aiblog"
OPERATOR_IMAGE_NAME = "localhost/aiblog-operator"  # the Dockerfile's `operator` target

# The stand-in base: what an official slim Python image gives (a Python >= 3.11
# with venv and CA certificates), from Debian bookworm's packages.
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("ca-certificates", "python3", "python3-venv")
BASE_CACHE = Path(os.environ.get("AIBLOG_CACHE", Path.home() / ".cache" / "aiblog"))
# Left out of the base: documentation and apt's downloads (about 60 MB).
BASE_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
              "usr/share/info", "usr/share/locale")


class ImageError(RuntimeError):
    """A step of the image build failed; the message says what to do."""


def podman_env() -> dict[str, str]:
    """The environment every podman call runs with: the project's containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    if shutil.which("podman") is None:
        raise ImageError("podman not found: install it (apt-get install podman runc uidmap)")
    result = subprocess.run(["podman", *args], env=podman_env(), text=True,
                            capture_output=capture, **kwargs)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()[-1:] if capture else []
        raise ImageError(f"podman {args[0]} failed: {' '.join(detail) or 'exit ' + str(result.returncode)}")
    return result


def log(message: str) -> None:
    print(f">> {message}", file=sys.stderr, flush=True)


# --- the stand-in base ----------------------------------------------------------

def base_key() -> str:
    recipe = f"{BASE_SUITE} {BASE_MIRROR} {' '.join(sorted(BASE_PACKAGES))} prune={','.join(BASE_PRUNE)}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def base_tag() -> str:
    return f"localhost/aiblog-base:{BASE_SUITE}-{base_key()}"


def ensure_base() -> str:
    """The stand-in base image's tag, made once: debootstrap (about 2.5 min),
    kept as a tarball in BASE_CACHE, then ``podman import`` (about 2 min)."""
    tag = base_tag()
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    tarball = BASE_CACHE / f"base-{BASE_SUITE}-{base_key()}.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            raise ImageError("debootstrap not found: install it (apt-get install debootstrap)")
        BASE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BASE_CACHE, prefix="rootfs-") as rootfs:
            log(f"making the stand-in base: debootstrap {BASE_SUITE} (about 2.5 minutes, once)")
            done = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                                   BASE_SUITE, rootfs, BASE_MIRROR], capture_output=True, text=True)
            if done.returncode != 0:
                raise ImageError(f"debootstrap failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            for relative in BASE_PRUNE:
                folder = Path(rootfs) / relative
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
    log(f"importing the stand-in base as {tag}")
    podman("import", "--message", f"debootstrap {BASE_SUITE}: {' '.join(BASE_PACKAGES)}",
           str(tarball), tag)
    return tag


# --- the host's package index, handed to the build ------------------------------

def pip_settings() -> dict[str, str]:
    """What ``pip config list`` says (files and PIP_* variables), key -> value."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    if listed.returncode != 0:
        log(f"could not read pip's configuration with {sys.executable} (no pip?): the build uses pip's defaults")
    settings: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        match = re.match(r"^(?:[^.]*)\.([\w-]+)='(.*)'$", line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def pip_build_access(workdir: Path) -> tuple[list[str], list[str]]:
    """Build flags that give the build the host's package index: a pip.conf and
    the files it names as secrets (mounted under /run/secrets/ only during RUN),
    and the local folders it names as read-only volumes (a local simple index
    with its parent, where such mirrors keep the files its pages link to)."""
    secrets_args: list[str] = []
    folders: list[str] = []
    config = configparser.ConfigParser()
    config["global"] = {}
    for key, value in pip_settings().items():
        if key in {"cert", "constraint", "client-cert"} and Path(value).is_file():
            secret_id = f"pip-{key}"
            secrets_args += ["--secret", f"id={secret_id},src={value}"]
            config["global"][key] = f"/run/secrets/{secret_id}"
            continue
        for location in value.split():
            folder = Path(location.removeprefix("file://"))
            if folder.is_absolute() and folder.is_dir():
                folders.append(str(folder.parent if folder.name == "simple" else folder))
        config["global"][key] = value
    pip_conf = workdir / "pip.conf"
    with pip_conf.open("w") as handle:
        config.write(handle)
    secrets_args += ["--secret", f"id=pip-conf,src={pip_conf}"]
    volume_args = [arg for folder in dict.fromkeys(folders) for arg in ("--volume", f"{folder}:{folder}:ro")]
    return secrets_args, volume_args


# --- the image ------------------------------------------------------------------

def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def git_sha() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    sha = done.stdout.strip() or "nogit"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{sha}-dirty" if dirty else sha


def source_url() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "remote", "get-url", "origin"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def image_tag() -> str:
    """``localhost/aiblog:<version>-<git sha>`` (``-dirty`` when the tree has changes)."""
    return f"{IMAGE_NAME}:{project_version()}-{git_sha()}"


def build_image(base_image: str | None = None, tag: str | None = None, quiet: bool = False,
                also_latest: bool = True, target: str | None = None) -> str:
    """Build the image and return its tag. ``base_image`` None makes (or reuses)
    the stand-in base; ``also_latest`` also names it ``:latest`` in this
    machine's storage; ``target`` "operator" builds the operator's image
    (``tag`` then defaults to OPERATOR_IMAGE_NAME's)."""
    base_image = base_image or os.environ.get("BASE_IMAGE") or ensure_base()
    name = OPERATOR_IMAGE_NAME if target == "operator" else IMAGE_NAME
    tag = tag or image_tag().replace(IMAGE_NAME, name, 1)
    with tempfile.TemporaryDirectory(prefix="aiblog-build-") as workdir:
        secrets_args, volume_args = pip_build_access(Path(workdir))
        command = ["build", "--network", "host", "--pull=never" if base_image.startswith("localhost/") else "--pull=missing",
                   "--file", str(DOCKERFILE), "--build-arg", f"BASE_IMAGE={base_image}",
                   "--build-arg", f"VERSION={project_version()}", "--build-arg", f"REVISION={git_sha()}",
                   "--build-arg", f"SOURCE={source_url()}", *(["--target", target] if target else []),
                   *secrets_args, *volume_args, "--tag", tag,
                   *(["--tag", f"{name}:latest"] if also_latest else []), str(REPO)]
        log(f"podman build {tag} from {base_image}")
        done = podman(*command, check=False, capture=quiet)
        if done.returncode != 0:
            tail = "\n".join(((done.stdout or "") + (done.stderr or "")).splitlines()[-30:]) if quiet else ""
            raise ImageError(f"podman build failed (exit {done.returncode})\n{tail}".rstrip())
    return tag


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-only", action="store_true", help="only make (or find) the stand-in base")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.base_only:
            print(ensure_base())
            return 0
        tags = [build_image(), build_image(target="operator")]
    except ImageError as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 1
    for tag in tags:
        print(f"built {tag} ({image_size(tag) / 1e6:.0f} MB)")
    print(f"in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
