"""The report's capacity part: a stepped run's curve, its capacity and its knee
(perfcontract.capacity.analyse, recorded as runs.locust.capacity)."""
from __future__ import annotations

from html import escape

from perfcontract.capacity import SLO

from . import svg
from .report_html import fmt_value, html_table


def headline(analysis: dict) -> str:
    slo = analysis.get("slo") or {}
    rule = " and ".join(part for part in (
        f"non-AI p95 ≤ {slo['p95_ms']:g} ms" if slo.get("p95_ms") is not None else "",
        f"errors ≤ {slo['max_error_rate'] * 100:g} %" if slo.get("max_error_rate") is not None else "") if part)
    capacity = (f"capacity {analysis['capacity_users']:g} users ({fmt_value(analysis.get('capacity_rps'), 'rps')}, "
                f"non-AI p95 {fmt_value(analysis.get('capacity_p95_ms'), 'ms')})"
                if analysis.get("capacity_users") is not None else "no step was within the SLO")
    knee = (f"latency rose faster than load from {analysis['knee_users']:g} users on"
            if analysis.get("knee_users") is not None else "no knee: latency never rose faster than load")
    return f"{capacity}; {knee} (SLO: {rule or 'none'})"


def capacity_line(bench_capacity: dict) -> str:
    """make bench's capacity, next to the bare-Flask ceiling of the same run."""
    ratio = bench_capacity.get("capacity_ceiling_ratio")
    return (f"{headline(bench_capacity)}; the bare-Flask ceiling measured "
            f"{fmt_value(bench_capacity.get('ceiling_peak_rps'), 'rps')}"
            + (f" (capacity at {ratio * 100:.1f} % of it)" if ratio is not None else ""))


def capacity_part(analysis: dict | None) -> str:
    if not analysis:
        return ""
    steps = analysis.get("steps") or []
    slo = SLO(**{k: v for k, v in (analysis.get("slo") or {}).items()})
    p95_limit = (analysis.get("slo") or {}).get("p95_ms")
    charts = '<div class="charts">' + "".join([
        svg.line_chart("Non-AI latency by users (each step)", "capacity-latency",
                       [("p50", [(s["users"], s.get("p50_ms")) for s in steps]),
                        ("p95", [(s["users"], s.get("p95_ms")) for s in steps]),
                        ("p99", [(s["users"], s.get("p99_ms")) for s in steps])],
                       "users", "ms", log_y=True, empty_message="no step was recorded",
                       reference=("SLO p95", p95_limit) if p95_limit else None),
        svg.line_chart("Throughput by users (each step)", "capacity-rps",
                       [("requests/s", [(s["users"], s.get("rps")) for s in steps])],
                       "users", "requests/s", empty_message="no step was recorded"),
    ]) + "</div>"
    rows = [[f"{s['users']:g}", fmt_value(s.get("seconds"), "s"),
             fmt_value(s.get("requests"), "count"), fmt_value(s.get("rps"), "rps"),
             fmt_value(s.get("p50_ms"), "ms"), fmt_value(s.get("p95_ms"), "ms"), fmt_value(s.get("p99_ms"), "ms"),
             fmt_value(s.get("failure_rate"), "ratio"),
             '<span class="pass">within</span>' if slo.met_by(s) else '<span class="fail">beyond</span>']
            for s in steps]
    table = html_table(["users", "held", "requests", "rate", "p50", "p95", "p99", "errors", "SLO"], rows,
                       numeric={0, 1, 2, 3, 4, 5, 6, 7})
    return f"<h3>Capacity</h3><p>{escape(headline(analysis))}</p>{charts}{table}"
