"""Pure functions that build the objects of one run: the master's headless
Service, the master Job, the worker Job, the LoadTestResult and the report's
ConfigMap. No API calls here: the handlers adopt and create what these return.

Runner pods run ``blog-perf locust`` from the project's image, locked down as
the blog's pods are (non-root, read-only root, no capabilities) and with no
API credentials: the operator reads their figures from the master's log.
"""
from __future__ import annotations

import hashlib

from loadtests.locust_run import MASTER_PORT
from loadtests.log_summary import MAX_REPORT_BYTES

from .spec import LoadTestSpec

GROUP, VERSION = "perf.aiblog.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TEST_LABEL = f"{GROUP}/test"
RUN_LABEL = f"{GROUP}/run"
RUN_NUMBER_LABEL = f"{GROUP}/run-number"
ROLE_LABEL = f"{GROUP}/role"
FINISHED_ANNOTATION = f"{GROUP}/finished-at"
MANAGED_BY = "aiblog-loadtest-operator"
RUNNER_UID = 10001  # the image's user (service/Dockerfile)
WORK_DIR = "/tmp/blog-perf"  # results.json and report.html, on the pod's writable /tmp
SCENARIO_DIR = "/etc/blog-perf/scenario"  # a LoadTest's own locustfile, from its ConfigMap
REPORTS_DIR = "/reports"  # a LoadTest's reportVolumeClaim, in the master pod
ACCOUNTS_DIR = "/etc/blog-perf/accounts"  # a LoadTest's accountsSecret, in the master pod only
REPORT_KEY = "report.html"
MASTER_CONTAINER = "master"  # the runner's container in the master pod (a mesh may inject others)
CONFIGMAP_LIMIT = MAX_REPORT_BYTES  # bytes of report kept in a ConfigMap (the API's limit is 1 MiB per object)
DEFAULT_RESOURCES = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
# Time a run may take beyond its load: account setup, workers connecting, stopping, the report.
DEADLINE_MARGIN_S = 600


def run_name(test: str, number: int) -> str:
    """``<test>-<n>``, short enough for the Job name suffixes and label values (63 characters)."""
    suffix = f"-{number}"
    if len(test) + len(suffix) <= 45:
        return f"{test}{suffix}"
    digest = hashlib.sha256(test.encode()).hexdigest()[:6]
    return f"{test[:44 - len(suffix) - 6].rstrip('-')}-{digest}{suffix}"


def master_job_name(run: str) -> str:
    return f"{run}-master"


def worker_job_name(run: str) -> str:
    return f"{run}-worker"


def master_service_name(run: str) -> str:
    return f"{run}-master"


def report_configmap_name(run: str) -> str:
    return f"{run}-report"


def labels(test: str, run: str, role: str | None = None) -> dict:
    found = {"app.kubernetes.io/name": "loadtest-runner", "app.kubernetes.io/managed-by": MANAGED_BY,
             TEST_LABEL: test, RUN_LABEL: run}
    if role:
        found[ROLE_LABEL] = role
    return found


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


def master_args(spec: LoadTestSpec, workers_max_wait: float, run: str) -> list[str]:
    out = f"{REPORTS_DIR}/{run}" if spec.report_claim else WORK_DIR
    args = ["locust", *_scenario_args(spec), "--users", str(spec.users), "--spawn-rate", f"{spec.spawn_rate:g}",
            "--duration", str(spec.duration), "--out", out, "--log-summary"]
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
    return args


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
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": pod_labels},
        "spec": {
            "parallelism": count, "completions": count, "backoffLimit": 0,
            "activeDeadlineSeconds": spec.duration + DEADLINE_MARGIN_S,
            "template": {
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
            },
        },
    }


def _resources(spec: LoadTestSpec) -> dict:
    return {part: {**DEFAULT_RESOURCES[part], **spec.resources.get(part, {})} for part in ("requests", "limits")}


def master_job(test: str, run: str, spec: LoadTestSpec, image: str, workers_max_wait: float) -> dict:
    ports = [{"name": "locust-master", "containerPort": MASTER_PORT}] if spec.workers else None
    container = _container(MASTER_CONTAINER, image, master_args(spec, workers_max_wait, run), run, _resources(spec), ports)
    return _job(master_job_name(run), test, run, "master", container, spec, 1)


def worker_job(test: str, run: str, spec: LoadTestSpec, image: str) -> dict:
    container = _container("worker", image, worker_args(spec, run), run, _resources(spec))
    return _job(worker_job_name(run), test, run, "worker", container, spec, spec.workers)


def master_service(test: str, run: str) -> dict:
    """Headless, so workers reach the master pod itself; published before it is ready, as they start together."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": master_service_name(run), "labels": labels(test, run, "master")},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {RUN_LABEL: run, ROLE_LABEL: "master"},
                 "ports": [{"name": "locust-master", "port": MASTER_PORT, "targetPort": MASTER_PORT}]},
    }


def run_children(test: str, run: str, spec: LoadTestSpec, image: str, workers_max_wait: float) -> list[dict]:
    """Everything one run needs, in creation order (the Service before the workers that look it up)."""
    children = []
    if spec.workers:
        children.append(master_service(test, run))
    children.append(master_job(test, run, spec, image, workers_max_wait))
    if spec.workers:
        children.append(worker_job(test, run, spec, image))
    return children


def load_test_result(test: str, run: str, number: int, result_spec: dict) -> dict:
    run_labels = labels(test, run)
    run_labels[RUN_NUMBER_LABEL] = str(number)
    return {"apiVersion": API_VERSION, "kind": "LoadTestResult", "metadata": {"name": run, "labels": run_labels},
            "spec": result_spec}


def report_configmap(test: str, run: str, html: bytes) -> dict | None:
    """The HTML report as a ConfigMap, or None when it is too large for one."""
    if len(html) > CONFIGMAP_LIMIT:
        return None
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": report_configmap_name(run), "labels": labels(test, run)},
            "data": {REPORT_KEY: html.decode("utf-8", errors="replace")}}
