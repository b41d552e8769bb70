"""Pure functions that build the objects of one run: the master's headless
Service, the master Job, the worker Job, the LoadTestResult and the report's
ConfigMap. No API calls here: the handlers adopt and create what these return.

Runner pods run ``blog-perf locust`` from the project's image, locked down as
the blog's pods are (non-root, read-only root, no capabilities) and with no
API credentials: the operator reads their figures from the master's log.
"""
from __future__ import annotations

from perfcontract.runner import MASTER_PORT, METRICS_PORT, RUN_TOKEN_ENV

from .names import (
    API_VERSION, ROLE_LABEL, RUN_LABEL, RUN_NUMBER_LABEL, labels, master_job_name,
    master_service_name, network_policy_name, report_configmap_name, run_token_secret_name, worker_job_name,
)
from .runner_pods import apply as apply_runner
from .spec import LoadTestSpec, quantity

RUNNER_UID = 10001  # the image's user (service/Dockerfile)
WORK_DIR = "/tmp/blog-perf"  # results.json and report.html, on the pod's writable /tmp
SCENARIO_DIR = "/etc/blog-perf/scenario"  # a LoadTest's own locustfile, from its ConfigMap
REPORTS_DIR = "/reports"  # a LoadTest's reportVolumeClaim, in the master pod
ACCOUNTS_DIR = "/etc/blog-perf/accounts"  # a LoadTest's accountsSecret, in the master pod only
REPORT_KEY = "report.html"
RUN_TOKEN_KEY = "token"
MASTER_CONTAINER = "master"  # the runner's container in the master pod (a mesh may inject others)
DEFAULT_RESOURCES = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
# Time a run may take beyond its load: account setup, workers connecting, stopping, the report.
DEADLINE_MARGIN_S = 600


def _scenario_args(spec: LoadTestSpec) -> list[str]:
    weights = ",".join(f"{task}={weight}" for task, weight in spec.weights.items())
    args = ["--target", spec.target_url, "--wait-min", f"{spec.wait_min:g}", "--wait-max", f"{spec.wait_max:g}",
            "--weights", weights, "--quiet"]
    if spec.scenario_configmap:
        args += ["--locustfile", f"{SCENARIO_DIR}/{spec.scenario_configmap[1]}"]
    return args


def report_path(run: str) -> str:
    """Where a run's report lies in its LoadTest's reportVolumeClaim."""
    return f"{run}/report.html"


def master_args(spec: LoadTestSpec, workers_max_wait: float, run: str, baseline_args: tuple = ()) -> list[str]:
    out = f"{REPORTS_DIR}/{run}" if spec.report_claim else WORK_DIR
    args = ["locust", *_scenario_args(spec), "--users", str(spec.users), "--spawn-rate", f"{spec.spawn_rate:g}",
            "--duration", str(spec.duration), "--out", out, "--log-summary",
            # Live figures for Prometheus (the monitoring chart's PodMonitor); loadtest and
            # run come from the pod's labels, so no --run-name.
            "--metrics-port", str(METRICS_PORT), "--metrics-host", "0.0.0.0"]
    for flag, value in (("--max-p95-ms", spec.thresholds.p95_ms), ("--max-p99-ms", spec.thresholds.p99_ms),
                        ("--max-error-rate", spec.thresholds.max_error_rate), ("--min-rps", spec.thresholds.min_rps)):
        if value is not None:
            args += [flag, f"{value:g}"]
    if spec.accounts:
        args += ["--accounts", str(spec.accounts)]
    if spec.accounts_secret:
        args += ["--accounts", f"{ACCOUNTS_DIR}/{spec.accounts_secret[1]}"]
    if spec.workers:
        args += ["--master", "--expect-workers", str(spec.workers), "--expect-workers-max-wait",
                 f"{workers_max_wait:g}"]
    if spec.profile:  # a stepped run: the master's shape sets the users (the workers just run them)
        args += ["--steps", spec.profile.steps.text(), "--slo-error-rate", f"{spec.profile.slo.max_error_rate:g}"]
        if spec.profile.slo.p95_ms is not None:
            args += ["--slo-p95-ms", f"{spec.profile.slo.p95_ms:g}"]
        if spec.thresholds.min_capacity_users is not None:
            args += ["--min-capacity-users", str(spec.thresholds.min_capacity_users)]
    return args + list(baseline_args)  # spec.compare's baseline, for the report (baselines.runner_args)


def worker_args(spec: LoadTestSpec, run: str) -> list[str]:
    return ["locust", *_scenario_args(spec), "--worker", "--master-host", master_service_name(run),
            "--master-port", str(MASTER_PORT)]


def _container(name: str, image: str, args: list[str], run: str, resources: dict, ports: list | None = None) -> dict:
    container = {
        "name": name, "image": image, "command": ["blog-perf"], "args": args,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": "/tmp"},
                # One run id for master and workers: the AI titles they share are the same cache keys.
                {"name": "BLOG_PERF_RUN_ID", "value": run}],
        "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if ports:
        container["ports"] = ports
    return container


def _job(name: str, test: str, run: str, role: str, container: dict, spec: LoadTestSpec, count: int) -> dict:
    pod_labels = labels(test, run, role)
    volumes = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if spec.scenario_configmap:
        configmap, key = spec.scenario_configmap
        volumes.append({"name": "scenario", "configMap": {"name": configmap, "items": [{"key": key, "path": key}]}})
        container["volumeMounts"].append({"name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": True})
    if spec.accounts_secret and role == "master":
        # Only the master reads the file; it hands the accounts to its workers.
        secret, key = spec.accounts_secret
        volumes.append({"name": "accounts", "secret": {"secretName": secret, "items": [{"key": key, "path": key}],
                                                       "defaultMode": 0o440}})
        container["volumeMounts"].append({"name": "accounts", "mountPath": ACCOUNTS_DIR, "readOnly": True})
    if spec.report_claim and role == "master":
        volumes.append({"name": "reports", "persistentVolumeClaim": {"claimName": spec.report_claim}})
        container["volumeMounts"].append({"name": "reports", "mountPath": REPORTS_DIR})
    template = {
        "metadata": {"labels": pod_labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,  # the runners never talk to the API
            "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID,
                                "fsGroup": RUNNER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": volumes,
        },
    }
    apply_runner(spec.runner, template, container)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": pod_labels},
        "spec": {
            "parallelism": count, "completions": count, "backoffLimit": 0,
            "activeDeadlineSeconds": spec.duration + DEADLINE_MARGIN_S,
            "template": template,
        },
    }


def _resources(spec: LoadTestSpec) -> dict:
    """The defaults under what the spec gives; a limit is raised to its request when the
    spec asks more than the default limit (the API server refuses a request over its limit)."""
    resources = {part: {**DEFAULT_RESOURCES[part], **spec.resources.get(part, {})} for part in ("requests", "limits")}
    for name, asked in resources["requests"].items():
        if name not in (spec.resources.get("limits") or {}) and quantity(asked) > quantity(resources["limits"][name]):
            resources["limits"][name] = asked
    return resources


def _with_run_token(container: dict, run: str) -> dict:
    container["env"].append({"name": RUN_TOKEN_ENV, "valueFrom": {"secretKeyRef": {
        "name": run_token_secret_name(run), "key": RUN_TOKEN_KEY}}})
    return container


def master_job(test: str, run: str, spec: LoadTestSpec, image: str, workers_max_wait: float,
               baseline_args: tuple = ()) -> dict:
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}]
    if spec.workers:
        ports.append({"name": "locust-master", "containerPort": MASTER_PORT})
    container = _container(MASTER_CONTAINER, image, master_args(spec, workers_max_wait, run, baseline_args), run, _resources(spec), ports)
    if spec.workers:
        _with_run_token(container, run)
    return _job(master_job_name(run), test, run, "master", container, spec, 1)


def worker_job(test: str, run: str, spec: LoadTestSpec, image: str) -> dict:
    container = _with_run_token(_container("worker", image, worker_args(spec, run), run, _resources(spec)), run)
    return _job(worker_job_name(run), test, run, "worker", container, spec, spec.workers)


def run_token_secret(test: str, run: str, token: str) -> dict:
    """What the run's workers show the master to get its accounts: Locust's port has no
    authentication, and any pod that reached it was handed every account."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": run_token_secret_name(run), "labels": labels(test, run)},
            "stringData": {RUN_TOKEN_KEY: token}}


def owned_by_job(child: dict, job: dict) -> dict:
    """``child`` goes when ``job`` goes (the garbage collector; no right to delete it is needed)."""
    meta = job["metadata"]
    child["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                             "uid": meta["uid"], "controller": True}]
    return child


DNS_PEERS = [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]


def run_network_policy(test: str, run: str, spec: LoadTestSpec, target: dict, scrapers: dict) -> dict:
    """The run's pods reach DNS, the target and (workers) their master; only the run's workers
    reach the master's port, and only ``scrapers`` (a peer: Prometheus's namespace) its
    metrics port. ``target`` is the egress peer and port of the target: the Service's pods
    (``{"pods": selector, "port": targetPort}``), or, for a URL, only its port (a
    NetworkPolicy cannot name a host)."""
    own = {RUN_LABEL: run}
    target_rule = {"ports": [{"protocol": "TCP", "port": target["port"]}]}
    if target.get("pods") is not None:
        target_rule["to"] = [{"podSelector": {"matchLabels": target["pods"]}}]
    egress = [{"to": DNS_PEERS, "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
              target_rule]
    ingress = [{"from": [scrapers], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]
    if spec.workers:
        master = {"podSelector": {"matchLabels": {RUN_LABEL: run, ROLE_LABEL: "master"}}}
        workers = {"podSelector": {"matchLabels": {RUN_LABEL: run, ROLE_LABEL: "worker"}}}
        egress.append({"to": [master], "ports": [{"protocol": "TCP", "port": MASTER_PORT}]})
        ingress.append({"from": [workers], "ports": [{"protocol": "TCP", "port": MASTER_PORT}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": network_policy_name(run), "labels": labels(test, run)},
            "spec": {"podSelector": {"matchLabels": own}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": ingress, "egress": egress}}


def master_service(test: str, run: str) -> dict:
    """Headless, so workers reach the master pod itself; published before it is ready, as they start together."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": master_service_name(run), "labels": labels(test, run, "master")},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {RUN_LABEL: run, ROLE_LABEL: "master"},
                 "ports": [{"name": "locust-master", "port": MASTER_PORT, "targetPort": MASTER_PORT}]},
    }


def run_children(test: str, run: str, spec: LoadTestSpec, image: str, workers_max_wait: float, target: dict,
                 token: str, scrapers: dict, baseline_args: tuple = ()) -> list[dict]:
    """Everything one run needs, in creation order: the NetworkPolicy before any pod, the
    Service before the workers that look it up, the token after the master Job that owns it."""
    children = [run_network_policy(test, run, spec, target, scrapers)]
    if spec.workers:
        children.append(master_service(test, run))
    children.append(master_job(test, run, spec, image, workers_max_wait, baseline_args))
    if spec.workers:
        children.append(run_token_secret(test, run, token))
        children.append(worker_job(test, run, spec, image))
    return children


def load_test_result(test: str, run: str, number: int, result_spec: dict) -> dict:
    run_labels = labels(test, run)
    run_labels[RUN_NUMBER_LABEL] = str(number)
    return {"apiVersion": API_VERSION, "kind": "LoadTestResult", "metadata": {"name": run, "labels": run_labels},
            "spec": result_spec}


def report_configmap(test: str, run: str, html: bytes) -> dict:
    """The HTML report as a ConfigMap (run_summary.MAX_REPORT_BYTES keeps it under the API's 1 MiB)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": report_configmap_name(run), "labels": labels(test, run)},
            "data": {REPORT_KEY: html.decode("utf-8", errors="replace")}}
