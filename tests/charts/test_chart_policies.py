"""Policy checks over every render of the matrix: resources, probes, security,
images, selectors, ports, settings, dashboards, secrets."""
from __future__ import annotations

import base64
import re

import pytest

from aiblog import config
from tests.support.charts import (BLOG_CHART, BLOG_VALUE_SETS, EXTENSION_VALUES, Render, chart_values, containers,
                                  matches, pod_labels, pod_spec, render)

pytestmark = pytest.mark.charts

BLOG_ROLES = {"blog", "worker", "migrate"}  # containers running the blog's own code
MB = 1000 * 1000
WORKER_RSS_MB = 138  # `make bench`: RSS per gunicorn worker (docs/performance.md)
GUNICORN_GRACEFUL_TIMEOUT = 20  # service/aiblog/gunicorn_conf.py: graceful_timeout


def serving_pools(objects: Render) -> list[str]:
    """The Deployments that serve HTTP: the blog's, and the AI pool's when aiPool is on."""
    names = {d["metadata"]["name"] for d in objects.of_kind("Deployment")}
    return [name for name in ("aiblog", "aiblog-ai") if name in names]


def quantity_bytes(value: str) -> float:
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def is_job_like(workload: dict) -> bool:
    """Jobs and the helm test Pod run to completion: no probes expected."""
    return workload["kind"] in ("Job", "Pod")


def describe(workload: dict, container: dict) -> str:
    return f"{workload['kind']} {workload['metadata']['name']} container {container['name']}"


def test_every_container_has_requests_limits_and_probes(any_chart: Render):
    for workload in any_chart.workloads():
        spec = pod_spec(workload)
        for container in containers(workload):
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part) or {}), f"{describe(workload, container)}: {part}"
            is_init = container in (spec.get("initContainers") or [])
            if not is_init and not is_job_like(workload):
                for probe in ("livenessProbe", "readinessProbe"):
                    assert probe in container, f"{describe(workload, container)}: no {probe}"


def test_every_container_runs_non_root_read_only_without_privileges(any_chart: Render):
    for workload in any_chart.workloads():
        spec = pod_spec(workload)
        pod_context = spec.get("securityContext") or {}
        assert pod_context.get("runAsNonRoot") is True, workload["metadata"]["name"]
        assert pod_context.get("runAsUser", 0) > 0, workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        for container in containers(workload):
            context = container.get("securityContext") or {}
            where = describe(workload, container)
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert (context.get("seccompProfile") or pod_context.get("seccompProfile")) == {"type": "RuntimeDefault"}, where
            assert context.get("runAsUser", pod_context["runAsUser"]) != 0, where


def test_the_blog_runs_as_the_images_user():
    values = chart_values()
    for workload in render().workloads():
        if any(c["name"] in BLOG_ROLES for c in containers(workload)):
            assert pod_spec(workload)["securityContext"]["runAsUser"] == values["securityContext"]["runAsUser"] == 10001


def test_no_image_is_untagged_or_latest(any_chart: Render):
    for workload in any_chart.workloads():
        for container in containers(workload):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1]
            assert ":" in tag or "@sha256:" in image, f"{describe(workload, container)}: untagged image {image}"
            assert not re.search(r":latest(@|$)", image), f"{describe(workload, container)}: {image}"


def workloads_selected(render_: Render, selector: dict) -> list[str]:
    return sorted(w["metadata"]["name"] for w in render_.workloads() if matches(selector, pod_labels(w)))


def test_every_service_selects_exactly_its_own_pods(any_chart: Render):
    for service in any_chart.of_kind("Service"):
        selected = workloads_selected(any_chart, service["spec"]["selector"])
        assert selected == [service["metadata"]["name"]], (service["metadata"]["name"], selected)


def test_every_workload_selector_matches_its_own_template_only(any_chart: Render):
    for workload in any_chart.workloads():
        if workload["kind"] == "Pod":
            continue
        selected = workloads_selected(any_chart, workload["spec"]["selector"])
        assert selected == [workload["metadata"]["name"]], (workload["metadata"]["name"], selected)


def test_servicemonitor_selects_exactly_the_blog_service_and_its_metrics_port(blog: Render):
    for monitor in blog.of_kind("ServiceMonitor"):
        services = [s for s in blog.of_kind("Service") if matches(monitor["spec"]["selector"], s["metadata"]["labels"])]
        # The Services of every serving pool (the AI pool's when it is on), no other.
        assert [s["metadata"]["name"] for s in services] == serving_pools(blog)
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        assert all("metrics" in {p["name"] for p in s["spec"]["ports"]} for s in services)
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["blog"]}


def test_podmonitor_selects_exactly_the_worker_and_its_metrics_port(blog: Render):
    for monitor in blog.of_kind("PodMonitor"):
        selected = workloads_selected(blog, monitor["spec"]["selector"])
        assert selected == ["aiblog-worker"]
        worker = blog.named("Deployment", "aiblog-worker")
        declared = {p["name"] for c in containers(worker) for p in c.get("ports") or []}
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= declared


def test_hpa_and_pdb_target_a_serving_pool_each(blog: Render):
    for hpa in blog.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert hpa["metadata"]["name"] == target["name"] in serving_pools(blog)
        assert "replicas" not in blog.named(target["kind"], target["name"])["spec"]  # the HPA owns the count
    for pdb in blog.of_kind("PodDisruptionBudget"):
        assert workloads_selected(blog, pdb["spec"]["selector"]) == [pdb["metadata"]["name"]]
        assert pdb["metadata"]["name"] in serving_pools(blog)


@pytest.mark.parametrize("value_set", list(BLOG_VALUE_SETS))
def test_topology_spread_counts_the_blog_pods_only(value_set):
    """The spread constraints' selector must match the blog's own pods and no other
    workload's, or the scheduler would balance the wrong pods."""
    from tests.charts.conftest import rendered

    blog = rendered("blog", value_set)
    for workload in blog.workloads():
        for constraint in pod_spec(workload).get("topologySpreadConstraints") or []:
            assert workloads_selected(blog, constraint["labelSelector"]) == [workload["metadata"]["name"]]
    spread = {c["topologyKey"] for c in pod_spec(blog.named("Deployment", "aiblog")).get("topologySpreadConstraints") or []}
    enabled = BLOG_VALUE_SETS[value_set].get("topologySpread", {}).get("enabled", chart_values()["topologySpread"]["enabled"])
    assert spread == ({"kubernetes.io/hostname", "topology.kubernetes.io/zone"} if enabled else set())


def test_network_policies_select_their_own_pods_and_name_real_ports(blog: Render):
    for policy in blog.of_kind("NetworkPolicy"):
        name = policy["metadata"]["name"]
        selected = workloads_selected(blog, policy["spec"]["podSelector"])
        # The blog's policy covers every serving pool (the same pod); any other, its own workload.
        assert selected == (serving_pools(blog) if name == "aiblog" else [name]), (name, selected)
        target = blog.named(next(w["kind"] for w in blog.workloads() if w["metadata"]["name"] == name), name)
        declared = {p["name"] for c in containers(target) for p in c.get("ports") or []}
        for rule in policy["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                assert port["port"] in declared, (name, port)
            for peer in rule.get("from") or []:
                if set(peer) == {"podSelector"}:  # a peer in this namespace: must match a pod of the release
                    assert workloads_selected(blog, peer["podSelector"]) or \
                        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "test", (name, peer)


def test_network_policy_admits_exactly_the_intended_peers():
    objects = render(BLOG_CHART, BLOG_VALUE_SETS["everything-enabled"])
    web = objects.named("NetworkPolicy", "aiblog")["spec"]
    http_rule, metrics_rule = web["ingress"]
    assert [p["port"] for p in http_rule["ports"]] == ["http"]
    peers = http_rule["from"]
    from operators.loadtest.names import labels as loadtest_runner_labels

    assert peers[1]["namespaceSelector"] == {}
    assert matches(peers[1]["podSelector"], loadtest_runner_labels("smoke", "smoke-1", "master")), \
        "the operator's runner pods must reach the blog's http port"
    assert not workloads_selected(objects, peers[1]["podSelector"])
    assert workloads_selected(objects, peers[2]["podSelector"]) == ["aiblog-test-readyz"]
    assert [p["port"] for p in metrics_rule["ports"]] == ["metrics"]
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for database in ("aiblog-postgresql", "aiblog-redis", "aiblog-ollama"):
        spec = objects.named("NetworkPolicy", database)["spec"]
        admitted = sorted(n for peer in spec["ingress"][0]["from"] for n in workloads_selected(objects, peer["podSelector"]))
        assert admitted == ["aiblog", "aiblog-ai", "aiblog-worker"], database
    assert objects.named("NetworkPolicy", "aiblog-postgresql")["spec"]["egress"] == []
    egress_ports = sorted(str(p["port"]) for rule in web["egress"] for p in rule["ports"])
    assert egress_ports == ["53", "53", "ollama", "postgresql", "redis"]


def test_by_default_every_pod_has_a_policy_the_databases_are_closed_and_http_is_open():
    """The defaults (values.yaml says why): no pod without a NetworkPolicy (checkov CKV2_K8S_6),
    no path to Postgres, Redis or Ollama but from the blog and worker, `http` for any source."""
    objects = render()
    policies = objects.of_kind("NetworkPolicy")
    for workload in objects.workloads():
        assert any(matches(p["spec"]["podSelector"], pod_labels(workload)) for p in policies), \
            workload["metadata"]["name"]
    (http_rule, _metrics) = objects.named("NetworkPolicy", "aiblog")["spec"]["ingress"]
    assert http_rule == {"ports": [{"port": "http", "protocol": "TCP"}]}, "no `from`: any source"
    for database in ("aiblog-postgresql", "aiblog-redis", "aiblog-ollama"):
        (rule,) = objects.named("NetworkPolicy", database)["spec"]["ingress"]
        admitted = sorted(n for peer in rule["from"] for n in workloads_selected(objects, peer["podSelector"]))
        assert admitted == ["aiblog", "aiblog-ai", "aiblog-worker"], database
    test_pod = objects.named("NetworkPolicy", "aiblog-test-readyz")["spec"]
    assert test_pod["ingress"] == []
    (_dns, blog) = test_pod["egress"]
    assert workloads_selected(objects, blog["to"][0]["podSelector"]) == ["aiblog", "aiblog-ai"]
    assert blog["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert render(BLOG_CHART, {"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []


def test_every_probe_and_service_port_names_a_declared_port(any_chart: Render):
    for workload in any_chart.workloads():
        for container in containers(workload):
            declared = {p["name"]: p["containerPort"] for p in container.get("ports") or []}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind) or {}
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe:
                        port = probe[handler]["port"]
                        assert port in declared or port in declared.values(), f"{describe(workload, container)} {kind}"
    for service in any_chart.of_kind("Service"):
        (target,) = [w for w in any_chart.workloads() if w["metadata"]["name"] == service["metadata"]["name"]]
        declared = {p["name"] for c in containers(target, init=False) for p in c.get("ports") or []}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, (service["metadata"]["name"], port)
    for ingress in any_chart.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"] == {"name": "http"}, "the Ingress routes only the http port"
                ports = {p["name"] for p in any_chart.named("Service", backend["name"])["spec"]["ports"]}
                assert "http" in ports


def blog_environment(render_: Render, container: dict) -> set[str]:
    names = {e["name"] for e in container.get("env") or []}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:  # a user's extraEnvFrom Secret is theirs to fill
            names |= set(render_.named("ConfigMap", source["configMapRef"]["name"])["data"])
    return names


# What the extension-points value set puts in extraEnv: the user's own variables, not the blog's.
USER_VARIABLES = {e["name"] for part in ("web", "worker") for e in EXTENSION_VALUES[part]["extraEnv"]}


def test_every_variable_the_blog_gets_is_in_the_settings_table(blog: Render):
    """The README's table is generated from config.SETTINGS: a variable outside it is a typo or a stray."""
    known = {setting.env for setting in config.SETTINGS} | USER_VARIABLES
    for workload in blog.workloads():
        for container in containers(workload):
            if container["name"] in BLOG_ROLES:
                unknown = blog_environment(blog, container) - known
                assert not unknown, f"{describe(workload, container)}: not in config.SETTINGS: {sorted(unknown)}"


def test_the_settings_check_would_catch_a_misspelt_variable():
    objects = render(BLOG_CHART, {"web": {"settings": {"POSTS_PER_PAG": "20"}}})
    blog = objects.named("Deployment", "aiblog")
    container = next(containers(blog, init=False))
    assert "POSTS_PER_PAG" in blog_environment(objects, container) - {s.env for s in config.SETTINGS}


def test_gunicorn_workers_follow_the_cpu_limit_and_fit_the_memory_limit(blog: Render):
    deployment = blog.named("Deployment", "aiblog")
    container = next(c for c in containers(deployment, init=False) if c["name"] == "blog")
    settings = blog.named("ConfigMap", "aiblog")["data"]
    workers = int(settings["WEB_CONCURRENCY"])
    cpu = container["resources"]["limits"]["cpu"]
    cores = int(cpu[:-1]) // 1000 if cpu.endswith("m") else int(float(cpu))
    assert workers == max(1, cores)
    # Every worker at its measured RSS, plus the master with its metrics server, fits with room.
    assert quantity_bytes(container["resources"]["limits"]["memory"]) >= (workers * WORKER_RSS_MB + 100) * MB


def test_pods_outlive_the_prestop_pause_and_gunicorns_graceful_timeout(blog: Render):
    spec = pod_spec(blog.named("Deployment", "aiblog"))
    pause = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pause + GUNICORN_GRACEFUL_TIMEOUT


def test_graceful_timeout_constant_matches_gunicorns_config():
    source = next(p for p in (BLOG_CHART.parents[1] / "service" / "aiblog" / "gunicorn_conf.py",
                              BLOG_CHART.parents[1] / "service" / "gunicorn.conf.py") if p.exists()).read_text()
    assert re.search(rf"^graceful_timeout = {GUNICORN_GRACEFUL_TIMEOUT}$", source, re.M)


def test_a_config_or_secret_change_rolls_the_pods():
    base = render().named("Deployment", "aiblog")["spec"]["template"]["metadata"]["annotations"]
    changed = render(BLOG_CHART, {"web": {"settings": {"POSTS_PER_PAGE": "20"}}})
    after = changed.named("Deployment", "aiblog")["spec"]["template"]["metadata"]["annotations"]
    assert after["checksum/config"] != base["checksum/config"]


def secret_values(render_: Render) -> dict[tuple[str, str], str]:
    return {(s["metadata"]["name"], key): base64.b64decode(value).decode()
            for s in render_.of_kind("Secret") for key, value in (s.get("data") or {}).items()}


def test_no_secret_holds_a_literal():
    """Generated secrets are random: two renders differ in every value, and none is a value of values.yaml."""
    first, second = secret_values(render()), secret_values(render())
    assert set(first) == {("aiblog", "secret-key"), ("aiblog-postgresql", "password"),
                          ("aiblog-redis", "password")}
    for key in first:
        assert first[key] != second[key], key
        assert len(first[key]) >= 32 and first[key].isalnum(), key
    literals = re.findall(r":\s*\"?([^\s\"#]+)", (BLOG_CHART / "values.yaml").read_text())
    assert not set(first.values()) & set(literals)


def test_existing_secrets_are_referenced_not_generated():
    objects = render(BLOG_CHART, BLOG_VALUE_SETS["external-database-redis-llm"])
    assert objects.of_kind("Secret") == []
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in
           next(containers(objects.named("Deployment", "aiblog"), init=False))["env"]}
    assert env == {"SECRET_KEY": {"name": "blog-secret-key", "key": "secret-key"},
                   "DATABASE_PASSWORD": {"name": "blog-database", "key": "password"},
                   "REDIS_PASSWORD": {"name": "blog-redis", "key": "password"}}


def test_the_database_url_carries_no_password(blog: Render):
    settings = blog.named("ConfigMap", "aiblog")["data"]
    assert re.fullmatch(r"postgresql://[a-z]+@[a-z0-9.-]+:\d+/[a-z]+", settings["DATABASE_URL"])
    assert "@" not in settings["REDIS_URL"]


def test_migrations_run_before_the_server_on_both_install_paths():
    """Self-contained: the init container waits (retrying) for the chart's own Postgres and its
    Secret, which exist from the same install; no hook runs before them. External: the same
    init container against the external server."""
    for value_set, host in (("defaults", "aiblog-postgresql"), ("external-database-redis-llm", "postgres.db.svc")):
        objects = render(BLOG_CHART, BLOG_VALUE_SETS[value_set])
        assert not [o for o in objects.objects if "helm.sh/hook" in o["metadata"]["annotations"]
                    and o["kind"] != "Pod"], "no install hook may wait for what the release creates"
        spec = pod_spec(objects.named("Deployment", "aiblog"))
        (migrate,) = spec["initContainers"]
        assert migrate["command"] == ["aiblog", "migrate"]
        assert host in objects.named("ConfigMap", "aiblog")["data"]["DATABASE_URL"]
        password = next(e for e in migrate["env"] if e["name"] == "DATABASE_PASSWORD")["valueFrom"]["secretKeyRef"]
        if value_set == "defaults":  # the Secret comes with the same release
            assert objects.named("Secret", password["name"])["data"][password["key"]]
        pg = objects.of_kind("StatefulSet")
        assert bool(pg) == (value_set == "defaults")


def test_ollama_pulls_its_model_in_an_init_container_and_is_ready_only_with_it():
    objects = render(BLOG_CHART, BLOG_VALUE_SETS["gpu-ollama"])
    spec = pod_spec(objects.named("StatefulSet", "aiblog-ollama"))
    (pull,) = spec["initContainers"]
    assert 'ollama pull "$OLLAMA_MODEL"' in pull["command"][-1]
    ollama = spec["containers"][0]
    assert "ollama show" in ollama["readinessProbe"]["exec"]["command"][-1]
    assert {"name": "OLLAMA_MODEL", "value": "gemma3:270m"} in ollama["env"]
    assert ollama["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "lifecycle" not in ollama  # no postStart hook
    blog_settings = objects.named("ConfigMap", "aiblog")["data"]
    assert blog_settings["LLM_API"] == "ollama"
    assert blog_settings["LLM_BASE_URL"] == "http://aiblog-ollama:11434"


def test_statefulsets_keep_a_documented_pvc_retention_policy(blog: Render):
    for statefulset in blog.of_kind("StatefulSet"):
        policy = statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert set(policy) == {"whenDeleted", "whenScaled"}
        assert statefulset["spec"]["volumeClaimTemplates"]


def test_dashboard_configmaps_hold_exactly_the_repos_dashboard_files(blog: Render):
    dashboards = [c for c in blog.of_kind("ConfigMap") if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    files = {p.name: p.read_text() for p in sorted((BLOG_CHART / "dashboards").glob("*.json"))}
    assert files, "the repo keeps its dashboards in charts/blog/dashboards"
    shipped: dict[str, str] = {}
    for configmap in dashboards:
        assert not set(configmap["data"]) & set(shipped), "a dashboard shipped twice"
        shipped.update(configmap["data"])
    assert shipped in (files, {}), "all of the repo's dashboards byte for byte, or none (dashboards.enabled=false)"


def test_dashboards_are_shipped_by_default():
    shipped = {k for c in render().of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"
               for k in c["data"]}
    assert shipped == {p.name for p in (BLOG_CHART / "dashboards").glob("*.json")}
