"""Helpers of the operator tests: LoadTest documents, runner logs, waiting on the emulator."""
from __future__ import annotations

import copy

from kubernetes import client

from perfcontract import run_summary
from devstack import wait_until
from tests.operator.cluster import NAMESPACE

GROUP, VERSION = "perf.aiblog.dev", "v1alpha1"

BASIC_SPEC = {"target": {"service": {"name": "blog", "port": 8000}}, "users": 20, "spawnRate": 5, "duration": 30}


def load_test(name: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LoadTest",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {**copy.deepcopy(BASIC_SPEC), **spec}}


def apply(cluster, document: dict) -> dict:
    return client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtests", document)


def opted_in(cluster, kind: str, name: str, label: str | None, **content) -> None:
    """A Secret, ConfigMap or PersistentVolumeClaim in the test namespace, labelled
    ``label=true`` (its owner's opt-in to LoadTests) unless ``label`` is None."""
    body = {"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "labels": {label: "true"} if label else {}}, **content}
    core = client.CoreV1Api(cluster.api)
    create = {"Secret": core.create_namespaced_secret, "ConfigMap": core.create_namespaced_config_map,
              "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim}[kind]
    create(NAMESPACE, body)


def patch_spec(cluster, name: str, spec: dict) -> None:
    """A user's merge patch of a LoadTest's spec (kubectl edit)."""
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtests", name, {"spec": spec})


def objects(cluster, plural: str) -> dict[str, dict]:
    """The live objects of one kind, by name (read straight from the emulator's memory)."""
    return {key[2]: copy.deepcopy(obj.raw) for key, obj in list(cluster.k.objects.items())
            if key[0].plural == plural and not obj.deleted}


def status(cluster, name: str) -> dict:
    return (objects(cluster, "loadtests").get(name) or {}).get("status") or {}


def wait_status(cluster, name: str, what: str, timeout: float = 20, **expected) -> dict:
    def matches():
        found = status(cluster, name)
        return found if all(found.get(k) == v for k, v in expected.items()) else None
    try:
        return wait_until(matches, timeout=timeout, what=what)
    except TimeoutError:
        raise AssertionError(f"{what}: status is {status(cluster, name)}") from None


def summary_document(requests=1000, failures=5, rps=33.3, p95=120.0, p99=250.0, error=None, users=20) -> dict:
    """A results.json document as ``blog-perf locust`` writes it (the parts the summary line carries)."""
    entries = [
        {"method": "GET", "name": "/", "requests": requests * 6 // 10, "failures": failures, "mean_ms": 40.0,
         "min_ms": 3, "max_ms": 900, "p50_ms": 30.0, "p90_ms": 90.0, "p95_ms": p95, "p99_ms": p99, "rps": rps * 0.6,
         "response_times": {"30": 10}},
        {"method": "GET", "name": "/post/[id]", "requests": requests - requests * 6 // 10, "failures": 0,
         "mean_ms": 35.0, "min_ms": 2, "max_ms": 800, "p50_ms": 25.0, "p90_ms": 80.0, "p95_ms": p95 - 10,
         "p99_ms": p99 - 10, "rps": rps * 0.4, "response_times": {"25": 10}},
    ]
    summary = None if error else {
        "requests": requests, "failures": failures, "backpressure_429": 0,
        "failure_rate": failures / requests if requests else None, "rps": rps,
        "p50_ms": 30.0, "p90_ms": 85.0, "p95_ms": p95, "p99_ms": p99, "users": users,
        "non_ai": {"requests": requests, "p50_ms": 30.0, "p95_ms": p95, "p99_ms": p99},
        "ai": {"requests": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None},
        "entries": entries, "errors": [{"method": "GET", "name": "/", "error": "HTTPError('500')",
                                        "occurrences": failures}] if failures else [],
    }
    return {"environment": {"target": "http://blog.perf.svc:8000"}, "interrupted": False,
            "runs": {"locust": {"started_at": "2026-11-30T00:00:00.000+00:00",
                                "finished_at": "2026-11-30T00:00:30.000+00:00", "exit_code": 0 if not error else 1,
                                "error": error, "parameters": {"users": users}, "summary": summary}},
            "thresholds": []}


def runner_log(document: dict, report: bytes | None = b"<html>report</html>") -> str:
    """The master pod's log: Locust's chatter, then the summary lines ``--log-summary`` prints."""
    return "\n".join(["[2026-11-30 00:00:00] starting Locust", "results: /tmp/blog-perf/results.json",
                      *run_summary.lines(document, report)]) + "\n"


def crd_schema(crd_file: str) -> dict:
    """The openAPIV3Schema of one of the CRDs in charts/monitoring/crds/."""
    import yaml
    from pathlib import Path
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts" / "monitoring" / "crds" / crd_file).read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def closed(schema: dict) -> dict:
    """The schema with no unknown fields allowed anywhere but metadata: what the API server would
    prune from an object (a field the operator writes but the CRD lacks would silently vanish)."""
    schema = copy.deepcopy(schema)

    def close(node: dict, path: str) -> None:
        if "properties" in node and path != ".metadata":
            node.setdefault("additionalProperties", False)
        for name, child in (node.get("properties") or {}).items():
            close(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            close(node["items"], f"{path}[]")
    close(schema, "")
    return schema


def assert_fits_crd(obj: dict, crd_file: str) -> None:
    import jsonschema
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft4Validator(closed(crd_schema(crd_file))).iter_errors(obj)]
    assert errors == [], errors


def printer_columns(obj: dict, crd_file: str) -> dict:
    """What `kubectl get` would show in the CRD's printer columns (Age left out), by
    following each column's simple `.a.b.c` jsonPath through ``obj``; None where it finds nothing."""
    import yaml
    from pathlib import Path
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts" / "monitoring" / "crds" / crd_file).read_text())
    (version,) = crd["spec"]["versions"]
    shown = {}
    for column in version["additionalPrinterColumns"]:
        if column["name"] == "Age":
            continue
        value = obj
        for key in column["jsonPath"].lstrip(".").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        shown[column["name"]] = value
    return shown


def _typed_as_the_api_server(value, schema: dict):
    """A JSON value with the types the API server gives CEL: a ``number`` field is a double
    even when written as 1 (CEL has no int/double comparison)."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        return {k: _typed_as_the_api_server(v, properties.get(k) or schema.get("additionalProperties") or {})
                for k, v in value.items()}
    if isinstance(value, list):
        return [_typed_as_the_api_server(v, schema.get("items") or {}) for v in value]
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def cel_refusals(document, schema: dict) -> list[str]:
    """The messages of the CRD's ``x-kubernetes-validations`` rules that ``document`` breaks,
    evaluated with cel-python as the API server would at create (rules on oldSelf are skipped)."""
    import celpy

    environment = celpy.Environment()
    messages = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            continue
        program = environment.program(environment.compile(rule["rule"]))
        value = celpy.json_to_cel(_typed_as_the_api_server(document, schema))
        if not program.evaluate({"self": value}):
            messages.append(rule.get("message") or rule["rule"])
    if isinstance(document, dict):
        for name, child in (schema.get("properties") or {}).items():
            if name in document:
                messages += cel_refusals(document[name], child)
    return messages
