"""The operator's part of charts/monitoring, rendered by Helm's own engine: its
Deployment runs what the operator's entry point reads, and its RBAC allows
every request the operator made in an emulated run, and nothing broader."""
from __future__ import annotations

from kubernetes import client

from devstack import wait_until
from operators.loadtest import main as operator_main
from operators.loadtest.handlers import USER_AGENT
from tests.operator.cluster import NAMESPACE, PodScript
from operators.loadtest.policy import ACCOUNTS_LABEL, Policy
from tests.operator.support import (GROUP, VERSION, apply, load_test, objects, opted_in, runner_log, summary_document,
                                    wait_status)
from tests.support.charts import MONITORING_CHART, matches, pod_labels, render, render_error

RELEASE = "monitoring"


def _render(**operator):
    return render(MONITORING_CHART, {"operator": operator} if operator else {}, name=RELEASE, namespace="monitoring")


def _container(rendered) -> dict:
    deployment = rendered.named("Deployment", f"{RELEASE}-loadtest-operator")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_operator_deployment_runs_the_entry_point_with_its_settings():
    container = _container(_render())
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["command"] == ["blog-loadtest-operator"]
    assert env["WATCH_NAMESPACES"] == "monitoring" and env["LOADTEST_RUNNER_IMAGE"] == "localhost/aiblog:0.1.0"
    assert container["image"] == "localhost/aiblog-operator:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": int(env["LIVENESS_PORT"]), "metrics": int(env["METRICS_PORT"])}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    parsed = operator_main.build_parser().parse_args([])
    assert (parsed.liveness_port, parsed.metrics_port) == (8080, 9102)  # the defaults match the chart's ports


def test_watched_namespaces_each_get_a_role_and_only_kopf_needs_a_cluster_role():
    rendered = _render(watchNamespaces=["blog", "perf"])
    assert {r["metadata"]["namespace"] for r in rendered.of_kind("Role")} == {"blog", "perf"}
    assert {b["metadata"]["namespace"] for b in rendered.of_kind("RoleBinding")} == {"blog", "perf"}
    assert _container(rendered)["env"][0] == {"name": "WATCH_NAMESPACES", "value": "blog,perf"}
    cluster_role = rendered.named("ClusterRole", f"{RELEASE}-loadtest-operator")
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in cluster_role["rules"]} == {
        (("apiextensions.k8s.io",), ("customresourcedefinitions",)), (("",), ("namespaces",))}
    for role in [*rendered.of_kind("Role"), cluster_role]:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            # Secrets: create only (a run's token), never read, unless the policy allows account Secrets.
            assert "secrets" not in rule["resources"] or rule["verbs"] == ["create"], rule


def test_the_operators_network_policy_admits_only_prometheus_and_lets_it_reach_only_dns_and_the_api_server():
    assert not _render().of_kind("NetworkPolicy")  # off by default: the API server's address is the cluster's
    rendered = _render(networkPolicy={"enabled": True, "apiServer": {"cidrs": ["172.18.0.2/32"], "ports": [6443]}})
    (policy,) = rendered.of_kind("NetworkPolicy")
    spec = policy["spec"]
    assert matches(spec["podSelector"], pod_labels(rendered.named("Deployment", f"{RELEASE}-loadtest-operator")))
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (scrape,) = spec["ingress"]
    assert scrape == {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                      "ports": [{"port": "metrics", "protocol": "TCP"}]}  # the namespace Prometheus runs in
    assert "metrics" in {p["name"] for p in _container(rendered)["ports"]}
    dns, api_server = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api_server == {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]}
    assert "apiServer" in render_error(MONITORING_CHART, {"operator": {"networkPolicy": {"apiServer": {"cidrs": []}}}})


def test_the_operators_servicemonitor_scrapes_its_metrics_port_through_its_service():
    rendered = _render()
    (monitor,) = rendered.of_kind("ServiceMonitor")
    services = [s for s in rendered.of_kind("Service") if matches(monitor["spec"]["selector"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in services] == [f"{RELEASE}-loadtest-operator"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [services[0]["metadata"]["namespace"]]}
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = [p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    container = _container(rendered)
    env = {e["name"]: e["value"] for e in container["env"]}
    target = {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]]
    assert target == int(env["METRICS_PORT"]) and endpoint["path"] == "/metrics"
    assert matches({"matchLabels": services[0]["spec"]["selector"]},
                   pod_labels(rendered.named("Deployment", f"{RELEASE}-loadtest-operator")))


def test_the_values_schema_refuses_bad_operator_values():
    assert "watchNamespaces" in render_error(MONITORING_CHART, {"operator": {"enabled": True,
                                                                            "watchNamespaces": ["Blog"]}})
    assert "reconcileSeconds" in render_error(MONITORING_CHART, {"operator": {"enabled": True,
                                                                             "reconcileSeconds": 0}})
    assert "additional properties" in render_error(MONITORING_CHART, {"operator": {"enabled": True, "replicas": 2}}
                                                   ).lower()
    assert not _render(enabled=False).of_kind("Deployment")


def _verb(request) -> str:
    method = str(request.method).upper().rsplit(".", 1)[-1]
    if method == "GET":
        if request.name:
            return "get"
        return "watch" if (request.params or {}).get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]


def _allowed(rules: list[dict], group: str, resource: str, verb: str) -> bool:
    return any(group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
               for rule in rules)


def _requests_made(cluster) -> set[tuple[str, str, str, str | None]]:
    """(group, resource, verb, namespace) of every request the operator made to the emulator."""
    made = set()
    for request in list(cluster.k):
        agent = (request.headers or {}).get("User-Agent", "")
        if request.resource is None or request.resource.plural is None or \
                not (agent.startswith("kopf/") or agent == USER_AGENT):
            continue
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        made.add((request.resource.group or "", resource, _verb(request), request.namespace))
    return made


def test_the_charts_default_policy_is_the_operators_default_and_opens_no_secret():
    rendered = _render()
    env = {e["name"]: e["value"] for e in _container(rendered)["env"]}
    assert Policy.from_json(env["LOADTEST_POLICY"]) == Policy()
    assert not [rule for role in rendered.of_kind("Role") for rule in role["rules"]
                if {"secrets", "persistentvolumeclaims"} & set(rule["resources"]) and rule["verbs"] != ["create"]]


def test_the_policy_is_checked_by_helm_and_only_what_it_allows_gets_rbac():
    assert "maxWorkers" in render_error(MONITORING_CHART, {"operator": {"policy": {"maxWorkers": -1}}})
    assert "maxcpu" in render_error(MONITORING_CHART, {"operator": {"policy": {"maxCpu": "lots"}}}).lower()
    (role,) = _render(policy={**_default_policy_values(), "accountsSecrets": True}).of_kind("Role")
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]} in role["rules"]


def _default_policy_values() -> dict:
    import yaml
    return yaml.safe_load((MONITORING_CHART / "values.yaml").read_text())["operator"]["policy"]


def test_app_teams_get_editor_and_viewer_roles_aggregated_to_edit_and_view():
    rendered = _render()
    editor = rendered.named("ClusterRole", f"{RELEASE}-loadtest-operator-loadtest-editor")
    viewer = rendered.named("ClusterRole", f"{RELEASE}-loadtest-operator-loadtest-viewer")
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {"create", "delete"} <= set(editor["rules"][0]["verbs"]) and viewer["rules"][0]["verbs"] == [
        "get", "list", "watch"]
    for role in (editor, viewer):
        assert all(set(rule["apiGroups"]) == {GROUP} for rule in role["rules"])   # LoadTests only, no pods or Jobs
    quiet = _render(userRoles={"create": True, "aggregate": False})
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in quiet.named(
        "ClusterRole", f"{RELEASE}-loadtest-operator-loadtest-editor")["metadata"]["labels"]
    assert len(_render(userRoles={"create": False, "aggregate": True}).of_kind("ClusterRole")) == 1


def test_reading_an_opted_in_secret_is_allowed_by_the_role_that_policy_renders(cluster, operator_config):
    operator_config.policy = Policy(accounts_secrets=True)
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0.2)
    opted_in(cluster, "Secret", "team-accounts", ACCOUNTS_LABEL, stringData={"accounts": "a:b\n"})
    apply(cluster, load_test("withsecret", accountsSecret={"name": "team-accounts"}))
    wait_status(cluster, "withsecret", "the run is collected", lastResult="withsecret-1")
    made = _requests_made(cluster)
    assert ("", "secrets", "get", NAMESPACE) in made
    (role,) = _render(watchNamespaces=[NAMESPACE], policy={**_default_policy_values(),
                                                           "accountsSecrets": True}).of_kind("Role")
    assert _allowed(role["rules"], "", "secrets", "get")


def test_the_roles_allow_every_request_the_operator_makes_in_a_run(cluster):
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0.2)
    apply(cluster, load_test("audited", workers=1, ttlSecondsAfterFinished=0, historyLimit=1))
    wait_status(cluster, "audited", "run 1 is collected", lastResult="audited-1")
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtests", "audited", {"spec": {"users": 30}})
    wait_status(cluster, "audited", "run 2 is collected", lastResult="audited-2")
    wait_until(lambda: list(objects(cluster, "loadtestresults")) == ["audited-2"] and not objects(cluster, "jobs"),
               what="run 1's result trimmed and the Jobs removed")
    rendered = _render(watchNamespaces=[NAMESPACE])
    (role,) = rendered.of_kind("Role")
    cluster_role = rendered.named("ClusterRole", f"{RELEASE}-loadtest-operator")
    made = _requests_made(cluster)
    assert ("", "pods/log", "get", NAMESPACE) in made and ("batch", "jobs", "delete", NAMESPACE) in made
    assert (GROUP, "loadtestresults", "delete", NAMESPACE) in made
    # The emulated operator runs cluster-wide (kmock 0.8 cannot serve kopf's namespaced mode), so its
    # watch of LoadTests has no namespace here; in the cluster it is per watched namespace, under the Role.
    cluster_scoped = {"namespaces", "customresourcedefinitions"}
    refused = [(group, resource, verb, namespace) for group, resource, verb, namespace in made
               if not _allowed(cluster_role["rules"] if resource in cluster_scoped else role["rules"],
                               group, resource, verb)]
    assert refused == [], f"the chart's RBAC would refuse: {refused}"
