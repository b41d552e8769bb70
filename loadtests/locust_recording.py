"""blog-perf's recording for a scenario of your own (``blog-perf locust --locustfile FILE``).

Locust runs ``-f loadtests/locust_recording.py,FILE``: importing the modules
beside the built-in scenario registers their listeners (locust_output:
history.jsonl, summary.json; locust_live: live figures on --metrics-port;
locust_messages: the accounts a master shares with its workers, a refusal by
the blog's limits), while this module has no user class, so Locust runs only
FILE's users.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `locust -f` from anywhere
import loadtests.locust_live  # noqa: E402,F401
import loadtests.locust_messages  # noqa: E402,F401  (their event listeners are the point)
import loadtests.locust_output  # noqa: E402,F401
