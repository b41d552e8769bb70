"""The alert rules: valid for promtool, proven by promtool unit tests, and
every alert documented with a runbook section that exists."""
from __future__ import annotations

import re
import subprocess

import yaml

from tests.support.monitoring import RULES_FILE, RULES_TEST_FILE, RUNBOOKS, alerts, rules
from devstack import require_binary


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("promtool", "the Debian package 'prometheus'"), *args], capture_output=True, text=True,
                          cwd=RULES_FILE.parent)


def test_promtool_check_rules_passes():
    result = promtool("check", "rules", RULES_FILE.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", RULES_TEST_FILE.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_a_unit_test_and_is_checked_silent_somewhere():
    tests = yaml.safe_load(RULES_TEST_FILE.read_text())["tests"]
    checks = [check for test in tests for check in test.get("alert_rule_test", [])]
    fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
    assert fired == {rule["alert"] for rule in alerts()}
    silent = {check["alertname"] for check in checks if not check.get("exp_alerts")}
    assert {"AIBlogHigh5xxRatio", "AIBlogLLMCircuitOpen"} <= silent


def test_the_file_is_a_plain_rules_file_that_fits_a_prometheusrule_spec():
    document = yaml.safe_load(RULES_FILE.read_text())
    assert list(document) == ["groups"]  # exactly what PrometheusRule.spec holds
    assert all(set(group) <= {"name", "interval", "rules"} for group in document["groups"])
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_alert_is_documented_with_a_runbook_section_that_exists():
    headings = {github_anchor(line.lstrip("#")) for line in RUNBOOKS.read_text().splitlines()
                if line.startswith("## ")}
    for rule in alerts():
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "docs/runbooks.md", rule["alert"]
        assert anchor in headings, f"{rule['alert']}: no section #{anchor} in {RUNBOOKS.name}"
