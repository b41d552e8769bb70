"""What a distributed run's processes and whoever starts them (``blog-perf
locust --master/--worker``, the LoadTest operator's pods) must agree on."""

MASTER_PORT = 5557  # the Locust master's port for its workers (Locust's default)
# The run's own secret: a worker shows it to get the run's accounts from the
# master (Locust's port has no authentication). The operator keeps it in a
# Secret of the run; the scenario (loadtests/locust_messages.py) reads it.
RUN_TOKEN_ENV = "BLOG_PERF_RUN_TOKEN"
