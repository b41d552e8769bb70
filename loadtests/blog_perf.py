"""blog-perf: the blog's performance suite.

    blog-perf all --target http://127.0.0.1:8000 --out perf-results/today
    blog-perf locust --target URL --users 200 --duration 60 --processes 2
    blog-perf locust --target URL --master --expect-workers 4 --log-summary   # in one pod
    blog-perf locust --target URL --worker --master-host HOST                  # in each of 4 others
    blog-perf cache --target URL --titles 5
    blog-perf concurrency --target URL --levels 1,5,10,20,50,100,200,500
    blog-perf report DIR
    blog-perf compare OLD.json NEW.json --tolerance 10
    blog-perf accounts --target URL --count 50 --out accounts.txt   # for --accounts FILE

Exit codes: 0 ok, 1 a threshold (or compare: a regression) missed,
2 bad usage, 3 the run could not be done, 130 interrupted (results still written).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from perfcontract import judging, results_file, run_summary, runner, task_mix

from . import blog_client, cache_test, compare, concurrency, locust_run, report
from .account_file import read_accounts
from .progress import Progress

EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _target(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL such as http://127.0.0.1:8000")
    return value.rstrip("/")


def _levels(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: levels are whole numbers separated by commas, e.g. 1,5,10") from None
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError("levels must be positive whole numbers, e.g. 1,5,10")
    return levels


def _endpoints(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in concurrency.ENDPOINTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"endpoints are a comma list of {', '.join(concurrency.ENDPOINTS)}")
    return names


def _weights(value: str) -> dict[str, int]:
    try:
        return task_mix.parse_weights(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _accounts(value: str) -> int | str:
    """A number of accounts to create before the run, or a file of username:password lines."""
    if value.strip().isdigit():
        return _positive(int)(value)
    try:
        read_accounts(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (give a number of accounts to create, or a file)") from None
    return value


def _positive(kind):
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
        return number
    return parse


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must not be negative")
    return number


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, type=_target, help="base URL of the blog, e.g. http://127.0.0.1:8000")
    parser.add_argument("--out", help="folder for results.json and report.html (default perf-results/<kind>-<time>)")
    parser.add_argument("--max-p95-ms", type=_positive(float), help="fail (exit 1) if a non-AI p95 is above this")
    parser.add_argument("--max-p99-ms", type=_positive(float), help="fail (exit 1) if a non-AI p99 is above this")
    parser.add_argument("--max-error-rate", type=_non_negative,
                        help="fail (exit 1) if an error rate is above this share, e.g. 0.01 (429 backpressure excluded)")
    parser.add_argument("--min-rps", type=_positive(float), help="fail (exit 1) if throughput is below this")
    parser.add_argument("--user", help="account for the AI API (default: register a fresh one; or BLOG_PERF_USER)")
    parser.add_argument("--password", help="its password (or BLOG_PERF_PASSWORD)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _add_locust(parser, duration: float) -> None:
    group = parser.add_argument_group("locust")
    group.add_argument("--users", type=_positive(int), default=50, help="simulated users (default %(default)s)")
    group.add_argument("--spawn-rate", type=_positive(float), default=10, help="users started per second (default %(default)s)")
    group.add_argument("--duration", "--locust-duration", dest="locust_duration", type=_positive(float), default=duration,
                       help="seconds of load (default %(default)s)")
    group.add_argument("--processes", type=_positive(int), default=1,
                       help="Locust processes (master + forked workers) for more load than one core gives")
    group.add_argument("--wait-min", type=_non_negative, default=1.0, help="think time minimum, seconds")
    group.add_argument("--wait-max", type=_non_negative, default=3.0, help="think time maximum, seconds")
    group.add_argument("--weights", type=_weights, default=dict(task_mix.DEFAULT_TASK_WEIGHTS),
                       help="task mix, e.g. ai=0,login=0 (default the seed's: home=10,post=5,login=1,write=1,ai=2)")
    group.add_argument("--accounts", type=_accounts, default=None, metavar="N|FILE",
                       help="users share N accounts created before the run, or those in FILE (username:password "
                            "lines; also BLOG_PERF_ACCOUNTS); default: each user registers its own when it starts")


def _add_distributed(parser) -> None:
    group = parser.add_argument_group("distributed (Locust master and workers in separate processes or pods)")
    role = group.add_mutually_exclusive_group()
    role.add_argument("--master", action="store_true", help="be the master: wait for workers, record the figures")
    role.add_argument("--worker", action="store_true", help="be a worker of the master at --master-host")
    group.add_argument("--expect-workers", type=_positive(int), help="workers the master waits for (with --master)")
    group.add_argument("--expect-workers-max-wait", type=_positive(float), default=120.0,
                       help="seconds the master waits for them before failing the run (default %(default)s)")
    group.add_argument("--master-host", help="the master's host name or address (with --worker)")
    group.add_argument("--master-port", type=_positive(int), default=runner.MASTER_PORT,
                       help="the master's port (default %(default)s)")
    group.add_argument("--locustfile", metavar="FILE",
                       help="a scenario of your own instead of the blog's (the same file for master and workers); "
                            "the recording and the report are blog-perf's")
    group.add_argument("--log-summary", action="store_true",
                       help="end with the summary (and the gzipped report) as lines on stdout, for the LoadTest "
                            "operator, which reads them from the pod's log")


def _distributed_problem(args: argparse.Namespace) -> str | None:
    if args.master and not args.expect_workers:
        return "--master needs --expect-workers N"
    if args.worker and not args.master_host:
        return "--worker needs --master-host HOST"
    if args.expect_workers and not args.master:
        return "--expect-workers goes with --master"
    if (args.master or args.worker) and args.processes > 1:
        return "--processes is for one machine; with --master/--worker start more workers instead"
    if args.locustfile and not Path(args.locustfile).is_file():
        return f"--locustfile {args.locustfile}: no such file"
    if args.worker and args.accounts is not None:
        return "--accounts goes to the master, which hands the accounts to its workers"
    return None


def _add_cache(parser) -> None:
    group = parser.add_argument_group("cache")
    group.add_argument("--titles", type=_positive(int), default=5, help="fresh titles (default %(default)s)")
    group.add_argument("--repeats", type=_positive(int), default=5, help="cached calls per title (default %(default)s)")
    group.add_argument("--concurrent-clients", type=int, default=50,
                       help="clients for the concurrent cached test; 0 skips it (default %(default)s)")
    group.add_argument("--concurrent-duration", type=_positive(float), default=3.0, help="seconds (default %(default)s)")
    group.add_argument("--concurrent-rate", type=_non_negative, default=200.0,
                       help="offered requests/s of all clients together; 0 = back to back (default %(default)s)")
    group.add_argument("--generation-timeout", type=_positive(float), default=60.0, help="seconds per generation")


def _add_concurrency(parser, duration: float) -> None:
    group = parser.add_argument_group("concurrency")
    group.add_argument("--levels", type=_levels, default=list(concurrency.DEFAULT_LEVELS),
                       help="concurrent clients per step (default 1,5,10,20,50,100,200,500)")
    group.add_argument("--endpoints", type=_endpoints, default=list(concurrency.ENDPOINTS),
                       help="comma list of home,post,ai (default all)")
    group.add_argument("--level-duration", type=_positive(float), default=duration,
                       help="seconds per level (default %(default)s)")
    group.add_argument("--timeout", type=_positive(float), default=30.0, help="seconds per request (default %(default)s)")
    group.add_argument("--client-processes", type=_positive(int), default=1,
                       help="client processes (one Python process sends a few thousand requests/s at most)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blog-perf", description="The blog's performance suite: Locust scenario, "
                                     "cache and concurrency testers, one offline HTML report.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("locust", help="the Locust scenario, headless")
    _add_common(p)
    _add_locust(p, 30.0)
    _add_distributed(p)
    p = sub.add_parser("cache", help="uncached vs cached AI generation")
    _add_common(p)
    _add_cache(p)
    p = sub.add_parser("concurrency", help="latency, throughput and errors by concurrency level")
    _add_common(p)
    _add_concurrency(p, 3.0)
    p = sub.add_parser("all", help="cache, concurrency and Locust (about three minutes with the defaults)")
    _add_common(p)
    _add_locust(p, 45.0)
    _add_cache(p)
    _add_concurrency(p, 3.0)
    p = sub.add_parser("accounts", help="sign up accounts and keep them in a file, for --accounts FILE")
    p.add_argument("--target", required=True, type=_target, help="base URL of the blog, e.g. http://127.0.0.1:8000")
    p.add_argument("--count", required=True, type=_positive(int), help="accounts to sign up")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="new file for them, one username:password a line (readable by you only)")
    p = sub.add_parser("report", help="render DIR/report.html again from DIR/results.json")
    p.add_argument("dir")
    p = sub.add_parser("compare", help="differences between two results.json files")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--tolerance", type=_non_negative, default=10.0,
                   help="percent a figure may get worse before it counts as a regression (default %(default)s)")
    p.add_argument("--out", help="folder for compare.html (default: beside NEW)")
    return parser


def _parameters(args: argparse.Namespace) -> dict:
    skip = {"command", "password", "quiet", "out"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def _default_out(kind: str) -> Path:
    return Path("perf-results") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_suite(args: argparse.Namespace, progress: Progress) -> int:
    kind = args.command
    out = Path(args.out) if args.out else _default_out(kind)
    document = results_file.new_document(kind, args.target, _parameters(args))
    runs = document["runs"]
    code = EXIT_OK
    refused = None  # the line saying the blog's rate limits refused a sign-up or login
    try:
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
                           accounts=args.accounts, master=master, scenario=getattr(args, "locustfile", None))
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
        document["thresholds"] = judging.evaluate(document, args.max_p95_ms, args.max_error_rate, args.min_rps,
                                                     args.max_p99_ms)
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
    if code == EXIT_OK and missed:
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
    args = build_parser().parse_args(argv)
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
            rows, text, html = compare.run(args.old, args.new, args.tolerance, args.out)
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
    if args.command == "locust" and (problem := _distributed_problem(args)):
        print(f"blog-perf locust: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # A stop request (SIGTERM, e.g. from Kubernetes) ends the run like Ctrl-C: results are still written.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.command == "locust" and args.worker:
        return locust_run.run_worker(args.master_host, args.master_port, args.wait_min, args.wait_max, args.weights,
                                     scenario=args.locustfile)
    try:
        return run_suite(args, Progress(quiet=args.quiet))
    except Exception as exc:  # a bug or an unusable target: say what happened, not a traceback wall
        print(f"blog-perf {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
