"""``blog-loadtest-operator``: run the LoadTest operator.

    blog-loadtest-operator --namespace blog --namespace perf
    blog-loadtest-operator --all-namespaces

Watches the given namespaces (or ``WATCH_NAMESPACES``, comma separated; the
chart sets it), serves kopf's liveness at ``:LIVENESS_PORT/healthz`` and
Prometheus metrics at ``:METRICS_PORT/metrics``. One replica (standalone:
no peering objects to create or be allowed to).
"""
from __future__ import annotations

import argparse
import os
import sys

import kopf


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blog-loadtest-operator", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", action="append", default=[], help="a namespace to watch (repeatable)")
    parser.add_argument("--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument("--liveness-port", type=int, default=int(os.environ.get("LIVENESS_PORT", "8080")))
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("METRICS_PORT", "9102")),
                        help="0 turns the metrics endpoint off")
    parser.add_argument("--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    namespaces = args.namespace or [n.strip() for n in os.environ.get("WATCH_NAMESPACES", "").split(",") if n.strip()]
    if not namespaces and not args.all_namespaces:
        print("blog-loadtest-operator: give --namespace NAME (or WATCH_NAMESPACES) or --all-namespaces",
              file=sys.stderr)
        return 2
    from . import handlers, metrics  # noqa: F401  (registers the handlers)
    kopf.configure(verbose=args.verbose)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kopf.run(standalone=True, clusterwide=args.all_namespaces, namespaces=namespaces,
             liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
