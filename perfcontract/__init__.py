"""The contract between a load-test runner and whoever judges it.

What a run writes (``results_file``: results.json; ``run_summary``: the
summary and report lines at the end of the runner's log), how its figures are
judged (``judging``; against a baseline: ``baseline``), the scenario's task mix a run may be given
(``task_mix``), and the facts a runner and its orchestrator must agree on
(``runner``: the master's port, its live metrics' port, the run token's variable).

Both sides import it: the performance suite (``loadtests``, which writes) and
the LoadTest operator (``operators.loadtest``, which reads and judges). It
imports neither Locust nor Kubernetes nor Flask, so either side can use it
without the other's dependencies.
"""
