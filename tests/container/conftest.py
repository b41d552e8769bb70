"""The container tests share one build of each image per session (tests/support/container.py)."""
from tests.support.container import aiblog_image, aiblog_operator_image  # noqa: F401  (session fixtures)
