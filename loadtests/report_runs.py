"""The report's sections on the suite's runs: concurrency, the cache test and
the Locust scenario. Each draws only from its own part of results.json and
says "not measured" when that part is missing."""
from __future__ import annotations

from html import escape

from . import svg
from .report_capacity import capacity_part
from .report_html import fmt_value, html_section, html_table, not_measured


def _levels_series(endpoints: list[dict], pick) -> list[tuple[str, list]]:
    return [(e.get("label", e["name"]), [(lv["level"], pick(lv)) for lv in e.get("levels", [])])
            for e in endpoints if e.get("levels")]


def concurrency_section(run: dict | None, ceiling: dict | None = None, anchor: str = "concurrency",
                        title: str = "Concurrency") -> str:
    if not run:
        return html_section(anchor, title, not_measured("The concurrency test"))
    endpoints = run.get("endpoints", [])
    ceiling_endpoints = (ceiling or {}).get("endpoints", [])
    parts = []
    for note in run.get("notes", []):
        parts.append(f'<p class="warn">{escape(note)}</p>')
    measured = [e for e in endpoints if e.get("levels")]
    charts = [
        svg.line_chart("Latency p95 by concurrency", f"{anchor}-p95",
                       _levels_series(measured, lambda lv: lv["latency_ms"]["p95"]),
                       "concurrent clients", "ms", log_y=True, categorical_x=True,
                       empty_message="no successful request: see the error rate"),
        svg.line_chart("Throughput by concurrency", f"{anchor}-throughput",
                       _levels_series(measured + ceiling_endpoints, lambda lv: lv.get("throughput_rps")),
                       "concurrent clients", "requests/s", categorical_x=True,
                       empty_message="no successful request: see the error rate"),
        svg.line_chart("Error rate by concurrency", f"{anchor}-errors",
                       _levels_series(measured, lambda lv: None if lv.get("error_rate") is None else lv["error_rate"] * 100),
                       "concurrent clients", "% of requests failed", categorical_x=True,
                       empty_message="no request was sent"),
    ]
    if any(lv.get("ceiling_ratio") is not None for e in measured for lv in e["levels"]):
        charts.append(svg.line_chart(
            "Throughput as share of the bare Flask ceiling", f"{anchor}-ceiling",
            _levels_series(measured, lambda lv: None if lv.get("ceiling_ratio") is None else lv["ceiling_ratio"] * 100),
            "concurrent clients", "% of ceiling", categorical_x=True, reference=("60 % target", 60.0)))
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    for endpoint in measured:
        name = endpoint.get("label", endpoint["name"])
        parts.append(f"<h3>{escape(name)}</h3>")
        parts.append('<div class="charts">' + svg.line_chart(
            f"{name}: latency percentiles", f"{anchor}-{endpoint['name']}-percentiles",
            [(pct, [(lv["level"], lv["latency_ms"][pct]) for lv in endpoint["levels"]]) for pct in ("p50", "p95", "p99")],
            "concurrent clients", "ms", log_y=True, categorical_x=True,
            empty_message="no successful request: see the error rate") + "</div>")
        rows = []
        for lv in endpoint["levels"]:
            latency = lv["latency_ms"]
            kinds = ", ".join(f"{escape(k)}: {v}" for k, v in lv.get("error_kinds", {}).items()) or "—"
            rows.append([str(lv["level"]), f"{lv['attempts']:,}", fmt_value(lv.get("throughput_rps"), "rps"),
                         fmt_value(latency["p50"], "ms"), fmt_value(latency["p95"], "ms"), fmt_value(latency["p99"], "ms"),
                         fmt_value(latency["max"], "ms"), fmt_value(lv.get("error_rate"), "ratio"), kinds,
                         fmt_value(lv.get("ceiling_ratio"), "ratio")
                         + (" <span class=\"muted\">(interrupted)</span>" if lv.get("interrupted") else "")])
        parts.append(html_table(["clients", "requests", "throughput", "p50", "p95", "p99", "max", "error rate",
                             "errors by kind", "share of ceiling"], rows, numeric={0, 1, 2, 3, 4, 5, 6, 7, 9}))
    return html_section(anchor, title, "".join(parts))


def _mean_cached(entry: dict) -> float | None:
    values = [c["ms"] for c in entry.get("cached", []) if c.get("ok")]
    return sum(values) / len(values) if values else None


def _cache_charts(titles: list[dict], uncached: dict, cached: dict, concurrent: dict) -> str:
    charts = [svg.bar_chart("Generation time per title: first (uncached) vs following (cached)", "cache-titles",
                            [t["title"] for t in titles],
                            [("uncached", [t["uncached"]["ms"] if t.get("uncached") and t["uncached"].get("ok") else None
                                           for t in titles]),
                             ("cached (mean)", [_mean_cached(t) for t in titles])],
                            "ms", log_y=True, empty_message="no generation succeeded: see failures")]
    charts.append(svg.bar_chart("Uncached vs cached: mean, p50, p95", "cache-stats", ["mean", "p50", "p95"],
                                [("uncached", [uncached.get(k) for k in ("mean", "p50", "p95")]),
                                 ("cached", [cached.get(k) for k in ("mean", "p50", "p95")])],
                                "ms", log_y=True, empty_message="no generation succeeded: see failures"))
    if concurrent:
        latency = concurrent.get("latency_ms") or {}
        charts.append(svg.bar_chart(f"Cached generation at {concurrent.get('clients')} concurrent clients",
                                    "cache-concurrent", ["p50", "p95", "p99"],
                                    [("client-side", [latency.get(k) for k in ("p50", "p95", "p99")])]
                                    + ([("server-side", [(concurrent.get("server_ms") or {}).get(k)
                                                         for k in ("p50", "p95", "p99")])]
                                       if concurrent.get("server_ms") else []),
                                    "ms", empty_message="no cached request succeeded: see the error rate"))
    return '<div class="charts">' + "".join(charts) + "</div>"


def _kinds(counts: dict | None) -> str:
    return escape(", ".join(f"{k}: {v}" for k, v in (counts or {}).items()) or "—")


def _cache_summary_tables(summary: dict, uncached: dict, cached: dict) -> str:
    stats_table = html_table(["", "count", "mean", "p50", "p95", "p99"], [
        [label, str(s.get("count", 0)), fmt_value(s.get("mean"), "ms"), fmt_value(s.get("p50"), "ms"),
         fmt_value(s.get("p95"), "ms"), fmt_value(s.get("p99"), "ms")]
        for label, s in (("uncached (first call)", uncached), ("cached (following calls)", cached))],
        numeric={1, 2, 3, 4, 5})
    return stats_table + html_table(["figure", "value"], [
        ["speed-up (mean)", fmt_value(summary.get("speedup_mean"), "x")],
        ["speed-up (p50)", fmt_value(summary.get("speedup_p50"), "x")],
        ["calls", fmt_value(summary.get("attempts"), "count")],
        ["failures", fmt_value(summary.get("failures"), "count")],
        ["failure rate", fmt_value(summary.get("failure_rate"), "ratio")],
        ["failures by kind", _kinds(summary.get("error_kinds"))],
        ["cached calls not served from the cache", fmt_value(summary.get("cached_calls_not_from_cache"), "count")],
        ["titles whose cached text differed", fmt_value(summary.get("titles_with_different_content"), "count")],
    ], numeric={1})


def _call(call: dict) -> str:
    return fmt_value(call.get("ms"), "ms") if call.get("ok") else f'<span class="fail">{escape(str(call.get("error")))}</span>'


def _cache_calls_table(titles: list[dict]) -> str:
    rows = [[escape(entry["title"]), _call(entry.get("uncached") or {}),
             ", ".join(_call(c) for c in entry.get("cached", [])) or "—"] for entry in titles]
    return "<h3>Every call</h3>" + html_table(["title", "first (uncached)", "following (cached)"], rows)


def _cache_concurrent_table(concurrent: dict) -> str:
    latency = concurrent.get("latency_ms") or {}
    server = concurrent.get("server_ms") or {}
    return "<h3>Cached generation under concurrency</h3>" + html_table(["figure", "value"], [
        ["clients", escape(str(concurrent.get("clients")))],
        ["offered rate", escape(f"{concurrent['rate_rps']:g} req/s" if concurrent.get("rate_rps") else "back to back")],
        ["requests", fmt_value(concurrent.get("attempts"), "count")],
        ["client-side p50 / p95 / p99", " / ".join(fmt_value(latency.get(k), "ms") for k in ("p50", "p95", "p99"))],
        ["server-side p50 / p95 / p99", " / ".join(fmt_value(server.get(k), "ms") for k in ("p50", "p95", "p99"))
         if server else '<span class="muted">not measured (the blog sends no timing)</span>'],
        ["error rate", fmt_value(concurrent.get("error_rate"), "ratio")],
        ["errors by kind", _kinds(concurrent.get("error_kinds"))],
    ], numeric={1})


def cache_section(run: dict | None) -> str:
    if not run:
        return html_section("cache", "Cache: uncached vs cached generation", not_measured("The cache test"))
    summary = run.get("summary") or {}
    titles = run.get("titles", [])
    uncached, cached = summary.get("uncached_ms") or {}, summary.get("cached_ms") or {}
    concurrent = run.get("concurrent") or {}
    parts = [f'<p class="warn">{escape(note)}</p>' for note in run.get("notes", [])]
    parts.append(_cache_charts(titles, uncached, cached, concurrent))
    parts.append(_cache_summary_tables(summary, uncached, cached))
    parts.append(_cache_calls_table(titles))
    if concurrent:
        parts.append(_cache_concurrent_table(concurrent))
    return html_section("cache", "Cache: uncached vs cached generation", "".join(parts))


def locust_section(run: dict | None) -> str:
    if not run:
        return html_section("locust", "Locust scenario", not_measured("The Locust scenario"))
    parts = []
    if run.get("error"):
        parts.append(f'<p class="warn">{escape(run["error"])}</p>')
    history = run.get("history") or []
    summary = run.get("summary") or {}

    def series(key):
        return [(h["t"], h.get(key)) for h in history]

    parts.append('<div class="charts">' + "".join([
        svg.line_chart("Requests per second over time", "locust-rps",
                       [("requests/s", series("rps")), ("failures/s", series("failures_per_s")),
                        ("429 backpressure/s", series("backpressure_per_s"))],
                       "seconds", "per second", empty_message="no interval was recorded"),
        svg.line_chart("Latency over time (per interval)", "locust-latency",
                       [("p50", series("p50_ms")), ("p95", series("p95_ms")), ("non-AI p95", series("non_ai_p95_ms"))],
                       "seconds", "ms", log_y=True, empty_message="no interval was recorded"),
        svg.line_chart("Users over time", "locust-users", [("users", series("users"))], "seconds", "users",
                       empty_message="no interval was recorded"),
    ]) + "</div>")
    parts.append(html_table(["figure", "value"], [
        ["requests", fmt_value(summary.get("requests"), "count")],
        ["failed requests", fmt_value(summary.get("failures"), "count")],
        ["deliberate 429s (backpressure, not failures)", fmt_value(summary.get("backpressure_429"), "count")],
        ["failure rate", fmt_value(summary.get("failure_rate"), "ratio")],
        ["requests/s", fmt_value(summary.get("rps"), "rps")],
        ["p50 / p95 (all but 429s)", f'{fmt_value(summary.get("p50_ms"), "ms")} / {fmt_value(summary.get("p95_ms"), "ms")}'],
        ["non-AI p50 / p95 / p99", " / ".join(fmt_value((summary.get("non_ai") or {}).get(k), "ms") for k in ("p50_ms", "p95_ms", "p99_ms"))],
        ["AI generation p50 / p95 / p99", " / ".join(fmt_value((summary.get("ai") or {}).get(k), "ms") for k in ("p50_ms", "p95_ms", "p99_ms"))],
    ], numeric={1}))
    parts.append(capacity_part(run.get("capacity")))
    rows = [[escape(e["method"]), escape(e["name"]), f"{e['requests']:,}", f"{e['failures']:,}", fmt_value(e.get("p50_ms"), "ms"),
             fmt_value(e.get("p95_ms"), "ms"), fmt_value(e.get("p99_ms"), "ms"), fmt_value(e.get("max_ms"), "ms"),
             fmt_value(e.get("rps"), "rps")] for e in summary.get("entries", [])]
    parts.append("<h3>Requests by route</h3>" + html_table(
        ["method", "route", "requests", "failures", "p50", "p95", "p99", "max", "rate"], rows, numeric={2, 3, 4, 5, 6, 7, 8}))
    if summary.get("errors"):
        parts.append("<h3>Failures</h3>" + html_table(["method", "route", "error", "count"], [
            [escape(e["method"]), escape(e["name"]), escape(e["error"]), str(e["occurrences"])] for e in summary["errors"]],
            numeric={3}))
    if run.get("log_tail") and (run.get("error") or run.get("exit_code") not in (0, 1)):
        parts.append(f"<details><summary>Locust log (end)</summary><pre>{escape(run['log_tail'])}</pre></details>")
    return html_section("locust", "Locust scenario", "".join(parts))
