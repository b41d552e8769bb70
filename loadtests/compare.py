"""``blog-perf compare OLD.json NEW.json``: every key figure side by side with
its change in percent; a change for the worse beyond the tolerance is a
regression (printed, rendered, and the exit code says so)."""
from __future__ import annotations

from html import escape
from pathlib import Path

from perfcontract import judging, results_file

from . import figures as figures_mod
from . import report_html, svg

# Error rates start at 0, where percentages mean nothing: judge them in points.
ERROR_RATE_TOLERANCE_POINTS = 0.001


def _change(old: float | None, new: float | None) -> float | None:
    if old is None or new is None:
        return None
    if old == 0:
        return 0.0 if new == 0 else None
    return (new - old) / abs(old) * 100.0


def _regressed(figure: figures_mod.Figure, old, new, tolerance_pct: float) -> bool:
    """Worse than in the old run beyond the tolerance: a failed check of the one judging code."""
    if figure.better is None or old is None or new is None:
        return False  # informative only, or not in both runs ("new", "missing"): nothing to judge
    lower = figure.better == figures_mod.LOWER
    if figure.unit == "ratio" and lower:  # error rates: in points
        verdict = judging.no_worse_than(figure.label, old, new, lower, tolerance_abs=ERROR_RATE_TOLERANCE_POINTS)
    else:
        verdict = judging.no_worse_than(figure.label, old, new, lower, tolerance_pct=tolerance_pct)
    return not verdict.passed


def _improved(figure, old, new, change, tolerance_pct: float) -> bool:
    if figure.better is None or old is None or new is None or change is None:
        return False
    better = new < old if figure.better == figures_mod.LOWER else new > old
    return better and abs(change) > tolerance_pct


def compare(old_doc: dict, new_doc: dict, tolerance_pct: float = 10.0) -> list[dict]:
    old = {f.key: f for f in figures_mod.key_figures(old_doc)}
    rows = []
    for figure in figures_mod.key_figures(new_doc):
        before = old.get(figure.key)
        old_value = before.value if before else None
        change = _change(old_value, figure.value)
        regressed = _regressed(figure, old_value, figure.value, tolerance_pct)
        rows.append({"key": figure.key, "label": figure.label, "unit": figure.unit, "better": figure.better,
                     "section": figure.section, "old": old_value, "new": figure.value, "change_pct": change,
                     "status": "regression" if regressed else
                     ("improvement" if _improved(figure, old_value, figure.value, change, tolerance_pct) else
                      ("new" if before is None else "same"))})
    new_keys = {r["key"] for r in rows}
    for key, figure in old.items():
        if key not in new_keys:
            rows.append({"key": key, "label": figure.label, "unit": figure.unit, "better": figure.better,
                         "section": figure.section, "old": figure.value, "new": None, "change_pct": None,
                         "status": "missing"})
    return rows


def _fmt_change(change: float | None) -> str:
    return "—" if change is None else f"{change:+.1f} %"


def format_text(rows: list[dict], tolerance_pct: float, headline_only: bool = True) -> str:
    shown = [r for r in rows if not headline_only or not figures_mod.is_per_level(r["key"]) or r["status"] == "regression"]
    width = max([len(r["label"]) for r in shown] + [10])
    lines = [f"{'figure':<{width}}  {'old':>12}  {'new':>12}  {'change':>9}  status"]
    for r in shown:
        lines.append(f"{r['label']:<{width}}  {report_html.fmt_value(r['old'], r['unit']):>12}  "
                     f"{report_html.fmt_value(r['new'], r['unit']):>12}  {_fmt_change(r['change_pct']):>9}  "
                     f"{'REGRESSION' if r['status'] == 'regression' else r['status']}")
    regressions = [r for r in rows if r["status"] == "regression"]
    lines.append("")
    lines.append(f"{len(regressions)} regression(s) beyond {tolerance_pct:g} % "
                 f"(error rates: beyond {ERROR_RATE_TOLERANCE_POINTS * 100:g} percentage points)"
                 if regressions else f"no regression beyond {tolerance_pct:g} %")
    return "\n".join(lines)


def render_html(rows: list[dict], old_path: str, new_path: str, tolerance_pct: float) -> str:
    regressions = [r for r in rows if r["status"] == "regression"]
    changed = [r for r in rows if r["change_pct"] is not None and not figures_mod.is_per_level(r["key"])]
    # Changes can be negative: a line over the figures (numbered as in the table below), zero line marked.
    chart = svg.line_chart("Change of each headline figure (%)", "compare-changes",
                           [("change %", [(i + 1, r["change_pct"]) for i, r in enumerate(changed)])],
                           "figure # (see the list beside)", "% change", y_min_zero=False,
                           reference=("no change", 0.0), empty_message="no figure present in both runs")
    table_rows = []
    for r in rows:
        status = ('<span class="fail">REGRESSION</span>' if r["status"] == "regression" else
                  '<span class="pass">improvement</span>' if r["status"] == "improvement" else escape(r["status"]))
        table_rows.append([escape(r["label"]), report_html.fmt_value(r["old"], r["unit"]), report_html.fmt_value(r["new"], r["unit"]),
                           _fmt_change(r["change_pct"]), escape(r["better"] or "—"), status])
    body = report_html.html_section("summary", "Verdict", (
        f'<p class="{"fail" if regressions else "pass"}">{len(regressions)} regression(s) beyond '
        f"{tolerance_pct:g} %</p>" if regressions else f'<p class="pass">No regression beyond {tolerance_pct:g} %.</p>')
        + report_html.html_table(["old", "new"], [[escape(old_path), escape(new_path)]]))
    if regressions:
        body += report_html.html_section("regressions", "Regressions", report_html.html_table(
            ["figure", "old", "new", "change", "better"],
            [[escape(r["label"]), report_html.fmt_value(r["old"], r["unit"]), report_html.fmt_value(r["new"], r["unit"]),
              _fmt_change(r["change_pct"]), escape(r["better"] or "—")] for r in regressions], numeric={1, 2, 3}))
    numbered = report_html.html_table(["#", "figure", "change"], [
        [str(i + 1), escape(r["label"]), _fmt_change(r["change_pct"])] for i, r in enumerate(changed)], numeric={0, 2})
    body += report_html.html_section("changes", "Changes", '<div class="charts">' + chart + "</div>" + numbered)
    body += report_html.html_section("all", "Every figure", report_html.html_table(
        ["figure", "old", "new", "change", "better", "status"], table_rows, numeric={1, 2, 3}))
    return report_html.html_page("blog-perf comparison", f"{old_path} → {new_path}",
                        [("summary", "Verdict"), ("regressions", "Regressions"), ("changes", "Changes"),
                         ("all", "Every figure")], body)


def run(old_path: str, new_path: str, tolerance_pct: float = 10.0, out: str | None = None) -> tuple[list[dict], str, Path]:
    old_doc, new_doc = results_file.load(old_path), results_file.load(new_path)
    rows = compare(old_doc, new_doc, tolerance_pct)
    html_dir = Path(out) if out else Path(new_path).resolve().parent
    html_dir.mkdir(parents=True, exist_ok=True)
    html_path = html_dir / "compare.html"
    html_path.write_text(render_html(rows, str(old_path), str(new_path), tolerance_pct), encoding="utf-8")
    return rows, format_text(rows, tolerance_pct), html_path
