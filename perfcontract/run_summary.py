"""The run's figures as lines in the runner's own log, for whoever reads it.

``blog-perf locust --log-summary`` ends with one line ``BLOG_PERF_SUMMARY
{json}`` (the Locust summary without its histograms, the parameters, the start
and end) and the HTML report as ``BLOG_PERF_REPORT i/n <base64 of gzip>``
lines. The LoadTest operator reads them through ``pods/log``: the runner pods
need no API credentials, and the operator needs only read access to logs.
Chunks stay well under the 16 KiB at which container runtimes split log lines.

The reader treats every byte as hostile (a LoadTest's author controls the
runner's image and scenario): the operator reads only the log's tail
(``TAIL_LINES``, ``TAIL_BYTES``), a summary line is parsed only when it is
under ``MAX_SUMMARY_BYTES`` and only when its fields have the right types, and
the report is decompressed as a stream that stops at ``MAX_REPORT_BYTES``.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import zlib

from . import faults

SUMMARY_PREFIX = "BLOG_PERF_SUMMARY "
REPORT_PREFIX = "BLOG_PERF_REPORT "
REPORT_CHUNK = 8000  # base64 characters per line
FORMAT = 1
MAX_REPORT_BYTES = 900_000  # HTML kept (a ConfigMap holds at most 1 MiB)
# A report of MAX_REPORT_BYTES that gzip cannot shrink, in base64 lines.
MAX_REPORT_CHUNKS = math.ceil((MAX_REPORT_BYTES + 1024) * 4 / 3 / REPORT_CHUNK)
MAX_SUMMARY_BYTES = 256 * 1024
# What the operator reads of a master's log: the report, the summary and a few lines after them.
TAIL_LINES = MAX_REPORT_CHUNKS + 50
TAIL_BYTES = MAX_REPORT_CHUNKS * (REPORT_CHUNK + 64) + MAX_SUMMARY_BYTES + 64 * 1024


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
        # Every few seconds' figures, for judging faults (perfcontract.faults; at most MAX_POINTS).
        "timeline": faults.timeline(locust.get("history") or []),
    }


def lines(document: dict, report_html: bytes | None) -> list[str]:
    out = []
    if report_html is not None and len(report_html) <= MAX_REPORT_BYTES:  # a larger one would be refused
        encoded = base64.b64encode(gzip.compress(report_html, mtime=0)).decode("ascii")
        chunks = [encoded[i:i + REPORT_CHUNK] for i in range(0, len(encoded), REPORT_CHUNK)] or [""]
        out += [f"{REPORT_PREFIX}{n}/{len(chunks)} {chunk}" for n, chunk in enumerate(chunks, 1)]
    out.append(SUMMARY_PREFIX + json.dumps(summary_of(document), separators=(",", ":")))
    return out


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_summary(log: str) -> dict:
    """The last summary line of a log, checked. Raises LogSummaryError when
    there is none, or when it is too long, not JSON, or of the wrong shape."""
    for line in reversed(log.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            if len(line) > MAX_SUMMARY_BYTES:
                raise LogSummaryError(f"the summary line has {len(line)} characters, over {MAX_SUMMARY_BYTES}")
            try:
                record = json.loads(line[len(SUMMARY_PREFIX):], parse_constant=_refuse_constant)
            except (ValueError, RecursionError) as exc:
                raise LogSummaryError(f"the summary line is not JSON ({exc}); was the log cut?") from None
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise LogSummaryError(f"the summary line is not format {FORMAT}")
            check_record(record)
            return record
    raise LogSummaryError("the log has no BLOG_PERF_SUMMARY line: the runner ended before its summary")


_SCALAR = (str, int, float, bool, type(None))
_RECORD_TYPES = {"timeline": (list, type(None)), "target": (str, type(None)), "started_at": (str, type(None)), "finished_at": (str, type(None)),
                 "exit_code": (int, type(None)), "error": (str, type(None)), "interrupted": (bool,),
                 "parameters": (dict, type(None)), "summary": (dict, type(None)), "thresholds": (list,)}


def _check_type(value, types: tuple, where: str) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types and value is not None):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise LogSummaryError(f"the summary's {where} is {type(value).__name__}, not {names}")


def _check_table(rows, where: str) -> None:
    _check_type(rows, (list,), where)
    for row in rows:
        _check_type(row, (dict,), f"{where} item")
        for key, value in row.items():
            numeric = key in ("requests", "failures", "occurrences", "rps", "users", "seconds", "failure_rate",
                              "time") or key.endswith("_ms")
            _check_type(value, (int, float, type(None)) if numeric else _SCALAR, f"{where}.{key}")


def check_record(record: dict) -> None:
    """The fields the operator reads have the types it expects (what the
    runner writes); anything else is a LogSummaryError, never a crash later."""
    for key, types in _RECORD_TYPES.items():
        _check_type(record.get(key, {"thresholds": [], "interrupted": False}.get(key)), types, key)
    summary = record.get("summary") or {}
    for key, value in summary.items():
        if key in ("entries", "errors") or (key == "steps" and value is not None):
            _check_table(value, f"summary.{key}")
        elif key in ("non_ai", "ai"):
            _check_type(value, (dict, type(None)), f"summary.{key}")
            for inner, figure in (value or {}).items():
                _check_type(figure, (int, float, type(None)), f"summary.{key}.{inner}")
        else:
            _check_type(value, _SCALAR, f"summary.{key}")
    if record.get("timeline"):
        _check_table(record["timeline"], "timeline")
    for key in ("requests", "failures", "rps", "failure_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms"):
        _check_type(summary.get(key), (int, float, type(None)), f"summary.{key}")
    parameters = record.get("parameters") or {}
    weights = parameters.get("task_weights")
    _check_type(weights, (dict, type(None)), "parameters.task_weights")
    for key, value in (weights or {}).items():
        _check_type(value, (int, float), f"parameters.task_weights.{key}")


def parse_report(log: str) -> bytes | None:
    """The HTML report carried in the log, or None when it is missing,
    incomplete, not gzip, or larger than MAX_REPORT_BYTES once decompressed
    (a gzip bomb is stopped at the limit, never inflated whole)."""
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
        if not 1 <= number <= of <= MAX_REPORT_CHUNKS or len(chunk) > REPORT_CHUNK:
            return None
        chunks[number], total = chunk, of
    if total is None or sorted(chunks) != list(range(1, total + 1)):
        return None
    try:
        packed = base64.b64decode("".join(chunks[n] for n in range(1, total + 1)), validate=True)
    except (ValueError, binascii.Error):
        return None
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip's framing
    try:
        html = inflater.decompress(packed, MAX_REPORT_BYTES + 1)
    except zlib.error:
        return None
    if len(html) > MAX_REPORT_BYTES or not inflater.eof:
        return None   # over the limit (the rest is never inflated), or cut short
    return html
