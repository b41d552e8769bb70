"""report.html: one self-contained file rendered only from results.json.

No script, stylesheet, font or image is fetched: styles are inline, charts are
inline SVG (svg.py), text is HTML text (CJK renders with the system's fonts).
Each section draws from its own part of the document and says "not measured"
when that part is missing, so one failed part never blanks the others.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from perfcontract import results_file

from . import figures as figures_mod
from . import stats, svg

CSS = """
:root { color-scheme: light; --fg:#1f2937; --muted:#6b7280; --line:#e5e7eb; --ok:#15803d; --bad:#b91c1c; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC",
  "Noto Sans CJK JP", "PingFang SC", "Hiragino Sans", "Microsoft YaHei", sans-serif; color:var(--fg); background:#f9fafb; }
header.top { background:#111827; color:#f9fafb; padding:16px 24px; }
header.top h1 { margin:0 0 4px; font-size:20px; }
header.top p { margin:0; color:#d1d5db; }
nav.sections { position:sticky; top:0; z-index:2; background:#fff; border-bottom:1px solid var(--line);
  padding:8px 24px; display:flex; flex-wrap:wrap; gap:6px 14px; }
nav.sections a { color:#1d4ed8; text-decoration:none; }
main { padding: 8px 24px 40px; max-width: 1200px; }
section.part { background:#fff; border:1px solid var(--line); border-radius:8px; margin:18px 0; padding:4px 18px 14px; }
section.part > h2 { font-size:17px; border-bottom:1px solid var(--line); padding-bottom:6px; }
h3 { font-size:15px; margin:18px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border-bottom:1px solid var(--line); padding:4px 10px; text-align:left; vertical-align:top; }
td.num, th.num { text-align:right; white-space:nowrap; }
.pass { color:var(--ok); font-weight:600; } .fail { color:var(--bad); font-weight:600; }
.muted { color:var(--muted); } .warn { background:#fef3c7; border:1px solid #f59e0b; padding:8px 12px; border-radius:6px; }
.charts { display:grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap:12px; }
svg.chart { background:#fff; border:1px solid var(--line); border-radius:6px; }
svg.chart .chart-title { font-size:13px; font-weight:600; fill:#111827; }
svg.chart .plot-area { fill:#fcfcfd; stroke:#d1d5db; }
svg.chart .grid { stroke:#eef0f3; } svg.chart .tick { font-size:11px; fill:#4b5563; }
svg.chart .axis-label { font-size:11px; fill:#374151; } svg.chart .legend { font-size:11px; fill:#374151; }
svg.chart .no-data { font-size:13px; fill:#9ca3af; } svg.chart .reference { stroke:#b91c1c; stroke-dasharray:5 4; }
svg.chart .reference-label { font-size:11px; fill:#b91c1c; }
pre { background:#f3f4f6; padding:8px; overflow:auto; max-height:320px; font-size:12px; }
details summary { cursor:pointer; color:#1d4ed8; }
"""


# -- small HTML helpers ------------------------------------------------------
def fmt_value(value, unit: str) -> str:
    if unit == "ms":
        return stats.fmt_ms(value)
    if unit == "ratio":
        return stats.fmt_pct(value)
    if unit == "rps":
        return stats.fmt_number(value, 1, " req/s")
    if unit == "x":
        return stats.fmt_number(value, 1, "×")
    if unit == "change":  # a relative change, e.g. +0.12 -> "+12.0 %"
        return "—" if value is None else f"{value * 100:+.1f} %"
    if unit == "s":
        return stats.fmt_number(value, 1, " s")
    if unit == "MB":
        return stats.fmt_number(value, 1, " MB")
    if unit in ("count", "calls"):
        return "—" if value is None else f"{int(value):,}"
    return "—" if value is None else escape(str(value))


def html_table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), css: str = "") -> str:
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _verdict(passed) -> str:
    if passed is None:
        return '<span class="muted">not measured</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def html_section(anchor: str, title: str, body: str) -> str:
    return f'<section class="part" id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _not_measured(what: str) -> str:
    return f'<p class="muted">{escape(what)} was not measured in this run.</p>'


def _kv_table(data: dict) -> str:
    rows = []
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            shown = f"<code>{escape(json.dumps(value, ensure_ascii=False))}</code>"
        else:
            shown = escape("—" if value is None else str(value))
        rows.append([escape(str(key)), shown])
    return html_table(["name", "value"], rows)


# -- sections ------------------------------------------------------------------
def summary_section(document: dict) -> str:
    rows = [[escape(f.label), fmt_value(f.value, f.unit)] for f in figures_mod.headline_figures(document)]
    if not rows:
        return html_section("summary", "Summary", _not_measured("Nothing"))
    return html_section("summary", "Summary", html_table(["figure", "value"], rows, numeric={1}))


def targets_section(bench: dict | None) -> str:
    if not bench or not bench.get("targets"):
        return ""
    rows = []
    for t in bench["targets"]:
        rows.append([escape(t["issue"]), escape(t["name"]), escape(t["target"]), fmt_value(t.get("measured"), t.get("unit", "")),
                     escape(t.get("detail", "")), _verdict(t.get("passed"))])
    return html_section("targets", "Targets", html_table(["issue", "target", "goal", "measured", "detail", "verdict"], rows,
                                                 numeric={3}))


def thresholds_section(checks: list[dict]) -> str:
    if not checks:
        return ""
    rows = [[escape(c["check"]), escape(f"{'≤' if c['kind'] == 'max' else '≥'} {c['limit']}" if c.get("limit") is not None else "—"),
             escape("—" if c.get("measured") is None else f"{c['measured']:.4g}"), _verdict(c["passed"])]
            for c in checks]
    return html_section("thresholds", "Thresholds", html_table(["check", "limit", "measured", "verdict"], rows, numeric={2}))


def _levels_series(endpoints: list[dict], pick) -> list[tuple[str, list]]:
    return [(e.get("label", e["name"]), [(lv["level"], pick(lv)) for lv in e.get("levels", [])])
            for e in endpoints if e.get("levels")]


def concurrency_section(run: dict | None, ceiling: dict | None = None, anchor: str = "concurrency",
                        title: str = "Concurrency") -> str:
    if not run:
        return html_section(anchor, title, _not_measured("The concurrency test"))
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


def cache_section(run: dict | None) -> str:
    if not run:
        return html_section("cache", "Cache: uncached vs cached generation", _not_measured("The cache test"))
    summary = run.get("summary") or {}
    titles = run.get("titles", [])
    parts = [f'<p class="warn">{escape(note)}</p>' for note in run.get("notes", [])]

    def mean_cached(entry):
        values = [c["ms"] for c in entry.get("cached", []) if c.get("ok")]
        return sum(values) / len(values) if values else None

    categories = [t["title"] for t in titles]
    charts = [svg.bar_chart("Generation time per title: first (uncached) vs following (cached)", "cache-titles",
                            categories, [("uncached", [t["uncached"]["ms"] if t.get("uncached") and t["uncached"].get("ok") else None
                                                       for t in titles]),
                                         ("cached (mean)", [mean_cached(t) for t in titles])],
                            "ms", log_y=True, empty_message="no generation succeeded: see failures")]
    uncached, cached = summary.get("uncached_ms") or {}, summary.get("cached_ms") or {}
    charts.append(svg.bar_chart("Uncached vs cached: mean, p50, p95", "cache-stats", ["mean", "p50", "p95"],
                                [("uncached", [uncached.get(k) for k in ("mean", "p50", "p95")]),
                                 ("cached", [cached.get(k) for k in ("mean", "p50", "p95")])],
                                "ms", log_y=True, empty_message="no generation succeeded: see failures"))
    concurrent = run.get("concurrent") or {}
    if concurrent:
        latency = concurrent.get("latency_ms") or {}
        charts.append(svg.bar_chart(f"Cached generation at {concurrent.get('clients')} concurrent clients",
                                    "cache-concurrent", ["p50", "p95", "p99"],
                                    [("client-side", [latency.get(k) for k in ("p50", "p95", "p99")])]
                                    + ([("server-side", [(concurrent.get("server_ms") or {}).get(k)
                                                         for k in ("p50", "p95", "p99")])]
                                       if concurrent.get("server_ms") else []),
                                    "ms", empty_message="no cached request succeeded: see the error rate"))
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    parts.append(html_table(["", "count", "mean", "p50", "p95", "p99"], [
        [label, str(s.get("count", 0)), fmt_value(s.get("mean"), "ms"), fmt_value(s.get("p50"), "ms"),
         fmt_value(s.get("p95"), "ms"), fmt_value(s.get("p99"), "ms")]
        for label, s in (("uncached (first call)", uncached), ("cached (following calls)", cached))],
        numeric={1, 2, 3, 4, 5}))
    parts.append(html_table(["figure", "value"], [
        ["speed-up (mean)", fmt_value(summary.get("speedup_mean"), "x")],
        ["speed-up (p50)", fmt_value(summary.get("speedup_p50"), "x")],
        ["calls", fmt_value(summary.get("attempts"), "count")],
        ["failures", fmt_value(summary.get("failures"), "count")],
        ["failure rate", fmt_value(summary.get("failure_rate"), "ratio")],
        ["failures by kind", escape(", ".join(f"{k}: {v}" for k, v in (summary.get("error_kinds") or {}).items()) or "—")],
        ["cached calls not served from the cache", fmt_value(summary.get("cached_calls_not_from_cache"), "count")],
        ["titles whose cached text differed", fmt_value(summary.get("titles_with_different_content"), "count")],
    ], numeric={1}))
    rows = []
    for entry in titles:
        first = entry.get("uncached") or {}
        following = entry.get("cached", [])
        cached_text = ", ".join(fmt_value(c["ms"], "ms") if c.get("ok") else f'<span class="fail">{escape(str(c.get("error")))}</span>'
                                for c in following)
        rows.append([escape(entry["title"]),
                     fmt_value(first.get("ms"), "ms") if first.get("ok") else f'<span class="fail">{escape(str(first.get("error")))}</span>',
                     cached_text or "—"])
    parts.append("<h3>Every call</h3>" + html_table(["title", "first (uncached)", "following (cached)"], rows))
    if concurrent:
        latency = concurrent.get("latency_ms") or {}
        server = concurrent.get("server_ms") or {}
        parts.append("<h3>Cached generation under concurrency</h3>" + html_table(["figure", "value"], [
            ["clients", escape(str(concurrent.get("clients")))],
            ["offered rate", escape(f"{concurrent['rate_rps']:g} req/s" if concurrent.get("rate_rps") else "back to back")],
            ["requests", fmt_value(concurrent.get("attempts"), "count")],
            ["client-side p50 / p95 / p99", " / ".join(fmt_value(latency.get(k), "ms") for k in ("p50", "p95", "p99"))],
            ["server-side p50 / p95 / p99", " / ".join(fmt_value(server.get(k), "ms") for k in ("p50", "p95", "p99"))
             if server else '<span class="muted">not measured (the blog sends no timing)</span>'],
            ["error rate", fmt_value(concurrent.get("error_rate"), "ratio")],
            ["errors by kind", escape(", ".join(f"{k}: {v}" for k, v in (concurrent.get("error_kinds") or {}).items()) or "—")],
        ], numeric={1}))
    return html_section("cache", "Cache: uncached vs cached generation", "".join(parts))


def locust_section(run: dict | None) -> str:
    if not run:
        return html_section("locust", "Locust scenario", _not_measured("The Locust scenario"))
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


def bench_section(bench: dict | None) -> str:
    if not bench:
        return ""
    parts = []
    scale = bench.get("scale") or {}
    if scale:
        parts.append("<h3>Home page with 1,000 vs 100,000 posts</h3>")
        labels = [f"{s['posts']:,} posts" for s in scale.get("runs", [])]
        parts.append('<div class="charts">' + svg.bar_chart(
            "Home page latency by number of posts", "bench-scale", labels,
            [("warm p95", [(s.get("warm") or {}).get("p95") for s in scale.get("runs", [])]),
             ("uncached render p95", [(s.get("cold") or {}).get("p95") for s in scale.get("runs", [])])],
            "ms", empty_message="not measured") + "</div>")
        parts.append(html_table(["posts", "warm p50", "warm p95", "uncached render p50", "uncached render p95"], [
            [f"{s['posts']:,}", fmt_value((s.get("warm") or {}).get("p50"), "ms"), fmt_value((s.get("warm") or {}).get("p95"), "ms"),
             fmt_value((s.get("cold") or {}).get("p50"), "ms"), fmt_value((s.get("cold") or {}).get("p95"), "ms")]
            for s in scale.get("runs", [])], numeric={0, 1, 2, 3, 4}))
        paced = next((s for s in scale.get("runs", []) if s.get("warm_rate_rps")), None)
        if paced:
            parts.append(f'<p class="muted">Warm: cached page, {paced["warm_clients"]} clients sharing '
                         f'{paced["warm_rate_rps"]:g} requests a second (paced, below saturation). '
                         f'Uncached: one request at a time, each after a write that invalidates the page. '
                         f'Two copies of the blog that differ only in their posts, measured in turns, {paced.get("repeats", 1)} times each; the lowest p95 is shown.</p>')
    rss = bench.get("worker_rss_mb") or {}
    if rss:
        parts.append("<h3>gunicorn worker memory after the run</h3>")
        pids = list(rss)
        parts.append('<div class="charts">' + svg.bar_chart("Resident memory per worker", "bench-rss",
                                                            [f"pid {p}" for p in pids],
                                                            [("RSS MB", [rss[p] for p in pids])], "MB") + "</div>")
    flight = bench.get("single_flight") or {}
    if flight:
        latency = flight.get("latency_ms") or {}
        parts.append("<h3>Identical uncached generations at once</h3>" + html_table(["figure", "value"], [
            ["concurrent requests", fmt_value(flight.get("requests"), "count")],
            ["succeeded", fmt_value(flight.get("ok"), "count")],
            ["LLM calls (simulator count)", fmt_value(flight.get("llm_calls"), "count")],
            ["p50 / p95 / max", " / ".join(fmt_value(latency.get(k), "ms") for k in ("p50", "p95", "max"))],
            ["errors by kind", escape(", ".join(f"{k}: {v}" for k, v in (flight.get("error_kinds") or {}).items()) or "—")],
        ], numeric={1}))
    under = bench.get("reads_under_ai_load") or {}
    if under:
        parts.append("<h3>Read pages while users generate uncached posts</h3>")
        phases = ["normal", "during generation"]
        parts.append('<div class="charts">' + svg.bar_chart(
            "Read latency: normal vs while generating", "bench-reads-under-ai", phases,
            [(p, [(under.get(k) or {}).get("latency_ms", {}).get(p) for k in ("baseline", "loaded")])
             for p in ("p50", "p95", "p99")], "ms") + "</div>")
        parts.append(html_table(["phase", "requests", "p50", "p95", "p99", "error rate"], [
            [label, fmt_value((under.get(k) or {}).get("attempts"), "count")]
            + [fmt_value(((under.get(k) or {}).get("latency_ms") or {}).get(p), "ms") for p in ("p50", "p95", "p99")]
            + [fmt_value((under.get(k) or {}).get("error_rate"), "ratio")]
            for label, k in (("normal", "baseline"), ("during generation", "loaded"))], numeric={1, 2, 3, 4, 5}))
        generators = under.get("generators") or {}
        if generators:
            parts.append(f'<p class="muted">Generators: {generators.get("users")} users, '
                         f'{generators.get("completed", 0)} generations completed, '
                         f'{generators.get("rejected_429", 0)} answered 429, errors {escape(str(generators.get("error_kinds", {})))}.</p>')
    if not parts:
        return ""
    return html_section("bench", "Benchmark measurements", "".join(parts))


def parameters_section(document: dict) -> str:
    parts = ["<h3>Run</h3>", _kv_table({"kind": document.get("kind"), "started": document.get("started_at"),
                                        "finished": document.get("finished_at"),
                                        "interrupted": document.get("interrupted")})]
    parts += ["<h3>Parameters</h3>", _kv_table(document.get("parameters") or {})]
    for name, run in (document.get("runs") or {}).items():
        if isinstance(run, dict) and run.get("parameters"):
            parts += [f"<h3>{escape(name)} parameters</h3>", _kv_table(run["parameters"])]
    if (document.get("bench") or {}).get("parameters"):
        parts += ["<h3>Benchmark stack</h3>", _kv_table(document["bench"]["parameters"])]
    parts += ["<h3>Environment</h3>", _kv_table(document.get("environment") or {})]
    return html_section("parameters", "Run parameters and environment", "".join(parts))


# -- the page ------------------------------------------------------------------
def html_page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str, banner: str = "") -> str:
    links = "".join(f'<a href="#{anchor}">{escape(label)}</a>' for anchor, label in nav)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f'<header class="top"><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>'
            f'<nav class="sections">{links}</nav><main>{banner}{body}</main></body></html>\n')


def render(document: dict) -> str:
    runs = document.get("runs") or {}
    env = document.get("environment") or {}
    sections = [("summary", "Summary", summary_section(document)),
                ("targets", "Targets", targets_section(document.get("bench"))),
                ("thresholds", "Thresholds", thresholds_section(document.get("thresholds") or []))]
    if "concurrency" in runs or document.get("kind") in ("all", "bench", "concurrency"):
        sections.append(("concurrency", "Concurrency",
                         concurrency_section(runs.get("concurrency"), runs.get("ceiling"))))
    if "cache" in runs or document.get("kind") in ("all", "bench", "cache"):
        sections.append(("cache", "Cache", cache_section(runs.get("cache"))))
    if "locust" in runs or document.get("kind") in ("all", "bench", "locust"):
        sections.append(("locust", "Locust", locust_section(runs.get("locust"))))
    sections.append(("bench", "Benchmark", bench_section(document.get("bench"))))
    sections.append(("parameters", "Parameters", parameters_section(document)))
    sections = [s for s in sections if s[2]]
    banner = ('<p class="warn">This run was interrupted (Ctrl-C); it shows what was measured until then.</p>'
              if document.get("interrupted") else "")
    subtitle = (f"{document.get('kind')} run against {env.get('target') or '—'} · "
                f"{document.get('started_at') or '—'} · {env.get('cpu_count') or '—'} CPUs")
    return html_page("blog-perf report", subtitle, [(a, l) for a, l, _ in sections], "".join(s[2] for s in sections), banner)


def write(directory: str | Path, document: dict) -> Path:
    path = Path(directory) / results_file.REPORT_FILE
    path.write_text(render(document), encoding="utf-8")
    return path


def rerender(directory: str | Path) -> Path:
    """``blog-perf report DIR``: render DIR/report.html again from DIR/results.json."""
    directory = Path(directory)
    document = results_file.load(directory)
    return write(directory if directory.is_dir() else directory.parent, document)

