"""The AI pool (issue 23, reads while AI writes): AI writing served by pods of
their own, the same pod as `web` with its own resources and gunicorn workers.
The Ingress and HTTPRoute send exactly the app's AI routes there, every
selector that picks the blog's serving pods (metrics, network policies) picks
both pools, and turning it off leaves nothing of it behind."""
from __future__ import annotations

import copy

import pytest

from aiblog import create_app
from tests.support.charts import BLOG_CHART, chart_values, matches, pod_spec, render

pytestmark = pytest.mark.charts

ROUTED = {"ingress": {"enabled": True, "hosts": [{"host": "blog.example.org", "paths": [{"path": "/", "pathType": "Prefix"}]}]},
          "httpRoute": {"enabled": True, "parentRefs": [{"name": "eg"}], "hostnames": ["blog.example.org"]},
          "serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}}
# The modules whose views write with the LLM: the web form and the API's generate/jobs.
AI_VIEW_MODULES = {"aiblog.ai.routes", "aiblog.api.generate"}


def matches_prefix(path: str, prefix: str) -> bool:
    """Ingress `Prefix` and Gateway `PathPrefix`: element-wise, /api/v1/jobs matches /api/v1/jobs/x only."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def pod_labels(objects, name: str) -> dict:
    return objects.named("Deployment", name)["spec"]["template"]["metadata"]["labels"]


def test_the_routed_paths_are_exactly_the_apps_ai_routes():
    app = create_app({"DATABASE_URL": "sqlite://", "REDIS_URL": ""})
    paths = chart_values(BLOG_CHART)["aiPool"]["paths"]
    ai, routed = set(), set()
    for rule in app.url_map.iter_rules():
        if app.view_functions[rule.endpoint].__module__ in AI_VIEW_MODULES:
            ai.add(rule.rule)
        if any(matches_prefix(rule.rule, prefix) for prefix in paths):
            routed.add(rule.rule)
    assert {"/generate-blog", "/api/v1/generate"} <= ai
    assert routed == ai


def test_the_ai_pool_is_the_web_pod_with_its_own_resources_and_workers():
    objects = render(BLOG_CHART, {"aiPool": {"resources": {"limits": {"cpu": "1500m", "memory": "352Mi"}}}})
    web, ai = (pod_spec(objects.named("Deployment", name)) for name in ("aiblog", "aiblog-ai"))
    web_blog, ai_blog = web["containers"][0], ai["containers"][0]
    assert ai_blog["resources"]["limits"] == {"cpu": "1500m", "memory": "352Mi"}
    assert {"name": "WEB_CONCURRENCY", "value": "1"} in ai_blog["env"]  # one per whole CPU of its limit
    assert ai_blog["env"][:-1] == web_blog["env"]  # the same secrets and extras; then its worker count
    for key in ("image", "command", "ports", "envFrom", "startupProbe", "livenessProbe", "readinessProbe",
                "securityContext", "volumeMounts", "lifecycle"):
        assert ai_blog[key] == web_blog[key], key
    assert ai["initContainers"] == web["initContainers"] and ai["volumes"] == web["volumes"]
    assert ai["securityContext"] == web["securityContext"]
    # By default as many workers as a web pod, each with LLM_MAX_INFLIGHT calls: the same AI capacity.
    default = pod_spec(render().named("Deployment", "aiblog-ai"))["containers"][0]
    assert {"name": "WEB_CONCURRENCY", "value": "2"} in default["env"]


def test_the_ai_pool_can_be_placed_on_nodes_of_its_own():
    """With aiPool's own nodeSelector, tolerations and affinity it runs elsewhere; without, where web runs."""
    gpu_free = {"nodeSelector": {"pool": "ai"}, "tolerations": [{"key": "ai", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "web"}}}}]}}}
    web_values = {"nodeSelector": {"pool": "web"}, "tolerations": [{"key": "web", "operator": "Exists"}]}
    objects = render(BLOG_CHART, {"web": web_values, "aiPool": gpu_free, "nodeSelector": {"arch": "amd64"}})
    ai, web = (pod_spec(objects.named("Deployment", name)) for name in ("aiblog-ai", "aiblog"))
    assert ai["nodeSelector"] == {"pool": "ai", "arch": "amd64"} and web["nodeSelector"] == {"pool": "web", "arch": "amd64"}
    assert ai["tolerations"] == gpu_free["tolerations"] and ai["affinity"] == gpu_free["affinity"]
    inherited = pod_spec(render(BLOG_CHART, {"web": web_values}).named("Deployment", "aiblog-ai"))
    assert inherited["nodeSelector"] == {"pool": "web"} and inherited["tolerations"] == web_values["tolerations"]


def test_each_service_selects_its_own_pool():
    objects = render()
    for service, pool, other in (("aiblog", "aiblog", "aiblog-ai"), ("aiblog-ai", "aiblog-ai", "aiblog")):
        selector = objects.named("Service", service)["spec"]["selector"]
        assert matches(selector, pod_labels(objects, pool)) and not matches(selector, pod_labels(objects, other))
    assert objects.named("Service", "aiblog-ai")["spec"]["type"] == "ClusterIP"
    assert render(BLOG_CHART, {"service": {"type": "NodePort"}}).named("Service", "aiblog-ai")["spec"]["type"] == "ClusterIP"


def test_the_ingress_and_the_route_send_the_ai_paths_to_the_ai_pool():
    objects = render(BLOG_CHART, ROUTED)
    paths = chart_values(BLOG_CHART)["aiPool"]["paths"]
    (rule,) = objects.named("Ingress", "aiblog")["spec"]["rules"]
    backends = {(p["path"], p["pathType"]): p["backend"]["service"] for p in rule["http"]["paths"]}
    assert backends == {**{(path, "Prefix"): {"name": "aiblog-ai", "port": {"name": "http"}} for path in paths},
                        ("/", "Prefix"): {"name": "aiblog", "port": {"name": "http"}}}
    route = objects.named("HTTPRoute", "aiblog")["spec"]["rules"]
    assert [[m["path"]["value"] for m in r["matches"]] for r in route] == [paths, ["/"]]
    assert [r["backendRefs"] for r in route] == [[{"name": "aiblog-ai", "port": 80}], [{"name": "aiblog", "port": 80}]]


def test_metrics_and_network_policies_cover_both_pools():
    objects = render(BLOG_CHART, ROUTED)
    web, ai = pod_labels(objects, "aiblog"), pod_labels(objects, "aiblog-ai")
    monitor = objects.named("ServiceMonitor", "aiblog")["spec"]
    services = [s for s in objects.of_kind("Service") if matches(monitor["selector"], s["metadata"]["labels"])]
    assert sorted(s["metadata"]["name"] for s in services) == ["aiblog", "aiblog-ai"]
    assert {s["metadata"]["labels"][monitor["jobLabel"]] for s in services} == {"aiblog"}  # the alert rules' job
    serving = objects.named("NetworkPolicy", "aiblog")["spec"]["podSelector"]
    assert matches(serving, web) and matches(serving, ai)
    assert not matches(serving, pod_labels(objects, "aiblog-worker"))
    for backend in ("aiblog-postgresql", "aiblog-redis", "aiblog-ollama"):
        (allowed,) = objects.named("NetworkPolicy", backend)["spec"]["ingress"]
        assert any(matches(peer["podSelector"], ai) for peer in allowed["from"]), backend
    test_egress = objects.named("NetworkPolicy", "aiblog-test-readyz")["spec"]["egress"][1]["to"][0]["podSelector"]
    assert matches(test_egress, web) and matches(test_egress, ai)
    trusted = objects.named("ConfigMap", "aiblog")["data"]["TRUSTED_HOSTS"].split(",")
    assert {"aiblog-ai", "aiblog-ai.blog.svc.cluster.local"} <= set(trusted)


def test_the_ai_pool_scales_on_its_own():
    fixed = render(BLOG_CHART, {"aiPool": {"replicaCount": 3}})
    assert fixed.named("Deployment", "aiblog-ai")["spec"]["replicas"] == 3
    assert fixed.named("PodDisruptionBudget", "aiblog-ai")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "ai"
    assert [p["metadata"]["name"] for p in fixed.of_kind("PodDisruptionBudget")] == ["aiblog-ai"]  # web runs 1
    scaled = render(BLOG_CHART, {"aiPool": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}}})
    assert "replicas" not in scaled.named("Deployment", "aiblog-ai")["spec"]  # the HPA owns the count
    hpa = scaled.named("HorizontalPodAutoscaler", "aiblog-ai")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "aiblog-ai" and (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert [h["metadata"]["name"] for h in scaled.of_kind("HorizontalPodAutoscaler")] == ["aiblog-ai"]
    both = render(BLOG_CHART, {"autoscaling": {"enabled": True}, "aiPool": {"autoscaling": {"enabled": True}}})
    assert sorted(h["metadata"]["name"] for h in both.of_kind("HorizontalPodAutoscaler")) == ["aiblog", "aiblog-ai"]


def test_the_notes_say_where_ai_writing_goes():
    routed = render(BLOG_CHART, ROUTED).notes
    assert "AI writing (/generate-blog, /api/v1/generate, /api/v1/jobs) is served by deploy/aiblog-ai." in routed
    unrouted = render().notes
    assert "the AI pool (deploy/aiblog-ai) gets no traffic; aiPool.enabled=false saves its pod" in unrouted
    assert "aiblog-ai" not in render(BLOG_CHART, {"aiPool": {"enabled": False}}).notes


def test_turned_off_nothing_of_it_is_left():
    values = copy.deepcopy(ROUTED)
    values["aiPool"] = {"enabled": False}
    objects = render(BLOG_CHART, values)
    text = str(objects.objects)
    assert "aiblog-ai" not in text and "'ai'" not in text
    (rule,) = objects.named("Ingress", "aiblog")["spec"]["rules"]
    assert [p["path"] for p in rule["http"]["paths"]] == ["/"]
    assert len(objects.named("HTTPRoute", "aiblog")["spec"]["rules"]) == 1


@pytest.mark.parametrize("pool, message", [
    ({"paths": []}, "at '/aiPool/paths': minItems"),
    ({"paths": ["generate-blog"]}, "at '/aiPool/paths/0'"),
    ({"paths": ["/api/v1/generate", "/api/v1/generate"]}, "at '/aiPool/paths'"),
    ({"resources": {"limits": {"cpu": "a lot"}}}, "at '/aiPool/resources/limits/cpu'"),
    ({"webConcurrency": 4}, "additional properties 'webConcurrency' not allowed"),
], ids=["no-paths", "relative-path", "repeated-path", "cpu-not-a-quantity", "unknown-key"])
def test_the_schema_refuses_a_pool_that_cannot_work(pool, message):
    from tests.support.charts import render_error

    error = render_error(BLOG_CHART, {"aiPool": pool})
    assert message in error, error
