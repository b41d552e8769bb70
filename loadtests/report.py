"""report.html: one self-contained file rendered only from results.json.

No script, stylesheet, font or image is fetched: styles are inline, charts are
inline SVG (svg.py), text is HTML text (CJK renders with the system's fonts).
Each section draws from its own part of the document and says "not measured"
when that part is missing, so one failed part never blanks the others.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from perfcontract import baseline, judging, results_file

from . import figures as figures_mod
from .report_html import fmt_value, html_page, html_section, html_table, kv_table, not_measured, verdict
from .report_bench import bench_section, targets_section
from .report_runs import cache_section, concurrency_section, locust_section


# -- sections ------------------------------------------------------------------
def summary_section(document: dict) -> str:
    rows = [[escape(f.label), fmt_value(f.value, f.unit)] for f in figures_mod.headline_figures(document)]
    if not rows:
        return html_section("summary", "Summary", not_measured("Nothing"))
    return html_section("summary", "Summary", html_table(["figure", "value"], rows, numeric={1}))


def thresholds_section(checks: list[dict]) -> str:
    if not checks:
        return ""
    rows = [[escape(c["check"]), escape(f"{judging.KINDS[c['kind']][0]} {c['limit']}" if c.get("limit") is not None else "—"),
             escape("—" if c.get("measured") is None else f"{c['measured']:.4g}"), verdict(c["passed"])]
            for c in checks]
    return html_section("thresholds", "Thresholds", html_table(["check", "limit", "measured", "verdict"], rows, numeric={2}))


def baseline_section(comparison: dict | None) -> str:
    """The run against its baseline (``--baseline``, or a LoadTest's spec.compare)."""
    if not comparison:
        return ""
    rows = []
    for f in comparison.get("figures") or []:
        figure = baseline.BY_KEY[f["figure"]]
        delta, pct = f.get("delta"), f.get("deltaPercent")
        rows.append([escape(figure.label), fmt_value(f.get("baseline"), figure.unit), fmt_value(f.get("value"), figure.unit),
                     "—" if delta is None else escape(f"{delta:+.4g}" + ("" if pct is None else f" ({pct:+.1f} %)")),
                     escape(f"{f['tolerance']['percent']:g} % or {f['tolerance']['absolute']:g}"),
                     '<span class="muted">no baseline</span>' if f.get("baseline") is None else
                     '<span class="fail">REGRESSED</span>' if f["regressed"] else '<span class="pass">pass</span>'])
    source = comparison.get("baseline") or {}
    where = kv_table({k: (", ".join(v) if isinstance(v, list) else v) for k, v in source.items()})
    headline = ('<p class="fail">Slower than the baseline beyond the tolerance: the verdict is Regressed.</p>'
                if comparison.get("regressed") else '<p class="pass">Within the tolerance of the baseline.</p>')
    return html_section("baseline", "Against the baseline", headline + where + html_table(
        ["figure", "baseline", "this run", "change", "tolerance (larger of)", "verdict"], rows, numeric={1, 2, 3}))


def parameters_section(document: dict) -> str:
    parts = ["<h3>Run</h3>", kv_table({"kind": document.get("kind"), "started": document.get("started_at"),
                                        "finished": document.get("finished_at"),
                                        "interrupted": document.get("interrupted")})]
    parts += ["<h3>Parameters</h3>", kv_table(document.get("parameters") or {})]
    for name, run in (document.get("runs") or {}).items():
        if isinstance(run, dict) and run.get("parameters"):
            parts += [f"<h3>{escape(name)} parameters</h3>", kv_table(run["parameters"])]
    if (document.get("bench") or {}).get("parameters"):
        parts += ["<h3>Benchmark stack</h3>", kv_table(document["bench"]["parameters"])]
    parts += ["<h3>Environment</h3>", kv_table(document.get("environment") or {})]
    return html_section("parameters", "Run parameters and environment", "".join(parts))


def render(document: dict) -> str:
    runs = document.get("runs") or {}
    env = document.get("environment") or {}
    sections = [("summary", "Summary", summary_section(document)),
                ("targets", "Targets", targets_section(document.get("bench"))),
                ("thresholds", "Thresholds", thresholds_section(document.get("thresholds") or [])),
                ("baseline", "Baseline", baseline_section(document.get("comparison")))]
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

