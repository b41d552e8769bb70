"""blog-perf's command line: its subcommands, their options and how each
value is checked (a bad value is a usage error, exit code 2, before anything runs)."""
from __future__ import annotations

import argparse
import socket
from pathlib import Path
from urllib.parse import urlparse

from perfcontract import baseline, capacity, runner, task_mix

from . import concurrency, live_metrics
from .account_file import read_accounts

_UNIT = baseline.DEFAULT_BY_UNIT


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


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return port


def _run_name(value: str) -> str:
    if not live_metrics.RUN_NAME_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: up to 63 letters, digits, '.', '_' or '-', "
                                         "starting and ending with a letter or digit")
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
    group.add_argument("--metrics-port", type=_port, metavar="PORT",
                       help="serve the run's live figures for Prometheus on PORT (/metrics) while it goes on, "
                            f"from the master or the single local process (the operator's: {runner.METRICS_PORT})")
    group.add_argument("--metrics-host", metavar="ADDRESS",
                       help=f"address to serve them on (default {live_metrics.DEFAULT_HOST}; 0.0.0.0 in a pod)")
    group.add_argument("--run-name", type=_run_name, metavar="NAME",
                       help="label every live series run=NAME, to tell local runs apart (not in a cluster: "
                            "there the pod's labels give loadtest and run)")


def _baseline_figures(value: str) -> dict:
    try:
        figures = baseline.parse_figures(value)
    except baseline.FormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not figures:
        raise argparse.ArgumentTypeError("no figure given")
    return figures


def _baseline_tolerances(value: str) -> dict:
    try:
        return {**baseline.DEFAULT_TOLERANCES, **baseline.parse_tolerances(value)}
    except baseline.FormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _profile(value: str) -> capacity.Profile:
    try:
        return capacity.Profile.parse(value)
    except capacity.ProfileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_steps(parser) -> None:
    group = parser.add_argument_group("capacity (how much can it take? the LoadTest's spec.profile, locally)")
    group.add_argument("--steps", type=_profile, metavar="START:END:STEP:SECONDS",
                       help="step the users from START to END by STEP, each step held SECONDS (instead of "
                            "--users and --duration); records each step, the capacity and the knee")
    group.add_argument("--slo-p95-ms", type=_positive(float), metavar="MS",
                       help="a step is within the SLO when its non-AI p95 is at most this")
    group.add_argument("--slo-error-rate", type=_non_negative, default=0.01, metavar="SHARE",
                       help="and its error rate at most this (default %(default)s)")
    group.add_argument("--min-capacity-users", type=_positive(int), metavar="USERS",
                       help="fail (exit 1) if the capacity (the most users within the SLO) is below this")


def slo_of(args: argparse.Namespace) -> capacity.SLO:
    return capacity.SLO(args.slo_p95_ms, args.slo_error_rate)


def _add_baseline(parser) -> None:
    group = parser.add_argument_group("baseline (did it get slower? the LoadTest's spec.compare, locally)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--baseline", metavar="RESULTS",
                        help="an earlier run's results.json (or its folder): a figure worse than there beyond "
                             "its tolerance is a regression (exit 1)")
    source.add_argument("--baseline-figures", type=_baseline_figures, metavar="FIGURES",
                        help="the baseline's figures instead, e.g. p95=124,p99=260,rps=33,errorRate=0")
    defaults = ",".join(f"{k}={t.percent:g}:{t.absolute:g}" for k, t in baseline.DEFAULT_TOLERANCES.items())
    group.add_argument("--baseline-tolerances", type=_baseline_tolerances, default=dict(baseline.DEFAULT_TOLERANCES),
                       metavar="TOLERANCES",
                       help="how much worse each figure may get: FIGURE=PERCENT:ABSOLUTE, the larger counts "
                            f"(default {defaults}; ms, requests/s, share)")


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


def distributed_problem(args: argparse.Namespace) -> str | None:
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
    if getattr(args, "min_capacity_users", None) and not getattr(args, "steps", None):
        return "--min-capacity-users needs --steps (a capacity comes from a stepped run)"
    if args.worker and getattr(args, "steps", None):
        return "--steps goes to the master, which steps its workers' users"
    return None


def live_metrics_of(args: argparse.Namespace) -> live_metrics.LiveMetrics | None:
    if args.metrics_port is None:
        return None
    return live_metrics.LiveMetrics(args.metrics_port, args.metrics_host or live_metrics.DEFAULT_HOST, args.run_name)


def metrics_problem(args: argparse.Namespace) -> str | None:
    """A --metrics-* option that cannot work, in one line (checked before anything runs)."""
    settings = live_metrics_of(args)
    if settings is None:
        if args.metrics_host or args.run_name:
            return "--metrics-host and --run-name go with --metrics-port PORT"
        return None
    if getattr(args, "worker", False):
        return "--metrics-port goes to the master (or a local run): workers' figures reach it"
    if getattr(args, "master", False) and settings.port == args.master_port:
        return f"--metrics-port {settings.port} is the master's port for its workers; choose another"
    try:
        _try_bind(settings.host, settings.port)
    except OSError as exc:
        return f"--metrics-port {settings.port}: cannot listen on {settings.host}:{settings.port} " \
               f"({exc.strerror or exc})"
    return None


def _try_bind(host: str, port: int) -> None:
    """Bind and let go at once, as the metrics server will (SO_REUSEADDR: a port in TIME_WAIT is free)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


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


def build_parser(epilog: str = "") -> argparse.ArgumentParser:
    """``epilog``: the usage examples shown under --help (blog_perf's docstring)."""
    parser = argparse.ArgumentParser(prog="blog-perf", description="The blog's performance suite: Locust scenario, "
                                     "cache and concurrency testers, one offline HTML report.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("locust", help="the Locust scenario, headless")
    _add_common(p)
    _add_locust(p, 30.0)
    _add_steps(p)
    _add_baseline(p)
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
    p.add_argument("--tolerance", type=_non_negative, metavar="PERCENT",
                   help="percent a figure may get worse before it counts as a regression (default: "
                        f"{_UNIT['ms'].percent:g} for latencies, {_UNIT['rps'].percent:g} for rates and "
                        f"{baseline.OTHER_UNITS.percent:g} for the rest), unless the change is within its floor")
    p.add_argument("--floor-ms", type=_non_negative, metavar="MS",
                   help=f"a latency never regresses by less than this many ms (default {_UNIT['ms'].absolute:g})")
    p.add_argument("--floor-rps", type=_non_negative, metavar="RPS",
                   help=f"a rate never regresses by less than this many requests/s (default {_UNIT['rps'].absolute:g})")
    p.add_argument("--floor-points", type=_non_negative, metavar="POINTS",
                   help=f"an error rate may rise by this many percentage points (default "
                        f"{_UNIT['ratio'].absolute * 100:g})")
    p.add_argument("--out", help="folder for compare.html (default: beside NEW)")
    return parser
