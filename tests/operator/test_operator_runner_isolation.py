"""Each run is fenced off (issue: runner isolation). Its pods reach DNS, the
target and their master; only the run's own workers reach the master's port;
and a distributed run's workers show a per-run token, kept in a Secret that
goes with the run, to get its accounts. Nothing enforces NetworkPolicies
here: they are proved by the objects the operator creates and by matching
their selectors against the pods' labels (tests/support/charts.matches)."""
from __future__ import annotations

from operators.loadtest import manifests, names
from perfcontract.runner import METRICS_PORT
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import apply, load_test, objects, wait_status
from tests.support.charts import BLOG_CHART, matches, render
from devstack import wait_until


def _peers_allowed(rules: list[dict], labels: dict, port: int) -> bool:
    """Whether a policy's ingress/egress ``rules`` admit a pod of ``labels`` (same namespace) on ``port``."""
    for rule in rules:
        ports = [p.get("port") for p in rule.get("ports") or []]
        if ports and port not in ports:
            continue
        peers = rule.get("to", rule.get("from"))
        if peers is None or any("podSelector" in peer and "namespaceSelector" not in peer
                                and matches(peer["podSelector"], labels) for peer in peers):
            return True
    return False


def test_a_distributed_run_is_fenced_by_its_own_network_policy(cluster):
    blog = render(BLOG_CHART, {}, namespace=NAMESPACE)
    service = blog.named("Service", "aiblog")
    blog_pod_labels = blog.named("Deployment", "aiblog")["spec"]["template"]["metadata"]["labels"]
    client_service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "aiblog"}, "spec": service["spec"]}
    from kubernetes import client
    client.CoreV1Api(cluster.api).create_namespaced_service(NAMESPACE, client_service)
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("fenced", workers=2, target={"service": {"name": "aiblog", "port": http["port"]}}))
    wait_status(cluster, "fenced", "the run is Running", phase="Running")
    (policy,) = objects(cluster, "networkpolicies").values()
    spec = policy["spec"]
    pods = list(objects(cluster, "pods").values())
    master = next(p["metadata"]["labels"] for p in pods if p["metadata"]["labels"][names.ROLE_LABEL] == "master")
    worker = next(p["metadata"]["labels"] for p in pods if p["metadata"]["labels"][names.ROLE_LABEL] == "worker")
    assert all(matches(spec["podSelector"], p["metadata"]["labels"]) for p in pods)   # every pod of the run
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    other_run = {**worker, names.RUN_LABEL: "someone-else-1"}
    assert _peers_allowed(spec["ingress"], worker, manifests.MASTER_PORT)            # its workers reach the master
    assert not _peers_allowed(spec["ingress"], other_run, manifests.MASTER_PORT)     # another run's pods do not
    assert not _peers_allowed(spec["ingress"], {"app": "anything"}, manifests.MASTER_PORT)
    assert not _peers_allowed(spec["ingress"], worker, METRICS_PORT)                  # only the scrapers, below
    scrape = [rule for rule in spec["ingress"] if rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]]
    assert scrape == [{"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]
    assert _peers_allowed(spec["egress"], master, manifests.MASTER_PORT)             # workers reach their master
    assert _peers_allowed(spec["egress"], blog_pod_labels, http["targetPort"])       # the blog's pods, its port
    assert not _peers_allowed(spec["egress"], {"app.kubernetes.io/name": "postgresql"}, 5432)
    dns = next(rule for rule in spec["egress"] if {"protocol": "UDP", "port": 53} in rule["ports"])
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_a_url_targets_run_may_reach_only_the_urls_port_and_says_so(cluster, operator_config):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    apply(cluster, load_test("byurl", target={"url": "http://127.0.0.1:8123"}))
    wait_status(cluster, "byurl", "the run is Running", phase="Running")
    (policy,) = objects(cluster, "networkpolicies").values()
    target = [rule for rule in policy["spec"]["egress"] if "to" not in rule]
    assert target == [{"ports": [{"protocol": "TCP", "port": 8123}]}]   # a policy cannot name a host


def test_the_accounts_token_is_a_secret_of_the_run_that_goes_with_its_master_job(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("tokened", workers=2, accounts=4))
    wait_status(cluster, "tokened", "the run is Running", phase="Running")
    secret = objects(cluster, "secrets")["tokened-1-runner-token"]
    master_job = objects(cluster, "jobs")["tokened-1-master"]
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Job", master_job["metadata"]["uid"])   # deleted with the Job
    assert len(secret["stringData"][manifests.RUN_TOKEN_KEY]) >= 40
    for job in objects(cluster, "jobs").values():
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "BLOG_PERF_RUN_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": "tokened-1-runner-token", "key": "token"}}} in env


def test_a_single_pod_run_has_no_token_and_no_master_port(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    apply(cluster, load_test("alone"))
    wait_status(cluster, "alone", "the run is Running", phase="Running")
    assert not objects(cluster, "secrets")
    (policy,) = objects(cluster, "networkpolicies").values()
    # Only the scrapers (the operator's LOADTEST_METRICS_SCRAPERS) reach it, on its metrics port.
    assert policy["spec"]["ingress"] == [{"from": [{"namespaceSelector": {}}],
                                          "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]
    (job,) = objects(cluster, "jobs").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": METRICS_PORT}]
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == str(METRICS_PORT) and "--run-name" not in args
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0"


def test_the_runs_network_policy_and_token_go_with_its_jobs(cluster):
    from tests.operator.support import runner_log, summary_document
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0.2)
    cluster.cluster.scripts["worker"] = PodScript(run_seconds=0.2)
    apply(cluster, load_test("tidy", workers=1, accounts=2, ttlSecondsAfterFinished=0))
    wait_status(cluster, "tidy", "the run is collected", phase="Succeeded")
    wait_until(lambda: not objects(cluster, "jobs") and not objects(cluster, "networkpolicies")
               and not objects(cluster, "secrets") and not objects(cluster, "services"),
               what="the Jobs, NetworkPolicy, Service and token removed after the TTL")
