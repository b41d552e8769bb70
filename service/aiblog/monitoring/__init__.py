"""Prometheus monitoring of the blog, in five parts:

- ``metrics``: every application metric, the one place their names are spelled;
- ``instrumentation``: what a worker records per request (the exporter, DB timing, active users);
- ``metrics_server``: ``/metrics`` on its own port, served by the gunicorn master for all workers;
- ``active_users``: users seen in the last minutes, in Redis or in files on this machine;
- ``redis_resp``: just enough of the Redis protocol for the metrics server (no redis-py in the master).

Kept free of imports: the gunicorn master imports ``metrics_server`` before
anything may import ``prometheus_client`` (see there why).
"""
