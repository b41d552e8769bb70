"""blog-perf: the blog's performance suite.

    blog-perf all --target http://127.0.0.1:8000 --out perf-results/today
    blog-perf locust --target URL --users 200 --duration 60 --processes 2
    blog-perf locust --target URL --master --expect-workers 4 --log-summary   # in one pod
    blog-perf locust --target URL --worker --master-host HOST                  # in each of 4 others
    blog-perf locust --target URL --metrics-port 9103 --run-name mine          # live figures on /metrics
    blog-perf locust --target URL --baseline perf-results/last-release          # exit 1 when slower
    blog-perf locust --target URL --steps 25:300:25:20 --slo-p95-ms 250         # capacity and knee
    blog-perf cache --target URL --titles 5
    blog-perf concurrency --target URL --levels 1,5,10,20,50,100,200,500
    blog-perf report DIR
    blog-perf compare OLD.json NEW.json [--tolerance 40 --floor-ms 10]
    blog-perf accounts --target URL --count 50 --out accounts.txt   # for --accounts FILE

Exit codes: 0 ok, 1 a threshold missed or a regression against the baseline,
2 bad usage, 3 the run could not be done, 130 interrupted (results still written).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from perfcontract import baseline, capacity, judging, results_file, run_summary

from . import blog_client, cache_test, compare, concurrency, locust_baseline, locust_run, report
from .blog_perf_args import build_parser, distributed_problem, live_metrics_of, metrics_problem, slo_of
from .progress import Progress

EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _parameters(args: argparse.Namespace) -> dict:
    skip = {"command", "password", "quiet", "out"}
    parameters = {k: v for k, v in vars(args).items() if k not in skip}
    if "baseline_tolerances" in parameters:  # the forms the command line takes them in
        parameters["baseline_tolerances"] = baseline.format_tolerances(parameters["baseline_tolerances"])
    if parameters.get("steps"):
        parameters["steps"] = parameters["steps"].text()
    return parameters


def _default_out(kind: str) -> Path:
    return Path("perf-results") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _run_parts(args: argparse.Namespace, kind: str, out: Path, runs: dict, progress: Progress) -> None:
    """The tests ``kind`` names, in order, each recording into ``runs``."""
    if kind in ("cache", "all"):
        progress.line("== cache test ==")
        runs["cache"] = {}
        cache_test.run(args.target, args.titles, args.repeats, args.generation_timeout, args.concurrent_clients,
                       args.concurrent_duration, args.concurrent_rate or None, args.user, args.password,
                       progress, record=runs["cache"])
    if kind in ("concurrency", "all"):
        progress.line("== concurrency test ==")
        runs["concurrency"] = {}
        concurrency.run(args.target, args.endpoints, args.levels, args.level_duration, args.timeout,
                        args.client_processes, args.user, args.password, progress, record=runs["concurrency"])
    if kind in ("locust", "all"):
        progress.line("== Locust scenario ==")
        runs["locust"] = {}
        master = locust_run.Master(args.expect_workers, args.expect_workers_max_wait, args.master_port) \
            if getattr(args, "master", False) else None
        locust_run.run(args.target, out, args.users, args.spawn_rate, args.locust_duration, args.processes,
                       args.wait_min, args.wait_max, progress, record=runs["locust"], weights=args.weights,
                       accounts=args.accounts, master=master, scenario=getattr(args, "locustfile", None),
                       metrics=live_metrics_of(args), steps=getattr(args, "steps", None))


def run_suite(args: argparse.Namespace, progress: Progress, found_baseline: tuple[dict, dict] | None = None) -> int:
    """``found_baseline``: (figures, source) to compare the Locust run with (locust_baseline.given)."""
    kind = args.command
    out = Path(args.out) if args.out else _default_out(kind)
    document = results_file.new_document(kind, args.target, _parameters(args))
    runs = document["runs"]
    code = EXIT_OK
    refused = None  # the line saying the blog's rate limits refused a sign-up or login
    compared: list[baseline.Row] = []  # the Locust run against found_baseline, figure by figure
    try:
        _run_parts(args, kind, out, runs, progress)
    except KeyboardInterrupt:
        document["interrupted"] = True
        code = EXIT_INTERRUPTED
        progress.line("interrupted: writing what was measured")
    except blog_client.RefusedByLimits as exc:
        # One line, and no further test: every sign-up or login after this one would be refused too.
        refused = str(exc)
        running = next(reversed(runs))
        runs[running]["error"] = refused
        runs[running].setdefault("notes", []).append(refused)
        code = EXIT_FAILED
    finally:
        document["finished_at"] = results_file.now_iso()
        if getattr(args, "steps", None) and (runs.get("locust") or {}).get("summary"):
            runs["locust"]["capacity"] = capacity.analyse(
                capacity.steps_from(runs["locust"]["summary"].get("steps")), slo_of(args))
        document["thresholds"] = judging.evaluate(document, args.max_p95_ms, args.max_error_rate, args.min_rps,
                                                     args.max_p99_ms, getattr(args, "min_capacity_users", None))
        if found_baseline is not None and runs.get("locust", {}).get("summary"):
            figures, source = found_baseline
            compared = locust_baseline.compare(args, figures, document)
            document["comparison"] = baseline.record(source, compared)
        path = results_file.write(out, document)
        html = report.write(out, document)
        print(f"results: {path}\nreport:  {html}")
        if getattr(args, "log_summary", False):
            for line in run_summary.lines(document, html.read_bytes()):
                print(line, flush=True)
    missed = judging.failed(document["thresholds"])
    if refused:
        print(f"blog-perf {kind}: {refused}", file=sys.stderr)
    if code == EXIT_OK and (runs.get("locust") or {}).get("error"):
        print(f"blog-perf locust: {runs['locust']['error']}", file=sys.stderr)
        code = EXIT_FAILED
    for check in missed:
        print(f"threshold missed: {check['check']}: measured {check['measured']}, limit {check['limit']}",
              file=sys.stderr)
    regressed = baseline.reasons(compared)
    for line in regressed:
        print(line, file=sys.stderr)
    if code == EXIT_OK and (missed or regressed):
        code = EXIT_THRESHOLD
    return code


def make_accounts(args: argparse.Namespace) -> int:
    """blog-perf accounts: sign up ``--count`` accounts (a few at a time) and write them to ``--out``."""
    if Path(args.out).exists():
        print(f"blog-perf accounts: {args.out} exists; give a new file (it would lose the accounts it holds)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        path = locust_run.create_accounts(args.target, args.count, args.out)
    except blog_client.SetupError as exc:  # the blog's rate limits refusing a sign-up among them
        print(f"blog-perf accounts: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # an unreachable target: say what happened, not a traceback wall
        print(f"blog-perf accounts: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.count} accounts in {path}: blog-perf locust --accounts {path} (or BLOG_PERF_ACCOUNTS={path})")
    return EXIT_OK


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser(epilog=__doc__.split("\n\n", 1)[1]).parse_args(argv)
    if args.command == "report":
        try:
            path = report.rerender(args.dir)
        except results_file.ResultsError as exc:
            print(f"blog-perf report: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"report: {path}")
        return EXIT_OK
    if args.command == "compare":
        try:
            rows, text, html = compare.run(args.old, args.new, compare.tolerances(
                args.tolerance, args.floor_ms, args.floor_rps, args.floor_points), args.out)
        except results_file.ResultsError as exc:
            print(f"blog-perf compare: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(text)
        print(f"\nreport: {html}")
        return EXIT_THRESHOLD if any(r["status"] == "regression" for r in rows) else EXIT_OK
    if args.command == "accounts":
        return make_accounts(args)
    if args.command in ("locust", "all") and args.wait_max < args.wait_min:
        print("blog-perf: --wait-max must not be smaller than --wait-min", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "locust" and (problem := distributed_problem(args)):
        print(f"blog-perf locust: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("locust", "all") and (problem := metrics_problem(args)):
        print(f"blog-perf {args.command}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # A stop request (SIGTERM, e.g. from Kubernetes) ends the run like Ctrl-C: results are still written.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.command == "locust" and args.worker:
        return locust_run.run_worker(args.master_host, args.master_port, args.wait_min, args.wait_max, args.weights,
                                     scenario=args.locustfile)
    try:
        found_baseline = locust_baseline.given(args)  # a missing or wrong file is a usage error, before the run
    except results_file.ResultsError as exc:
        print(f"blog-perf {args.command}: --baseline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_suite(args, Progress(quiet=args.quiet), found_baseline)
    except Exception as exc:  # a bug or an unusable target: say what happened, not a traceback wall
        print(f"blog-perf {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
