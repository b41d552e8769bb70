"""The report's HTML building blocks: its one stylesheet, how a figure is
written by unit, tables, sections and the page. Inline only: the page fetches
nothing (no script, stylesheet, font or image)."""
from __future__ import annotations

import json
from html import escape

from . import stats

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
        return stats.fmt_change(value)
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


def verdict(passed) -> str:
    if passed is None:
        return '<span class="muted">not measured</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def html_section(anchor: str, title: str, body: str) -> str:
    return f'<section class="part" id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def not_measured(what: str) -> str:
    return f'<p class="muted">{escape(what)} was not measured in this run.</p>'


def kv_table(data: dict) -> str:
    rows = []
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            shown = f"<code>{escape(json.dumps(value, ensure_ascii=False))}</code>"
        else:
            shown = escape("—" if value is None else str(value))
        rows.append([escape(str(key)), shown])
    return html_table(["name", "value"], rows)


def html_page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str, banner: str = "") -> str:
    links = "".join(f'<a href="#{anchor}">{escape(label)}</a>' for anchor, label in nav)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f'<header class="top"><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>'
            f'<nav class="sections">{links}</nav><main>{banner}{body}</main></body></html>\n')
