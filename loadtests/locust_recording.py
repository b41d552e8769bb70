"""blog-perf's recording for a scenario of your own (``blog-perf locust --locustfile FILE``).

Locust runs ``-f loadtests/locust_recording.py,FILE``: importing the built-in
scenario's module registers its listeners (history.jsonl, summary.json, the
accounts a master shares with its workers), while its ``BlogUser`` is not a
name of this module, so Locust runs only FILE's users.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `locust -f` from anywhere
import loadtests.locustfile  # noqa: E402,F401  (its event listeners are the point)
