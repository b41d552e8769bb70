"""The container tests share one build of each image per session, and a
containerised blog with its stack per module (tests/support/container.py)."""
from tests.support.container import (aiblog_image, aiblog_operator_image, blog, built_images,  # noqa: F401  (fixtures)
                                     migrated, stack)


def pytest_terminal_summary(terminalreporter):
    """Image sizes and build times at the end of the run (also on success)."""
    for image in built_images():
        terminalreporter.write_line(f"container image {image.tag}: {image.size_bytes / 1e6:.0f} MB, "
                                    f"built in {image.build_seconds:.0f} s (base {image.base})")
