"""The lock (requirements/*.txt, written by `make lock`) covers what
pyproject.toml asks for: `make run`, `make test` and the images install only
from it, so a dependency added to pyproject.toml without `make lock` would
silently be missing there."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Which install takes which slice of the lock (see the Makefile and service/Dockerfile).
SLICES = {
    "run.txt": [],
    "load.txt": ["load"],
    "test.txt": ["test"],
    "image.txt": ["load"],
    "operator-image.txt": ["operator"],
}


def requirements_of(extras: list[str]) -> list[Requirement]:
    """The project's requirements with ``extras``, its own extras (aiblog[x]) expanded."""
    wanted = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PYPROJECT["project"]["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "aiblog":
                pending.extend(requirement.extras)
            else:
                wanted.append(requirement)
    return wanted


def pins(lock_file: str) -> dict[str, set[Version]]:
    """name -> the versions the lock pins (a universal lock may pin two, by Python marker)."""
    found: dict[str, set[Version]] = {}
    text = (REPO / "requirements" / lock_file).read_text()
    for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M):
        found.setdefault(canonicalize_name(name), set()).add(Version(version))
    return found


@pytest.mark.parametrize("lock_file", SLICES)
def test_every_requirement_of_pyproject_is_pinned_in_its_lock_slice(lock_file):
    pinned = pins(lock_file)
    problems = []
    for requirement in requirements_of(SLICES[lock_file]):
        versions = pinned.get(canonicalize_name(requirement.name))
        if not versions:
            problems.append(f"{requirement.name} is not in requirements/{lock_file}")
        elif not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            problems.append(f"{requirement} but requirements/{lock_file} pins {sorted(map(str, versions))}")
    assert not problems, "the lock is stale, run `make lock`:\n" + "\n".join(problems)


def test_the_build_backend_is_pinned_too():
    pinned = pins("build.txt")
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        assert any(requirement.specifier.contains(v) for v in pinned.get(canonicalize_name(requirement.name), ())), \
            f"{requirement} is not pinned in requirements/build.txt: run `make lock`"


def test_every_pin_has_hashes():
    for lock_file in [*SLICES, "build.txt", "all.txt"]:
        text = (REPO / "requirements" / lock_file).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        missing = [entry.split()[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
        assert not missing, f"requirements/{lock_file}: no hash for {missing}"
