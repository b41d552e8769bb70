"""Each chart's README.md (issue 22, part 4): its values table is what
scripts/chart_readme.py makes of values.yaml's comments, so it never drifts; every
value has a row and a description; and the sections a user looks for are there."""
from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest
import yaml

from devstack import REPO
from tests.support.charts import BLOG_CHART, MONITORING_CHART

pytestmark = pytest.mark.charts

spec = importlib.util.spec_from_file_location("chart_readme", REPO / "scripts" / "chart_readme.py")
chart_readme = sys.modules["chart_readme"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(chart_readme)

CHARTS = pytest.mark.parametrize("chart", [BLOG_CHART, MONITORING_CHART], ids=["blog", "monitoring"])


def leaves(value, path=()):
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, path + (key,))
    else:
        yield path


@CHARTS
def test_the_values_table_is_generated_from_values_yaml(chart):
    readme = chart / "README.md"
    assert chart_readme.rewritten(readme, chart) == readme.read_text(), \
        f"stale: python scripts/chart_readme.py {chart.relative_to(REPO)}"


@CHARTS
def test_every_value_has_a_described_row(chart):
    rows = chart_readme.documented(chart / "values.yaml")
    assert all(row.description for row in rows), [row.path for row in rows if not row.description]
    keys = [row.key for row in rows]
    for leaf in leaves(yaml.safe_load((chart / "values.yaml").read_text())):
        assert any(leaf[:len(key)] == key for key in keys), ".".join(leaf)


@CHARTS
def test_the_readme_has_what_artifact_hub_readers_look_for(chart):
    text = (chart / "README.md").read_text()
    for heading in ("## What it installs", "## Install", "## Secrets, Argo CD and Flux", "## Upgrade notes",
                    "## Values"):
        assert heading in text, heading


def test_a_changed_comment_makes_the_table_stale(tmp_path):
    copy = tmp_path / "blog"
    shutil.copytree(BLOG_CHART, copy)
    values = copy / "values.yaml"
    values.write_text(values.read_text().replace("# Blog pods.", "# How many blog pods run."))
    assert chart_readme.main(["--check", str(copy)]) == 1
    assert chart_readme.main([str(copy)]) == 0 and chart_readme.main(["--check", str(copy)]) == 0
    assert "| `replicaCount` | `1` | How many blog pods run." in (copy / "README.md").read_text()


def test_the_blog_readme_shows_the_gitops_mode_the_schema_enforces():
    from tests.support.charts import render

    block = (BLOG_CHART / "README.md").read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    values = yaml.safe_load(block)
    assert values["generateSecrets"] is False
    assert render(BLOG_CHART, values).of_kind("Secret") == []
