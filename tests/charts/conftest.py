"""Renders shared by the chart tests: each value set of the matrix rendered once."""
from __future__ import annotations

import functools

import pytest

from tests.support.charts import BLOG_CHART, BLOG_VALUE_SETS, MONITORING_CHART, MONITORING_VALUE_SETS, Render, render

RENDERS = [("blog", name) for name in BLOG_VALUE_SETS] + [("monitoring", name) for name in MONITORING_VALUE_SETS]


@functools.cache
def rendered(chart: str, value_set: str) -> Render:
    if chart == "blog":
        return render(BLOG_CHART, BLOG_VALUE_SETS[value_set])
    return render(MONITORING_CHART, MONITORING_VALUE_SETS[value_set], name="monitoring", namespace="monitoring")


@pytest.fixture(params=[name for name in BLOG_VALUE_SETS], ids=lambda name: f"blog:{name}")
def blog(request) -> Render:
    """The blog chart rendered with one value set of the matrix."""
    return rendered("blog", request.param)


@pytest.fixture(params=RENDERS, ids=lambda r: f"{r[0]}:{r[1]}")
def any_chart(request) -> Render:
    """Either chart rendered with one of its value sets."""
    return rendered(*request.param)


from tests.support.container import aiblog_image  # noqa: E402,F401 (the image fixture, for the pod runs)
