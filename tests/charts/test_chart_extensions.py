"""The extension points real clusters need (issue 22, part 2), per part (blog,
worker, Postgres, Redis, Ollama) and release-wide: each set value reaches the pods
of its part and only those, merges as documented (labels and node selectors merge,
tolerations add up, a part's affinity, priority class and spread replace the
release's), keeps the restricted security defaults, and bad shapes are refused by
the schema. Every object of this render is also validated against Kubernetes'
schema and the policy checks (the value set "extension-points" of the matrix)."""
from __future__ import annotations

import pytest

from tests.support.charts import (BLOG_CHART, DIGEST, EXTENSION_VALUES, PARTS, Render, containers, pod_labels,
                                  pod_spec, render, render_error)

pytestmark = pytest.mark.charts

WORKLOADS = {"web": ("Deployment", "aiblog"), "worker": ("Deployment", "aiblog-worker"),
             "postgresql": ("StatefulSet", "aiblog-postgresql"), "redis": ("StatefulSet", "aiblog-redis"),
             "ollama": ("StatefulSet", "aiblog-ollama")}


@pytest.fixture(scope="module")
def extended() -> Render:
    return render(BLOG_CHART, EXTENSION_VALUES)


def template_metadata(workload: dict) -> dict:
    return workload["metadata"] if workload["kind"] == "Pod" else workload["spec"]["template"]["metadata"]


@pytest.mark.parametrize("part", PARTS)
def test_each_parts_own_values_reach_its_pods_merged_with_the_releases(extended, part):
    workload = extended.named(*WORKLOADS[part])
    spec, metadata = pod_spec(workload), template_metadata(workload)
    assert pod_labels(workload)["example.com/part"] == part
    assert pod_labels(workload)["example.com/team"] == "blog"
    assert pod_labels(workload)["app.kubernetes.io/component"] == part  # the selector labels stay
    assert metadata["annotations"]["example.com/note"] == part
    assert metadata["annotations"]["example.com/owner"] == "blog-team"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["priorityClassName"] == f"{part}-priority"  # the part's replaces the release's
    assert spec["nodeSelector"]["example.com/pool"] == part and spec["nodeSelector"]["kubernetes.io/os"] == "linux"
    assert {t["key"] for t in spec["tolerations"]} >= {"spot", "dedicated"}
    assert spec["affinity"] == EXTENSION_VALUES["affinity"]
    assert {"name": "extra-ca", "configMap": {"name": "aiblog-extra-ca"}} in spec["volumes"]
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert spec["securityContext"]["runAsNonRoot"] is True  # merged over, not replacing
    for container in containers(workload):
        where = f"{part} container {container['name']}"
        assert {"name": "HTTPS_PROXY", "value": f"http://proxy-{part}:3128"} in container["env"], where
        assert {"secretRef": {"name": f"{part}-env"}} in container["envFrom"], where
        assert {"name": "extra-ca", "mountPath": "/etc/ssl/extra", "readOnly": True} in container["volumeMounts"], where
        context = container["securityContext"]
        assert context["seLinuxOptions"] == {"level": "s0:c123,c456"}, where
        assert context["readOnlyRootFilesystem"] is True and context["capabilities"] == {"drop": ["ALL"]}, where


def test_a_parts_values_stay_in_that_part(extended):
    for part in PARTS:
        for other in set(PARTS) - {part}:
            workload = extended.named(*WORKLOADS[other])
            assert pod_labels(workload)["example.com/part"] != part
            assert all({"name": "HTTPS_PROXY", "value": f"http://proxy-{part}:3128"} not in c["env"]
                       for c in containers(workload))


def test_release_wide_values_alone_reach_every_pod_including_the_helm_test_pod():
    values = {key: EXTENSION_VALUES[key] for key in ("imagePullSecrets", "podLabels", "podAnnotations",
                                                      "nodeSelector", "tolerations", "affinity", "priorityClassName")}
    objects = render(BLOG_CHART, values)
    workloads = objects.workloads()
    assert {w["kind"] for w in workloads} == {"Deployment", "StatefulSet", "Pod"}
    for workload in workloads:
        spec = pod_spec(workload)
        where = workload["metadata"]["name"]
        assert spec["imagePullSecrets"] == [{"name": "regcred"}], where
        assert spec["priorityClassName"] == "release-priority", where
        assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}, where
        assert spec["tolerations"] == EXTENSION_VALUES["tolerations"], where
        assert spec["affinity"] == EXTENSION_VALUES["affinity"], where
        if workload["kind"] != "Pod":  # the test pod is a hook: no pod template labels of the parts
            assert pod_labels(workload)["example.com/team"] == "blog", where
            assert template_metadata(workload)["annotations"]["example.com/owner"] == "blog-team", where


def test_replicas_spread_over_nodes_by_default_and_a_parts_constraints_replace_it(extended):
    defaults = render()
    for name in ("aiblog", "aiblog-worker"):
        spread = pod_spec(defaults.named("Deployment", name))["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        component = "web" if name == "aiblog" else "worker"
        assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == component for c in spread)
    for name in ("aiblog-postgresql", "aiblog-redis", "aiblog-ollama"):  # one replica: nothing to spread
        assert "topologySpreadConstraints" not in pod_spec(defaults.named("StatefulSet", name))
    worker = pod_spec(extended.named("Deployment", "aiblog-worker"))
    assert worker["topologySpreadConstraints"] == EXTENSION_VALUES["worker"]["topologySpreadConstraints"]


def test_the_chart_keeps_its_own_annotations_and_ollamas_gpu_placement(extended):
    web = template_metadata(extended.named("Deployment", "aiblog"))["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(web)
    ollama = extended.named("StatefulSet", "aiblog-ollama")
    assert template_metadata(ollama)["annotations"]["aiblog.dev/model"] == "gemma3:270m"
    spec = pod_spec(ollama)
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "example.com/pool": "ollama",
                                    "nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]


def test_image_digest_pins_every_container_of_the_blogs_image(extended):
    images = {c["image"] for w in extended.workloads() for c in containers(w)}
    assert f"localhost/aiblog@{DIGEST}" in images
    assert not any(image.startswith("localhost/aiblog:") for image in images)
    assert "docker.io/library/postgres:17.6-bookworm" in images  # the others are their own values


def test_service_account_annotations_and_extra_objects(extended):
    account = extended.named("ServiceAccount", "aiblog")
    assert account["metadata"]["annotations"] == EXTENSION_VALUES["serviceAccount"]["annotations"]
    assert account["automountServiceAccountToken"] is False
    assert extended.named("ConfigMap", "aiblog-extra-ca")["data"] == {"ca.pem": "not a real certificate"}
    assert extended.named("ConfigMap", "aiblog-templated")["data"] == {"namespace": "blog"}  # tpl ran


@pytest.mark.parametrize("values, message", [
    ({"web": {"podLabels": {"app.kubernetes.io/component": "x"}}},
     "invalid propertyName 'app.kubernetes.io/component'"),
    ({"redis": {"extraEnv": [{"value": "no name"}]}}, "at '/redis/extraEnv/0': missing property 'name'"),
    ({"worker": {"extraVolumeMounts": [{"name": "x"}]}},
     "at '/worker/extraVolumeMounts/0': missing property 'mountPath'"),
    ({"tolerations": [{"key": "x", "operator": "Equals"}]}, "at '/tolerations/0/operator'"),
    ({"ollama": {"affinity": {"nodeAfinity": {}}}}, "additional properties 'nodeAfinity' not allowed"),
    ({"image": {"digest": "abc"}}, "at '/image/digest'"),
    ({"extraObjects": [{"kind": "ConfigMap"}]}, "at '/extraObjects/0'"),
    ({"postgresql": {"extraEnvFrom": [{"secretRefs": {}}]}}, "additional properties 'secretRefs' not allowed"),
], ids=["selector-label", "env-without-name", "mount-without-path", "bad-toleration", "misspelt-affinity",
        "bad-digest", "object-without-apiversion", "misspelt-envfrom"])
def test_the_schema_refuses_bad_extension_values(values, message):
    error = render_error(BLOG_CHART, values)
    assert message in error, error
