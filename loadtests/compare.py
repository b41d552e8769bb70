"""``blog-perf compare OLD.json NEW.json``: every key figure side by side with
its change in percent; a change for the worse beyond its tolerance is a
regression (printed, rendered, and the exit code says so). The tolerance rule is
the LoadTest operator's (perfcontract.baseline): the larger of a percentage and
an absolute floor per unit, so noise on a 3 ms figure is not a regression."""
from __future__ import annotations

from html import escape
from pathlib import Path

from perfcontract import baseline, results_file

from . import figures as figures_mod
from . import report_html, svg


def tolerances(percent: float | None = None, floor_ms: float | None = None, floor_rps: float | None = None,
               floor_points: float | None = None) -> dict[str, baseline.Tolerance]:
    """The tolerance of each unit: the shared defaults, with what the command line changed."""
    def pick(unit: str, absolute: float | None) -> baseline.Tolerance:
        default = baseline.DEFAULT_BY_UNIT.get(unit, baseline.OTHER_UNITS)
        return baseline.Tolerance(default.percent if percent is None else percent,
                                  default.absolute if absolute is None else absolute)
    return {"ms": pick("ms", floor_ms), "rps": pick("rps", floor_rps),
            "ratio": baseline.Tolerance(0.0, baseline.DEFAULT_BY_UNIT["ratio"].absolute if floor_points is None
                                        else floor_points / 100.0),
            "other": pick("other", None)}


def describe_tolerances(by_unit: dict[str, baseline.Tolerance]) -> str:
    ms, rps, ratio, other = by_unit["ms"], by_unit["rps"], by_unit["ratio"], by_unit["other"]
    return (f"latencies {ms.percent:g} % or {ms.absolute:g} ms, rates {rps.percent:g} % or {rps.absolute:g}/s, "
            f"error rates {ratio.absolute * 100:g} points, others {other.percent:g} %")


def _change(old: float | None, new: float | None) -> float | None:
    if old is None or new is None:
        return None
    if old == 0:
        return 0.0 if new == 0 else None
    return (new - old) / abs(old) * 100.0


def _status(figure: figures_mod.Figure, old, new, by_unit: dict[str, baseline.Tolerance]) -> str:
    """regression / improvement / same, by the one rule (perfcontract.baseline): a change
    counts when it passes the larger of the relative tolerance and the absolute floor."""
    if figure.better is None or old is None or new is None:
        return "same"  # informative only: nothing to judge
    tolerance = by_unit.get(figure.unit, by_unit["other"])
    lower = figure.better == figures_mod.LOWER
    if not baseline.no_worse_than(figure.label, old, new, lower, tolerance).passed:
        return "regression"
    return "improvement" if -baseline.worse_by(old, new, lower) > tolerance.allowed(old) else "same"


def compare(old_doc: dict, new_doc: dict, by_unit: dict[str, baseline.Tolerance] | None = None) -> list[dict]:
    by_unit = by_unit or tolerances()
    old = {f.key: f for f in figures_mod.key_figures(old_doc)}
    rows = []
    for figure in figures_mod.key_figures(new_doc):
        before = old.get(figure.key)
        old_value = before.value if before else None
        rows.append({"key": figure.key, "label": figure.label, "unit": figure.unit, "better": figure.better,
                     "section": figure.section, "old": old_value, "new": figure.value,
                     "change_pct": _change(old_value, figure.value),
                     "status": "new" if before is None else _status(figure, old_value, figure.value, by_unit)})
    new_keys = {r["key"] for r in rows}
    for key, figure in old.items():
        if key not in new_keys:
            rows.append({"key": key, "label": figure.label, "unit": figure.unit, "better": figure.better,
                         "section": figure.section, "old": figure.value, "new": None, "change_pct": None,
                         "status": "missing"})
    return rows


def _fmt_change(change: float | None) -> str:
    return "—" if change is None else f"{change:+.1f} %"


def _verdict_line(regressions: list[dict], by_unit: dict[str, baseline.Tolerance]) -> str:
    rule = describe_tolerances(by_unit)
    return f"{len(regressions)} regression(s) beyond the tolerances ({rule})" if regressions \
        else f"no regression beyond the tolerances ({rule})"


def format_text(rows: list[dict], by_unit: dict[str, baseline.Tolerance], headline_only: bool = True) -> str:
    shown = [r for r in rows if not headline_only or not figures_mod.is_per_level(r["key"]) or r["status"] == "regression"]
    width = max([len(r["label"]) for r in shown] + [10])
    lines = [f"{'figure':<{width}}  {'old':>12}  {'new':>12}  {'change':>9}  status"]
    for r in shown:
        lines.append(f"{r['label']:<{width}}  {report_html.fmt_value(r['old'], r['unit']):>12}  "
                     f"{report_html.fmt_value(r['new'], r['unit']):>12}  {_fmt_change(r['change_pct']):>9}  "
                     f"{'REGRESSION' if r['status'] == 'regression' else r['status']}")
    regressions = [r for r in rows if r["status"] == "regression"]
    lines.append("")
    lines.append(_verdict_line(regressions, by_unit))
    return "\n".join(lines)


def render_html(rows: list[dict], old_path: str, new_path: str, by_unit: dict[str, baseline.Tolerance]) -> str:
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
        f'<p class="{"fail" if regressions else "pass"}">{escape(_verdict_line(regressions, by_unit))}</p>')
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


def run(old_path: str, new_path: str, by_unit: dict[str, baseline.Tolerance] | None = None,
        out: str | None = None) -> tuple[list[dict], str, Path]:
    by_unit = by_unit or tolerances()
    old_doc, new_doc = results_file.load(old_path), results_file.load(new_path)
    rows = compare(old_doc, new_doc, by_unit)
    html_dir = Path(out) if out else Path(new_path).resolve().parent
    html_dir.mkdir(parents=True, exist_ok=True)
    html_path = html_dir / "compare.html"
    html_path.write_text(render_html(rows, str(old_path), str(new_path), by_unit), encoding="utf-8")
    return rows, format_text(rows, by_unit), html_path
