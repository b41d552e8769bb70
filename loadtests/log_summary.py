"""The run's figures as lines in the runner's own log, for whoever reads it.

``blog-perf locust --log-summary`` ends with one line ``BLOG_PERF_SUMMARY
{json}`` (the Locust summary without its histograms, the parameters, the start
and end) and the HTML report as ``BLOG_PERF_REPORT i/n <base64 of gzip>``
lines. The LoadTest operator reads them through ``pods/log``: the runner pods
need no API credentials, and the operator needs only read access to logs.
Chunks stay well under the 16 KiB at which container runtimes split log lines.
"""
from __future__ import annotations

import base64
import gzip
import json

SUMMARY_PREFIX = "BLOG_PERF_SUMMARY "
REPORT_PREFIX = "BLOG_PERF_REPORT "
REPORT_CHUNK = 8000  # base64 characters per line
FORMAT = 1


class LogSummaryError(ValueError):
    """The log holds no usable summary (the run died first, or the log was cut)."""


def _without_histograms(summary: dict | None) -> dict | None:
    if summary is None:
        return None
    entries = [{k: v for k, v in entry.items() if k != "response_times"} for entry in summary.get("entries", [])]
    return {**summary, "entries": entries}


def summary_of(document: dict) -> dict:
    """The compact record of a Locust run from a results.json document."""
    locust = (document.get("runs") or {}).get("locust") or {}
    return {
        "format": FORMAT,
        "target": document.get("target") or (document.get("environment") or {}).get("target"),
        "started_at": locust.get("started_at"), "finished_at": locust.get("finished_at"),
        "exit_code": locust.get("exit_code"), "error": locust.get("error"),
        "interrupted": bool(document.get("interrupted")),
        "parameters": locust.get("parameters"),
        "summary": _without_histograms(locust.get("summary")),
        "thresholds": document.get("thresholds") or [],
    }


def lines(document: dict, report_html: bytes | None) -> list[str]:
    out = []
    if report_html is not None:
        encoded = base64.b64encode(gzip.compress(report_html, mtime=0)).decode("ascii")
        chunks = [encoded[i:i + REPORT_CHUNK] for i in range(0, len(encoded), REPORT_CHUNK)] or [""]
        out += [f"{REPORT_PREFIX}{n}/{len(chunks)} {chunk}" for n, chunk in enumerate(chunks, 1)]
    out.append(SUMMARY_PREFIX + json.dumps(summary_of(document), separators=(",", ":")))
    return out


def parse_summary(log: str) -> dict:
    """The last summary line of a log. Raises LogSummaryError when there is none."""
    for line in reversed(log.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                record = json.loads(line[len(SUMMARY_PREFIX):])
            except json.JSONDecodeError as exc:
                raise LogSummaryError(f"the summary line is not JSON ({exc}); was the log cut?") from None
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise LogSummaryError(f"the summary line is not format {FORMAT}")
            return record
    raise LogSummaryError("the log has no BLOG_PERF_SUMMARY line: the runner ended before its summary")


def parse_report(log: str) -> bytes | None:
    """The HTML report carried in the log, or None when it is missing or incomplete."""
    chunks: dict[int, str] = {}
    total = None
    for line in log.splitlines():
        if not line.startswith(REPORT_PREFIX):
            continue
        try:
            position, chunk = line[len(REPORT_PREFIX):].split(" ", 1) if " " in line[len(REPORT_PREFIX):] \
                else (line[len(REPORT_PREFIX):], "")
            number, of = (int(part) for part in position.split("/"))
        except ValueError:
            return None
        chunks[number], total = chunk, of
    if total is None or sorted(chunks) != list(range(1, total + 1)):
        return None
    try:
        return gzip.decompress(base64.b64decode("".join(chunks[n] for n in range(1, total + 1))))
    except (ValueError, OSError, EOFError):
        return None
