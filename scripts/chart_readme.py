"""The values table of a chart's README.md, generated from the comments of its values.yaml.

values.yaml is the chart's documentation (each value has a comment on the lines above
it); this writes it out as the README's table, between the markers below, so the two
never drift (tests/charts/test_chart_readme.py checks it).

    python scripts/chart_readme.py charts/blog charts/monitoring          # rewrite the tables
    python scripts/chart_readme.py --check charts/blog charts/monitoring  # exit 1 if one is stale
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

START, END = "<!-- values table: scripts/chart_readme.py -->", "<!-- end of values table -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\"/-]+):(?:\s|$)")
SECTION = re.compile(r"^# -- (?P<title>.*?)\s*-*$")
GROUP = object()  # the default of a map whose keys have rows of their own


@dataclass
class Row:
    section: str
    key: tuple[str, ...]
    default: object
    description: str

    @property
    def path(self) -> str:
        return ".".join(self.key)


def documented(values_file: Path) -> list[Row]:
    """One row per value: a scalar or list, or a map whose own keys carry no comments."""
    lines = values_file.read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    comments: dict[tuple, str] = {}  # what each key's row says (its own comment, or the one it shares)
    own: dict[tuple, str] = {}  # the comment written right above the key
    sections: dict[tuple, str] = {}
    order: list[tuple] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    section = ""
    sibling: tuple[int, str] | None = None  # the key on the line just above: (indent, its comment)
    inside_list: int | None = None  # the indent of the list a line belongs to: documented with its key
    for line in lines:
        stripped = line.strip()
        indent_now = len(line) - len(line.lstrip())
        if inside_list is not None and stripped and indent_now >= inside_list and \
                (indent_now > inside_list or stripped.startswith("-")):
            continue
        inside_list = indent_now if stripped.startswith("- ") or stripped == "-" else None
        if inside_list is not None:
            continue
        match = KEY.match(line)
        if SECTION.match(line):
            section, pending, sibling = SECTION.match(line)["title"], [], None
        elif stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
        elif match and not stripped.startswith("-"):
            indent, key = len(match["indent"]), match["key"].strip('"')
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = tuple(p for _, p in stack) + (key,)
            stack.append((indent, key))
            # A key with no comment of its own shares the one of the sibling right above it,
            # or, as the first key of a commented map, that map's.
            parent = comments.get(path[:-1], "") if not any(p[:-1] == path[:-1] for p in order) else ""
            own[path] = " ".join(pending)
            text = own[path] or (sibling[1] if sibling and sibling[0] == indent else parent)
            comments[path], sections[path], pending, sibling = text, section, [], (indent, text)
            order.append(path)
        else:
            pending, sibling = [], None
    rows: list[Row] = []
    for path in order:
        value = values
        for part in path:
            value = value[part]
        if any(path[:len(row.key)] == row.key and row.default is not GROUP for row in rows):
            continue  # inside a map documented whole
        described = [p for p in order if p[:len(path)] == path and len(p) > len(path) and own[p]]
        if isinstance(value, dict) and value and described:  # a group: its keys have their own rows
            if own[path]:
                rows.append(Row(sections[path], path, GROUP, comments[path]))
            continue
        rows.append(Row(sections[path], path, value, comments[path]))
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    out, section = [], None
    for row in rows:
        if row.section != section:
            section = row.section
            out += ["", f"**{section}**", "", "| Value | Default | Description |", "|---|---|---|"]
        default = "" if row.default is GROUP else f"`{cell(json.dumps(row.default, separators=(', ', ': ')))}`"
        out.append(f"| `{row.path}` | {default} | {cell(row.description)} |")
    return "\n".join(out[1:])


def rewritten(readme: Path, chart: Path) -> str:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers to write the table between")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(documented(chart / 'values.yaml'))}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables (exit 1)")
    parser.add_argument("charts", nargs="+", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for chart in args.charts:
        readme = chart / "README.md"
        new = rewritten(readme, chart)
        if new != readme.read_text():
            stale.append(str(readme))
            if not args.check:
                readme.write_text(new)
    if stale:
        print(("stale (run python scripts/chart_readme.py " + " ".join(map(str, args.charts)) + "): " if args.check
               else "rewrote: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
