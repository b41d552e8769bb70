"""``blog-perf locust --baseline``: the run judged against an earlier one, by
the rule the LoadTest operator's ``spec.compare`` uses (perfcontract.baseline).

The baseline is an earlier run's results.json (``--baseline``), or its figures
given directly (``--baseline-figures``: how the operator hands a run the median
of its last Passed runs). A regression is recorded in results.json
(``comparison``), drawn in the report, said as the LoadTest says it
(``baseline.reasons``), and exits 1 as a missed threshold does.
"""
from __future__ import annotations

import argparse

from perfcontract import baseline, results_file


def given(args: argparse.Namespace) -> tuple[dict, dict] | None:
    """(figures, where they came from), or None when no baseline was asked for.
    Raises results_file.ResultsError for a --baseline that is not a Locust run's results."""
    if getattr(args, "baseline_figures", None):
        return args.baseline_figures, {"given": baseline.format_figures(args.baseline_figures)}
    if not getattr(args, "baseline", None):
        return None
    document = results_file.load(args.baseline)
    summary = ((document.get("runs") or {}).get("locust") or {}).get("summary")
    if not summary:
        raise results_file.ResultsError(f"{args.baseline} holds no Locust run to compare with")
    return baseline.figures_of(summary), {"file": str(args.baseline), "startedAt": document.get("started_at")}


def compare(args: argparse.Namespace, figures: dict, document: dict) -> list[baseline.Row]:
    """This run's Locust summary against the baseline's ``figures``, figure by figure."""
    summary = ((document.get("runs") or {}).get("locust") or {}).get("summary")
    return baseline.compare(figures, baseline.figures_of(summary), args.baseline_tolerances)
