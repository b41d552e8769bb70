"""The report's sections on ``make bench``: its targets and the measurements
only the bench makes (scale, worker memory, single flight, reads while users
generate)."""
from __future__ import annotations

from html import escape

from . import svg
from .report_capacity import capacity_line, capacity_part
from .report_html import fmt_value, html_section, html_table, verdict

# Steal time: the hypervisor ran other guests on these cores (cpu_shares.stolen_seconds).
STOLEN = "stolen by the hypervisor"


def targets_section(bench: dict | None) -> str:
    if not bench or not bench.get("targets"):
        return ""
    rows = []
    for t in bench["targets"]:
        rows.append([escape(t["issue"]), escape(t["name"]), escape(t["target"]), fmt_value(t.get("measured"), t.get("unit", "")),
                     escape(t.get("detail", "")), verdict(t.get("passed"))])
    body = html_table(["issue", "target", "goal", "measured", "detail", "verdict"], rows, numeric={3})
    phases = bench.get("phases") or {}
    if phases:
        body += "<h3>Phases</h3>" + html_table(["phase", "status", "seconds", STOLEN], [
            [escape(name), escape(str(p.get("status", ""))), fmt_value(p.get("seconds"), "s"),
             fmt_value(p.get("stolen_share"), "ratio")] for name, p in phases.items()], numeric={2, 3}) + (
            '<p class="muted">Steal time is CPU the hypervisor gave other guests on these cores: '
            "a phase that lost much of it reads slower than the code is.</p>")
    return html_section("targets", "Targets", body)


def _side(side: dict | None, stat: str) -> str:
    return fmt_value((side or {}).get(stat), "ms")


def _scale_part(scale: dict) -> list[str]:
    runs = scale.get("runs", [])
    parts = ["<h3>Home page with 1,000 vs 100,000 posts</h3>", '<div class="charts">' + svg.bar_chart(
        "Home page latency by number of posts", "bench-scale", [f"{s['posts']:,} posts" for s in runs],
        [("warm p95", [(s.get("warm") or {}).get("p95") for s in runs]),
         ("uncached render p95", [(s.get("cold") or {}).get("p95") for s in runs])],
        "ms", empty_message="not measured") + "</div>"]
    parts.append(html_table(["posts", "warm p50", "warm p95", "uncached render p50", "uncached render p95"], [
        [f"{s['posts']:,}", _side(s.get("warm"), "p50"), _side(s.get("warm"), "p95"),
         _side(s.get("cold"), "p50"), _side(s.get("cold"), "p95")] for s in runs], numeric={0, 1, 2, 3, 4}))
    paced = next((s for s in runs if s.get("warm_rate_rps")), None)
    if paced:
        parts.append(f'<p class="muted">Warm: cached page, {paced["warm_clients"]} clients sharing '
                     f'{paced["warm_rate_rps"]:g} requests a second (paced, below saturation). '
                     f'Uncached: one request at a time, each after a write that invalidates the page. '
                     f'Two copies of the blog that differ only in their posts, measured in turns, {paced.get("repeats", 1)} times each; the lowest p95 is shown.</p>')
    return parts


def _rss_part(rss: dict) -> list[str]:
    pids = list(rss)
    return ["<h3>gunicorn worker memory after the run</h3>",
            '<div class="charts">' + svg.bar_chart("Resident memory per worker", "bench-rss", [f"pid {p}" for p in pids],
                                                   [("RSS MB", [rss[p] for p in pids])], "MB") + "</div>"]


def _flight_part(flight: dict) -> list[str]:
    latency = flight.get("latency_ms") or {}
    return ["<h3>Identical uncached generations at once</h3>" + html_table(["figure", "value"], [
        ["concurrent requests", fmt_value(flight.get("requests"), "count")],
        ["succeeded", fmt_value(flight.get("ok"), "count")],
        ["LLM calls (simulator count)", fmt_value(flight.get("llm_calls"), "count")],
        ["p50 / p95 / max", " / ".join(fmt_value(latency.get(k), "ms") for k in ("p50", "p95", "max"))],
        ["errors by kind", escape(", ".join(f"{k}: {v}" for k, v in (flight.get("error_kinds") or {}).items()) or "—")],
    ], numeric={1})]


def _wrk_part(wrk: dict) -> list[str]:
    runs = wrk.get("runs") or {}
    names = [name for name in ("hello", "home", "post") if name in runs]
    labels = {"hello": "bare hello (ceiling)", "home": "home page (cached)", "post": "post page (cached)"}
    rows = [[labels[name], fmt_value(runs[name].get("throughput_rps"), "rps")]
            + [fmt_value((runs[name].get("latency_ms") or {}).get(p), "ms") for p in ("p50", "p90", "p99")]
            + [fmt_value(runs[name].get("ceiling_ratio"), "ratio"), fmt_value(runs[name].get("p99_vs_ceiling"), "x"),
               fmt_value(runs[name].get("non_2xx_3xx", 0) + runs[name].get("socket_errors", 0), "count")]
            for name in names]
    return [f"<h3>wrk: {wrk.get('connections')} connections, {wrk.get('seconds'):g} s each</h3>",
            '<div class="charts">' + svg.bar_chart("Throughput with wrk", "bench-wrk", [labels[n] for n in names],
                                                   [("req/s", [runs[n].get("throughput_rps") for n in names])],
                                                   "req/s") + "</div>",
            html_table(["target", "throughput", "p50", "p90", "p99", "of the ceiling", "p99 vs ceiling", "errors"],
                       rows, numeric={1, 2, 3, 4, 5, 6, 7}),
            f'<p class="muted">Headers sent: {escape(", ".join(wrk.get("headers") or []))} (as browsers ask). '
            "The same gunicorn config and gevent workers serve the hello app and the blog.</p>"]


def _locust_cpu_part(cpu: dict) -> list[str]:
    parts = cpu.get("parts") or {}
    return ["<h3>Who used the CPU during the Locust run</h3>" + html_table(
        ["part", "CPU seconds", "share of the machine"],
        [[escape(name), fmt_value(value.get("cpu_s"), "s"), fmt_value(value.get("share"), "ratio")]
         for name, value in parts.items()]
        + [[STOLEN, "", fmt_value(cpu.get("stolen_share"), "ratio")], ["idle", "", fmt_value(cpu.get("idle_share"), "ratio")]],
        numeric={1, 2}),
        f'<p class="muted">{cpu.get("wall_s")} s on {cpu.get("cores")} cores; a share of 100 % is every core '
        "all the time.</p>"]


def _capacity_part(bench_capacity: dict) -> list[str]:
    return [capacity_part(bench_capacity).replace("<h3>Capacity</h3>", "<h3>Capacity of the seed's mix</h3>", 1),
            f"<p>{escape(capacity_line(bench_capacity))}</p>"]


def _reads_under_ai_part(under: dict) -> list[str]:
    phases = [(label, key) for label, key in (
        ("normal", "baseline"), ("during generation on the AI pool", "loaded"),
        ("during generation on the same gunicorn", "loaded_one_pool"),
        ("beside the LLM simulator alone", "simulator_only")) if under.get(key)]
    parts = ["<h3>Read pages while users generate uncached posts</h3>", '<div class="charts">' + svg.bar_chart(
        "Read latency: normal vs while generating", "bench-reads-under-ai", [label for label, _ in phases],
        [(p, [(under.get(k) or {}).get("latency_ms", {}).get(p) for _, k in phases])
         for p in ("p50", "p95", "p99")], "ms") + "</div>"]
    parts.append(html_table(["phase", "requests", "p50", "p95", "p99", "error rate"], [
        [label, fmt_value((under.get(k) or {}).get("attempts"), "count")]
        + [fmt_value(((under.get(k) or {}).get("latency_ms") or {}).get(p), "ms") for p in ("p50", "p95", "p99")]
        + [fmt_value((under.get(k) or {}).get("error_rate"), "ratio")]
        for label, k in phases], numeric={1, 2, 3, 4, 5}))
    names = list(dict.fromkeys(name for _, k in phases for name in (((under[k].get("cpu") or {}).get("parts")) or {})))
    if names:
        parts.append("<h4>Share of the machine's CPU (all cores) during each phase</h4>" + html_table(
            ["phase", *names, STOLEN, "idle"],
            [[label] + [fmt_value((((under[k].get("cpu") or {}).get("parts") or {}).get(n) or {}).get("share"), "ratio")
                        for n in names]
             + [fmt_value((under[k].get("cpu") or {}).get(key), "ratio") for key in ("stolen_share", "idle_share")]
             for label, k in phases], numeric=set(range(1, len(names) + 3))))
    said = []
    for where, key in (("on the AI pool", "generators"), ("on the same gunicorn", "generators_one_pool")):
        generators = under.get(key) or {}
        if generators:
            said.append(f'{where}: {generators.get("users")} users, {generators.get("completed", 0)} generations '
                        f'completed, {generators.get("rejected_429", 0)} answered 429, '
                        f'errors {escape(str(generators.get("error_kinds", {})))}')
    if said:
        parts.append(f'<p class="muted">Generators {"; ".join(said)}. The AI pool is a gunicorn of its own '
                     "serving the same blog, as the chart routes the AI paths (aiPool); the same gunicorn is "
                     "the one serving the reads, as without an ingress. "
                     "Beside the simulator alone: as many streams read straight from the LLM simulator, "
                     "no blog in between (what the stand-in for the LLM costs these cores).</p>")
    return parts


def bench_section(bench: dict | None) -> str:
    if not bench:
        return ""
    parts = []
    for key, part in (("wrk", _wrk_part), ("scale", _scale_part), ("worker_rss_mb", _rss_part), ("single_flight", _flight_part), ("locust_cpu", _locust_cpu_part),
                      ("reads_under_ai_load", _reads_under_ai_part), ("capacity", _capacity_part)):
        if bench.get(key):
            parts += part(bench[key])
    if not parts:
        return ""
    return html_section("bench", "Benchmark measurements", "".join(parts))
