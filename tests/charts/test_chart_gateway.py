"""The Gateway API route (issue 22, part 3): it sends a Gateway's traffic for its
hostnames to the blog Service's `http` port only, the schema refuses a route that
attaches to nothing or names no host, and NOTES tell where the blog is."""
from __future__ import annotations

import pytest

from tests.support.charts import BLOG_CHART, BLOG_VALUE_SETS, render, render_error

pytestmark = pytest.mark.charts

ROUTE = {"enabled": True, "parentRefs": [{"name": "eg", "namespace": "gateways"}], "hostnames": ["blog.example.org"]}


def test_the_route_sends_its_hosts_to_the_http_port_only():
    objects = render(BLOG_CHART, BLOG_VALUE_SETS["everything-enabled"])
    route = objects.named("HTTPRoute", "aiblog")["spec"]
    service = objects.named("Service", "aiblog")["spec"]
    ports = {p["port"]: p["name"] for p in service["ports"]}
    ai, rule = route["rules"]  # the AI pool's paths first (tests/charts/test_chart_ai_pool.py)
    assert [(b["name"], ports[b["port"]]) for b in ai["backendRefs"]] == [("aiblog-ai", "http")]
    assert [(b["name"], ports[b["port"]]) for b in rule["backendRefs"]] == [("aiblog", "http")]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert route["parentRefs"] == [{"name": "eg", "namespace": "gateways", "sectionName": "http"}]
    assert "http://blog.example.org/ (HTTPRoute" in objects.notes


def test_the_route_follows_the_service_port():
    route = render(BLOG_CHART, {"httpRoute": ROUTE, "service": {"port": 8080}}).named("HTTPRoute", "aiblog")
    assert {rule["backendRefs"][0]["port"] for rule in route["spec"]["rules"]} == {8080}


def test_no_route_unless_asked():
    assert render().of_kind("HTTPRoute") == []


@pytest.mark.parametrize("route, message", [
    ({"enabled": True, "hostnames": ["blog.example.org"]}, "at '/httpRoute/parentRefs': minItems: got 0, want 1"),
    ({**ROUTE, "hostnames": []}, "at '/httpRoute/hostnames': minItems: got 0, want 1"),
    ({**ROUTE, "hostnames": ["10.0.0.1:80"]}, "at '/httpRoute/hostnames/0'"),
    ({**ROUTE, "parentRefs": [{"namespace": "gateways"}]}, "missing property 'name'"),
], ids=["no-gateway", "no-hostname", "hostname-with-port", "parent-without-name"])
def test_the_schema_refuses_a_route_that_cannot_work(route, message):
    error = render_error(BLOG_CHART, {"httpRoute": route})
    assert message in error, error
