"""Both charts render with Helm's own engine for the whole value matrix, pass
`helm lint --strict`, and every object validates against Kubernetes' OpenAPI
schema (and, for Prometheus Operator kinds, the fields its CRDs accept)."""
from __future__ import annotations

import json
from pathlib import Path

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.charts import (BLOG_CHART, BLOG_VALUE_SETS, KUBERNETES_VERSION, MONITORING_CHART, Render, render,
                                  render_error)

pytestmark = pytest.mark.charts

SCHEMAS = Path(__file__).parent / "schemas"
# Kinds from CRDs, which kubernetes-validate does not know: the fields the charts use, by API group.
CRD_SCHEMAS = {"monitoring.coreos.com": json.loads((SCHEMAS / "prometheus-operator.json").read_text()),
               "gateway.networking.k8s.io": json.loads((SCHEMAS / "gateway-api.json").read_text())}
MISSING_DEPENDENCY = "chart directory is missing these dependencies: kube-prometheus-stack"


def validate(obj: dict) -> None:
    group = obj["apiVersion"].split("/")[0]
    if group in CRD_SCHEMAS:
        schema = {**CRD_SCHEMAS[group][obj["kind"]], "definitions": CRD_SCHEMAS[group]["definitions"]}
        jsonschema.validate(obj, schema)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_object_of_every_render_is_valid_for_kubernetes(any_chart: Render):
    for obj in any_chart.objects:
        try:
            validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']}: {exc}") from None


def test_the_validator_refuses_a_misspelt_field(blog: Render):
    """Strict validation is real: an unknown field in a Deployment fails."""
    deployment = blog.of_kind("Deployment")[0]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("spec, field", [
    ({"hostnames": ["blog.example.com:443"]}, "hostnames"),
    ({"rules": [{"backendRefs": [{"name": "aiblog"}]}]}, "port"),
    ({"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "blog"}}]}]}, "value"),
    ({"parentRef": [{"name": "eg"}]}, "parentRef"),
], ids=["hostname-with-port", "service-without-port", "relative-path", "misspelt-field"])
def test_the_gateway_api_schema_refuses_what_the_api_server_would(spec, field):
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "x"},
             "spec": spec}
    with pytest.raises(jsonschema.ValidationError, match=field):
        validate(route)


def test_the_monitoring_schema_refuses_a_misspelt_endpoint_field():
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"port": "metrics", "intervall": "5s"}]}}
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_the_matrix_renders_what_each_value_set_asks_for():
    from tests.charts.conftest import rendered

    kinds = {name: sorted({o["kind"] for o in rendered("blog", name).objects}) for name in BLOG_VALUE_SETS}
    everything = kinds["everything-enabled"]
    for kind in ("Ingress", "HTTPRoute", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PodMonitor",
                 "PrometheusRule", "NetworkPolicy", "StatefulSet"):
        assert kind in everything, kind
    assert "StatefulSet" not in kinds["everything-optional-off"]
    assert "PodDisruptionBudget" not in kinds["defaults"]
    assert "PodDisruptionBudget" in kinds["two-replicas"]
    off = rendered("blog", "everything-optional-off")
    assert [o["metadata"]["name"] for o in off.of_kind("Deployment")] == ["aiblog"]  # no worker without Redis


def test_the_blog_chart_lints_clean_in_strict_mode():
    report = helm_python.lint(BLOG_CHART, strict=True)
    assert report["errors"] == [] and report["messages"] == [], report


def test_the_monitoring_chart_lints_clean_but_for_its_undownloadable_dependency():
    """kube-prometheus-stack cannot be fetched here: that one message, nothing else."""
    for values in ({}, {"kube-prometheus-stack": {"enabled": False}}):
        report = helm_python.lint(MONITORING_CHART, values, strict=True)
        assert [m["error"] for m in report["messages"]] == [MISSING_DEPENDENCY], report
        assert report["errors"] == [MISSING_DEPENDENCY], report


def test_the_monitoring_chart_renders_with_the_stack_off_fetching_nothing():
    from tests.charts.conftest import rendered

    assert helm_python.dependency_list(MONITORING_CHART)[0]["status"] == "missing"
    notes = rendered("monitoring", "stack-off").notes
    assert "kube-prometheus-stack is off" in notes


@pytest.mark.parametrize("values, message", [
    ({"replicaCount": "2"}, "at '/replicaCount': got string, want integer"),
    ({"replicaCont": 2}, "additional properties 'replicaCont' not allowed"),
    ({"service": {"port": -1}}, "at '/service/port': minimum: got -1, want 1"),
    ({"web": {"port": 0}}, "at '/web/port': minimum: got 0, want 1"),
    ({"llm": {"mode": "gpt"}}, "at '/llm/mode': value must be one of 'ollama', 'external', 'sim'"),
    ({"image": {"tag": "latest"}}, "at '/image/tag': 'not' failed"),
    ({"postgresql": {"image": "docker.io/library/postgres"}}, "at '/postgresql/image'"),
    ({"web": {"settings": {"DATABASE_URL": "sqlite://"}}}, "invalid propertyName 'DATABASE_URL'"),
    ({"replicaCount": 2, "redis": {"enabled": False}}, "at '/redis/enabled': value must be true"),
    ({"autoscaling": {"enabled": True}, "redis": {"enabled": False}}, "at '/externalRedis/host': minLength"),
    ({"postgresql": {"enabled": False}}, "at '/externalDatabase/existingSecret': minLength: got 0, want 1"),
    ({"llm": {"mode": "external"}, "ollama": {"enabled": False}}, "at '/llm/external/baseUrl': minLength"),
    ({"llm": {"mode": "ollama"}, "ollama": {"enabled": False}}, "at '/ollama/enabled': value must be true"),
], ids=["string-replicas", "unknown-key", "negative-port", "zero-port", "unknown-llm-mode", "latest-tag",
        "untagged-image", "chart-owned-setting", "replicas-without-redis", "hpa-without-redis",
        "external-db-without-secret", "external-llm-without-url", "ollama-mode-without-ollama"])
def test_the_schema_refuses_bad_values_with_helms_own_error(values, message):
    error = render_error(BLOG_CHART, values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


def test_the_monitoring_schema_refuses_an_unknown_key():
    error = render_error(MONITORING_CHART, {"kube-prometheus-stak": {"enabled": False}})
    assert "additional properties 'kube-prometheus-stak' not allowed" in error, error


def test_replicas_with_external_redis_are_accepted(tmp_path):
    from tests.support.charts import render

    objects = render(BLOG_CHART, {"replicaCount": 3, "redis": {"enabled": False},
                                  "externalRedis": {"host": "redis.cache"}}).objects
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "aiblog")
    assert deployment["spec"]["replicas"] == 3


def _open_or_missing(values, schema: dict, definitions: dict, path: str = "") -> list[str]:
    """Where values.yaml has a key its schema does not name, or an object with named
    properties lets unknown ones through. Maps without named properties (labels,
    annotations, resources, nodeSelector) are free-form on purpose."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].split("/")[-1]]
    if not isinstance(values, dict):
        return []
    named = schema.get("properties")
    problems = [f"{path or '/'}: additionalProperties is not false"] \
        if named is not None and schema.get("additionalProperties") is not False else []
    for key, value in values.items():
        if named is not None and key in named:
            problems += _open_or_missing(value, named[key], definitions, f"{path}/{key}")
        elif named is not None and not isinstance(schema.get("additionalProperties"), dict):
            problems.append(f"{path}/{key}: not in values.schema.json")
    return problems


@pytest.mark.parametrize("chart", [BLOG_CHART, MONITORING_CHART], ids=["blog", "monitoring"])
def test_the_values_schema_covers_every_value_and_is_closed(chart):
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    values.pop("kube-prometheus-stack", None)  # the subchart's own values: its schema, not ours
    schema["properties"].pop("kube-prometheus-stack", None)
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    problems = _open_or_missing(values, schema, definitions)
    assert problems == []
    stray = {**values, "misspelt": 1}  # the check itself sees a key the schema lacks
    assert _open_or_missing(stray, schema, definitions) == ["/misspelt: not in values.schema.json"]


@pytest.mark.parametrize("value_set, hops", [("defaults", "0"), ("everything-enabled", "1")])
def test_the_blog_trusts_one_proxy_hop_exactly_when_an_ingress_fronts_it(value_set, hops):
    from aiblog.config import SETTINGS

    data = rendered_configmap(render(BLOG_CHART, BLOG_VALUE_SETS[value_set]))
    assert data["TRUSTED_PROXY_HOPS"] == hops
    assert set(data) <= {s.env for s in SETTINGS}, "every key is a setting of the table"
    overridden = rendered_configmap(render(BLOG_CHART, {**BLOG_VALUE_SETS[value_set],
                                                        "web": {"settings": {"TRUSTED_PROXY_HOPS": "2"}}}))
    assert overridden["TRUSTED_PROXY_HOPS"] == "2"


def rendered_configmap(chart: Render) -> dict:
    (configmap,) = [o for o in chart.of_kind("ConfigMap") if "DATABASE_URL" in (o.get("data") or {})]
    return configmap["data"]
