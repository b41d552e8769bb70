"""What a distributed run's processes and whoever starts them (``blog-perf
locust --master/--worker``, the LoadTest operator's pods) must agree on."""

MASTER_PORT = 5557  # the Locust master's port for its workers (Locust's default)
# The master's live figures for Prometheus (``blog-perf locust --metrics-port``,
# path /metrics, names in loadtests/live_metrics.py). Beside the blog's 9100,
# its worker's 9101 and the operator's own 9102.
METRICS_PORT = 9103
# The run's own secret: a worker shows it to get the run's accounts from the
# master (Locust's port has no authentication). The operator keeps it in a
# Secret of the run; the scenario (loadtests/locust_messages.py) reads it.
RUN_TOKEN_ENV = "BLOG_PERF_RUN_TOKEN"
